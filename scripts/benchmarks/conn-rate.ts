/**
 * conn-rate: new TCP connections per second through the lab firewall (lan host → wan host, connect + read the
 * greeting + close, WORKERS concurrent loops in one client process in the lan namespace, a Node server in the wan
 * namespace), with 10,000 forward rules where the benchmark flow is accepted only by the LAST rule, divided by the
 * same with 10 rules. Each config is applied with `rampart apply`; the two are measured alternately.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONN_PORT, WAN_HOST, connConfig, labDoc } from './configs.ts';
import {
  BIN,
  CLI_ENV,
  ROOT,
  median,
  mustRun,
  nftIn,
  rampartArgs,
  removeTempDir,
  round,
  startRampartd,
  tempDir,
  trackPid,
  untrackPid,
  type Result,
} from './lib.ts';
import type { BenchContext } from './run.ts';

const AGENT = join(ROOT, 'scripts/benchmarks/conn-agent.ts');
const WORKERS = 4;
const WARMUP_MS = 500;
const MEASURE_MS = 4000;
const TARGET = { minRatio: 0.8 };

interface Sample {
  connections: number;
  total: number;
  rate: number;
  errors: number;
  errorCodes: Record<string, number>;
  latencyMs: Record<string, number | null>;
}

/** The server in the wan namespace; resolves once it listens. */
function startServer(netns: string): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', AGENT, 'serve', String(CONN_PORT)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: ROOT,
  });
  trackPid(child.pid, 'conn-agent server');
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    untrackPid(child.pid);
  });
  const stop = async () => {
    if (!gone) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => void stop().then(() => reject(new Error(`conn-agent server not ready: ${err}`))), 15_000);
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve({ pid: child.pid!, stop });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`conn-agent server exited: ${err}`));
    });
  });
}

async function measure(netns: string): Promise<Sample> {
  const r = await mustRun('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', AGENT, 'client', WAN_HOST, String(CONN_PORT), String(WORKERS), String(WARMUP_MS), String(MEASURE_MS)]);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
}

/** Packets counted by the benchmark flow's own rule (proves the last rule decided). */
async function flowPackets(netns: string): Promise<number> {
  const r = await nftIn(netns, ['list', 'counter', 'inet', 'rampart', 'r_bench-flow']);
  return Number(/packets (\d+)/.exec(r.stdout)?.[1] ?? NaN);
}

export async function connRateBench(ctx: BenchContext): Promise<Result> {
  const runs = ctx.runs ?? 3;
  const dir = tempDir('conn');
  const { lan, fw, wan } = ctx.lab;
  const daemon = await startRampartd({ netns: fw, config: labDoc(), dataDir: join(dir, 'data') });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    // Lab-only tuning, identical for both configurations: a wide ephemeral port range for the client and short
    // conntrack TIME_WAIT in the firewall, so tens of thousands of short connections never exhaust either.
    await mustRun('ip', ['netns', 'exec', lan, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000']);
    const conntrackTuned = await mustRun('ip', ['netns', 'exec', fw, 'sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_tcp_timeout_time_wait=5']).then(
      () => true,
      () => false,
    );

    // few: the baseline (10 rules); many: the measured config (10,000 rules of realistic variety); uniform: an extra
    // figure, 10,000 rules that are all single host + single port (the best case for rule-to-lookup compilation).
    type Kind = 'few' | 'many' | 'uniform';
    const configs: Record<Kind, any> = { few: connConfig(10), many: connConfig(10_000), uniform: connConfig(10_000, 'uniform') };
    const files: Record<Kind, string> = { few: join(dir, 'conn-10.json'), many: join(dir, 'conn-10k.json'), uniform: join(dir, 'conn-10k-uniform.json') };
    for (const k of Object.keys(files) as Kind[]) writeFileSync(files[k], JSON.stringify(configs[k], null, 2));
    const label: Record<Kind, string> = { few: '10 rules', many: '10,000 rules', uniform: '10,000 uniform rules' };
    server = await startServer(wan);

    const samples: Record<Kind, Sample[]> = { few: [], many: [], uniform: [] };
    const applyMs: Record<Kind, number[]> = { few: [], many: [], uniform: [] };
    let lastRulePackets: number | undefined;
    const kinds: Kind[] = ['few', 'many', 'uniform'];
    for (let i = 0; i < runs; i++) {
      const order = [...kinds.slice(i % 3), ...kinds.slice(0, i % 3)];
      for (const which of order) {
        const a = await mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['apply', files[which], '-m', `conn-rate ${which}`]), { env: CLI_ENV });
        applyMs[which].push(a.ms);
        const before = which === 'many' && lastRulePackets === undefined ? await flowPackets(fw) : undefined;
        const s = await measure(lan);
        samples[which].push(s);
        if (before !== undefined) lastRulePackets = (await flowPackets(fw)) - before;
        ctx.progress(`run ${i + 1}/${runs}: ${label[which]} ${Math.round(s.rate)} conn/s${s.errors ? ` (${s.errors} errors ${JSON.stringify(s.errorCodes)})` : ''}`);
      }
    }
    const errors = [...samples.few, ...samples.many, ...samples.uniform].reduce((n, s) => n + s.errors, 0);
    const uniformRate = median(samples.uniform.map((s) => s.rate));
    const value = median(samples.many.map((s) => s.rate));
    const baseline = median(samples.few.map((s) => s.rate));
    const ratio = value / baseline;
    return {
      name: 'conn-rate',
      value,
      baseline,
      ratio,
      target: TARGET,
      pass: ratio >= TARGET.minRatio && errors === 0,
      unit: 'conn/s',
      details: {
        runs,
        workers: WORKERS,
        measureSeconds: MEASURE_MS / 1000,
        flow: `lan 192.0.2.10 -> ${WAN_HOST} tcp/${CONN_PORT}, accepted by the last forward rule "bench-flow"`,
        rules: { value: configs.many.firewall.forward.length, baseline: configs.few.firewall.forward.length },
        ratesWith10kRules: samples.many.map((s) => round(s.rate, 1)),
        ratesWith10Rules: samples.few.map((s) => round(s.rate, 1)),
        uniform10kRules: {
          note: 'extra figure, not the target: 9,999 rules that are each one IPv4 host + one TCP port, then the flow rule',
          rate: round(uniformRate, 1),
          ratio: round(uniformRate / baseline, 4),
          rates: samples.uniform.map((s) => round(s.rate, 1)),
        },
        latencyMsWith10kRules: samples.many.map((s) => s.latencyMs),
        latencyMsWith10Rules: samples.few.map((s) => s.latencyMs),
        errors,
        // Each connection's first packet (SYN) is the only one that walks the rules (then ct state accepts), so the
        // last rule's counter must have counted every connection of the run.
        flowDecidedByLastRule: lastRulePackets !== undefined && lastRulePackets >= (samples.many[0]?.total ?? Infinity),
        lastRulePacketsInFirst10kRun: lastRulePackets,
        connectionsInFirst10kRun: samples.many[0]?.total,
        applySeconds: {
          with10kRules: applyMs.many.map((x) => round(x / 1000)),
          with10Rules: applyMs.few.map((x) => round(x / 1000)),
          with10kUniformRules: applyMs.uniform.map((x) => round(x / 1000)),
        },
        conntrackTimeWaitSeconds: conntrackTuned ? 5 : 'default',
      },
    };
  } finally {
    await server?.stop();
    await daemon.stop();
    removeTempDir(dir);
  }
}
