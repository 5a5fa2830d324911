/**
 * Real Suricata in the lab, managed by rampartd (IDS mode, AF_PACKET on wan0):
 *  - a request from the wan host that a local rule matches → an alert with the right 5-tuple, signature and
 *    severity (CLI and the alerts call) → the source is auto-blocked (its next connection fails) → unblocked when
 *    the TTL runs out;
 *  - a reload with a broken rule keeps the old rules working and names the failing line;
 *  - an allowlisted source alerts but is never blocked;
 *  - Suricata killed → restarted and reported.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { cliJson, getFromWan, startWeb } from '../helpers/lab-web.ts';

const WAN_HOST = '198.51.100.20';
const ATTACK_SID = 9000001;
const ATTACK_RULE = `alert http any any -> any any (msg:"RAMPART lab test attack"; flow:to_server,established; http.uri; content:"/rampart-test-attack"; classtype:web-application-attack; sid:${ATTACK_SID}; rev:1;)`;
// Valid to Rampart's own check (action, header, options, sid), but Suricata refuses the unknown keyword.
const BROKEN_RULE = 'alert http any any -> any any (msg:"broken"; no_such_keyword; sid:9000002; rev:1;)';
const TTL = 8;

let lab: Lab | undefined;
let d: TestDaemon | undefined;
let web: ChildProcess | undefined;
const orphans: number[] = [];

function config(extra: { allowlist?: string[]; localRules?: string[] } = {}): any {
  const c = labConfig();
  c.ids = {
    enabled: true,
    mode: 'ids',
    interfaces: ['wan'],
    localRules: extra.localRules ?? [ATTACK_RULE],
    autoBlock: { enabled: true, maxSeverity: 1, ttlSeconds: TTL, allowlist: extra.allowlist ?? [] },
  };
  return c;
}

/** A web server on the lan host (port 80, behind the lab's port forward 198.51.100.1:8080). */
/** GET from the wan host through the port forward; the body, or undefined when the connection fails. */
const get = (path: string, timeoutS = 2) => getFromWan(lab!.wan, path, timeoutS);
const json = (args: string[]) => cliJson(d!, args);

test.before(async () => {
  lab = await startLab();
  web = await startWeb(lab.lan);
  d = await startDaemon({ netns: lab.fw, config: config() });
  await waitFor(async () => (await d!.call('idsStatus')).state === 'running', 30_000, 'suricata to run');
});

test.after(async () => {
  await d?.cleanup().catch(() => undefined);
  // An engine orphaned by a failed test (the daemon killed) must not outlive the lab.
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (web && web.exitCode === null) web.kill('SIGTERM');
  await lab?.down();
});

test('an attack from the wan host alerts with its 5-tuple and blocks the source until the TTL runs out', async () => {
  const status = await json(['ids', 'status']);
  assert.is(status.mode, 'ids');
  assert.equal(status.interfaces, ['wan0']);
  assert.ok(status.homeNet.includes('192.0.2.0/24'), JSON.stringify(status.homeNet));
  assert.not.ok(status.homeNet.includes('198.51.100.0/24'), 'the masqueraded wan zone is outside HOME_NET');
  assert.is(status.rules.loaded, 1);

  assert.is(await get('/harmless'), 'ok /harmless', 'ordinary traffic passes');
  assert.is(await get('/rampart-test-attack'), 'ok /rampart-test-attack', 'IDS mode does not stop the first request');

  let alert: any;
  await waitFor(async () => {
    alert = (await d!.call('alerts', {})).find((a: any) => a.sid === ATTACK_SID);
    return !!alert;
  }, 20_000, 'the alert');
  assert.is(alert.kind, 'ids');
  assert.is(alert.signature, 'RAMPART lab test attack');
  assert.is(alert.severity, 1, 'web-application-attack is severity 1');
  assert.is(alert.src, WAN_HOST);
  assert.is(alert.dst, '198.51.100.1');
  assert.is(alert.dport, 8080);
  assert.is(alert.proto, 'tcp');
  assert.ok(alert.sport > 1023, `source port ${alert.sport}`);
  assert.is(alert.detail.alert.signature_id, ATTACK_SID, 'the raw EVE event is kept');

  let block: any;
  await waitFor(async () => {
    block = (await d!.call('blocks')).find((b: any) => b.address === WAN_HOST);
    return !!block;
  }, 10_000, 'the auto-block');
  assert.is(block.source, 'ids');
  assert.ok(block.reason.includes(alert.id), `the block names its alert: ${block.reason}`);
  assert.ok(block.expiresAt - Date.now() <= TTL * 1000, 'with the configured TTL');

  assert.is(await get('/harmless', 1), undefined, 'the next connection from the blocked source fails');

  assert.equal(alert.firewall, { chain: 'forward', verdict: 'accept', decidedBy: 'port-forward', rule: 'web-in' }, 'correlated with the port forward that let it in');
  const groups = await d!.call('alertGroups', { window: 60 });
  assert.ok(groups.some((g: any) => g.sid === ATTACK_SID && g.src === WAN_HOST && g.count === 1), JSON.stringify(groups));
  assert.is((await d!.call('alerts', {})).filter((a: any) => a.sid === ATTACK_SID).length, 1, 'stored once');
  const cli = await d!.cli(['alerts']);
  assert.match(cli.stdout, /RAMPART lab test attack/);

  await waitFor(async () => (await get('/harmless', 1)) === 'ok /harmless', 15_000, 'the block to expire');
  assert.ok(Date.now() >= block.expiresAt - 1000, 'not before the TTL ran out');
});

test('a reload with a broken rule keeps the old rules and names the failing line', async () => {
  const before = (await d!.call('idsStatus')).engine.pid;
  const file = d!.file(config({ localRules: [ATTACK_RULE, BROKEN_RULE], allowlist: [WAN_HOST] }));
  const applied = await d!.cli(['apply', file]);
  assert.is(applied.code, 0, applied.stderr);
  const reload = await d!.cli(['ids', 'reload']);
  assert.is(reload.code, 2, reload.stdout + reload.stderr);
  assert.match(reload.stderr, /line 3 \(localRules\/1\)/, reload.stderr);
  assert.match(reload.stderr, /no_such_keyword/);
  const s = await json(['ids', 'status']);
  assert.is(s.lastReload.ok, false);
  assert.is(s.state, 'running');
  assert.is(s.engine.pid, before, 'the engine was not restarted');
  assert.is(s.rules.loaded, 1, 'the old rule set is still loaded');

  // The old rule still fires (the allowlist from the new document took effect: no block this time).
  const count = (await d!.call('alerts', {})).length;
  assert.is(await get('/rampart-test-attack?again'), 'ok /rampart-test-attack?again');
  await waitFor(async () => (await d!.call('alerts', {})).length > count, 20_000, 'an alert from the old rules');
});

test('an allowlisted source alerts but is never blocked', async () => {
  const file = d!.file(config({ allowlist: [WAN_HOST] }));
  const t = Date.now();
  const applied = await d!.cli(['apply', file]);
  assert.is(applied.code, 0, applied.stderr);
  await waitFor(async () => ((await d!.call('idsStatus')).lastReload?.at ?? 0) >= t, 20_000, 'the IDS to take the new version');
  const allowlistedBefore = (await d!.call('idsStatus')).autoBlock.allowlisted;
  const count = (await d!.call('alerts', {})).length;
  assert.is(await get('/rampart-test-attack?allowed'), 'ok /rampart-test-attack?allowed');
  await waitFor(async () => (await d!.call('alerts', {})).length > count, 20_000, 'the alert');
  await waitFor(async () => (await d!.call('idsStatus')).autoBlock.allowlisted > allowlistedBefore, 5000, 'the allowlist decision');
  assert.equal((await d!.call('blocks')).filter((b: any) => b.address === WAN_HOST), []);
  assert.is(await get('/harmless'), 'ok /harmless', 'still reachable');
});

test('suricata killed → restarted and reported', async () => {
  const s = await json(['ids', 'status']);
  const pid = s.engine.pid;
  assert.ok(pid > 1);
  process.kill(pid, 'SIGKILL');
  await waitFor(async () => {
    const now = await d!.call('idsStatus');
    return now.engine.state === 'running' && now.engine.pid !== pid;
  }, 30_000, 'the engine to be restarted');
  const after = await json(['ids', 'status']);
  assert.ok(after.engine.restarts >= 1);
  assert.is(after.engine.lastExit.signal, 'SIGKILL');
  const status = await json(['status']);
  assert.is(status.ids.state, 'running');
  const stats = await json(['stats']);
  assert.is(stats.ids.state, 'running');
  assert.ok(stats.ids.restarts >= 1 && stats.ids.alerts >= 3 && stats.ids.autoBlocked >= 1, JSON.stringify(stats.ids));
  assert.match((await d!.cli(['stats'])).stdout, /^ids running {2}alerts \d+ {2}blocked \d+/m);
});

test('kill -9 of rampartd: the orphaned engine is replaced at restart and alerts keep flowing', async () => {
  const old = (await d!.call('idsStatus')).engine.pid;
  orphans.push(old);
  await d!.crash();
  process.kill(old, 0); // still running without its daemon
  await d!.restart();
  await waitFor(async () => (await d!.call('idsStatus')).state === 'running', 30_000, 'suricata after the restart');
  assert.throws(() => process.kill(old, 0), 'the orphan was ended');
  const s = await json(['ids', 'status']);
  assert.is.not(s.engine.pid, old);
  const count = (await d!.call('alerts', {})).length;
  assert.is(await get('/rampart-test-attack?after-restart'), 'ok /rampart-test-attack?after-restart');
  await waitFor(async () => (await d!.call('alerts', {})).length === count + 1, 20_000, 'the new alert, stored once');
});

test.run();
