/**
 * snmp-bulk: `snmpbulkwalk` of IF-MIB (ifTable and ifXTable) with 64 interfaces (the bench lab's firewall
 * namespace: lan0, wan0 and 31 veth pairs, plus lo), Rampart's agent against Net-SNMP's `snmpd` serving the same
 * namespace in the same run. Both agents run inside the namespace (rampartd started there with `ip netns exec`,
 * managing it with --netns) and both walks run there too, so they cost the same process start-up; runs alternate,
 * medians. Rampart runs with its default telemetry interval (10 s; the counters it serves are that fresh). The ratio
 * is Rampart's time ÷ snmpd's (target ≤ 1.5). Extra: GETs of 10 OIDs per second (snmp-native,
 * 8 in flight, scripts/benchmarks/snmp-get-client.ts) against each agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callDaemon } from '../../services/control.ts';
import { labDoc } from './configs.ts';
import { BIN, ROOT, median, mustRun, removeTempDir, round, sleep, tempDir, timed, trackPid, untrackPid, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';
import { freeUdpPort } from '../../test/helpers/ports.ts';

const PAIRS = 31;
const TARGET = { maxRatio: 1.5 };
const COMMUNITY = 'bench-ro';
const WALK_OIDS = ['1.3.6.1.2.1.2.2', '1.3.6.1.2.1.31.1.1'];
const GET_SECONDS = 3;

/** A process started in the namespace, tracked by PID, ended by PID. */
function startIn(netns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): { child: ChildProcess; logs: () => string; stop: () => Promise<void> } {
  const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: ROOT });
  trackPid(child.pid, what);
  let logs = '';
  child.stdout!.on('data', (d) => logs.length < 1_000_000 && (logs += d));
  child.stderr!.on('data', (d) => logs.length < 1_000_000 && (logs += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  void exited.then(() => untrackPid(child.pid));
  return {
    child,
    logs: () => logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGTERM');
      const t = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid!, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function walk(netns: string, port: number): Promise<{ ms: number; varbinds: number }> {
  let ms = 0;
  let varbinds = 0;
  for (const oid of WALK_OIDS) {
    const r = await mustRun('ip', ['netns', 'exec', netns, 'snmpbulkwalk', '-v2c', '-c', COMMUNITY, '-On', '-t', '5', '-r', '1', `127.0.0.1:${port}`, oid]);
    ms += r.ms;
    varbinds += r.stdout.split('\n').filter((l) => l.startsWith('.')).length;
  }
  return { ms, varbinds };
}

async function getRate(netns: string, port: number): Promise<{ rps: number; errors: number }> {
  const r = await mustRun('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', join(ROOT, 'scripts/benchmarks/snmp-get-client.ts'), String(port), COMMUNITY, String(GET_SECONDS), '8']);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { rps: j.requests / j.seconds, errors: j.errors };
}

/** Interfaces whose ifHCInOctets the agent serves (Rampart: once telemetry has sampled them). */
async function hcCounters(netns: string, port: number): Promise<number> {
  const r = await timed('ip', ['netns', 'exec', netns, 'snmpbulkwalk', '-v2c', '-c', COMMUNITY, '-Oqv', '-t', '1', '-r', '0', `127.0.0.1:${port}`, '1.3.6.1.2.1.31.1.1.1.6']);
  return r.code === 0 ? r.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).length : NaN;
}

async function ifNumber(netns: string, port: number): Promise<number> {
  const r = await timed('ip', ['netns', 'exec', netns, 'snmpget', '-v2c', '-c', COMMUNITY, '-Oqv', '-t', '1', '-r', '0', `127.0.0.1:${port}`, '1.3.6.1.2.1.2.1.0']);
  return r.code === 0 ? Number(r.stdout.trim()) : NaN;
}

export async function snmpBulkBench(ctx: BenchContext): Promise<Result> {
  const ns = ctx.lab.fw;
  const runs = ctx.runs ?? 5;
  const dir = tempDir('snmp');
  const pairs = Array.from({ length: PAIRS }, (_, i) => [`sb${i}a`, `sb${i}b`]);
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const add = join(dir, 'add.batch');
    const del = join(dir, 'del.batch');
    writeFileSync(add, pairs.map(([a, b]) => `link add ${a} type veth peer name ${b}\nlink set ${a} up\nlink set ${b} up\n`).join(''));
    writeFileSync(del, pairs.map(([a]) => `link del ${a}\n`).join(''));
    await mustRun('ip', ['-n', ns, '-batch', '-'], { stdinFile: add });
    cleanup.push(async () => {
      await timed('ip', ['-force', '-n', ns, '-batch', '-'], { stdinFile: del });
    });
    const links = JSON.parse((await mustRun('ip', ['-n', ns, '-j', 'link', 'show'])).stdout).length;
    ctx.progress(`${links} links in ${ns}`);

    // Rampart, inside the namespace, managing it.
    const rPort = await freeUdpPort();
    const doc = labDoc();
    doc.snmp = { enabled: true, listen: [`127.0.0.1:${rPort}`], communities: [{ name: COMMUNITY, sources: ['127.0.0.1/32'] }] };
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    writeFileSync(join(data, 'seed.json'), JSON.stringify(doc));
    const rampartd = startIn(ns, BIN, ['--data', data, '--netns', ns, 'serve', '--config', join(data, 'seed.json')], { ...process.env, RAMPART_LOG_LEVEL: 'warn', RAMPART_TELEMETRY_SECONDS: '10' }, 'rampartd');
    cleanup.push(rampartd.stop);
    const sock = join(data, 'rampart.sock');
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (rampartd.child.exitCode !== null) throw new Error(`rampartd exited:\n${rampartd.logs().slice(-2000)}`);
      if (existsSync(sock) && (await callDaemon(sock, 'status', {}, 2000).then(() => true, () => false)) && (await hcCounters(ns, rPort)) === links) break;
      if (Date.now() > deadline) throw new Error(`rampartd's agent did not serve ${links} interfaces:\n${rampartd.logs().slice(-2000)}`);
      await sleep(200);
    }

    // snmpd, inside the namespace, with a generated configuration.
    const sPort = await freeUdpPort();
    const conf = join(dir, 'snmpd.conf');
    writeFileSync(conf, `agentAddress udp:127.0.0.1:${sPort}\nrocommunity ${COMMUNITY} 127.0.0.1\n`);
    mkdirSync(join(dir, 'snmpd-state'), { recursive: true });
    const snmpd = startIn(ns, 'snmpd', ['-f', '-Lo', '-C', '-c', conf, '-p', join(dir, 'snmpd.pid')], { ...process.env, SNMP_PERSISTENT_DIR: join(dir, 'snmpd-state'), MIBS: '' }, 'snmpd');
    cleanup.push(snmpd.stop);
    const sDeadline = Date.now() + 30_000;
    while ((await ifNumber(ns, sPort)) !== links) {
      if (snmpd.child.exitCode !== null) throw new Error(`snmpd exited:\n${snmpd.logs().slice(-2000)}`);
      if (Date.now() > sDeadline) throw new Error(`snmpd did not serve ${links} interfaces:\n${snmpd.logs().slice(-2000)}`);
      await sleep(200);
    }

    // Warm-up, then alternating walks.
    await walk(ns, rPort);
    await walk(ns, sPort);
    const r: number[] = [];
    const s: number[] = [];
    let rVarbinds = 0;
    let sVarbinds = 0;
    for (let i = 0; i < runs; i++) {
      const a = await walk(ns, rPort);
      const b = await walk(ns, sPort);
      r.push(a.ms);
      s.push(b.ms);
      rVarbinds = a.varbinds;
      sVarbinds = b.varbinds;
      ctx.progress(`walk ${i + 1}/${runs}: rampart ${a.ms.toFixed(1)} ms (${a.varbinds} varbinds), snmpd ${b.ms.toFixed(1)} ms (${b.varbinds} varbinds)`);
    }
    const rGet = await getRate(ns, rPort);
    const sGet = await getRate(ns, sPort);
    ctx.progress(`GET of 10 OIDs: rampart ${rGet.rps.toFixed(0)}/s, snmpd ${sGet.rps.toFixed(0)}/s`);
    const value = median(r);
    const baseline = median(s);
    const ratio = value / baseline;
    return {
      name: 'snmp-bulk',
      value: round(value, 1),
      baseline: round(baseline, 1),
      ratio: round(ratio, 3),
      target: TARGET,
      pass: ratio <= TARGET.maxRatio,
      unit: 'ms',
      details: {
        interfaces: links,
        runs,
        walkMs: { rampart: r.map((x) => round(x, 1)), snmpd: s.map((x) => round(x, 1)) },
        varbinds: { rampart: rVarbinds, snmpd: sVarbinds },
        perVarbindRatio: round(value / rVarbinds / (baseline / sVarbinds), 3),
        get10: { rampartPerSecond: round(rGet.rps, 0), snmpdPerSecond: round(sGet.rps, 0), ratio: round(rGet.rps / sGet.rps, 3), errors: { rampart: rGet.errors, snmpd: sGet.errors } },
      },
    };
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    removeTempDir(dir);
  }
}
