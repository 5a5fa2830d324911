/**
 * rampart-mssp init / broker-config / enroll against a real Mosquitto with TLS and the per-device ACL:
 * a device stays inside its own topic root; no certificate (or one from another CA) → no connection;
 * `rampart enroll` installs a bundle under DATA/sync readable by root only, and refuses a bad one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import mqtt from 'mqtt';
import { MsspHome } from '../../services/mssp/home.ts';
import { MSSP_BIN, broker, freePort, waitFor, type Broker } from '../fixtures/sync/harness.ts';
import { runCli } from '../helpers/daemon.ts';

let dir: string;
let home: MsspHome;
let b: Broker;
let port: number;
const bundles: Record<string, any> = {};

const mssp = async (args: string[]) => {
  const r = await execa(MSSP_BIN, ['--home', join(dir, 'home'), ...args], { reject: false });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
};

const connectAs = (bundle: any, extra: Record<string, unknown> = {}) =>
  mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { ca: bundle.ca, cert: bundle.cert, key: bundle.key, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...extra } as any);

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-sync-broker-'));
  port = await freePort();
  const init = await mssp(['init', '--broker', `mqtts://127.0.0.1:${port}`]);
  assert.is(init.code, 0, init.stderr);
  const conf = await mssp(['broker-config']);
  assert.is(conf.code, 0, conf.stderr);
  assert.match(conf.stdout, /require_certificate true/);
  assert.match(conf.stdout, /use_identity_as_username true/);
  assert.match(conf.stdout, new RegExp(`listener ${port} 127\\.0\\.0\\.1`));
  home = new MsspHome(join(dir, 'home'));
  for (const d of ['fw-1', 'fw-2']) {
    const e = await mssp(['enroll', '--tenant', 'acme', '--device', d]);
    assert.is(e.code, 0, e.stderr);
    bundles[d] = JSON.parse(e.stdout);
  }
  b = broker(home, { port });
  await b.start();
});

test.after(async () => {
  await b?.stop();
  home?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('keys of the home are readable by root only; bad input is refused', async () => {
  for (const f of ['ca.key', 'broker.key', 'backend.key', 'signing.key']) assert.is(statSync(join(dir, 'home', f)).mode & 0o777, 0o600, f);
  const bad = await mssp(['enroll', '--tenant', 'Acme;rm', '--device', 'x']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /\/tenant: must be a name/);
  const again = await mssp(['init', '--broker', `mqtts://127.0.0.1:${port}`]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /already initialised/);
  const url = await mssp(['--home', join(dir, 'other'), 'init', '--broker', 'http://x:1']);
  assert.is(url.code, 2);
});

test('a device publishes and subscribes only inside its own root', async () => {
  const dev = await connectAs(bundles['fw-1'], { clientId: 'test-fw-1' });
  const backend = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { ca: home.read('ca.crt'), cert: home.read('backend.crt'), key: home.read('backend.key'), protocolVersion: 5, reconnectPeriod: 0 });
  try {
    const seen: string[] = [];
    dev.on('message', (t) => seen.push(t));
    await dev.subscribeAsync(['rampart/v1/#', 'rampart/v1/acme/fw-2/desired', 'rampart/v1/acme/fw-1/desired'], { qos: 1 });
    // Outside its root, and on its own cloud→device topic: refused by the broker (MQTT 5 reason code).
    for (const t of ['rampart/v1/acme/fw-2/alerts', 'rampart/v1/other/fw-1/alerts', 'rampart/v1/acme/fw-1/desired', 'rampart/v1/acme/fw-1/alerts/ack', 'elsewhere']) {
      let err: any;
      await dev.publishAsync(t, 'x', { qos: 1 }).catch((e) => (err = e));
      assert.ok(err, `publish to ${t} must be refused`);
      assert.is(err.code, 135, `${t}: not authorized`);
    }
    await dev.publishAsync('rampart/v1/acme/fw-1/alerts', '{}', { qos: 1 });
    // Messages for fw-2 never reach fw-1, even with a wildcard subscription; its own do (and arrive after).
    await backend.publishAsync('rampart/v1/acme/fw-2/desired', 'for fw-2', { qos: 1 });
    await backend.publishAsync('rampart/v1/acme/fw-2/cmd', 'for fw-2', { qos: 1 });
    await backend.publishAsync('rampart/v1/acme/fw-1/cmd', 'for fw-1', { qos: 1 });
    await waitFor(() => seen.includes('rampart/v1/acme/fw-1/cmd'), 5000, 'own command');
    assert.not.ok(seen.some((t) => t.includes('/fw-2/')), `leaked: ${seen.join(', ')}`);
  } finally {
    await dev.endAsync();
    await backend.endAsync();
  }
});

test('no certificate, or one from another CA, cannot connect', async () => {
  let err: any;
  await mqtt
    .connectAsync(`mqtts://127.0.0.1:${port}`, { ca: bundles['fw-1'].ca, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 })
    .then((c) => c.endAsync())
    .catch((e) => (err = e));
  assert.ok(err, 'connected without a client certificate');
  const otherDir = mkdtempSync(join(tmpdir(), 'rampart-sync-other-'));
  try {
    const other = new MsspHome(otherDir);
    await other.init(`mqtts://127.0.0.1:${port}`);
    const foreign: any = await other.enroll('acme', 'fw-1');
    other.close();
    let err2: any;
    await mqtt
      .connectAsync(`mqtts://127.0.0.1:${port}`, { ca: bundles['fw-1'].ca, cert: foreign.cert, key: foreign.key, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 })
      .then((c) => c.endAsync())
      .catch((e) => (err2 = e));
    assert.ok(err2, 'connected with a certificate of another CA');
  } finally {
    rmSync(otherDir, { recursive: true, force: true });
  }
});

test('rampart enroll installs the bundle under DATA/sync, root only; a bad bundle changes nothing', async () => {
  const data = mkdtempSync(join(tmpdir(), 'rampart-enroll-'));
  try {
    const f = join(data, 'bundle.json');
    writeFileSync(f, JSON.stringify(bundles['fw-1']));
    const r = await runCli(['--data', data, 'enroll', f]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /enrolled as acme\/fw-1/);
    assert.is(statSync(join(data, 'sync')).mode & 0o777, 0o700);
    assert.is(statSync(join(data, 'sync/bundle.json')).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(join(data, 'sync/bundle.json'), 'utf8')).deviceId, 'fw-1');
    // The key of fw-2 with the certificate of fw-1: refused, the installed bundle stays.
    writeFileSync(f, JSON.stringify({ ...bundles['fw-1'], key: bundles['fw-2'].key }));
    const bad = await runCli(['--data', data, 'enroll', f]);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /\/key: does not match the certificate/);
    writeFileSync(f, JSON.stringify({ ...bundles['fw-1'], deviceId: 'fw-2' }));
    const cn = await runCli(['--data', data, 'enroll', f]);
    assert.is(cn.code, 2);
    assert.match(cn.stderr, /\/cert: certificate CN is "acme\/fw-1"/);
    writeFileSync(f, '{not json');
    assert.is((await runCli(['--data', data, 'enroll', f])).code, 2);
    assert.is(JSON.parse(readFileSync(join(data, 'sync/bundle.json'), 'utf8')).key, bundles['fw-1'].key);
    assert.not.ok(existsSync(join(data, 'sync/bundle.json.tmp')));
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test.run();
