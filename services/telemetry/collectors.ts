/**
 * Collectors: raw counters and gauges of one moment. Interfaces and conntrack are read in the firewall's network
 * namespace through services/host/exec.ts; CPU, memory, load, uptime and disk are host-wide and read directly from
 * /proc and statfs; the daemon's RSS and event-loop lag come from this process. Rates are derived across consecutive
 * samples by `derivePoints` (with services/telemetry/rates.ts), which also names the metrics.
 */
import { readFile, statfs } from 'node:fs/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { join } from 'node:path';
import { checkNetnsName, countersHelper, run } from '../host/exec.ts';
import type { CounterMap } from '../firewall/counters.ts';
import { parseKernelLines, readKernel } from './kernel.ts';
import { RateTracker, type CounterOptions } from './rates.ts';
import type { Point } from './series.ts';

export interface InterfaceCounters {
  ifindex: number;
  name: string;
  up: boolean;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** Jiffies per CPU state, summed over all CPUs (the `cpu` line of /proc/stat). */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

export interface SystemFigures {
  cpu?: CpuTimes;
  cpuCount?: number;
  memory?: { totalBytes: number; availableBytes: number; freeBytes: number; swapTotalBytes: number; swapFreeBytes: number };
  load?: [number, number, number];
  uptimeSeconds?: number;
  disk?: { path: string; totalBytes: number; availableBytes: number; freeBytes: number };
}

export interface ConntrackFigures {
  count: number;
  max: number;
}

export interface ProcessFigures {
  rssBytes: number;
  heapUsedBytes: number;
  /** Event-loop delay since the previous sample (ms); absent when the monitor is not running. */
  loopLagMs?: { mean: number; p99: number; max: number };
}

/** Per-rule counters (by rule id) and the identity of the ruleset they belong to (a reload resets them). */
export interface RuleSample {
  instance?: string | number;
  counters: Record<string, { packets: number; bytes: number }>;
}

export interface Sample {
  /** Epoch ms. */
  ts: number;
  interfaces: Record<string, InterfaceCounters>;
  system: SystemFigures;
  /** Absent when the conntrack module is not loaded. */
  conntrack?: ConntrackFigures;
  process: ProcessFigures;
  rules?: RuleSample;
  /** Packets that opened a connection so far (the ruleset's counter; reset by a reload like the rule counters). */
  newConnections?: number;
  /** What could not be read this time (the rest of the sample is still good). */
  errors: string[];
}

// ---- parsers (pure) ----

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** `ip -j -s -s link show` → counters per device (64-bit `stats64`). */
export function parseIpLinkStats(json: string): InterfaceCounters[] {
  const list = json.trim() ? (JSON.parse(json) as any[]) : [];
  return list.map((l) => {
    const s = l.stats64 ?? l.stats ?? {};
    const rx = s.rx ?? {};
    const tx = s.tx ?? {};
    const flags: string[] = Array.isArray(l.flags) ? l.flags : [];
    return {
      ifindex: num(l.ifindex),
      name: String(l.ifname),
      up: flags.includes('UP') && (l.operstate === 'UP' || l.operstate === 'UNKNOWN'),
      rxBytes: num(rx.bytes),
      rxPackets: num(rx.packets),
      rxErrors: num(rx.errors),
      rxDropped: num(rx.dropped),
      txBytes: num(tx.bytes),
      txPackets: num(tx.packets),
      txErrors: num(tx.errors),
      txDropped: num(tx.dropped),
    };
  });
}

/** The aggregate `cpu` line of /proc/stat, and the number of `cpuN` lines. */
export function parseProcStat(text: string): { cpu?: CpuTimes; cpuCount: number } {
  let cpu: CpuTimes | undefined;
  let cpuCount = 0;
  for (const line of text.split('\n')) {
    if (/^cpu\d+\s/.test(line)) cpuCount++;
    else if (/^cpu\s/.test(line)) {
      const f = line.trim().split(/\s+/).slice(1).map(Number);
      const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
      cpu = { user, nice, system, idle, iowait, irq, softirq, steal };
    }
  }
  return { cpu, cpuCount };
}

/** /proc/meminfo (kB) → bytes. MemAvailable falls back to free + buffers + cached on old kernels. */
export function parseMeminfo(text: string): SystemFigures['memory'] {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (m) kb.set(m[1], Number(m[2]) * 1024);
  }
  if (!kb.has('MemTotal')) return undefined;
  const free = kb.get('MemFree') ?? 0;
  return {
    totalBytes: kb.get('MemTotal')!,
    availableBytes: kb.get('MemAvailable') ?? free + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0),
    freeBytes: free,
    swapTotalBytes: kb.get('SwapTotal') ?? 0,
    swapFreeBytes: kb.get('SwapFree') ?? 0,
  };
}

export function parseLoadavg(text: string): [number, number, number] | undefined {
  const f = text.trim().split(/\s+/).slice(0, 3).map(Number);
  return f.length === 3 && f.every(Number.isFinite) ? (f as [number, number, number]) : undefined;
}

export function parseUptime(text: string): number | undefined {
  const v = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(v) ? v : undefined;
}

/** `sysctl -n net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max` output. */
export function parseConntrack(stdout: string): ConntrackFigures | undefined {
  const f = stdout.split('\n').map((s) => s.trim()).filter(Boolean).map(Number);
  if (f.length !== 2 || !f.every((v) => Number.isInteger(v) && v >= 0)) return undefined;
  return { count: f[0], max: f[1] };
}

// ---- the collector ----

export interface CollectorOptions {
  /** Network namespace of the firewall (undefined: the current one). */
  netns?: string;
  /** Folder whose file system is reported as the disk (the data dir). */
  dataDir?: string;
  /** Where /proc is (tests point it at fixtures). */
  procRoot?: string;
  /**
   * Reads per-rule counters (the daemon passes one bound to its ruleset's counter refs). It gets the named counters
   * of `counterTables` when the cycle already read them (one process for all kernel figures), else reads them itself.
   */
  rules?: (counters?: Map<string, CounterMap>) => Promise<RuleSample | undefined>;
  /** Tables (family inet) whose named counters the cycle reads for `rules`. */
  counterTables?: string[];
  /**
   * The named counter (in one of `counterTables`) of packets that open a connection (the ruleset's `ct state new`
   * counter): the source of the new-connection rate. The kernel's own conntrack statistics no longer count inserts.
   */
  newConnections?: { table: string; counter: string };
  /** Clock (epoch ms). */
  now?: () => number;
}

export class Collector {
  private histogram?: IntervalHistogram;
  private readonly procRoot: string;
  private readonly now: () => number;

  constructor(private readonly opts: CollectorOptions = {}) {
    if (opts.netns) checkNetnsName(opts.netns);
    this.procRoot = opts.procRoot ?? '/proc';
    this.now = opts.now ?? Date.now;
  }

  /** Start measuring event-loop delay (between `collect` calls). */
  start(): void {
    if (this.histogram) return;
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
  }

  stop(): void {
    this.histogram?.disable();
    this.histogram = undefined;
  }

  async collect(): Promise<Sample> {
    const errors: string[] = [];
    const guard = <T>(what: string, p: Promise<T>): Promise<T | undefined> =>
      p.catch((err) => {
        errors.push(`${what}: ${(err as Error).message}`);
        return undefined;
      });
    const ts = this.now();
    // With the netlink reader: interfaces, conntrack and counters from one process; without it, one tool each.
    const [kernel, system] = await Promise.all([guard('kernel', readKernel(this.opts.netns, this.opts.counterTables ?? [])), this.system(errors)]);
    const [interfaces, conntrack, rules] = await Promise.all([
      kernel ? Object.fromEntries(kernel.links.map((l) => [l.name, l])) : guard('interfaces', this.interfaces()),
      kernel ? kernel.conntrack : guard('conntrack', this.conntrack()),
      this.opts.rules ? guard('rules', this.opts.rules(kernel?.counters)) : Promise.resolve(undefined),
    ]);
    const nc = this.opts.newConnections;
    const newConnections = nc ? kernel?.counters.get(nc.table)?.get(nc.counter)?.packets : undefined;
    return {
      ts,
      interfaces: interfaces ?? {},
      system,
      ...(conntrack ? { conntrack } : {}),
      process: this.processFigures(),
      ...(rules ? { rules } : {}),
      ...(newConnections !== undefined ? { newConnections } : {}),
      errors,
    };
  }

  async interfaces(): Promise<Record<string, InterfaceCounters>> {
    // `ip -n` enters the namespace itself: cheaper than `ip netns exec` (which also remounts /sys).
    const ns = this.opts.netns ? ['-n', this.opts.netns] : [];
    const res = await run('ip', [...ns, '-j', '-s', '-s', 'link', 'show'], { timeoutMs: 10_000 });
    const out: Record<string, InterfaceCounters> = {};
    for (const c of parseIpLinkStats(res.stdout)) out[c.name] = c;
    return out;
  }

  async conntrack(): Promise<ConntrackFigures | undefined> {
    // Without the nf_conntrack module the keys do not exist: no figures, not an error.
    const helper = countersHelper();
    if (helper) {
      // The netlink reader enters the namespace itself (setns) and reads the two sysctls there.
      const r = await run(helper, [...(this.opts.netns ? ['-n', this.opts.netns] : []), '-c', 'inet'], { allowFailure: true, timeoutMs: 10_000 });
      if (r.exitCode === 0) return parseKernelLines(r.stdout).conntrack;
    }
    const res = await run('sysctl', ['-n', 'net.netfilter.nf_conntrack_count', 'net.netfilter.nf_conntrack_max'], {
      netns: this.opts.netns,
      allowFailure: true,
      timeoutMs: 10_000,
    });
    return parseConntrack(res.stdout);
  }

  async system(errors: string[] = []): Promise<SystemFigures> {
    const read = (name: string) =>
      readFile(join(this.procRoot, name), 'utf8').catch((err) => {
        errors.push(`${name}: ${(err as Error).message}`);
        return undefined;
      });
    const [stat, meminfo, loadavg, uptime, disk] = await Promise.all([
      read('stat'),
      read('meminfo'),
      read('loadavg'),
      read('uptime'),
      this.opts.dataDir
        ? statfs(this.opts.dataDir).catch((err) => {
            errors.push(`disk: ${(err as Error).message}`);
            return undefined;
          })
        : undefined,
    ]);
    const out: SystemFigures = {};
    if (stat) Object.assign(out, parseProcStat(stat));
    if (meminfo) out.memory = parseMeminfo(meminfo);
    if (loadavg) out.load = parseLoadavg(loadavg);
    if (uptime) out.uptimeSeconds = parseUptime(uptime);
    if (disk && this.opts.dataDir) {
      out.disk = {
        path: this.opts.dataDir,
        totalBytes: disk.blocks * disk.bsize,
        availableBytes: disk.bavail * disk.bsize,
        freeBytes: disk.bfree * disk.bsize,
      };
    }
    return out;
  }

  processFigures(): ProcessFigures {
    const mem = process.memoryUsage();
    const out: ProcessFigures = { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
    const h = this.histogram;
    if (h && h.count > 0) {
      out.loopLagMs = { mean: h.mean / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
      h.reset();
    }
    return out;
  }
}

// ---- samples → points ----

const IF_COUNTERS = [
  ['rxBytes', 'rx_bytes'],
  ['rxPackets', 'rx_packets'],
  ['rxErrors', 'rx_errors'],
  ['rxDropped', 'rx_dropped'],
  ['txBytes', 'tx_bytes'],
  ['txPackets', 'tx_packets'],
  ['txErrors', 'tx_errors'],
  ['txDropped', 'tx_dropped'],
] as const;

export interface DeriveOptions {
  /** Interfaces to report (default: all but loopback). */
  interfaces?: (name: string) => boolean;
  /** Counter options per interface counter (e.g. a link speed as maxRate). */
  counterOptions?: (key: string) => CounterOptions | undefined;
}

/**
 * The points of one sample: gauges as they are, counters as per-second rates against the tracker's previous reading
 * (`<name>_rate`; an interval with a reset, a recreated interface or a reloaded ruleset gives no point; per-rule
 * rates only when not zero), CPU as a
 * percentage of the time since `prev`.
 */
export function derivePoints(prev: Sample | undefined, cur: Sample, tracker: RateTracker, opts: DeriveOptions = {}): Point[] {
  const points: Point[] = [];
  const keys: string[] = [];
  const rate = (key: string, value: number, instance?: string | number, sparse = false) => {
    keys.push(key);
    const r = tracker.update(key, { ts: cur.ts, value, instance }, opts.counterOptions?.(key));
    if (r !== undefined && !(sparse && r === 0)) points.push({ metric: `${key}_rate`, value: r });
  };
  const wanted = opts.interfaces ?? ((n: string) => n !== 'lo');

  for (const c of Object.values(cur.interfaces)) {
    if (!wanted(c.name)) continue;
    for (const [field, name] of IF_COUNTERS) rate(`if.${c.name}.${name}`, c[field], c.ifindex);
    points.push({ metric: `if.${c.name}.up`, value: c.up ? 1 : 0 });
  }
  if (cur.rules) {
    for (const [id, v] of Object.entries(cur.rules.counters)) {
      // Rule series are sparse: a big ruleset is mostly idle, and an interval without hits stores no point.
      rate(`rule.${id}.packets`, v.packets, cur.rules.instance, true);
      rate(`rule.${id}.bytes`, v.bytes, cur.rules.instance, true);
    }
  }
  // New connections per second (the anomaly detector watches it beside the interfaces' throughput).
  if (cur.newConnections !== undefined) rate('conntrack.new', cur.newConnections, cur.rules?.instance);
  tracker.retain(keys);

  const s = cur.system;
  const p = prev?.system;
  if (s.cpu && p?.cpu) {
    const busy = (c: CpuTimes) => c.user + c.nice + c.system + c.irq + c.softirq + c.steal;
    const total = (c: CpuTimes) => busy(c) + c.idle + c.iowait;
    const dt = total(s.cpu) - total(p.cpu);
    const db = busy(s.cpu) - busy(p.cpu);
    if (dt > 0 && db >= 0) {
      points.push({ metric: 'sys.cpu', value: Math.min(100, (100 * db) / dt) });
      points.push({ metric: 'sys.cpu_iowait', value: (100 * Math.max(0, s.cpu.iowait - p.cpu.iowait)) / dt });
    }
  }
  if (s.memory) {
    points.push({ metric: 'sys.mem_total_bytes', value: s.memory.totalBytes });
    points.push({ metric: 'sys.mem_available_bytes', value: s.memory.availableBytes });
    points.push({ metric: 'sys.mem_used_bytes', value: s.memory.totalBytes - s.memory.availableBytes });
    points.push({ metric: 'sys.swap_used_bytes', value: s.memory.swapTotalBytes - s.memory.swapFreeBytes });
  }
  if (s.load) {
    points.push({ metric: 'sys.load1', value: s.load[0] }, { metric: 'sys.load5', value: s.load[1] }, { metric: 'sys.load15', value: s.load[2] });
  }
  if (s.uptimeSeconds !== undefined) points.push({ metric: 'sys.uptime_seconds', value: s.uptimeSeconds });
  if (s.disk) {
    points.push({ metric: 'sys.disk_total_bytes', value: s.disk.totalBytes });
    points.push({ metric: 'sys.disk_used_bytes', value: s.disk.totalBytes - s.disk.freeBytes });
    points.push({ metric: 'sys.disk_available_bytes', value: s.disk.availableBytes });
  }
  if (cur.conntrack) {
    points.push({ metric: 'conntrack.count', value: cur.conntrack.count }, { metric: 'conntrack.max', value: cur.conntrack.max });
  }
  points.push({ metric: 'daemon.rss_bytes', value: cur.process.rssBytes });
  points.push({ metric: 'daemon.heap_used_bytes', value: cur.process.heapUsedBytes });
  if (cur.process.loopLagMs) {
    points.push({ metric: 'daemon.loop_lag_ms', value: cur.process.loopLagMs.mean });
    points.push({ metric: 'daemon.loop_lag_max_ms', value: cur.process.loopLagMs.max });
  }
  return points;
}
