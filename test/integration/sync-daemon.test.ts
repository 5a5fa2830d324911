/**
 * rampartd with the sync channel against a real Mosquitto (TLS, ACL) and the reference MSSP tool's code:
 * signed pushes applied and reported with their hash; forged / unknown key / older / expired / malformed refused,
 * reported, running config untouched; commands (replayed id runs once, expired refused); alerts delivered exactly
 * once through a broker outage and a kill -9 with a 10,000-alert backlog.
 * The outage lasts until the daemon has seen the connection drop and more alerts were stored meanwhile (the issue's
 * 30 s outage proves nothing more than that: the outbox holds what the broker cannot take, however long).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { MqttClient } from 'mqtt';
import { MsspHome } from '../../services/mssp/home.ts';
import { command, connectBackend, consume, makeCommand, makeDesired, push, type Consumer } from '../../services/mssp/backend.ts';
import { Store, documentHash } from '../../services/core/store.ts';
import { AlertStore } from '../../services/core/alerts.ts';
import { signEnvelope } from '../../services/sync/envelope.ts';
import { broker, freePort, tempHome, waitFor, type Broker } from '../fixtures/sync/harness.ts';
import { labConfig, startDaemon, type TestDaemon } from '../helpers/daemon.ts';

const T = 'acme';
const D = 'fw-1';
let ns: string;
let d: TestDaemon;
let home: MsspHome;
let cleanupHome: () => void;
let b: Broker;
let be: MqttClient;
let reports: any[] = [];
let alertsDb: Store;
let alerts: AlertStore;
let alertN = 0;
let port: number;
let apiPort: number;
const ADMIN_PASSWORD = 'sync-admin-password-1';
// The image's release file as images/build writes it (the daemon reads RAMPART_RELEASE_FILE in its place).
const IMAGE_VERSION = '0.1.0+202611290315';
const releaseDir = mkdtempSync(join(tmpdir(), 'rampart-sync-release-'));
let savedRelease: string | undefined;
const syncSection = () => ({ enabled: true, broker: `mqtts://127.0.0.1:${port}`, confirmSeconds: 20, telemetryIntervalSeconds: 5 });

/** The namespace's ruleset without counter values (stateless listing). */
const rulesetText = async (netns: string) => String((await execa('ip', ['netns', 'exec', netns, 'nft', '-s', 'list', 'ruleset'])).stdout);
const status = async () => (await d.call('status')).sync;
const lastReport = () => reports[reports.length - 1];
async function reportFor(pred: (r: any) => boolean, what: string) {
  await waitFor(() => reports.some(pred), 30_000, what);
  return reports.filter(pred).pop();
}
function addAlerts(n: number, severity: 1 | 2 | 3 | 4 = 2) {
  const batch = Array.from({ length: n }, () => ({ id: `t-${++alertN}`, kind: 'ids' as const, at: Date.now(), severity, signature: `ET TEST ${alertN}`, src: '198.51.100.20', dst: '192.0.2.10', proto: 'tcp' }));
  for (let i = 0; i < batch.length; i += 1000) alerts.add(batch.slice(i, i + 1000));
}
const storedIds = () => (home.sql.prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM alerts WHERE tenant = ? AND device = ?').get(T, D) as { n: number; d: number });

test.before(async () => { try {
  port = await freePort();
  ({ home, cleanup: cleanupHome } = await tempHome(port));
  b = broker(home, { port });
  await b.start();
  savedRelease = process.env.RAMPART_RELEASE_FILE;
  process.env.RAMPART_RELEASE_FILE = join(releaseDir, 'rampart-release');
  writeFileSync(process.env.RAMPART_RELEASE_FILE, `NAME=Rampart\nVERSION=0.1.0\nIMAGE_VERSION=${IMAGE_VERSION}\nBUILD_DATE=2026-11-29T03:15:00Z\nDEBIAN=12.8\n`);
  ns = `tsync-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  const cfg = labConfig();
  cfg.sync = syncSection();
  apiPort = await freePort();
  process.env.RAMPART_ADMIN_PASSWORD = ADMIN_PASSWORD;
  d = await startDaemon({ netns: ns, config: cfg, extra: ['--listen', `127.0.0.1:${apiPort}`] });
  be = await connectBackend(home);
  be.on('message', (topic, payload) => {
    if (topic === `rampart/v1/${T}/${D}/reported`) reports.push(JSON.parse(payload.toString()));
  });
  await be.subscribeAsync(`rampart/v1/${T}/${D}/reported`, { qos: 1 });
  const bundle = await home.enroll(T, D);
  const f = join(d.dataDir, 'bundle.json');
  writeFileSync(f, JSON.stringify(bundle));
  const r = await d.cli(['enroll', f]);
  assert.is(r.code, 0, r.stderr);
  await waitFor(async () => (await status()).state === 'connected', 20_000, 'sync connected');
  alertsDb = new Store(join(d.dataDir, 'rampart.db'));
  alerts = new AlertStore(alertsDb);
  alertsDb.open();
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
});

test.after(async () => {
  alertsDb?.close();
  await be?.endAsync();
  await d?.cleanup();
  await b?.stop();
  cleanupHome?.();
  if (ns) await execa('ip', ['netns', 'del', ns], { reject: false });
  if (savedRelease === undefined) delete process.env.RAMPART_RELEASE_FILE;
  else process.env.RAMPART_RELEASE_FILE = savedRelease;
  rmSync(releaseDir, { recursive: true, force: true });
});

test('status shows the channel; the device says online (retained)', async () => {
  const s = await status();
  assert.is(s.tenant, T);
  assert.is(s.deviceId, D);
  const st = await d.cli(['status']);
  assert.match(st.stdout, /sync\s+connected/);
  const online = new Promise<string>((res) => be.on('message', (t, p) => t.endsWith('/status') && res(p.toString())));
  await be.subscribeAsync(`rampart/v1/${T}/${D}/status`, { qos: 1 });
  assert.is(await online, 'online');
});

let applied: { version: number; hash: string };

test('the device tells the MSSP its image version, the one `rampart status` shows (telemetry now, reported below)', async () => {
  const seen: any[] = [];
  const on = (topic: string, payload: Buffer) => topic === `rampart/v1/${T}/${D}/telemetry` && seen.push(JSON.parse(payload.toString()));
  be.on('message', on);
  try {
    await be.subscribeAsync(`rampart/v1/${T}/${D}/telemetry`, { qos: 0 });
    await waitFor(() => seen.length > 0, 20_000, 'a telemetry message');
  } finally {
    be.off('message', on);
    await be.unsubscribeAsync(`rampart/v1/${T}/${D}/telemetry`);
  }
  assert.is(seen[0].imageVersion, IMAGE_VERSION);
  assert.is((await d.call('status')).image?.version, IMAGE_VERSION);
});

test('a signed push is applied, journaled as mssp, and reported applied with its hash', async () => {
  const cfg = labConfig();
  cfg.sync = syncSection();
  cfg.system.hostname = 'fw-from-mssp';
  applied = await push(home, be, { tenant: T, device: D, config: cfg });
  assert.is(applied.version, 1);
  const rep = await reportFor((r) => r.version === 1 && r.state === 'applied', 'reported applied');
  assert.is(rep.hash, documentHash(cfg));
  assert.is(rep.running.hash, applied.hash);
  assert.is(rep.image?.version, IMAGE_VERSION, 'every report carries the image version');
  const history = await d.call('history', { limit: 5 });
  assert.is(history[0].source, 'mssp');
  assert.is(history[0].state, 'applied');
  assert.is(history[0].hash, applied.hash);
  assert.ok(reports.some((r) => r.version === 1 && r.state === 'pending_confirm'), 'pending_confirm came first');
});

test('forged, unknown key, older, expired and malformed pushes are refused, reported, and change nothing', async () => {
  const cfg = labConfig();
  cfg.sync = syncSection();
  cfg.firewall.input = [];
  const before = await d.call('status');
  const kernelBefore = await rulesetText(ns);
  const desiredTopic = `rampart/v1/${T}/${D}/desired`;
  const send = (text: string) => be.publishAsync(desiredTopic, text, { qos: 1, retain: true });

  const forged = makeDesired(home, { tenant: T, device: D, config: cfg, version: 10 }).envelope;
  (forged.payload as any).config = { ...cfg, firewall: { ...cfg.firewall, policy: { input: 'accept', forward: 'accept', output: 'accept' } } };
  await send(JSON.stringify(forged));
  assert.is((await reportFor((r) => r.version === 10 && r.state === 'rejected', 'forged refused')).reason, 'bad_signature');

  const other = await tempHome(1);
  try {
    const alien = makeDesired(other.home, { tenant: T, device: D, config: cfg, version: 11 }).envelope;
    await send(JSON.stringify(alien));
    assert.is((await reportFor((r) => r.version === 11 && r.state === 'rejected', 'unknown key refused')).reason, 'unknown_key');
  } finally {
    other.cleanup();
  }

  // Version 3 then an older version 2: 3 is applied, 2 refused (anti-rollback).
  await push(home, be, { tenant: T, device: D, config: { ...labConfig(), sync: syncSection() }, version: 3 });
  await reportFor((r) => r.version === 3 && r.state === 'applied', 'version 3 applied');
  const afterV3 = await d.call('status');
  const kernelV3 = await rulesetText(ns);
  await send(JSON.stringify(makeDesired(home, { tenant: T, device: D, config: cfg, version: 2 }).envelope));
  assert.is((await reportFor((r) => r.version === 2 && r.state === 'rejected', 'older refused')).reason, 'not_newer');

  await send(JSON.stringify(makeDesired(home, { tenant: T, device: D, config: cfg, version: 12, issuedAt: new Date(Date.now() - 120_000).toISOString(), expiresInSeconds: 60 }).envelope));
  assert.is((await reportFor((r) => r.version === 12 && r.state === 'rejected', 'expired refused')).reason, 'expired');

  const n = reports.length;
  await send('{"payload": {"version": 13,');
  const mal = await reportFor((r) => r.state === 'rejected' && r.reason === 'malformed', 'malformed refused');
  assert.ok(reports.length > n);
  assert.match(mal.detail, /not JSON/);

  // An invalid configuration, correctly signed: rejected with the validator's problems.
  await push(home, be, { tenant: T, device: D, config: { ...cfg, firewall: { ...cfg.firewall, input: [{ id: 'x', from: 'nowhere', action: 'accept' }] } }, version: 14 });
  const inv = await reportFor((r) => r.version === 14 && r.state === 'rejected', 'invalid config refused');
  assert.is(inv.reason, 'invalid_config');

  const after = await d.call('status');
  assert.is(after.version, afterV3.version, 'running version unchanged by the refusals');
  assert.is(after.running.hash, afterV3.running.hash);
  assert.is(await rulesetText(ns), kernelV3);
  assert.is(after.sync.desiredVersion, 3);
  assert.is(lastReport().running.version, 3);
  assert.ok(before.version < afterV3.version);
  assert.ok(kernelBefore.length > 0);
  const journal = await d.call('syncJournal', { limit: 20 });
  for (const reason of ['bad_signature', 'unknown_key', 'not_newer', 'expired', 'malformed', 'invalid_config']) {
    assert.ok(journal.some((j: any) => j.state === 'rejected' && j.reason === reason), `journal has ${reason}`);
  }
});

test('commands: block/unblock run, a replayed id runs once, an expired command is refused', async () => {
  const r1 = await command(home, be, { tenant: T, device: D, type: 'block', args: { address: '203.0.113.77', ttlSeconds: 600 } });
  assert.ok(r1.ok, JSON.stringify(r1));
  assert.ok((await d.call('blocks')).some((x: any) => x.address === '203.0.113.77'));
  const r2 = await command(home, be, { tenant: T, device: D, type: 'unblock', args: { address: '203.0.113.77' } });
  assert.ok(r2.ok, JSON.stringify(r2));
  assert.not.ok((await d.call('blocks')).some((x: any) => x.address === '203.0.113.77'));

  // The first block command's envelope again (same id, same signature): answered from memory, not run.
  const env = makeCommand(home, { tenant: T, device: D, type: 'block', args: { address: '203.0.113.78' }, id: 'replay-me' });
  const results: any[] = [];
  be.on('message', (t, p) => t.endsWith('/cmd/result') && results.push(JSON.parse(p.toString())));
  await be.subscribeAsync(`rampart/v1/${T}/${D}/cmd/result`, { qos: 1 });
  await be.publishAsync(`rampart/v1/${T}/${D}/cmd`, JSON.stringify(env), { qos: 1 });
  await waitFor(() => results.some((r) => r.id === 'replay-me'), 15_000, 'first result');
  const r3 = await command(home, be, { tenant: T, device: D, type: 'unblock', args: { address: '203.0.113.78' } });
  assert.ok(r3.ok);
  await be.publishAsync(`rampart/v1/${T}/${D}/cmd`, JSON.stringify(env), { qos: 1 });
  await waitFor(() => results.filter((r) => r.id === 'replay-me').length >= 2, 15_000, 'replay result');
  const replay = results.filter((r) => r.id === 'replay-me')[1];
  assert.is(replay.duplicate, true);
  assert.not.ok((await d.call('blocks')).some((x: any) => x.address === '203.0.113.78'), 'the replay did not block again');

  const expired = await command(home, be, { tenant: T, device: D, type: 'block', args: { address: '203.0.113.79' }, notAfterSeconds: -5 }).catch((e) => e);
  // An expired command has an id too: the device answers with a refusal.
  assert.is(expired.ok, false);
  assert.is(expired.refused, 'expired');
  assert.not.ok((await d.call('blocks')).some((x: any) => x.address === '203.0.113.79'));

  // Signed with a key the device does not know: refused.
  const other = await tempHome(1);
  try {
    const alien = signEnvelope({ ...makeCommand(home, { tenant: T, device: D, type: 'sync', id: 'alien-1' }).payload }, { keyId: other.home.settings().keyId, privateKey: other.home.read('signing.key') });
    await be.publishAsync(`rampart/v1/${T}/${D}/cmd`, JSON.stringify(alien), { qos: 1 });
    await waitFor(() => results.some((r) => r.id === 'alien-1'), 15_000, 'alien refused');
    assert.is(results.find((r) => r.id === 'alien-1').refused, 'unknown_key');
  } finally {
    other.cleanup();
  }
});

let consumer: Consumer;

test('alerts reach the consumer exactly once through a broker outage', async () => {
  consumer = await consume(home);
  addAlerts(200);
  await waitFor(() => storedIds().d >= 200, 30_000, '200 alerts at the consumer');
  await b.stop();
  await waitFor(async () => (await status()).state === 'lost', 30_000, 'the daemon to see the outage');
  addAlerts(300, 3);
  addAlerts(50, 1);
  await waitFor(async () => (await status()).outbox.rows >= 350, 15_000, 'the outage backlog in the outbox');
  const restarted = Date.now();
  await b.start();
  await waitFor(() => storedIds().d >= 550, 60_000, 'all 550 alerts at the consumer').catch(async (err) => {
    console.error(JSON.stringify({ status: await status(), consumer: consumer.stats, stored: storedIds(), sinceRestart: Date.now() - restarted }));
    throw err;
  });
  console.log(`  (delivered ${Date.now() - restarted} ms after the broker came back)`);
  const s = storedIds();
  assert.is(s.d, 550);
  assert.is(s.n, 550, 'stored exactly once');
  await waitFor(async () => (await status()).outbox.rows === 0, 15_000, 'the outbox emptied by acks');
});

test('kill -9 with a 10,000-alert backlog: everything delivered after the restart', async () => {
  await consumer.stop();
  addAlerts(10_000, 4);
  await waitFor(async () => (await status()).outbox.rows >= 10_000, 30_000, 'the backlog in the outbox');
  await d.crash();
  await d.restart(['--listen', `127.0.0.1:${apiPort}`]);
  await waitFor(async () => (await status()).state === 'connected', 30_000, 'reconnected after the restart');
  consumer = await consume(home);
  await waitFor(() => storedIds().d >= 10_550, 60_000, 'all 10,550 alerts at the consumer');
  const s = storedIds();
  assert.is(s.d, 10_550);
  assert.is(s.n, 10_550);
  await waitFor(async () => (await status()).outbox.rows === 0, 15_000, 'the outbox emptied by acks');
  await consumer.stop();
});

test('API: GET /sync and POST /sync/enroll (admin; a bad bundle is refused with its problems)', async () => {
  const base = `http://127.0.0.1:${apiPort}/api/v1`;
  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
  assert.is(login.status, 200, await login.clone().text());
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
  const get = await fetch(`${base}/sync`, { headers: { cookie } });
  assert.is(get.status, 200);
  const st = await get.json();
  assert.is(st.state, 'connected');
  assert.is(st.deviceId, D);
  const bundle = await home.enroll(T, D);
  const bad = await fetch(`${base}/sync/enroll`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ bundle: { ...bundle, key: 'nope' } }) });
  assert.is(bad.status, 422);
  assert.ok(((await bad.json()).error.details as any[]).some((p) => p.path === '/key'));
  assert.is((await status()).state, 'connected', 'a refused bundle changes nothing');
  const ok = await fetch(`${base}/sync/enroll`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ bundle }) });
  assert.is(ok.status, 200, await ok.clone().text());
  assert.is((await ok.json()).deviceId, D);
  await waitFor(async () => (await status()).state === 'connected', 30_000, 'reconnected with the new certificate');
  const audited = alertsDb.sql.prepare("SELECT username, result FROM audit WHERE action = 'sync.enroll' ORDER BY id").all() as { username: string; result: string }[];
  assert.ok(audited.some((a) => a.username === 'admin' && a.result === 'ok'), JSON.stringify(audited));
  assert.ok(audited.some((a) => a.username === 'admin' && a.result !== 'ok'), 'the refused enrollment is audited too');
});

test('a local change of the sync section stops and restarts the channel', async () => {
  const off = labConfig();
  off.sync = { ...syncSection(), enabled: false };
  const r1 = await d.cli(['apply', d.file(off)]);
  assert.is(r1.code, 0, r1.stderr);
  await waitFor(async () => (await status()).state === 'disabled', 15_000, 'sync disabled');
  const on = labConfig();
  on.sync = syncSection();
  const r2 = await d.cli(['apply', d.file(on)]);
  assert.is(r2.code, 0, r2.stderr);
  await waitFor(async () => (await status()).state === 'connected', 30_000, 'sync connected again');
});

test.run();
