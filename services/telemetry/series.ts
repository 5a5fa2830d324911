/**
 * Time series in the SQLite store (migration 3): raw points, 1-minute and 1-hour rollups (min / avg / max / count),
 * retention per resolution, and queries that pick the resolution. Times are epoch milliseconds.
 *
 * Rollups cover complete buckets only and are recomputed whole (INSERT OR REPLACE of an aggregate over the bucket),
 * so running them twice, or after late points, gives the same rows. A watermark per resolution (in `meta`) says up to
 * where rollups are complete; queries of a rolled-up resolution fill the part after the watermark from the finer
 * data, so the newest minutes show before their rollup runs.
 */
import { RampartError } from '../core/errors.ts';
import type { Store } from '../core/store.ts';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export type Resolution = 'raw' | '1m' | '1h';

export interface SeriesOptions {
  rawHours?: number;
  minuteDays?: number;
  hourDays?: number;
}

export interface Point {
  metric: string;
  value: number;
}

export interface SeriesPoint {
  ts: number;
  min: number;
  avg: number;
  max: number;
}

export interface QueryResult {
  metric: string;
  resolution: Resolution;
  /** Bucket width of the points (ms): the step, or the resolution's own width when that is coarser. */
  stepMs: number;
  points: SeriesPoint[];
}

/** Metric names: dotted words, e.g. `if.lan0.rx_bytes_rate`, `sys.cpu`, `rule.lan-web.packets_rate`. */
export const METRIC_RE = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:@-]+)*$/;
const MAX_METRIC = 200;

export function checkMetric(metric: string): string {
  if (typeof metric !== 'string' || metric.length > MAX_METRIC || !METRIC_RE.test(metric)) {
    throw new RampartError('invalid_input', `invalid metric name ${JSON.stringify(metric)}`, [{ path: '/metric', message: 'must be dotted words of A-Z a-z 0-9 _ : - (at most 200 characters)' }]);
  }
  return metric;
}

const WATERMARK = { '1m': 'telemetry.rollup.1m', '1h': 'telemetry.rollup.1h' } as const;
/** At most this many points per query (a step is raised to keep to it). */
export const MAX_POINTS = 20_000;

/** A bucket aggregate as a row tuple: [ts, min, sum, max, count] (raw statement mode: no object per row). */
type Agg = [ts: number, min: number, sum: number, max: number, count: number];

/** Time-ordered segments (each sorted, later segments later in time) → points; a bucket split across two merges. */
function combine(segments: Agg[][]): SeriesPoint[] {
  const points: SeriesPoint[] = [];
  let last: Agg | undefined;
  const flush = () => {
    if (last) points.push({ ts: last[0], min: last[1], avg: last[2] / last[4], max: last[3] });
  };
  for (const rows of segments) {
    for (const r of rows) {
      if (last && last[0] === r[0]) {
        last = [r[0], Math.min(last[1], r[1]), last[2] + r[2], Math.max(last[3], r[3]), last[4] + r[4]];
        continue;
      }
      flush();
      last = r;
    }
  }
  flush();
  return points;
}

export class SeriesStore {
  readonly rawMs: number;
  readonly minuteMs: number;
  readonly hourMs: number;
  private readonly ids = new Map<string, number>();
  /** Earliest raw timestamp recorded since the last 1-minute rollup, when it is before the watermark. */
  private lateRaw?: number;

  constructor(
    private readonly store: Store,
    opts: SeriesOptions = {},
  ) {
    const { rawHours = 24, minuteDays = 30, hourDays = 365 } = opts;
    for (const [k, v] of Object.entries({ rawHours, minuteDays, hourDays })) {
      if (!(Number.isFinite(v) && v > 0)) throw new RampartError('invalid_input', `telemetry retention ${k} must be positive`);
    }
    this.rawMs = rawHours * HOUR_MS;
    this.minuteMs = minuteDays * DAY_MS;
    this.hourMs = hourDays * DAY_MS;
  }

  // ---- series ids ----

  private seriesId(metric: string, create: true): number;
  private seriesId(metric: string, create: false): number | undefined;
  private seriesId(metric: string, create: boolean): number | undefined {
    const cached = this.ids.get(metric);
    if (cached !== undefined) return cached;
    const row = this.store.prepare('SELECT id FROM series WHERE metric = ?').get(metric) as { id: number } | undefined;
    if (row) {
      this.ids.set(metric, row.id);
      return row.id;
    }
    if (!create) return undefined;
    checkMetric(metric);
    const id = Number(this.store.prepare('INSERT INTO series (metric) VALUES (?)').run(metric).lastInsertRowid);
    this.ids.set(metric, id);
    return id;
  }

  /** Every metric name that has a series. */
  metrics(): string[] {
    return (this.store.prepare('SELECT metric FROM series ORDER BY metric').all() as { metric: string }[]).map((r) => r.metric);
  }

  // ---- writing ----

  /** Record one sample time's points in one transaction; non-finite values are skipped. */
  record(ts: number, points: readonly Point[]): number {
    if (!Number.isFinite(ts)) throw new RampartError('invalid_input', 'telemetry: sample time must be finite');
    const t = Math.round(ts);
    const insert = this.store.prepare('INSERT OR REPLACE INTO points_raw (series, ts, value) VALUES (?, ?, ?)');
    let n = 0;
    this.store.sql.transaction(() => {
      for (const p of points) {
        if (typeof p.value !== 'number' || !Number.isFinite(p.value)) continue;
        insert.run(this.seriesId(p.metric, true), t, p.value);
        n++;
      }
    })();
    const wm = this.watermark('1m');
    if (n && wm !== undefined && t < wm) this.lateRaw = Math.min(this.lateRaw ?? t, t);
    return n;
  }

  // ---- rollups ----

  private watermark(res: '1m' | '1h'): number | undefined {
    const v = this.store.getMeta(WATERMARK[res]);
    return v === undefined ? undefined : Number(v);
  }

  /**
   * Roll raw points into complete minutes and complete minutes into complete hours, up to `now`. Idempotent: a
   * bucket is always recomputed from all of its finer rows.
   */
  rollup(now: number): { minutes: number; hours: number } {
    let minutes = 0;
    let hours = 0;
    this.store.sql.transaction(() => {
      // raw → 1 minute
      const endM = Math.floor(now / MINUTE_MS) * MINUTE_MS;
      let fromM = this.watermark('1m') ?? this.minTs('points_raw');
      if (this.lateRaw !== undefined && fromM !== undefined) fromM = Math.min(fromM, this.lateRaw);
      if (fromM !== undefined) {
        fromM = Math.floor(fromM / MINUTE_MS) * MINUTE_MS;
        if (fromM < endM) {
          minutes = this.store
            .prepare(
              `INSERT OR REPLACE INTO points_1m (series, ts, min, avg, max, count)
               SELECT series, ts - ts % ${MINUTE_MS} AS b, min(value), avg(value), max(value), count(*)
               FROM points_raw WHERE ts >= ? AND ts < ? GROUP BY series, b`,
            )
            .run(fromM, endM).changes;
        }
        this.store.setMeta(WATERMARK['1m'], String(Math.max(endM, this.watermark('1m') ?? endM)));
      }
      this.lateRaw = undefined;
      // 1 minute → 1 hour, only hours whose minutes are complete
      const wm1 = this.watermark('1m');
      if (wm1 === undefined) return;
      const endH = Math.floor(Math.min(now, wm1) / HOUR_MS) * HOUR_MS;
      let fromH = this.watermark('1h') ?? this.minTs('points_1m');
      if (fromH === undefined) return;
      // Late raw points may have changed minutes of hours already rolled: recompute from the earliest changed minute.
      if (fromM !== undefined) fromH = Math.min(fromH, fromM);
      fromH = Math.floor(fromH / HOUR_MS) * HOUR_MS;
      if (fromH < endH) {
        hours = this.store
          .prepare(
            `INSERT OR REPLACE INTO points_1h (series, ts, min, avg, max, count)
             SELECT series, ts - ts % ${HOUR_MS} AS b, min(min), sum(avg * count) / sum(count), max(max), sum(count)
             FROM points_1m WHERE ts >= ? AND ts < ? GROUP BY series, b`,
          )
          .run(fromH, endH).changes;
      }
      this.store.setMeta(WATERMARK['1h'], String(Math.max(endH, this.watermark('1h') ?? endH)));
    })();
    return { minutes, hours };
  }

  private minTs(table: 'points_raw' | 'points_1m'): number | undefined {
    const r = this.store.prepare(`SELECT min(ts) AS t FROM ${table}`).get() as { t: number | null };
    return r.t ?? undefined;
  }

  /** Delete what is past its age at each resolution, and series left without any point. */
  enforceRetention(now: number): { raw: number; minutes: number; hours: number; series: number } {
    const out = { raw: 0, minutes: 0, hours: 0, series: 0 };
    this.store.sql.transaction(() => {
      out.raw = this.store.prepare('DELETE FROM points_raw WHERE ts < ?').run(now - this.rawMs).changes;
      out.minutes = this.store.prepare('DELETE FROM points_1m WHERE ts < ?').run(now - this.minuteMs).changes;
      out.hours = this.store.prepare('DELETE FROM points_1h WHERE ts < ?').run(now - this.hourMs).changes;
      if (out.raw || out.minutes || out.hours) {
        out.series = this.store
          .prepare(
            `DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM points_raw WHERE series = series.id)
               AND NOT EXISTS (SELECT 1 FROM points_1m WHERE series = series.id)
               AND NOT EXISTS (SELECT 1 FROM points_1h WHERE series = series.id)`,
          )
          .run().changes;
        if (out.series) this.ids.clear();
      }
    })();
    return out;
  }

  /** Rollups, then retention (so nothing is deleted before it is rolled up). */
  maintain(now: number): void {
    this.rollup(now);
    this.enforceRetention(now);
  }

  // ---- queries ----

  /**
   * The resolution for a query: raw when the range lies within the raw retention and the step is under a minute;
   * else 1-minute when it lies within the minute retention and the step is under an hour; else 1-hour.
   */
  pickResolution(from: number, to: number, stepMs: number, now: number): Resolution {
    const range = to - from;
    if (stepMs < MINUTE_MS && range <= this.rawMs && from >= now - this.rawMs) return 'raw';
    if (stepMs < HOUR_MS && range <= this.minuteMs && from >= now - this.minuteMs) return '1m';
    return '1h';
  }

  /**
   * Points of `metric` in [from, to) (epoch ms) in buckets of `stepMs` (default: about 1000 points over the range),
   * each bucket's min / avg / max. An unknown metric gives no points.
   */
  query(metric: string, from: number, to: number, stepMs?: number, now = Date.now()): QueryResult {
    checkMetric(metric);
    if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
      throw new RampartError('invalid_input', 'telemetry query: from and to must be times with from < to', [{ path: '/from', message: 'must be before to' }]);
    }
    if (stepMs !== undefined && !(Number.isFinite(stepMs) && stepMs > 0)) {
      throw new RampartError('invalid_input', 'telemetry query: step must be a positive duration', [{ path: '/step', message: 'must be positive' }]);
    }
    const range = to - from;
    let step = Math.max(1000, Math.round(stepMs ?? Math.ceil(range / 1000)));
    step = Math.max(step, Math.ceil(range / MAX_POINTS));
    const resolution = this.pickResolution(from, to, step, now);
    const width = resolution === 'raw' ? 0 : resolution === '1m' ? MINUTE_MS : HOUR_MS;
    if (width) step = Math.max(1, Math.ceil(step / width)) * width;
    const id = this.seriesId(metric, false);
    if (id === undefined) return { metric, resolution, stepMs: step, points: [] };

    const segments: Agg[][] = [];
    const merge = (rows: Agg[]) => segments.push(rows);
    if (resolution === 'raw') {
      merge(this.fromRaw(id, from, to, step));
    } else if (resolution === '1m') {
      const wm = Math.max(from, Math.min(to, this.watermark('1m') ?? from));
      if (wm > from) merge(this.fromRollup('points_1m', id, from, wm, step));
      if (wm < to) merge(this.fromRaw(id, wm, to, step));
    } else {
      const wm1 = this.watermark('1m') ?? from;
      const wmH = Math.max(from, Math.min(to, this.watermark('1h') ?? from));
      if (wmH > from) merge(this.fromRollup('points_1h', id, from, wmH, step));
      const wmM = Math.max(wmH, Math.min(to, wm1));
      if (wmM > wmH) merge(this.fromRollup('points_1m', id, wmH, wmM, step));
      if (wmM < to) merge(this.fromRaw(id, wmM, to, step));
    }
    return { metric, resolution, stepMs: step, points: combine(segments) };
  }

  private fromRaw(id: number, from: number, to: number, step: number): Agg[] {
    return this.store
      .prepare(
        `SELECT ts - ts % ? AS ts, min(value) AS min, sum(value) AS sum, max(value) AS max, count(*) AS count
         FROM points_raw WHERE series = ? AND ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1`,
      )
      .raw(true)
      .all(step, id, from, to) as Agg[];
  }

  private fromRollup(table: 'points_1m' | 'points_1h', id: number, from: number, to: number, step: number): Agg[] {
    if (step === (table === 'points_1m' ? MINUTE_MS : HOUR_MS)) {
      // Buckets of the table's own width: the rows as they are, straight from the primary key.
      return this.store
        .prepare(`SELECT ts, min, avg * count AS sum, max, count FROM ${table} WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts`)
        .raw(true)
        .all(id, from, to) as Agg[];
    }
    return this.store
      .prepare(
        `SELECT ts - ts % ? AS ts, min(min) AS min, sum(avg * count) AS sum, max(max) AS max, sum(count) AS count
         FROM ${table} WHERE series = ? AND ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1`,
      )
      .raw(true)
      .all(step, id, from, to) as Agg[];
  }

  /** The newest raw value of each of `metrics` (for `rampart stats`, SNMP). */
  latest(metrics: readonly string[]): Record<string, { ts: number; value: number }> {
    const out: Record<string, { ts: number; value: number }> = {};
    const stmt = this.store.prepare('SELECT ts, value FROM points_raw WHERE series = ? ORDER BY ts DESC LIMIT 1');
    for (const m of metrics) {
      const id = this.seriesId(m, false);
      if (id === undefined) continue;
      const r = stmt.get(id) as { ts: number; value: number } | undefined;
      if (r) out[m] = r;
    }
    return out;
  }
}
