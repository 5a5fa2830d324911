/**
 * GET /metrics on a real daemon managing a lab: refused without the configured bearer token, and with it the
 * interface counters agree with the kernel's (`ip -s -j link` in the firewall namespace) and the rule that passed
 * the traffic shows its packets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomInt } from 'node:crypto';
import { run } from '../../services/host/exec.ts';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { probe, startServer, type Server } from '../helpers/probe.ts';

const TOKEN = 'scrape-token-' + randomInt(1e9);
let lab: Lab | undefined;
let d: TestDaemon | undefined;
let server: Server | undefined;
let base = '';
let saved: string | undefined;

test.before(async () => {
  saved = process.env.RAMPART_TELEMETRY_SECONDS;
  process.env.RAMPART_TELEMETRY_SECONDS = '1';
  lab = await startLab();
  const config = labConfig();
  config.telemetry = { ...(config.telemetry ?? {}), prometheus: { token: TOKEN } };
  const port = 20000 + randomInt(30000);
  d = await startDaemon({ netns: lab.fw, config, extra: ['--listen', `127.0.0.1:${port}`] });
  base = `http://127.0.0.1:${port}`;
  server = await startServer(lab.wan, { proto: 'tcp', port: 80 });
});

test.after(async () => {
  if (saved === undefined) delete process.env.RAMPART_TELEMETRY_SECONDS;
  else process.env.RAMPART_TELEMETRY_SECONDS = saved;
  await server?.stop().catch(() => undefined);
  await d?.cleanup().catch(() => undefined);
  await lab?.down();
});

function value(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('no token, a wrong token: 401 and no figures', async () => {
  for (const headers of [{} as Record<string, string>, { authorization: 'Bearer not-the-token-at-all' }, { authorization: `Basic ${Buffer.from('x:' + TOKEN).toString('base64')}` }]) {
    const r = await fetch(`${base}/metrics`, { headers });
    assert.is(r.status, 401);
    assert.not.match(await r.text(), /rampart_/);
  }
});

test('with the token: interface counters agree with the kernel, the rule that passed traffic counts it', async () => {
  for (let i = 0; i < 5; i++) assert.is((await probe(lab!.lan, { proto: 'tcp', host: '198.51.100.20', port: 80 })).status, 'open');
  const kernel = async () => {
    const r = await run('ip', ['netns', 'exec', lab!.fw, 'ip', '-s', '-s', '-j', 'link', 'show', 'lan0']);
    return JSON.parse(r.stdout)[0].stats64.rx as { bytes: number; packets: number };
  };
  let text = '';
  // The exposition carries the last sample: wait until one was taken after the traffic.
  const after = await kernel();
  await waitFor(
    async () => {
      const r = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.is(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
      text = await r.text();
      return (value(text, 'rampart_interface_receive_bytes_total', 'device="lan0"') ?? 0) >= after.bytes;
    },
    20_000,
    'a sample taken after the traffic',
  );
  const now = await kernel();
  const rx = value(text, 'rampart_interface_receive_bytes_total', 'device="lan0"')!;
  assert.ok(rx >= after.bytes && rx <= now.bytes, `exposed ${rx} lies between the kernel's ${after.bytes} and ${now.bytes}`);
  const pk = value(text, 'rampart_interface_receive_packets_total', 'device="lan0"')!;
  assert.ok(pk >= after.packets && pk <= now.packets);
  const rule = value(text, 'rampart_rule_packets_total', 'rule="lan-web"');
  assert.ok(rule !== undefined && rule >= 5, `lan-web passed the five connections (${rule})`);
  assert.ok((value(text, 'rampart_interface_up', 'device="wan0"') ?? -1) === 1);
  assert.match(text, /^rampart_config_version [1-9]\d*$/m);
});

test.run();
