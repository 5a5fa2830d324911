/**
 * The telemetry service in a running daemon (1 s interval): traffic lan→wan shows as a positive lan0 rx rate in
 * `rampart stats --json`, the `telemetry` control call returns its points, and bad queries are invalid_input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { probe, startServer, type Server } from '../helpers/probe.ts';

const WAN_HOST = '198.51.100.20';
const PORT = 80;

let lab: Lab | undefined;
let d: TestDaemon | undefined;
let server: Server | undefined;
let saved: string | undefined;

test.before(async () => {
  saved = process.env.RAMPART_TELEMETRY_SECONDS;
  process.env.RAMPART_TELEMETRY_SECONDS = '1';
  lab = await startLab();
  d = await startDaemon({ netns: lab.fw, config: labConfig() });
  server = await startServer(lab.wan, { proto: 'tcp', port: PORT });
});

test.after(async () => {
  if (saved === undefined) delete process.env.RAMPART_TELEMETRY_SECONDS;
  else process.env.RAMPART_TELEMETRY_SECONDS = saved;
  await server?.stop().catch(() => undefined);
  await d?.cleanup().catch(() => undefined);
  await lab?.down();
});

async function statsJson(): Promise<any> {
  const r = await d!.cli(['stats', '--json']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('traffic lan→wan shows as a positive lan0 rx rate, and its series has points', async () => {
  let last: any;
  await waitFor(
    async () => {
      const p = await probe(lab!.lan, { proto: 'tcp', host: WAN_HOST, port: PORT });
      assert.is(p.status, 'open', 'lan → wan tcp/80 is allowed by the lab config');
      last = await statsJson();
      return (last.interfaces?.lan0?.rx_bytes_rate ?? 0) > 0;
    },
    20_000,
    'a positive lan0 rx_bytes_rate in rampart stats',
  );
  const lan0 = last.interfaces.lan0;
  for (const k of ['rx_bytes_rate', 'tx_bytes_rate', 'rx_packets_rate', 'tx_packets_rate']) assert.type(lan0[k], 'number', k);
  assert.ok(lan0.rx_packets_rate > 0);
  assert.type(last.system.mem_total_bytes, 'number');
  assert.type(last.daemon.rss_bytes, 'number');
  assert.ok(last.rules && typeof last.rules === 'object', 'the per-rule counters are still there');

  let q: any;
  await waitFor(
    async () => {
      q = await d!.call('telemetry', { metric: 'if.lan0.rx_bytes_rate', from: Date.now() - 600_000, to: Date.now() + 1000 });
      return q.points.length > 0;
    },
    10_000,
    'points of if.lan0.rx_bytes_rate',
  );
  assert.is(q.resolution, 'raw');
  assert.ok(q.points.some((p: any) => p.max > 0));
  const iso = await d!.call('telemetry', { metric: 'if.lan0.rx_bytes_rate', from: new Date(Date.now() - 600_000).toISOString(), step: '1m' });
  assert.ok(iso.points.length > 0);
  assert.ok((await d!.call('telemetryMetrics')).includes('if.lan0.rx_bytes_rate'));

  // New connections through the firewall: a positive conntrack.new_rate (the anomaly detector's second input), and
  // the rule that passed them has a per-rule series.
  let ct: any;
  let rule: any;
  await waitFor(
    async () => {
      await probe(lab!.lan, { proto: 'tcp', host: WAN_HOST, port: PORT });
      ct = await d!.call('telemetry', { metric: 'conntrack.new_rate', from: Date.now() - 600_000, to: Date.now() + 1000 });
      rule = await d!.call('telemetry', { metric: 'rule.lan-web.packets_rate', from: Date.now() - 600_000, to: Date.now() + 1000 });
      return ct.points.some((p: any) => p.max > 0) && rule.points.some((p: any) => p.max > 0);
    },
    20_000,
    'a positive conntrack.new_rate and rule.lan-web.packets_rate',
  );

  const text = await d!.cli(['stats']);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /lan0/);
  assert.match(text.stdout, /RULE\s+PACKETS\s+BYTES/);
});

test('bad telemetry queries are invalid_input with pointers', async () => {
  for (const [params, path] of [
    [{}, '/metric'],
    [{ metric: 'no spaces allowed' }, '/metric'],
    [{ metric: 'sys.cpu', from: 'yesterday' }, '/from'],
    [{ metric: 'sys.cpu', from: 2000, to: 1000 }, '/from'],
    [{ metric: 'sys.cpu', step: -1 }, '/step'],
    [{ metric: 'sys.cpu', step: '5 fortnights' }, '/step'],
  ] as const) {
    try {
      await d!.call('telemetry', params);
      assert.unreachable(JSON.stringify(params));
    } catch (err: any) {
      if (err.name === 'Assertion') throw err;
      assert.is(err.code, 'invalid_input', JSON.stringify(params));
      assert.ok(err.problems.some((p: any) => p.path === path), `${JSON.stringify(params)}: ${JSON.stringify(err.problems)}`);
    }
  }
});

test.run();
