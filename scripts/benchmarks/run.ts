/**
 * `npm run bench [NAME...] [--runs N]`: the benchmarks of SPEC §9. Each one measures the product and its baseline
 * side by side in this run (alternating runs, medians), prints one line, and everything goes to bench/results.json.
 * One lab (prefix "bench" and the process id) is created for the run and always removed, also when the run fails or is interrupted.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { labDown, labNames, labUp, type LabNames } from '../../services/lab/lab.ts';
import { apiStatusBench } from './api-status.ts';
import { applyBench } from './apply-10k.ts';
import { blocksBench } from './blocks-50k.ts';
import { connRateBench } from './conn-rate.ts';
import { idsBlockLatencyBench } from './ids-block-latency.ts';
import { idsIngestBench } from './ids-ingest.ts';
import { LAB_PREFIX, ROOT, buildIsCurrent, emergencyCleanup, round, trackNamespaces, untrackNamespaces, type Result, type Target } from './lib.ts';
import { rssBench } from './rss-idle.ts';
import { snmpBulkBench } from './snmp-bulk.ts';
import { syncDrainBench } from './sync-drain.ts';
import { syncFleetBench } from './sync-fleet.ts';
import { telemetryCycleBench, telemetryQueryBench } from './telemetry.ts';
import { webuiJsBench, webuiTtiBench } from './webui-load.ts';

export interface BenchContext {
  lab: LabNames;
  /** Runs of each side (each benchmark has its own default). */
  runs?: number;
  progress(msg: string): void;
}

const BENCHMARKS: Record<string, (ctx: BenchContext) => Promise<Result>> = {
  'api-status': apiStatusBench,
  'apply-10k': applyBench,
  'blocks-50k': blocksBench,
  'conn-rate': connRateBench,
  'ids-block-latency': idsBlockLatencyBench,
  'ids-ingest': idsIngestBench,
  'rss-idle': rssBench,
  'snmp-bulk': snmpBulkBench,
  'sync-drain': syncDrainBench,
  'sync-fleet': syncFleetBench,
  'telemetry-cycle': telemetryCycleBench,
  'telemetry-query': telemetryQueryBench,
  'webui-js': webuiJsBench,
  'webui-tti': webuiTtiBench,
};

const USAGE = `usage: npm run bench -- [NAME...] [--runs N]
  NAME: ${Object.keys(BENCHMARKS).join(', ')} (default: all)
  --runs N: runs of each side per benchmark (defaults: api-status 2, apply-10k 5, blocks-50k 5, conn-rate 3)`;

function parseArgs(argv: string[]): { names: string[]; runs?: number } {
  const names: string[] = [];
  let runs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--runs') {
      runs = Number(argv[++i]);
      if (!Number.isInteger(runs) || runs < 1 || runs > 50) fail(`--runs needs a whole number from 1 to 50`);
    } else if (Object.hasOwn(BENCHMARKS, a)) {
      if (!names.includes(a)) names.push(a);
    } else fail(`unknown benchmark or option "${a}"`);
  }
  return { names: names.length ? names : Object.keys(BENCHMARKS), runs };
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const n = (x: number | null, digits = 2) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits));
const int = (x: number | null) => (x === null || !Number.isFinite(x) ? 'n/a' : Math.round(x).toLocaleString('en-US'));

function targetText(t: Target, unit: string): string {
  const parts: string[] = [];
  if (t.maxValue !== undefined) parts.push(`≤ ${t.maxValue} ${unit}`);
  if (t.maxRatio !== undefined) parts.push(parts.length ? `ratio ≤ ${t.maxRatio}` : `≤ ${t.maxRatio}`);
  if (t.minRatio !== undefined) parts.push(parts.length ? `ratio ≥ ${t.minRatio}` : `≥ ${t.minRatio}`);
  return parts.join(' and ');
}

/** The one line of a benchmark, plus indented extra figures. */
function describe(r: Result): string {
  const verdict = r.pass ? 'PASS' : 'FAIL';
  if (r.error) return `${r.name}: ERROR ${r.error.split('\n')[0]} FAIL`;
  const d = r.details as any;
  const target = targetText(r.target, r.unit);
  switch (r.name) {
    case 'apply-10k': {
      const t = d.tracedApplySeconds ?? {};
      const e = d.estimatesSeconds ?? {};
      const re = d.reapplyUnchangedBlocklist ?? {};
      return [
        `apply-10k: ratio ${n(r.ratio)} (rampart apply ${n(r.value)} s vs nft -f ${n(r.baseline)} s; target ${target}) ${verdict}`,
        `  extra: compile alone (in-process compileRuleset(parseConfig(doc))) ${n(d.compileSeconds)} s; validation alone ${n(d.validateSeconds)} s, compileRuleset alone ${n(d.compileOnlySeconds)} s`,
        ...(d.daemonReportedSeconds
          ? [`  extra: the daemon's own log, medians of the measured applies: ${Object.entries<number>(d.daemonReportedSeconds).map(([k, v]) => `${k} ${n(v)}`).join(', ')} s`]
          : []),
        `  extra: one traced apply ${n(t.total)} s = before nft ${n(t.beforeNft)} s + nft in the daemon ${n(t.nft)} s + after nft ${n(t.afterNft)} s`,
        `  extra: estimated pieces before nft: CLI start ${n(e.cliStart)}, read+parse file ${n(e.readAndParseFile)}, request transfer ${n(e.requestTransfer)}, validate ${n(e.validate)}, compile ${n(e.compile)} s; after nft: journal hash ${n(e.journalHash)} s`,
        `  extra: re-apply with the blocklist unchanged ${n(re.rampartApplySeconds)} s (nft in the daemon ${n(re.phases?.nft)} s) vs nft -f of the rules table alone ${n(re.nftRulesTableOnlySeconds)} s`,
      ].join('\n');
    }
    case 'blocks-50k':
      return [
        `blocks-50k: ratio ${n(r.ratio)} (rampart block ${n(r.value)} s vs nft -f ${n(r.baseline)} s; target ${target}) ${verdict}`,
        `  extra: one traced block ${n(d.tracedBlockSeconds?.total)} s = before nft ${n(d.tracedBlockSeconds?.beforeNft)} s + nft in the daemon ${n(d.tracedBlockSeconds?.nft)} s + after nft ${n(d.tracedBlockSeconds?.afterNft)} s; one-address \`rampart block\` ${n(d.singleAddressBlockSeconds)} s (fixed cost per call)`,
      ].join('\n');
    case 'conn-rate':
      return [
        `conn-rate: ratio ${n(r.ratio)} (10,000 rules ${int(r.value)} conn/s vs 10 rules ${int(r.baseline)} conn/s; target ${target}) ${verdict}${d.errors ? ` (${d.errors} connection errors)` : ''}`,
        `  extra: 10,000 uniform host+port rules ${int(d.uniform10kRules.rate)} conn/s, ratio ${n(d.uniform10kRules.ratio)} (not the target)`,
      ].join('\n');
    case 'api-status': {
      const w = d.whereTheTimeGoes ?? {};
      return [
        `api-status: ratio ${n(r.ratio)} (rampartd GET /api/v1/status ${int(r.value)} req/s vs bare node:http ${int(r.baseline)} req/s, ${d.connections} connections; daemon p99 ${n(d.daemonP99Ms, 1)} ms; target ${target} and p99 ≤ ${d.targetP99Ms} ms) ${verdict}${d.errors ? ` (${d.errors} errors / non-2xx)` : ''}`,
        `  extra: one request at a time: daemon ${n(w.sequentialMedianMs?.daemon)} ms, bare ${n(w.sequentialMedianMs?.bare)} ms; nft processes per request under load ${n(w.tracedLoad?.nftPerRequest)}; one nft -t list table ${n(w.nftListTableMs, 1)} ms`,
      ].join('\n');
    }
    case 'rss-idle':
      return `rss-idle: ${n(r.value, 1)} MB (rampartd idle vs bare node ${n(r.baseline, 1)} MB, ratio ${n(r.ratio)}; target ${target}) ${verdict}`;
    case 'sync-drain':
      return [
        `sync-drain: ratio ${n(r.ratio)} (outbox → consumer ${int(r.value)} alerts/s vs raw MQTT.js ${int(r.baseline)} alerts/s, ${int(d.alerts)} alerts; target ${target} and ≥ ${int(d.minAlertsPerSecond)} alerts/s) ${verdict}`,
        `  extra: payload bytes per alert ${d.payloadBytesPerAlert} (raw batches ${d.rawPayloadBytesPerAlert})`,
      ].join('\n');
    case 'sync-fleet':
      return [
        `sync-fleet: ${n(r.value)} s for a signed push to ${int(d.devices)} appliances to be reported applied (${d.applied} did; fleet of 1: ${n(r.baseline)} s, ratio ${n(r.ratio)}; target ${target}) ${verdict}`,
        `  extra: broker restart → all reconnected in ${n(d.reconnectAllSeconds)} s, peak ${d.reconnectPeakPer250ms} connects per 250 ms; curve ${(d.reconnectCurvePer250ms ?? []).join(' ')}`,
      ].join('\n');
    default:
      return `${r.name}: ratio ${n(r.ratio)} (${n(r.value)} ${r.unit} vs ${n(r.baseline)} ${r.unit}; target ${target}) ${verdict}`;
  }
}

function toolVersion(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim().split('\n')[0];
}

async function main(): Promise<number> {
  const { names, runs } = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (network namespaces and nftables); run it as root\n');
    return 1;
  }
  const started = Date.now();
  const loadAtStart = loadavg().map((x) => round(x, 2));
  if (loadAtStart[0] > cpus().length) {
    process.stderr.write(`bench: warning: load average ${loadAtStart[0]} on ${cpus().length} CPUs; figures will be noisy (ratios less so)\n`);
  }
  const compiled = buildIsCurrent();
  if (!compiled) process.stderr.write('bench: warning: build/ is older than services/; bin/rampart runs TypeScript through tsx (slower start)\n');

  const lab = labNames(LAB_PREFIX);
  trackNamespaces(Object.values(lab));
  const results: Result[] = [];
  try {
    process.stderr.write(`bench: lab up (${Object.values(lab).join(', ')})\n`);
    await labUp(LAB_PREFIX);
    for (const name of names) {
      const t0 = Date.now();
      const ctx: BenchContext = { lab, runs, progress: (msg) => process.stderr.write(`  [${name}] ${msg}\n`) };
      process.stderr.write(`bench: ${name}\n`);
      let r: Result;
      try {
        r = await BENCHMARKS[name](ctx);
      } catch (err) {
        const e = err as Error;
        r = { name, value: null, baseline: null, ratio: null, target: {}, pass: false, unit: '', details: {}, error: e?.message ?? String(err) };
        process.stderr.write(`  [${name}] failed: ${e?.stack ?? err}\n`);
      }
      r.details.elapsedSeconds = round((Date.now() - t0) / 1000, 1);
      for (const k of ['value', 'baseline', 'ratio'] as const) if (typeof r[k] === 'number') r[k] = round(r[k] as number, 4);
      results.push(r);
      process.stdout.write(describe(r) + '\n');
    }
  } finally {
    process.stderr.write('bench: lab down\n');
    await labDown(LAB_PREFIX).catch((err) => process.stderr.write(`bench: lab down failed: ${err}\n`));
    untrackNamespaces(Object.values(lab));
  }

  const stillCompiled = buildIsCurrent();
  const out = {
    generatedAt: new Date().toISOString(),
    elapsedSeconds: round((Date.now() - started) / 1000, 1),
    machine: {
      cpus: cpus().length,
      kernel: release(),
      node: process.version,
      nft: toolVersion('nft', ['--version']),
      loadAverage: { atStart: loadAtStart, atEnd: loadavg().map((x) => round(x, 2)) },
    },
    cli: { compiledBuild: compiled && stillCompiled },
    results,
  };
  mkdirSync(join(ROOT, 'bench'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results.json'), JSON.stringify(out, null, 2) + '\n');
  const failed = results.filter((r) => !r.pass).length;
  process.stdout.write(`bench: ${results.length - failed} passed, ${failed} failed in ${out.elapsedSeconds} s; results in bench/results.json\n`);
  return failed ? 1 : 0;
}

process.on('exit', emergencyCleanup);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.once(sig, () => {
    process.stderr.write(`bench: ${sig}: cleaning up\n`);
    emergencyCleanup();
    process.exit(code);
  });
}
main().then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
