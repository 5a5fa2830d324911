/**
 * Anomaly early warning per metric (pure and deterministic: the same samples give the same events).
 *
 * Baseline: Holt-Winters style additive model, `level + season[hour]`: the level is an EWMA of the deseasonalised
 * value (time constant `levelTauMs`), each of the 24 hour-of-day buckets an EWMA of what its hour adds to the level
 * (time constant `seasonTauMs`, updated only by samples of that hour, so it remembers across days).
 * Spread: 1.4826 × the median absolute deviation of recent residuals (a sliding window of `window` samples), floored
 * by a share of the baseline so a flat series does not alarm on noise; the median residual corrects the baseline's
 * bias (the level lags a trend).
 * Score: residual / spread. Hysteresis: an event opens after `enterSamples` consecutive samples beyond `k`, and
 * closes after `exitSamples` consecutive samples within `exitK`, so a storm is one event with a start and an end.
 * Samples judged anomalous teach the baseline only at `anomalyWeight` of the usual rate, so a storm is not learned
 * as normal while it lasts. No events during the warm-up.
 */

const HOUR_MS = 3_600_000;
const MAD_SCALE = 1.4826;

export type Direction = 'up' | 'down' | 'both';

export interface AnomalyOptions {
  /** Threshold to enter, in spreads (the config's `telemetry.anomaly.sensitivity`); default 4. */
  k?: number;
  /** Threshold to leave, in spreads; default k / 2. */
  exitK?: number;
  /** Consecutive samples beyond k to open an event; default 3. */
  enterSamples?: number;
  /** Consecutive samples within exitK to close it; default 6. */
  exitSamples?: number;
  /** Level EWMA time constant (ms); default 24 h (the season carries the daily swing; the median residual a recent shift). */
  levelTauMs?: number;
  /** Seasonal bucket EWMA time constant (ms of that bucket's own samples); default 2 h (an hour a day: about two days). */
  seasonTauMs?: number;
  /** Residuals kept for the MAD; default 240. */
  window?: number;
  /** No events before this much time (ms) and `window / 4` samples have been seen; default 1 h. */
  warmupMs?: number;
  /** Spread floor as a share of |baseline|; default 0.05. */
  minRelSpread?: number;
  /** Absolute spread floor; default 1e-9. */
  minSpread?: number;
  /** Which departures count; default 'up' (storms, floods). */
  direction?: Direction;
  /** Learning rate factor for unusual samples; default 0.1. */
  anomalyWeight?: number;
  /** Hour-of-day offset from UTC in minutes (the appliance's local time); default 0. */
  utcOffsetMinutes?: number;
}

export interface AnomalyEvent {
  metric: string;
  /** Time of the first sample beyond the threshold (epoch ms). */
  start: number;
  /** Time of the first calm sample once the event is over; absent while it lasts. */
  end?: number;
  /** The most extreme value seen during the event. */
  peak: number;
  /** The expected value when the event started. */
  baseline: number;
  /** The score (in spreads) at the peak. */
  score: number;
  direction: 'up' | 'down';
}

interface Resolved {
  k: number;
  exitK: number;
  enterSamples: number;
  exitSamples: number;
  levelTauMs: number;
  seasonTauMs: number;
  window: number;
  warmupMs: number;
  minRelSpread: number;
  minSpread: number;
  direction: Direction;
  anomalyWeight: number;
  utcOffsetMinutes: number;
}

function resolve(o: AnomalyOptions): Resolved {
  const k = o.k ?? 4;
  return {
    k,
    exitK: o.exitK ?? k / 2,
    enterSamples: Math.max(1, o.enterSamples ?? 3),
    exitSamples: Math.max(1, o.exitSamples ?? 6),
    levelTauMs: o.levelTauMs ?? 24 * HOUR_MS,
    seasonTauMs: o.seasonTauMs ?? 2 * HOUR_MS,
    window: Math.max(8, o.window ?? 240),
    warmupMs: o.warmupMs ?? HOUR_MS,
    minRelSpread: o.minRelSpread ?? 0.05,
    minSpread: o.minSpread ?? 1e-9,
    direction: o.direction ?? 'up',
    anomalyWeight: o.anomalyWeight ?? 0.1,
    utcOffsetMinutes: o.utcOffsetMinutes ?? 0,
  };
}

function median(sorted: number[]): number {
  const n = sorted.length;
  if (!n) return 0;
  const m = n >> 1;
  return n % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/** The median of `values` and their median absolute deviation around it. */
export function medianAndMad(values: readonly number[]): { median: number; mad: number } {
  if (!values.length) return { median: 0, mad: 0 };
  const s = [...values].sort((a, b) => a - b);
  const med = median(s);
  return { median: med, mad: median(s.map((v) => Math.abs(v - med)).sort((a, b) => a - b)) };
}

export interface Assessment {
  baseline: number;
  spread: number;
  score: number;
  /** True while an event is open (after this sample). */
  anomalous: boolean;
  warmingUp: boolean;
}

/** The baseline, spread and hysteresis state of one metric. */
export class MetricDetector {
  private readonly o: Resolved;
  private level?: number;
  private readonly season = new Array<number>(24).fill(0);
  private residuals: number[] = [];
  private firstTs?: number;
  private lastTs?: number;
  private samples = 0;
  private streak = 0;
  private streakStart = 0;
  private streakPeak = 0;
  private streakScore = 0;
  private streakBaseline = 0;
  private streakDir: 'up' | 'down' = 'up';
  private calm = 0;
  private calmStart = 0;
  private open?: AnomalyEvent;

  constructor(
    readonly metric: string,
    opts: AnomalyOptions = {},
  ) {
    this.o = resolve(opts);
  }

  private hour(ts: number): number {
    const h = Math.floor((ts + this.o.utcOffsetMinutes * 60_000) / HOUR_MS) % 24;
    return h < 0 ? h + 24 : h;
  }

  /** The expected value at `ts`. */
  expected(ts: number): number | undefined {
    if (this.level === undefined) return undefined;
    return this.level + this.season[this.hour(ts)];
  }

  get current(): AnomalyEvent | undefined {
    return this.open && { ...this.open };
  }

  /**
   * Feed one sample (time order; an older or equal time is ignored). Returns the events that opened or closed with
   * this sample (an event object is returned once when it opens and once more, with `end`, when it closes).
   */
  update(ts: number, value: number): { events: AnomalyEvent[]; assessment?: Assessment } {
    if (!Number.isFinite(ts) || !Number.isFinite(value)) return { events: [] };
    if (this.lastTs !== undefined && ts <= this.lastTs) return { events: [] };
    const dt = this.lastTs === undefined ? 0 : ts - this.lastTs;
    this.lastTs = ts;
    this.firstTs ??= ts;
    this.samples++;
    const h = this.hour(ts);

    if (this.level === undefined) {
      this.level = value;
      return { events: [], assessment: { baseline: value, spread: 0, score: 0, anomalous: false, warmingUp: true } };
    }

    // The model's residuals may carry a bias (the level lags a trend): the median residual corrects the baseline.
    const model = this.level + this.season[h];
    const residual = value - model;
    const { median: bias, mad: dev } = medianAndMad(this.residuals);
    const baseline = model + bias;
    const spread = Math.max(this.o.minSpread, this.o.minRelSpread * Math.abs(baseline), MAD_SCALE * dev);
    const score = (value - baseline) / spread;
    const warmingUp = ts - this.firstTs < this.o.warmupMs || this.residuals.length < this.o.window / 4;

    const beyond = (dir: 'up' | 'down', limit: number) => (dir === 'up' ? score > limit : score < -limit);
    const dirs: Array<'up' | 'down'> = this.o.direction === 'both' ? ['up', 'down'] : [this.o.direction];
    const events: AnomalyEvent[] = [];

    // ---- hysteresis ----
    let suspicious = false;
    if (this.open) {
      const dir = this.open.direction;
      suspicious = !(dir === 'up' ? score < this.o.exitK : score > -this.o.exitK);
      if ((dir === 'up' && value > this.open.peak) || (dir === 'down' && value < this.open.peak)) {
        this.open.peak = value;
        this.open.score = score;
      }
      if (suspicious) this.calm = 0;
      else {
        if (this.calm === 0) this.calmStart = ts;
        if (++this.calm >= this.o.exitSamples) {
          this.open.end = this.calmStart;
          events.push({ ...this.open });
          this.open = undefined;
          this.calm = 0;
        }
      }
    } else {
      const dir = dirs.find((d) => beyond(d, this.o.k));
      if (dir && !warmingUp) {
        suspicious = true;
        if (this.streak === 0 || this.streakDir !== dir) {
          this.streak = 0;
          this.streakStart = ts;
          this.streakPeak = value;
          this.streakScore = score;
          this.streakBaseline = baseline;
          this.streakDir = dir;
        }
        this.streak++;
        if ((dir === 'up' && value > this.streakPeak) || (dir === 'down' && value < this.streakPeak)) {
          this.streakPeak = value;
          this.streakScore = score;
        }
        if (this.streak >= this.o.enterSamples) {
          this.open = {
            metric: this.metric,
            start: this.streakStart,
            peak: this.streakPeak,
            baseline: this.streakBaseline,
            score: this.streakScore,
            direction: dir,
          };
          events.push({ ...this.open });
          this.streak = 0;
          this.calm = 0;
        }
      } else {
        this.streak = 0;
      }
    }

    // ---- learning ----
    // Unusual samples (beyond k either way, reported or not, or inside an event) teach the baseline only slowly and
    // stay out of the spread's window: an outage or a storm is not learned as normal while it lasts, yet a lasting
    // change of level is adopted within hours.
    const unusual = !warmingUp && (suspicious || Math.abs(score) > this.o.k);
    const weight = unusual ? this.o.anomalyWeight : 1;
    const aLevel = weight * (1 - Math.exp(-dt / this.o.levelTauMs));
    const aSeason = weight * (1 - Math.exp(-dt / this.o.seasonTauMs));
    const deseason = value - this.season[h];
    this.level += aLevel * (deseason - this.level);
    this.season[h] += aSeason * (value - this.level - this.season[h]);
    if (!unusual) {
      this.residuals.push(residual);
      if (this.residuals.length > this.o.window) this.residuals.splice(0, this.residuals.length - this.o.window);
    }

    return { events, assessment: { baseline, spread, score, anomalous: this.open !== undefined, warmingUp } };
  }
}

/** Detectors for many metrics, created on first sight with shared options. */
export class AnomalyDetector {
  private readonly detectors = new Map<string, MetricDetector>();

  constructor(private readonly opts: AnomalyOptions = {}) {}

  /** Feed one sample of `metric`; undefined (a dropped interval) is ignored. */
  update(metric: string, ts: number, value: number | undefined): AnomalyEvent[] {
    if (value === undefined) return [];
    let d = this.detectors.get(metric);
    if (!d) this.detectors.set(metric, (d = new MetricDetector(metric, this.opts)));
    return d.update(ts, value).events;
  }

  /** Events open now. */
  open(): AnomalyEvent[] {
    return [...this.detectors.values()].flatMap((d) => (d.current ? [d.current] : []));
  }

  detector(metric: string): MetricDetector | undefined {
    return this.detectors.get(metric);
  }

  forget(metric: string): void {
    this.detectors.delete(metric);
  }
}
