import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AnomalyDetector, MetricDetector, medianAndMad, type AnomalyEvent } from '../../services/telemetry/anomaly.ts';
import { RateTracker } from '../../services/telemetry/rates.ts';
import { prng } from '../helpers/random.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2024, 0, 1);
const STEP = MIN; // one sample a minute keeps days of traffic cheap to simulate
const METRIC = 'if.wan0.rx_bytes_rate';

/** Deterministic noise in [-1, 1). */
function noiseOf(seed: number): () => number {
  const next = prng(seed);
  return () => next() * 2 - 1;
}

/** Normal traffic: 1 MB/s on average, a daily swing of ±60 % (peak in the afternoon), ±8 % noise. */
function normalRate(ts: number, noise: () => number): number {
  const day = ((ts - T0) % DAY) / DAY;
  return 1e6 * (1 + 0.6 * Math.sin(2 * Math.PI * (day - 0.375))) * (1 + 0.08 * noise());
}

function feed(det: AnomalyDetector, from: number, to: number, rate: (ts: number) => number): AnomalyEvent[] {
  const out: AnomalyEvent[] = [];
  for (let ts = from; ts < to; ts += STEP) out.push(...det.update(METRIC, ts, rate(ts)));
  return out;
}

test('median and MAD', () => {
  assert.equal(medianAndMad([1, 2, 3, 4, 100]), { median: 3, mad: 1 });
  assert.equal(medianAndMad([]), { median: 0, mad: 0 });
});

test('steady traffic with a daily pattern: no event over a week', () => {
  const noise = noiseOf(1);
  const det = new AnomalyDetector();
  const events = feed(det, T0, T0 + 7 * DAY, (ts) => normalRate(ts, noise));
  assert.equal(events, []);
  // The seasonal baseline follows the daily swing: afternoon expected well above the early-morning trough.
  const d = det.detector(METRIC)!;
  const peak = d.expected(T0 + 7 * DAY + 15 * HOUR)!;
  const trough = d.expected(T0 + 7 * DAY + 3 * HOUR)!;
  console.log(`expected at 15:00 ${peak.toFixed(0)}, at 03:00 ${trough.toFixed(0)}`);
  assert.ok(peak > 1.6 * trough, `seasonality learned: ${peak} vs ${trough}`);
});

test('a burst of ten times the learned rate: exactly one event, with start and end', () => {
  const noise = noiseOf(2);
  const det = new AnomalyDetector({ k: 4 });
  const burstStart = T0 + 4 * DAY + 10 * HOUR;
  const burstEnd = burstStart + 45 * MIN;
  const events = feed(det, T0, T0 + 5 * DAY, (ts) => {
    const r = normalRate(ts, noise);
    return ts >= burstStart && ts < burstEnd ? 10 * r : r;
  });
  const starts = new Set(events.map((e) => e.start));
  assert.is(starts.size, 1, JSON.stringify(events));
  assert.is(events.length, 2, 'reported when it opens and when it closes');
  const [opened, closed] = events;
  assert.is(opened.end, undefined);
  assert.is(opened.start, burstStart);
  assert.is(closed.start, burstStart);
  assert.is(closed.end, burstEnd, 'ends at the first calm sample');
  assert.is(closed.metric, METRIC);
  assert.is(closed.direction, 'up');
  const expected = normalRate(burstStart, () => 0); // the noiseless normal rate then
  assert.ok(closed.baseline > 0.5 * expected && closed.baseline < 2 * expected, `baseline ${closed.baseline}`);
  assert.ok(closed.peak > 8 * closed.baseline, `peak ${closed.peak} vs baseline ${closed.baseline}`);
  assert.equal(det.open(), []);
});

test('a storm that flickers below the entry threshold stays one event; single spikes are none', () => {
  const noise = noiseOf(3);
  const det = new AnomalyDetector();
  const storm = T0 + 3 * DAY + 14 * HOUR;
  const events = feed(det, T0, T0 + 4 * DAY, (ts) => {
    const r = normalRate(ts, noise);
    const i = Math.round((ts - storm) / STEP);
    if (i >= 0 && i < 60) return i % 5 === 2 ? r * 1.1 : r * 6; // a few calm-looking minutes inside the storm
    if (ts === T0 + 2 * DAY + 9 * HOUR) return 20 * r; // one lone spike
    return r;
  });
  assert.is(new Set(events.map((e) => e.start)).size, 1, JSON.stringify(events));
  // Entry needs three consecutive samples beyond k: the first run of them starts at minute 3.
  assert.is(events.at(-1)!.start, storm + 3 * STEP);
  assert.ok(events.at(-1)!.end! >= storm + 59 * STEP);
});

test('no event during the warm-up', () => {
  const det = new AnomalyDetector({ warmupMs: 2 * HOUR });
  const events = feed(det, T0, T0 + 2 * HOUR, (ts) => (ts < T0 + HOUR ? 1000 : 50_000));
  assert.equal(events, []);
});

test('counter reset and recreated interface: rates drop the interval, no event', () => {
  const noise = noiseOf(4);
  const tracker = new RateTracker();
  const det = new AnomalyDetector();
  let counter = 5e12;
  let ifindex = 3;
  const events: AnomalyEvent[] = [];
  for (let ts = T0; ts < T0 + 4 * DAY; ts += STEP) {
    counter += normalRate(ts, noise) * (STEP / 1000);
    if (ts === T0 + 3 * DAY) counter = 1500; // counter reset (driver reload)
    if (ts === T0 + 3 * DAY + 6 * HOUR) {
      ifindex = 9; // interface recreated: counting starts again from a value unrelated to the old one
      counter = 7e12;
    }
    const rate = tracker.update('if.wan0.rx_bytes', { ts, value: counter, instance: ifindex });
    assert.ok(rate === undefined || (rate >= 0 && rate < 5e6), `no negative or giant rate: ${rate}`);
    events.push(...det.update(METRIC, ts, rate));
  }
  assert.is(tracker.resets, 2);
  assert.equal(events, []);
});

test('downward departures are reported with direction "both" (and not by default)', () => {
  const run = (opts: ConstructorParameters<typeof MetricDetector>[1]) => {
    const noise = noiseOf(5);
    const d = new MetricDetector(METRIC, opts);
    const out: AnomalyEvent[] = [];
    const outage = T0 + 3 * DAY + 12 * HOUR;
    for (let ts = T0; ts < T0 + 4 * DAY; ts += STEP) {
      const v = ts >= outage && ts < outage + 30 * MIN ? 0 : normalRate(ts, noise);
      out.push(...d.update(ts, v).events);
    }
    return out;
  };
  assert.equal(run({}), []);
  const both = run({ direction: 'both' });
  assert.is(both.length, 2);
  assert.is(both[1].direction, 'down');
  assert.is(both[1].peak, 0);
});

test('deterministic: the same samples give the same events', () => {
  const go = () => {
    const noise = noiseOf(6);
    const det = new AnomalyDetector();
    return feed(det, T0, T0 + 3 * DAY, (ts) => normalRate(ts, noise) * (ts > T0 + 2 * DAY + 5 * HOUR && ts < T0 + 2 * DAY + 6 * HOUR ? 10 : 1));
  };
  const a = go();
  assert.ok(a.length > 0);
  assert.equal(go(), a);
});

test.run();
