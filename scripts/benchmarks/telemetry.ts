/**
 * Telemetry benchmarks (issue targets: one collection cycle with 64 interfaces and 10,000 rules costs ≤ 1% of one
 * core at the 10 s interval; 30 days at a 1-hour step and 24 h raw at 10 s each query in ≤ 50 ms).
 *
 * telemetry-cycle: a namespace of its own with 32 veth pairs (64 interfaces) and the 10,000-rule ruleset of
 * apply-10k loaded; the real Collector (interfaces, system, conntrack, per-rule counters through the netlink reader)
 * → derivePoints → SeriesStore.record, in this process. CPU time per cycle = this process's CPU plus its waited-for
 * children's (from /proc/self/stat), over several cycles. Baseline: the kernel read alone (the one netlink-reader
 * process the cycle runs), the floor of any collector. value = % of one core at a 10 s interval.
 *
 * telemetry-query: a store holding a year of hourly rollups, 30 days of minute rollups and 24 h of raw 10 s points
 * for 10 series; SeriesStore.query for both ranges against bare SQL reading the same rows the same way (same run).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { parseConfig } from '../../services/core/validate.ts';
import { compileRuleset, TABLE } from '../../services/firewall/compile.ts';
import { listCounters, ruleCounters } from '../../services/firewall/counters.ts';
import { countersHelper, Host, run } from '../../services/host/exec.ts';
import { Collector, derivePoints, type Sample } from '../../services/telemetry/collectors.ts';
import { RateTracker } from '../../services/telemetry/rates.ts';
import { HOUR_MS, MINUTE_MS, SeriesStore } from '../../services/telemetry/series.ts';
import { bigConfig } from './configs.ts';
import { median, removeTempDir, round, tempDir, trackNamespaces, untrackNamespaces, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';

const INTERVAL_MS = 10_000;
const PAIRS = 32;
const RULES = 10_000;
const NS = 'bench-tel';

/** CPU milliseconds of this process and of its waited-for children so far. */
function cpuMs(): { self: number; children: number } {
  const u = process.cpuUsage();
  // /proc/self/stat: fields 16 and 17 (cutime, cstime) in clock ticks, after the parenthesised command name.
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return { self: (u.user + u.system) / 1000, children: (ticks * 1000) / 100 };
}

async function makeNamespace(ctx: Pick<BenchContext, 'progress'>): Promise<void> {
  await run('ip', ['netns', 'del', NS], { allowFailure: true });
  await run('ip', ['netns', 'add', NS]);
  trackNamespaces([NS]);
  const batch: string[] = [];
  for (let i = 0; i < PAIRS; i++) batch.push(`link add v${i}a type veth peer name v${i}b`, `link set v${i}a up`, `link set v${i}b up`);
  const file = join(tempDir('tel-ip'), 'links.batch');
  (await import('node:fs')).writeFileSync(file, batch.join('\n') + '\n');
  await run('ip', ['-n', NS, '-batch', file]);
  const doc = bigConfig(RULES, 0);
  const script = compileRuleset(parseConfig(doc), {}).script;
  const nftFile = join(tempDir('tel-nft'), 'rules.nft');
  (await import('node:fs')).writeFileSync(nftFile, script);
  await run('ip', ['netns', 'exec', NS, 'nft', '-f', nftFile]);
  ctx.progress(`namespace ${NS}: ${PAIRS * 2} veth interfaces, ${RULES} rules loaded`);
}

/**
 * The cycle is measured in a process of its own, as in the daemon: after other benchmarks this runner holds a big
 * heap, and every process it spawns (the netlink reader of each cycle) pays for tearing down a copy of it, which
 * doubled even the baseline's CPU. `RAMPART_BENCH_CHILD=1` marks the measuring process.
 */
export async function telemetryCycleBench(ctx: BenchContext): Promise<Result> {
  if (process.env.RAMPART_BENCH_CHILD === '1') return measureCycle(ctx);
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'telemetry-cycle-child.ts'), String(ctx.runs ?? 10)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RAMPART_BENCH_CHILD: '1' },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0) throw new Error(`telemetry-cycle: the measuring process exited with ${code}`);
  return JSON.parse(out) as Result;
}

export async function measureCycle(ctx: Pick<BenchContext, 'runs' | 'progress'>): Promise<Result> {
  const runs = ctx.runs ?? 10;
  const dir = tempDir('tel-cycle');
  const store = new Store(join(dir, 'rampart.db')).open();
  try {
    await makeNamespace(ctx);
    const host = new Host(NS);
    const refs = compileRuleset(parseConfig(bigConfig(RULES, 0)), {}).counters;
    // As the daemon wires it: per-rule counters from the same netlink reading as the interfaces.
    const collector = new Collector({
      netns: NS,
      dataDir: dir,
      counterTables: [TABLE],
      rules: async (tables) => ({ instance: 1, counters: ruleCounters(refs, (tables ?? (await listCounters(host, [TABLE]))).get(TABLE)) }),
    });
    const tracker = new RateTracker();
    const series = new SeriesStore(store);
    let prev: Sample | undefined;
    let points = 0;
    let ruleCount = 0;
    const cycle = async () => {
      const s = await collector.collect();
      if (s.errors.length) throw new Error(`collection errors: ${s.errors.join('; ')}`);
      const p = derivePoints(prev, s, tracker);
      prev = s;
      points = series.record(s.ts, p);
      ruleCount = Object.keys(s.rules?.counters ?? {}).length;
    };
    await cycle(); // warm-up: series ids, JIT
    const perCycle: number[] = [];
    const a = cpuMs();
    for (let i = 0; i < runs; i++) {
      const t = cpuMs();
      await cycle();
      const u = cpuMs();
      perCycle.push(u.self - t.self + u.children - t.children);
    }
    const b = cpuMs();
    const mine = (b.self - a.self + b.children - a.children) / runs;
    // The floor: only the reads from the kernel, as separate processes (what the cycle spawns).
    const helper = countersHelper();
    const c = cpuMs();
    for (let i = 0; i < runs; i++) {
      if (helper) await run(helper, ['-n', NS, '-l', '-c', 'inet', TABLE]);
      else await run('ip', ['-n', NS, '-j', '-s', '-s', 'link', 'show']);
    }
    const d = cpuMs();
    const floor = (d.self - c.self + d.children - c.children) / runs;
    const percent = (100 * mine) / INTERVAL_MS;
    ctx.progress(`cycle: ${mine.toFixed(1)} ms CPU (${percent.toFixed(2)}% of a core at 10 s); kernel reads alone ${floor.toFixed(1)} ms`);
    return {
      name: 'telemetry-cycle',
      value: round(percent, 3),
      baseline: round((100 * floor) / INTERVAL_MS, 3),
      ratio: round(mine / floor, 2),
      target: { maxValue: 1 },
      pass: percent <= 1,
      unit: '% of one core',
      details: {
        runs,
        interfaces: PAIRS * 2,
        rules: ruleCount,
        pointsPerCycle: points,
        cpuMsPerCycle: round(mine, 1),
        cpuMsPerCycleMedian: round(median(perCycle), 1),
        kernelReadsCpuMs: round(floor, 1),
        netlinkCounterReader: Boolean(helper),
        note: 'CPU = this process + waited-for children (/proc/self/stat cutime+cstime, 10 ms ticks), averaged over the runs',
      },
    };
  } finally {
    store.close();
    await run('ip', ['netns', 'del', NS], { allowFailure: true });
    untrackNamespaces([NS]);
    removeTempDir(dir);
  }
}

const SERIES = 10;
const DAY_MS = 24 * HOUR_MS;

export async function telemetryQueryBench(ctx: BenchContext): Promise<Result> {
  const runs = ctx.runs ?? 15;
  const dir = tempDir('tel-query');
  const store = new Store(join(dir, 'rampart.db')).open();
  try {
    const now = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const db = store.sql;
    const fill = db.transaction(() => {
      const addSeries = db.prepare('INSERT INTO series (metric) VALUES (?)');
      const raw = db.prepare('INSERT INTO points_raw (series, ts, value) VALUES (?, ?, ?)');
      const m1 = db.prepare('INSERT INTO points_1m (series, ts, min, avg, max, count) VALUES (?, ?, ?, ?, ?, ?)');
      const h1 = db.prepare('INSERT INTO points_1h (series, ts, min, avg, max, count) VALUES (?, ?, ?, ?, ?, ?)');
      for (let s = 0; s < SERIES; s++) {
        const id = Number(addSeries.run(`if.bench${s}.rx_bytes_rate`).lastInsertRowid);
        for (let ts = now - 365 * DAY_MS; ts < now - 30 * DAY_MS; ts += HOUR_MS) h1.run(id, ts, 1, 2 + (ts % 7), 9, 360);
        for (let ts = now - 30 * DAY_MS; ts < now - DAY_MS; ts += MINUTE_MS) m1.run(id, ts, 1, 2 + (ts % 5), 9, 6);
        for (let ts = now - DAY_MS; ts < now; ts += 10_000) raw.run(id, ts, (ts / 1000) % 1000);
      }
    });
    fill();
    store.setMeta('telemetry.rollup.1h', String(now - 30 * DAY_MS));
    store.setMeta('telemetry.rollup.1m', String(now - DAY_MS));
    const series = new SeriesStore(store);
    const metric = 'if.bench3.rx_bytes_rate';
    const id = (db.prepare('SELECT id FROM series WHERE metric = ?').get(metric) as { id: number }).id;
    const time = (fn: () => unknown) => {
      const xs: number[] = [];
      fn();
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        fn();
        xs.push(performance.now() - t0);
      }
      return median(xs);
    };
    let n30 = 0;
    let n24 = 0;
    const q30 = time(() => (n30 = series.query(metric, now - 30 * DAY_MS, now, HOUR_MS, now).points.length));
    const q24 = time(() => (n24 = series.query(metric, now - DAY_MS, now, 10_000, now).points.length));
    const b30 = time(() =>
      db
        .prepare('SELECT ts - ts % ? AS ts, min(min), sum(avg * count), max(max), sum(count) FROM points_1m WHERE series = ? AND ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1')
        .raw(true)
        .all(HOUR_MS, id, now - 30 * DAY_MS, now),
    );
    const b24 = time(() => db.prepare('SELECT ts, value FROM points_raw WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts').raw(true).all(id, now - DAY_MS, now));
    ctx.progress(`30 d at 1 h: ${q30.toFixed(1)} ms (${n30} points), bare SQL GROUP BY of the same minute rows ${b30.toFixed(1)} ms; 24 h raw: ${q24.toFixed(1)} ms (${n24} points), bare SELECT ${b24.toFixed(1)} ms`);
    const worst = Math.max(q30, q24);
    return {
      name: 'telemetry-query',
      value: round(worst, 2),
      baseline: round(Math.max(b30, b24), 2),
      ratio: round(worst / Math.max(b30, b24), 2),
      target: { maxValue: 50 },
      pass: worst <= 50 && n30 >= 700 && n24 >= 8000,
      unit: 'ms',
      details: { runs, series: SERIES, query30dMs: round(q30, 2), points30d: n30, query24hRawMs: round(q24, 2), points24h: n24, bareGroupBy30dMs: round(b30, 2), bareSelect24hRawMs: round(b24, 2) },
    };
  } finally {
    store.close();
    removeTempDir(dir);
  }
}
