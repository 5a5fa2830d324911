/**
 * Notifications reach a real `snmptrapd` (started by the test on a loopback port): v2c traps and v3 informs
 * (SHA-256 + AES) for config applied / rolled back, IDS alerts at or above each target's severity, sync lost /
 * restored; a storm is rate-limited. The SNMP service runs in this process on a real store and event bus; the
 * events are emitted on the bus directly, as the firewall, the IDS ingest and the sync channel emit them (this
 * build has no IDS ingest to raise a real alert).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../../services/core/events.ts';
import { silentLogger } from '../../services/core/log.ts';
import { Store } from '../../services/core/store.ts';
import { SnmpService } from '../../services/snmp/service.ts';
import { TelemetryService } from '../../services/telemetry/service.ts';
import { labConfig, waitFor } from '../helpers/daemon.ts';
import { freeUdpPort, snmpSection, startTrapd, tool, v2c, type Trapd } from '../fixtures/snmp/tools.ts';

const RATE = 6;
let dir = '';
let trapd: Trapd | undefined;
let store: Store | undefined;
let svc: SnmpService | undefined;
const events = new EventBus();
let agentPort = 0;

/** Lines snmptrapd printed: "TRAP <security>|<varbinds>". */
const lines = () => trapd!.lines();
const matching = (re: RegExp) => lines().filter((l) => re.test(l));

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-snmp-notify-'));
  trapd = await startTrapd(dir, 'trap-community', { name: 'nms', authKey: 'auth-secret-256', privKey: 'priv-secret-128' });
  const trapPort = trapd.port;
  agentPort = await freeUdpPort();

  store = new Store(join(dir, 'rampart.db')).open();
  const config = labConfig();
  config.snmp = snmpSection(agentPort, {
    targets: [
      { host: '127.0.0.1', port: trapPort, version: 'v2c', community: 'trap-community', minSeverity: 2 },
      { host: '127.0.0.1', port: trapPort, version: 'v3', user: 'nms', minSeverity: 1 },
    ],
    notifyRatePerMinute: RATE,
  });
  store.addVersion({ author: 'test', source: 'local', document: config, state: 'applied' });
  const log = silentLogger();
  svc = new SnmpService({ store, events, telemetry: new TelemetryService({ store, log }), log });
  await svc.start();
  assert.is(svc.status().state, 'running');
});

test.after(async () => {
  await svc?.stop();
  store?.close();
  await trapd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('config applied: a v2c trap and a v3 inform with the version', async () => {
  events.emit('config', { type: 'applied', version: 1, state: 'applied' });
  await waitFor(() => matching(/rampartConfigAppliedNotification/).length >= 2, 10_000, 'two config-applied notifications');
  const got = matching(/rampartConfigAppliedNotification/);
  assert.ok(got.some((l) => /SNMP v2c, community trap-community/.test(l)), got.join('\n'));
  assert.ok(got.some((l) => /INFORM, SNMP v3, user nms/.test(l)), got.join('\n'));
  for (const l of got) assert.match(l, /rampartNotifyVersion\.0 = Gauge32: 1/);
});

test('IDS alerts: each target gets those at or above its severity', async () => {
  const alert = (id: string, severity: 1 | 2 | 3) => ({ id, seq: 1, kind: 'ids' as const, at: Date.now(), severity, signature: `ET TEST severity ${severity}`, sid: 2_000_000 + severity, src: '198.51.100.20', dst: '192.0.2.10' });
  events.emit('alert', [alert('a3', 3), alert('a2', 2), alert('a1', 1)]);
  await waitFor(() => matching(/rampartIdsAlertNotification/).length >= 3, 10_000, 'three IDS notifications').catch((err) => {
    console.log(trapd!.output());
    throw err;
  });
  const got = matching(/rampartIdsAlertNotification/);
  const v2 = got.filter((l) => /v2c/.test(l));
  const v3 = got.filter((l) => /SNMP v3/.test(l));
  assert.is(v2.length, 2, 'v2c target (min severity 2): severities 2 and 1');
  assert.is(v3.length, 1, 'v3 target (min severity 1): severity 1 only');
  assert.ok(!got.some((l) => /severity 3/.test(l)), 'severity 3 went to nobody');
  assert.match(v3[0], /rampartNotifySignature\.0 = STRING: "?ET TEST severity 1/);
  assert.match(v3[0], /rampartNotifySource\.0 = STRING: "?198\.51\.100\.20/);
  assert.match(v3[0], /rampartNotifySid\.0 = Gauge32: 2000001/);
  // The counters of RAMPART-MIB count every alert, sent or not.
  await svc!.refresh();
  const r = await tool('snmpwalk', [...v2c('rampart-ro'), '-On', `127.0.0.1:${agentPort}`, '1.3.6.1.4.1.32473.2.3.1.1.2']);
  assert.match(r.stdout, /32473\.2\.3\.1\.1\.2\.3 = Counter64: 1/);
  assert.match(r.stdout, /32473\.2\.3\.1\.1\.2\.1 = Counter64: 1/);
});

test('sync lost and restored, config rolled back', async () => {
  events.emit('sync', { state: 'connected' });
  events.emit('sync', { state: 'lost', detail: 'broker unreachable' });
  events.emit('sync', { state: 'connected' });
  events.emit('config', { type: 'reverted', version: 2, back: 1, reason: 'not confirmed in time' });
  await waitFor(() => matching(/rampartSyncRestoredNotification/).length >= 1 && matching(/rampartConfigRolledBackNotification/).length >= 1, 10_000, 'sync and rollback notifications');
  const lost = matching(/rampartSyncLostNotification/);
  assert.ok(lost.length >= 1);
  assert.match(lost[0], /rampartNotifyDetail\.0 = STRING: "?broker unreachable/);
  assert.match(lost[0], /rampartSyncState\.0 = INTEGER: disconnected\(3\)/);
  const rb = matching(/rampartConfigRolledBackNotification/)[0];
  assert.match(rb, /rampartNotifyVersion\.0 = Gauge32: 2/);
  assert.match(rb, /rampartConfigVersion\.0 = Gauge32: 1/);
});

test('a storm is rate-limited: at most the burst goes out, the rest is counted as dropped', async () => {
  const before = lines().length;
  const storm = Array.from({ length: 40 }, (_, i) => ({ id: `s${i}`, seq: 10 + i, kind: 'ids' as const, at: Date.now(), severity: 1 as const, signature: `storm ${i}`, sid: 1 }));
  events.emit('alert', storm);
  await waitFor(() => (svc!.status().notifications?.dropped ?? 0) > 0, 5000, 'drops to be counted');
  const st = svc!.status().notifications!;
  // Each target has a bucket of RATE; earlier tests used some of it. At most RATE per target can go out now.
  await waitFor(async () => {
    const r = await tool('snmpget', [...v2c('rampart-ro'), '-On', `127.0.0.1:${agentPort}`, '1.3.6.1.2.1.1.5.0']);
    return r.code === 0;
  }, 5000, 'the agent still answers');
  const sent = matching(/storm \d+/).length;
  assert.ok(sent <= 2 * RATE, `${sent} storm notifications went out`);
  assert.ok(st.dropped >= 2 * 40 - 2 * RATE, `dropped ${st.dropped}`);
  assert.ok(lines().length - before <= 2 * RATE + 2);
});

test('the engine id is kept and the boots counted across restarts of the agent (RFC 3414)', async () => {
  const id = store!.getMeta('snmp.engineId');
  const boots = Number(store!.getMeta('snmp.engineBoots'));
  assert.match(id ?? '', /^80007ed905[0-9a-f]{16}$/);
  assert.ok(boots >= 1);
  await svc!.stop();
  assert.is(svc!.status().state, 'disabled');
  await svc!.start();
  assert.is(svc!.status().state, 'running');
  assert.is(store!.getMeta('snmp.engineId'), id);
  assert.is(Number(store!.getMeta('snmp.engineBoots')), boots + 1);
});

test.run();
