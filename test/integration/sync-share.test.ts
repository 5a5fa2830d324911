/**
 * Two `consume --group` instances ($share/G/) split one device's alerts and together store each exactly once; their
 * batch acks empty the outbox whichever consumer stored which batch. A backlog drains severe alerts first. Telemetry goes out at QoS 0 with a message
 * expiry. The appliance is the real sync module with the fleet simulator's kernel-free firewall; the broker is a
 * real Mosquitto with TLS and ACLs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consume, connectBackend } from '../../services/mssp/backend.ts';
import type { MsspHome } from '../../services/mssp/home.ts';
import { startAppliance, type SimAppliance } from '../../scripts/fleet.ts';
import { MSSP_BIN, broker, freePort, tempHome, waitFor, type Broker } from '../fixtures/sync/harness.ts';

let home: MsspHome;
let cleanupHome: () => void;
let b: Broker;
let dev: SimAppliance;

test.before(async () => {
  const port = await freePort();
  ({ home, cleanup: cleanupHome } = await tempHome(port));
  b = broker(home, { port });
  await b.start();
  dev = await startAppliance(await home.enroll('acme', 'fw-s'), { telemetryIntervalSeconds: 5 });
  await waitFor(() => dev.sync.connected, 15_000, 'device connected');
});

test.after(async () => {
  await dev?.stop();
  await b?.stop();
  cleanupHome?.();
});

test('two consumers in a $share group store each alert exactly once', async () => {
  const c1 = await consume(home, { group: 'g1' });
  const c2 = await consume(home, { group: 'g1' });
  try {
    const N = 6000;
    for (let i = 0; i < N; i += 500) {
      dev.alerts.add(Array.from({ length: 500 }, (_, j) => ({ id: `s-${i + j}`, kind: 'ids' as const, at: Date.now(), severity: 2 as const, signature: `sig ${i + j}` })));
    }
    const count = () => (home.sql.prepare("SELECT COUNT(*) AS n FROM alerts WHERE device = 'fw-s'").get() as { n: number }).n;
    await waitFor(() => count() >= N, 60_000, `${N} alerts stored`);
    assert.is(count(), N);
    assert.ok(c1.stats.batches > 0 && c2.stats.batches > 0, `both consumers took batches (${c1.stats.batches}, ${c2.stats.batches})`);
    assert.is(c1.stats.stored + c2.stats.stored, N, 'each alert stored by one consumer only');
    await waitFor(() => dev.sync.outbox.stats().rows === 0, 15_000, 'outbox emptied by the range acks');
    // The tool's own listing shows them.
    const listed = await execa(MSSP_BIN, ['--home', home.dir, 'alerts', '--json', '--limit', '5']);
    const rows = JSON.parse(String(listed.stdout));
    assert.is(rows.length, 5);
    assert.is(rows[0].device, 'fw-s');
  } finally {
    // The group stops here: its consumers store batches in parallel, so the order of the stored rows (which the next
    // test reads for the appliance's send order) would be theirs, not the appliance's.
    await c1.stop();
    await c2.stop();
  }
});

test('a backlog drains highest severity first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-sync-prio-'));
  const dev2 = await startAppliance(await home.enroll('acme', 'fw-p'), { dbPath: join(dir, 'rampart.db'), start: false });
  const c = await consume(home); // the only consumer now: it stores batches in the order they arrive
  try {
    const add = (from: number, n: number, severity: 1 | 4) =>
      dev2.alerts.add(Array.from({ length: n }, (_, j) => ({ id: `p-${from + j}`, kind: 'ids' as const, at: Date.now(), severity, signature: 'x' })));
    add(0, 3000, 4); // an old backlog of low-severity alerts ...
    add(3000, 300, 1); // ... then severe ones
    dev2.sync.outbox.catchUp(dev2.alerts, 1e9);
    await dev2.sync.start();
    const rows = () => home.sql.prepare("SELECT rowid AS r, severity FROM alerts WHERE device = 'fw-p' ORDER BY rowid").all() as { r: number; severity: number }[];
    await waitFor(() => rows().length >= 3300, 30_000, 'backlog delivered');
    const all = rows();
    const lastSevere = Math.max(...all.filter((x) => x.severity === 1).map((x) => x.r));
    const firstLow = Math.min(...all.filter((x) => x.severity === 4).map((x) => x.r));
    assert.ok(lastSevere < firstLow, `severe alerts stored first (last severe ${lastSevere}, first low ${firstLow})`);
    await waitFor(() => dev2.sync.outbox.stats().rows === 0, 15_000, 'outbox emptied');
  } finally {
    await c.stop();
    await dev2.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('telemetry: QoS 0 with a message expiry', async () => {
  const be = await connectBackend(home);
  try {
    const got = new Promise<any>((res) => be.on('message', (t, p, packet) => t.endsWith('/telemetry') && res({ body: JSON.parse(p.toString()), packet })));
    await be.subscribeAsync('rampart/v1/acme/fw-s/telemetry', { qos: 1 });
    const { body, packet } = await got;
    assert.is(packet.qos, 0);
    assert.is(packet.properties?.messageExpiryInterval, 10);
    assert.ok(body.outbox && typeof body.outbox.rows === 'number');
  } finally {
    await be.endAsync();
  }
});

test('devices shows status and the last report', async () => {
  const r = await execa(MSSP_BIN, ['--home', home.dir, 'devices', '--json']);
  const list = JSON.parse(String(r.stdout));
  const d = list.find((x: any) => x.device === 'fw-s');
  assert.ok(d, String(r.stdout));
  assert.is(d.status, 'online');
});

test.run();
