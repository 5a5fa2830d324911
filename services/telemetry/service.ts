/**
 * The telemetry service: on a timer (unref'd, never two runs at once) it collects a Sample, derives the points
 * (rates through one RateTracker), records them in the SeriesStore, rolls up and enforces retention about once a
 * minute, and feeds the per-interface throughput to the AnomalyDetector, whose opened / closed events go out on the
 * EventBus as `anomaly`. Errors are logged; the timer never throws.
 */
import { RampartError } from '../core/errors.ts';
import type { EventBus } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/store.ts';
import { AnomalyDetector, type AnomalyOptions } from './anomaly.ts';
import { Collector, derivePoints, type Sample } from './collectors.ts';
import { RateTracker } from './rates.ts';
import { METRIC_RE, SeriesStore, type Point, type QueryResult, type SeriesOptions } from './series.ts';

const MAINTAIN_EVERY_MS = 60_000;
/** Metrics watched for anomalies: per-interface throughput and the new-connection rate. */
const ANOMALY_RE = /^(if\.[^.]+\.(rx|tx)_(bytes|packets)_rate|conntrack\.new_rate)$/;

export interface TelemetryServiceOptions {
  store: Store;
  /** Network namespace of the firewall (undefined: the current one). */
  netns?: string;
  dataDir?: string;
  log: Logger;
  events?: EventBus;
  /**
   * Per-rule counters (by rule id); a reading whose set of rules changes counts as a reload. Gets the named
   * counters of `counterTables` when the cycle has read them already.
   */
  rules?: (counters?: Map<string, Map<string, { packets: number; bytes: number }>>) => Promise<Record<string, { packets: number; bytes: number }>>;
  /** Tables whose named counters each cycle reads for `rules` (with the netlink reader). */
  counterTables?: string[];
  /** The ruleset's counter of connection-opening packets (see CollectorOptions.newConnections). */
  newConnections?: { table: string; counter: string };
}

export interface StartOptions {
  retention?: SeriesOptions;
  /** `telemetry.anomaly` of the config; disabled: no detection. */
  anomaly?: { enabled?: boolean; sensitivity?: number };
  /** Extra detector options (tests). */
  detector?: AnomalyOptions;
}

/** The current figures, from the last sample. */
export interface LiveFigures {
  ts: number | null;
  interfaces: Record<string, Record<string, number | boolean>>;
  system: Record<string, number>;
  conntrack: { count: number; max: number } | null;
  daemon: Record<string, number>;
  errors: string[];
}

export class TelemetryService {
  private readonly collector: Collector;
  private readonly tracker = new RateTracker();
  private series: SeriesStore;
  private detector?: AnomalyDetector;
  private timer?: NodeJS.Timeout;
  private busy = false;
  private prev?: Sample;
  private last?: { sample: Sample; points: Point[] };
  private lastMaintain = 0;

  constructor(private readonly opts: TelemetryServiceOptions) {
    this.collector = new Collector({
      netns: opts.netns,
      dataDir: opts.dataDir,
      counterTables: opts.counterTables,
      newConnections: opts.newConnections,
      rules: opts.rules
        ? async (tables) => {
            const counters = await opts.rules!(tables);
            // A ruleset reload resets the counters; the set of rule ids is a cheap identity of the ruleset.
            return { instance: Object.keys(counters).sort().join(','), counters };
          }
        : undefined,
    });
    this.series = new SeriesStore(opts.store);
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(intervalMs: number, opts: StartOptions = {}): void {
    if (this.timer) return;
    if (!(Number.isFinite(intervalMs) && intervalMs > 0)) throw new RampartError('invalid_input', 'telemetry interval must be positive');
    if (opts.retention) this.series = new SeriesStore(this.opts.store, opts.retention);
    this.detector = opts.anomaly?.enabled === false ? undefined : new AnomalyDetector({ k: opts.anomaly?.sensitivity, ...opts.detector });
    this.collector.start();
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.collector.stop();
  }

  /** One collection cycle; skipped when the previous one still runs. Never throws. */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const sample = await this.collector.collect();
      if (sample.errors.length) this.opts.log.debug({ errors: sample.errors }, 'telemetry: some figures could not be read');
      const points = derivePoints(this.prev, sample, this.tracker);
      this.prev = sample;
      this.last = { sample, points };
      if (!this.timer) return; // stopped meanwhile (the store may be closed)
      this.series.record(sample.ts, points);
      if (sample.ts - this.lastMaintain >= MAINTAIN_EVERY_MS) {
        this.lastMaintain = sample.ts;
        this.series.maintain(sample.ts);
      }
      if (this.detector) {
        for (const p of points) {
          if (!ANOMALY_RE.test(p.metric)) continue;
          for (const e of this.detector.update(p.metric, sample.ts, p.value)) {
            const type = e.end === undefined ? 'opened' : 'closed';
            this.opts.log.warn({ metric: e.metric, type, peak: e.peak, baseline: e.baseline }, 'telemetry anomaly');
            this.opts.events?.emit('anomaly', { type, ...e });
          }
        }
      }
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'telemetry collection failed');
    } finally {
      this.busy = false;
    }
  }

  /** The derived figures of the last sample. */
  latest(): LiveFigures {
    const out: LiveFigures = { ts: null, interfaces: {}, system: {}, conntrack: null, daemon: {}, errors: [] };
    if (!this.last) return out;
    const { sample, points } = this.last;
    out.ts = sample.ts;
    out.errors = sample.errors;
    for (const c of Object.values(sample.interfaces)) {
      if (c.name === 'lo') continue;
      out.interfaces[c.name] = {
        up: c.up,
        rx_bytes: c.rxBytes,
        tx_bytes: c.txBytes,
        rx_packets: c.rxPackets,
        tx_packets: c.txPackets,
        rx_errors: c.rxErrors,
        tx_errors: c.txErrors,
        rx_dropped: c.rxDropped,
        tx_dropped: c.txDropped,
      };
    }
    for (const p of points) {
      const [head, ...rest] = p.metric.split('.');
      if (head === 'if' && rest.length === 2) {
        const dev = out.interfaces[rest[0]];
        if (dev && rest[1] !== 'up') dev[rest[1]] = p.value;
      } else if (head === 'sys' && rest.length === 1) out.system[rest[0]] = p.value;
      else if (head === 'daemon' && rest.length === 1) out.daemon[rest[0]] = p.value;
    }
    if (sample.system.cpuCount !== undefined) out.system.cpu_count = sample.system.cpuCount;
    if (sample.conntrack) out.conntrack = { ...sample.conntrack };
    return out;
  }

  /** The raw last sample (counters as the kernel gave them, with ifindex), for consumers that serve them as they are (SNMP). */
  latestSample(): Sample | undefined {
    return this.last?.sample;
  }

  /** Points of `metric` in [from, to) (epoch ms); see SeriesStore.query. */
  query(metric: string, from: number, to: number, stepMs?: number): QueryResult {
    return this.series.query(metric, from, to, stepMs);
  }

  metrics(): string[] {
    return this.series.metrics();
  }
}

// ---- query parameters (control socket and API) ----

export interface TelemetryRequest {
  metric: string;
  from: number;
  to: number;
  stepMs?: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export const DURATION_RE = /^(\d{1,12})(ms|s|m|h|d)?$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const DEFAULT_RANGE_MS = 3_600_000;

/** epoch ms (number or digits) or an ISO 8601 date-time → epoch ms; undefined when it is neither. */
export function parseInstant(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  if (/^\d{1,15}$/.test(v)) return Number(v);
  if (!ISO_RE.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/** A step: ms as a number, or digits with an optional unit (ms, s, m, h, d; none: ms). */
export function parseStep(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = DURATION_RE.exec(v);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 'ms'];
  return ms > 0 ? ms : undefined;
}

/** Check a query's parameters (all problems at once); `to` defaults to now, `from` to an hour before `to`. */
export function parseTelemetryRequest(p: Record<string, unknown>, now = Date.now()): TelemetryRequest {
  const problems: { path: string; message: string }[] = [];
  const metric = p.metric;
  if (typeof metric !== 'string' || !metric) problems.push({ path: '/metric', message: 'is required: a metric name, e.g. if.lan0.rx_bytes_rate' });
  else if (metric.length > 200 || !METRIC_RE.test(metric)) {
    problems.push({ path: '/metric', message: 'must be dotted words of A-Z a-z 0-9 _ : - (at most 200 characters)' });
  }
  const to = p.to === undefined ? now : parseInstant(p.to);
  if (to === undefined) problems.push({ path: '/to', message: 'must be epoch milliseconds or an ISO 8601 date-time' });
  const from = p.from === undefined ? (to ?? now) - DEFAULT_RANGE_MS : parseInstant(p.from);
  if (from === undefined) problems.push({ path: '/from', message: 'must be epoch milliseconds or an ISO 8601 date-time' });
  if (from !== undefined && to !== undefined && from >= to) problems.push({ path: '/from', message: 'must be before to' });
  const stepMs = p.step === undefined ? undefined : parseStep(p.step);
  if (p.step !== undefined && stepMs === undefined) problems.push({ path: '/step', message: 'must be a positive duration: milliseconds, or a number with ms, s, m, h or d' });
  if (problems.length) throw RampartError.invalid(problems, 'invalid telemetry query');
  return { metric: metric as string, from: from!, to: to!, stepMs };
}
