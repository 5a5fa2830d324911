/** The Prometheus exposition: golden text for a fixed sample, label escaping, and who may read it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MetricsEndpoint, prometheusText, type ExpositionInput } from '../../services/telemetry/prometheus.ts';
import type { Sample } from '../../services/telemetry/collectors.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/telemetry/metrics.prom');

const iface = (name: string, n: number, up = true) => ({
  ifindex: n,
  name,
  up,
  rxBytes: 1000 * n + 2 ** 40,
  rxPackets: 10 * n,
  rxErrors: n,
  rxDropped: 0,
  txBytes: 2000 * n,
  txPackets: 20 * n,
  txErrors: 0,
  txDropped: n,
});

const sample: Sample = {
  ts: 1_795_000_000_000,
  interfaces: { lo: iface('lo', 1), wan0: iface('wan0', 3, false), lan0: iface('lan0', 2) },
  system: {
    memory: { totalBytes: 4e9, availableBytes: 3e9, freeBytes: 2e9, swapTotalBytes: 0, swapFreeBytes: 0 },
    load: [0.5, 0.25, 0.125],
    uptimeSeconds: 3600,
    disk: { path: '/var/lib/rampart', totalBytes: 1e10, availableBytes: 5e9, freeBytes: 6e9 },
  },
  conntrack: { count: 42, max: 65536 },
  process: { rssBytes: 80e6, heapUsedBytes: 20e6, loopLagMs: { mean: 1, p99: 12, max: 30 } },
  errors: [],
};

const input: ExpositionInput = {
  sample,
  configVersion: 7,
  blocks: 3,
  alerts: [
    { kind: 'all', severity: 2, count: 5 },
    { kind: 'all', severity: 1, count: 1 },
  ],
  rules: { 'lan-web': { packets: 12, bytes: 3400 }, 'a"odd\\id': { packets: 0, bytes: 0 } },
  uptimeSeconds: 99,
};

test('the exposition of a fixed sample matches the golden file (UPDATE_GOLDEN=1 rewrites it)', () => {
  const text = prometheusText(input);
  if (process.env.UPDATE_GOLDEN) writeFileSync(FIXTURE, text);
  assert.fixture(text, readFileSync(FIXTURE, 'utf8'));
});

test('format rules: one HELP/TYPE per name, escaped labels, no loopback, 64-bit counters exact', () => {
  const text = prometheusText(input);
  const lines = text.trimEnd().split('\n');
  const types = lines.filter((l) => l.startsWith('# TYPE '));
  assert.is(new Set(types.map((l) => l.split(' ')[2])).size, types.length, 'each metric name declared once');
  for (const l of lines.filter((x) => !x.startsWith('#'))) assert.match(l, /^[a-z_][a-z0-9_]*(\{([a-z_]+="([^"\\\n]|\\["\\n])*",?)+\})? -?[0-9.e+]+$/, l);
  assert.ok(text.includes('rampart_rule_packets_total{rule="a\\"odd\\\\id"} 0'));
  assert.not.ok(text.includes('device="lo"'));
  assert.ok(text.includes(`rampart_interface_receive_bytes_total{device="lan0"} ${2000 + 2 ** 40}`));
  assert.ok(text.includes('rampart_interface_up{device="wan0"} 0'));
  // without a sample: only what does not come from it
  const bare = prometheusText({ configVersion: null, blocks: 0, uptimeSeconds: 1 });
  assert.ok(bare.includes('rampart_config_version 0'));
  assert.not.ok(bare.includes('rampart_interface_'));
});

test('the endpoint: off without a token (404), 401 without or with a wrong bearer token, 200 with it', async () => {
  let renders = 0;
  const ep = new MetricsEndpoint(async () => (renders++, 'rampart_up 1\n'));
  assert.is((await ep.handle('Bearer whatever-long-enough')).status, 404);
  ep.configure({ token: 'scrape-token-0123456789' });
  for (const h of [undefined, '', 'Bearer', 'Bearer wrong-token-0123456789', 'Basic c2NyYXBlOng=', 'bearer scrape-token-0123456789', 'Bearer scrape-token-0123456789 x']) {
    const r = await ep.handle(h);
    assert.is(r.status, 401, String(h));
    assert.ok(r.headers['WWW-Authenticate']);
  }
  assert.is(renders, 0, 'nothing rendered for a refused scrape');
  const ok = await ep.handle('Bearer scrape-token-0123456789');
  assert.is(ok.status, 200);
  assert.match(ok.headers['Content-Type'], /version=0\.0\.4/);
  assert.is(ok.body, 'rampart_up 1\n');
  ep.configure(undefined);
  assert.is((await ep.handle('Bearer scrape-token-0123456789')).status, 404, 'turned off again with the config');
});

test.run();
