import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counterDelta, counterRate, RateTracker } from '../../services/telemetry/rates.ts';
import fc from 'fast-check';
import { derivePoints, parseConntrack, parseIpLinkStats, parseLoadavg, parseMeminfo, parseProcStat, parseUptime, type Sample } from '../../services/telemetry/collectors.ts';

const TWO32 = 2 ** 32;

test('plain increase gives delta / seconds', () => {
  const r = counterRate({ ts: 0, value: 1000 }, { ts: 10_000, value: 6000 });
  assert.ok(r.ok);
  if (r.ok) {
    assert.is(r.rate, 500);
    assert.is(r.delta, 5000);
    assert.is(r.wrapped, false);
  }
});

test('32-bit wrap is accounted for', () => {
  const d = counterDelta(TWO32 - 100, 50, 10, { bits: 32 });
  assert.equal(d, { ok: true, delta: 150, wrapped: true });
});

test('64-bit wrap is exact (bigint inputs)', () => {
  const max = (1n << 64n) - 1n;
  const d = counterDelta(max - 999n, 1000n, 10);
  assert.equal(d, { ok: true, delta: 2000, wrapped: true });
});

test('a 64-bit counter that drops from a small value is a reset, not a wrap', () => {
  assert.equal(counterDelta(5_000_000_000, 1234, 10), { ok: false, reason: 'reset' });
  const r = counterRate({ ts: 0, value: 5_000_000_000 }, { ts: 10_000, value: 1234 });
  assert.equal(r, { ok: false, reason: 'reset' });
});

test('32-bit: a wrap implying more than maxRate is a reset', () => {
  // From 3e9 down to 1000: a wrap would be 1.29e9 bytes in 10 s; above a 100 Mbit/s link's 12.5e6 B/s.
  assert.equal(counterDelta(3e9, 1000, 10, { bits: 32, maxRate: 12.5e6 }), { ok: false, reason: 'reset' });
  // Without a ceiling, half the range is the limit: 1.29e9 < 2^31 is taken as a wrap.
  assert.ok(counterDelta(3e9, 1000, 10, { bits: 32 }).ok);
  // A drop from low in the range is a reset even for 32-bit.
  assert.equal(counterDelta(1e9, 1000, 10, { bits: 32 }), { ok: false, reason: 'reset' });
  // An increase beyond the ceiling is a reset too (counter restarted and grew past the old value).
  assert.equal(counterDelta(0, 1e9, 10, { maxRate: 12.5e6 }), { ok: false, reason: 'reset' });
});

test('invalid values, first reading, changed instance and a stuck clock give no rate', () => {
  assert.equal(counterDelta(-1, 5, 1), { ok: false, reason: 'invalid' });
  assert.equal(counterDelta(NaN, 5, 1), { ok: false, reason: 'invalid' });
  assert.equal(counterDelta(TWO32, 5, 1, { bits: 32 }), { ok: false, reason: 'invalid' });
  assert.equal(counterRate(undefined, { ts: 1, value: 1 }), { ok: false, reason: 'first' });
  assert.equal(counterRate({ ts: 0, value: 1, instance: 7 }, { ts: 1000, value: 9, instance: 8 }), { ok: false, reason: 'instance' });
  assert.equal(counterRate({ ts: 1000, value: 1 }, { ts: 1000, value: 9 }), { ok: false, reason: 'clock' });
});

test('tracker: a reset drops one interval, then rates resume; never negative', () => {
  const t = new RateTracker();
  const seq = [0, 1000, 2000, 3000, 50, 1050, 2050];
  const rates = seq.map((v, i) => t.update('c', { ts: i * 1000, value: v }));
  assert.equal(rates, [undefined, 1000, 1000, 1000, undefined, 1000, 1000]);
  assert.is(t.resets, 1);
});

test('tracker: a new instance (recreated interface) drops the interval even if the value grew', () => {
  const t = new RateTracker();
  assert.is(t.update('if.x.rx_bytes', { ts: 0, value: 100, instance: 5 }), undefined);
  assert.is(t.update('if.x.rx_bytes', { ts: 1000, value: 200, instance: 5 }), 100);
  assert.is(t.update('if.x.rx_bytes', { ts: 2000, value: 10_000_000, instance: 9 }), undefined);
  assert.is(t.update('if.x.rx_bytes', { ts: 3000, value: 10_000_500, instance: 9 }), 500);
  t.retain([]);
  assert.is(t.size, 0);
});

const LINK = (ifindex: number, rx: number, tx: number) =>
  JSON.stringify([
    { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], operstate: 'UNKNOWN', stats64: { rx: { bytes: 9, packets: 1, errors: 0, dropped: 0 }, tx: { bytes: 9, packets: 1, errors: 0, dropped: 0 } } },
    {
      ifindex,
      ifname: 'lan0',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      operstate: 'UP',
      stats64: { rx: { bytes: rx, packets: rx / 100, errors: 1, dropped: 2 }, tx: { bytes: tx, packets: tx / 100, errors: 3, dropped: 4 } },
    },
  ]);

const STAT = (user: number, idle: number) => `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1\n`;

function sample(ts: number, ifindex: number, rx: number, tx: number, user: number, idle: number): Sample {
  const interfaces = Object.fromEntries(parseIpLinkStats(LINK(ifindex, rx, tx)).map((c) => [c.name, c]));
  return { ts, interfaces, system: parseProcStat(STAT(user, idle)), process: { rssBytes: 1, heapUsedBytes: 1 }, errors: [] };
}

test('parsers: ip link stats, /proc files, sysctl conntrack', () => {
  const [lo, lan] = parseIpLinkStats(LINK(4, 1000, 2000));
  assert.is(lo.name, 'lo');
  assert.equal(lan, { ifindex: 4, name: 'lan0', up: true, rxBytes: 1000, rxPackets: 10, rxErrors: 1, rxDropped: 2, txBytes: 2000, txPackets: 20, txErrors: 3, txDropped: 4 });
  const st = parseProcStat(STAT(10, 90));
  assert.is(st.cpuCount, 2);
  assert.is(st.cpu!.user, 10);
  const mem = parseMeminfo('MemTotal:       2048 kB\nMemFree:         512 kB\nMemAvailable:   1024 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n')!;
  assert.equal(mem, { totalBytes: 2048 * 1024, availableBytes: 1024 * 1024, freeBytes: 512 * 1024, swapTotalBytes: 0, swapFreeBytes: 0 });
  assert.equal(parseLoadavg('0.50 0.25 0.10 1/100 1234\n'), [0.5, 0.25, 0.1]);
  assert.is(parseUptime('12345.67 999.00\n'), 12345.67);
  assert.equal(parseConntrack('12\n262144\n'), { count: 12, max: 262144 });
  assert.is(parseConntrack(''), undefined);
  assert.is(parseConntrack('12\n'), undefined);
});

test('derivePoints: rates per interface, CPU percentage, no spike when the interface is recreated', () => {
  const t = new RateTracker();
  const s1 = sample(0, 4, 1_000_000, 2_000_000, 100, 900);
  const s2 = sample(10_000, 4, 2_000_000, 2_500_000, 150, 1100);
  const p1 = derivePoints(undefined, s1, t);
  assert.not.ok(p1.some((p) => p.metric.endsWith('_rate')), 'no rate from the first sample');
  assert.not.ok(p1.some((p) => p.metric.startsWith('if.lo.')), 'loopback left out');
  const p2 = new Map(derivePoints(s1, s2, t).map((p) => [p.metric, p.value]));
  assert.is(p2.get('if.lan0.rx_bytes_rate'), 100_000);
  assert.is(p2.get('if.lan0.tx_bytes_rate'), 50_000);
  assert.is(p2.get('if.lan0.rx_packets_rate'), 1000);
  assert.is(p2.get('if.lan0.up'), 1);
  assert.is(p2.get('sys.cpu'), 20); // 50 busy jiffies of 250
  // Recreated: new ifindex, counters from zero (and bigger than before: no decrease to notice).
  const s3 = sample(20_000, 9, 5_000_000, 100, 200, 1300);
  const p3 = derivePoints(s2, s3, t);
  assert.not.ok(p3.some((p) => p.metric.startsWith('if.lan0.') && p.metric.endsWith('_rate')), JSON.stringify(p3));
  const s4 = sample(30_000, 9, 5_100_000, 1100, 250, 1500);
  const p4 = new Map(derivePoints(s3, s4, t).map((p) => [p.metric, p.value]));
  assert.is(p4.get('if.lan0.rx_bytes_rate'), 10_000);
  assert.is(p4.get('if.lan0.tx_bytes_rate'), 100);
});

test('derivePoints: rule counters reset by a ruleset reload give no rate for that interval', () => {
  const t = new RateTracker();
  const base = sample(0, 4, 0, 0, 0, 0);
  const withRules = (ts: number, instance: number, packets: number): Sample => ({ ...base, ts, rules: { instance, counters: { 'lan-web': { packets, bytes: packets * 100 } } } });
  derivePoints(undefined, withRules(0, 1, 10), t);
  const a = new Map(derivePoints(undefined, withRules(10_000, 1, 110), t).map((p) => [p.metric, p.value]));
  assert.is(a.get('rule.lan-web.packets_rate'), 10);
  assert.is(a.get('rule.lan-web.bytes_rate'), 1000);
  const b = derivePoints(undefined, withRules(20_000, 2, 5), t);
  assert.not.ok(b.some((p) => p.metric.startsWith('rule.')));
});

test('derivePoints: per-rule series are sparse (an idle rule stores no point), interface series are not', () => {
  const t = new RateTracker();
  const base = sample(0, 4, 1000, 10, 1000, 10);
  const at = (ts: number, packets: number): Sample => ({ ...base, ts, rules: { instance: 1, counters: { idle: { packets: 0, bytes: 0 }, busy: { packets, bytes: packets * 60 } } } });
  derivePoints(undefined, at(0, 0), t);
  const pts = new Map(derivePoints(undefined, at(10_000, 50), t).map((p) => [p.metric, p.value]));
  assert.is(pts.get('rule.busy.packets_rate'), 5);
  assert.not.ok(pts.has('rule.idle.packets_rate'), 'an idle rule has no point');
  assert.not.ok(pts.has('rule.idle.bytes_rate'));
  assert.is(pts.get('if.lan0.rx_bytes_rate'), 0, 'an idle interface still has its zero');
  const later = new Map(derivePoints(undefined, at(20_000, 50), t).map((p) => [p.metric, p.value]));
  assert.not.ok(later.has('rule.busy.packets_rate'), 'the busy rule went idle');
});

test('derivePoints: the new-connection counter gives conntrack.new_rate; a ruleset reload gives no point', () => {
  const t = new RateTracker();
  const base = sample(0, 4, 0, 0, 0, 0);
  const at = (ts: number, instance: number, newConnections: number): Sample => ({ ...base, ts, newConnections, rules: { instance, counters: {} } });
  derivePoints(undefined, at(0, 1, 100), t);
  const a = new Map(derivePoints(undefined, at(10_000, 1, 600), t).map((p) => [p.metric, p.value]));
  assert.is(a.get('conntrack.new_rate'), 50);
  const b = new Map(derivePoints(undefined, at(20_000, 2, 700), t).map((p) => [p.metric, p.value]));
  assert.not.ok(b.has('conntrack.new_rate'), 'counter recreated by an apply: that interval has no rate');
  const c = new Map(derivePoints(undefined, at(30_000, 2, 710), t).map((p) => [p.metric, p.value]));
  assert.is(c.get('conntrack.new_rate'), 1);
});

test('counterDelta: plain numbers give exactly what the bigint path gives', () => {
  const value = fc.oneof(fc.nat({ max: 2 ** 32 + 5 }), fc.maxSafeNat());
  fc.assert(
    fc.property(value, value, fc.constantFrom<32 | 64>(32, 64), fc.option(fc.integer({ min: 1, max: 1e9 })), (prev, cur, bits, maxRate) => {
      const opts = { bits, ...(maxRate === null ? {} : { maxRate }) };
      assert.equal(counterDelta(prev, cur, 10, opts), counterDelta(BigInt(prev), BigInt(cur), 10, opts), `${prev} → ${cur} (${bits} bits)`);
    }),
    { numRuns: 3000, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
  );
});

test.run();
