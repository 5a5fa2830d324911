import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RampartError } from '../../services/core/errors.ts';
import { Store } from '../../services/core/store.ts';
import { HOUR_MS, MINUTE_MS, SeriesStore } from '../../services/telemetry/series.ts';

const DAY = 86_400_000;
/** A fixed, hour-aligned "now" so tests do not depend on the clock. */
const T0 = Date.UTC(2024, 0, 1);

let dir: string;
let store: Store;
let series: SeriesStore;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-series-'));
  store = new Store(join(dir, 'rampart.db')).open();
  series = new SeriesStore(store);
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = (table: string) => (store.sql.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

test('record writes raw points in one transaction; non-finite values are skipped; bad names refused', () => {
  const n = series.record(T0, [
    { metric: 'if.lan0.rx_bytes_rate', value: 10 },
    { metric: 'sys.cpu', value: 5 },
    { metric: 'rule.lan-web.packets_rate', value: NaN },
  ]);
  assert.is(n, 2);
  assert.is(count('points_raw'), 2);
  assert.equal(series.metrics(), ['if.lan0.rx_bytes_rate', 'sys.cpu']);
  assert.throws(() => series.record(T0, [{ metric: 'bad name', value: 1 }]), (e: unknown) => e instanceof RampartError && e.code === 'invalid_input');
  assert.is(count('points_raw'), 2, 'the failed batch left nothing behind');
  assert.throws(() => series.query('x;drop', T0, T0 + 1), /invalid metric/);
  assert.throws(() => series.query('sys.cpu', T0 + 1, T0), /from < to/);
});

test('rollups: raw → minute min/avg/max, minute → hour; only complete buckets; idempotent', () => {
  // Two hours of 10 s samples: value = minute index within the hour, plus 0..5 within the minute.
  for (let t = T0; t < T0 + 2 * HOUR_MS; t += 10_000) {
    const minute = Math.floor((t - T0) / MINUTE_MS) % 60;
    series.record(t, [{ metric: 'sys.cpu', value: minute + ((t - T0) % MINUTE_MS) / 10_000 }]);
  }
  const now = T0 + HOUR_MS + 30 * MINUTE_MS + 5000; // mid second hour, mid minute
  const first = series.rollup(now);
  assert.is(first.minutes, 90);
  assert.is(first.hours, 1);
  const m = store.sql.prepare('SELECT * FROM points_1m ORDER BY ts LIMIT 1').get() as any;
  assert.equal([m.ts, m.min, m.avg, m.max, m.count], [T0, 0, 2.5, 5, 6]);
  const h = store.sql.prepare('SELECT * FROM points_1h').get() as any;
  assert.equal([h.ts, h.min, h.max, h.count], [T0, 0, 64, 360]);
  assert.ok(Math.abs(h.avg - 32) < 1e-9, `hour avg ${h.avg}`);

  const snapshot = () => JSON.stringify([store.sql.prepare('SELECT * FROM points_1m ORDER BY series, ts').all(), store.sql.prepare('SELECT * FROM points_1h ORDER BY series, ts').all()]);
  const before = snapshot();
  series.rollup(now);
  assert.is(snapshot(), before, 'a second rollup changes nothing');

  // A late point for an already rolled-up minute is folded in by the next rollup.
  series.record(T0 + 5000, [{ metric: 'sys.cpu', value: 100 }]);
  series.rollup(now);
  const m2 = store.sql.prepare('SELECT * FROM points_1m ORDER BY ts LIMIT 1').get() as any;
  assert.equal([m2.max, m2.count], [100, 7]);
  const h2 = store.sql.prepare('SELECT * FROM points_1h').get() as any;
  assert.equal([h2.max, h2.count], [100, 361]);

  // The rest of the second hour rolls once it is complete.
  assert.is(series.rollup(T0 + 2 * HOUR_MS).hours, 1);
  assert.is(count('points_1h'), 2);
});

test('retention deletes what is past its age at each resolution, and empty series', () => {
  const s = new SeriesStore(store, { rawHours: 1, minuteDays: 1, hourDays: 2 });
  const now = T0 + 10 * DAY;
  s.record(now - 2 * HOUR_MS, [{ metric: 'old.metric', value: 1 }]);
  s.record(now - 30 * MINUTE_MS, [{ metric: 'sys.cpu', value: 1 }]);
  const cpu = (store.sql.prepare("SELECT id FROM series WHERE metric = 'sys.cpu'").get() as { id: number }).id;
  for (const [table, ages] of [['points_1m', [2 * DAY, HOUR_MS]], ['points_1h', [3 * DAY, DAY]]] as const) {
    for (const age of ages) store.sql.prepare(`INSERT INTO ${table} (series, ts, min, avg, max, count) VALUES (?, ?, 1, 1, 1, 1)`).run(cpu, now - age);
  }
  const r = s.enforceRetention(now);
  assert.equal(r, { raw: 1, minutes: 1, hours: 1, series: 1 });
  assert.is(count('points_raw'), 1);
  assert.is(count('points_1m'), 1);
  assert.is(count('points_1h'), 1);
  assert.equal(s.metrics(), ['sys.cpu']);
  // A metric whose series was deleted can be recorded again.
  s.record(now, [{ metric: 'old.metric', value: 2 }]);
  assert.is(s.query('old.metric', now - 1000, now + 1000, 1000, now).points.length, 1);
});

test('resolution picking and step buckets', () => {
  const now = T0 + 40 * DAY;
  for (let t = now - 2 * HOUR_MS; t < now; t += 10_000) series.record(t, [{ metric: 'if.lan0.rx_bytes_rate', value: (t / 10_000) % 7 }]);
  series.rollup(now);
  assert.is(series.pickResolution(now - HOUR_MS, now, 10_000, now), 'raw');
  assert.is(series.pickResolution(now - HOUR_MS, now, 60_000, now), '1m');
  assert.is(series.pickResolution(now - 2 * DAY, now - DAY - HOUR_MS, 10_000, now), '1m', 'older than the raw retention');
  assert.is(series.pickResolution(now - 7 * DAY, now, 10_000, now), '1m', 'range beyond the raw retention');
  assert.is(series.pickResolution(now - 7 * DAY, now, HOUR_MS, now), '1h');
  assert.is(series.pickResolution(now - 35 * DAY, now, 60_000, now), '1h', 'older than the minute retention');

  const raw = series.query('if.lan0.rx_bytes_rate', now - HOUR_MS, now, 10_000, now);
  assert.is(raw.resolution, 'raw');
  assert.is(raw.points.length, 360);
  const p = raw.points[0];
  assert.ok(p.min === p.avg && p.avg === p.max);

  const minutes = series.query('if.lan0.rx_bytes_rate', now - HOUR_MS, now, 60_000, now);
  assert.is(minutes.resolution, '1m');
  assert.is(minutes.points.length, 60);
  for (const q of minutes.points) assert.ok(q.min <= q.avg && q.avg <= q.max);

  // Same averages whether from raw (5-minute buckets) or from the minute rollups.
  const a = series.query('if.lan0.rx_bytes_rate', now - HOUR_MS, now, 30_000, now);
  const b = series.query('if.lan0.rx_bytes_rate', now - HOUR_MS, now, 300_000, now);
  assert.is(a.resolution, 'raw');
  assert.is(b.resolution, '1m');
  assert.is(b.points.length, 12);
  const avgOf = (pts: { avg: number }[]) => pts.reduce((s, q) => s + q.avg, 0) / pts.length;
  assert.ok(Math.abs(avgOf(a.points) - avgOf(b.points)) < 1e-9);

  // Hour resolution: the last (not yet rolled) hour is filled from minutes and raw points.
  const hours = series.query('if.lan0.rx_bytes_rate', now - 7 * DAY, now, HOUR_MS, now);
  assert.is(hours.resolution, '1h');
  assert.is(hours.points.length, 2);
  assert.is(series.query('no.such.metric', now - HOUR_MS, now, 10_000, now).points.length, 0);
});

test('the newest minutes show at minute resolution before their rollup runs', () => {
  const now = T0 + 3 * HOUR_MS;
  for (let t = now - 10 * MINUTE_MS; t < now; t += 10_000) series.record(t, [{ metric: 'sys.cpu', value: 1 }]);
  series.rollup(now - 5 * MINUTE_MS);
  const r = series.query('sys.cpu', now - 10 * MINUTE_MS, now, MINUTE_MS, now);
  assert.is(r.resolution, '1m');
  assert.is(r.points.length, 10);
  assert.ok(r.points.every((p) => p.avg === 1));
  assert.equal(series.latest(['sys.cpu', 'nope']), { 'sys.cpu': { ts: now - 10_000, value: 1 } });
});

test('a year of hourly points for one metric queries fast (figure printed, not asserted)', () => {
  const now = T0 + 365 * DAY;
  // Many other series around it, so the index has to do the work.
  const hourly = store.sql.prepare('INSERT INTO points_1h (series, ts, min, avg, max, count) VALUES (?, ?, ?, ?, ?, 360)');
  const metrics = Array.from({ length: 20 }, (_, i) => `if.eth${i}.rx_bytes_rate`);
  series.record(now - 1000, metrics.map((m) => ({ metric: m, value: 0 })));
  const ids = store.sql.prepare('SELECT id FROM series').all() as { id: number }[];
  store.sql.transaction(() => {
    for (const { id } of ids) for (let t = now - 365 * DAY; t < now; t += HOUR_MS) hourly.run(id, t, 1, 2, 3);
  })();
  store.setMeta('telemetry.rollup.1h', String(now));
  store.setMeta('telemetry.rollup.1m', String(now));
  series.query('if.eth7.rx_bytes_rate', now - 365 * DAY, now, HOUR_MS, now); // warm the statement cache
  const runs: number[] = [];
  let r;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    r = series.query('if.eth7.rx_bytes_rate', now - 365 * DAY, now, HOUR_MS, now);
    runs.push(performance.now() - t);
  }
  assert.is(r!.resolution, '1h');
  assert.is(r!.points.length, 365 * 24);
  assert.ok(r!.points.every((p) => p.min === 1 && p.avg === 2 && p.max === 3));
  const t30 = performance.now();
  const month = series.query('if.eth7.rx_bytes_rate', now - 30 * DAY, now, HOUR_MS, now);
  const monthMs = performance.now() - t30;
  assert.is(month.points.length, 30 * 24);
  runs.sort((a, b) => a - b);
  console.log(`figure: query of 8760 hourly points (1 of 20 series): median ${runs[2].toFixed(1)} ms, max ${runs[4].toFixed(1)} ms; 30 days at 1 h: ${monthMs.toFixed(1)} ms`);
});

test('24 h of raw 10 s points queries at raw resolution (figure printed)', () => {
  const now = T0 + DAY;
  const ins = store.sql.prepare('INSERT INTO points_raw (series, ts, value) VALUES (?, ?, ?)');
  series.record(now - DAY, [{ metric: 'if.lan0.rx_bytes_rate', value: 0 }]);
  store.sql.transaction(() => {
    for (let t = now - DAY + 10_000; t < now; t += 10_000) ins.run(1, t, t % 97);
  })();
  const t = performance.now();
  const r = series.query('if.lan0.rx_bytes_rate', now - DAY, now, 10_000, now);
  const ms = performance.now() - t;
  assert.is(r.resolution, 'raw');
  assert.is(r.points.length, 8640);
  console.log(`figure: query of 24 h raw at 10 s (8640 points): ${ms.toFixed(1)} ms`);
});

test.run();
