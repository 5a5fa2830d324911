/** Configuration, journal, blocks, audit and the event stream through the API (no kernel: nft accepts all). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixture, rulesetOf, type Fixture } from '../helpers/api-fixture.ts';
import { labConfig } from '../helpers/daemon.ts';

let f: Fixture;
let admin: string;
test.before(async () => {
  f = await fixture({ heartbeatMs: 50 });
  admin = await f.login('admin');
});
test.after(() => f.close());

test('an invalid configuration: validate lists the problems; POST /config is 422 and nothing is applied', async () => {
  const bad = labConfig();
  bad.firewall.forward[0].destination = ['no-such-object'];
  bad.zones.push({ name: 'Bad Zone!' });
  let res = await f.req('POST', '/config/validate', { cookie: admin, body: { config: bad } });
  assert.is(res.status, 200);
  const v = await res.json();
  assert.is(v.ok, false);
  assert.ok(v.problems.length >= 1);
  assert.ok(v.problems.every((p: { path: string }) => p.path.startsWith('/')), 'pointers into the document');
  const ruleset = await rulesetOf(f.host);
  res = await f.req('POST', '/config', { cookie: admin, body: { config: bad, message: 'broken' } });
  assert.is(res.status, 422);
  const err = (await res.json()).error;
  assert.is(err.code, 'invalid_input');
  assert.ok(err.details.length >= 1);
  assert.ok(err.details.every((p: { path: string }) => p.path.startsWith('/config/')), JSON.stringify(err.details));
  assert.is(f.store.listVersions().length, 0, 'history unchanged');
  assert.is(await rulesetOf(f.host), ruleset, 'the kernel ruleset is unchanged');
  assert.is((await f.req('GET', '/config', { cookie: admin })).status, 404);
  const entry = f.audit.list({ action: 'config.apply' })[0];
  assert.equal([entry.username, entry.result], ['admin', 'failed']);
  res = await f.req('POST', '/config', { cookie: admin, body: { config: labConfig(), confirmSeconds: 0 } });
  assert.is(res.status, 422);
  assert.equal((await res.json()).error.details.map((d: { path: string }) => d.path), ['/confirmSeconds']);
  assert.is(f.store.listVersions().length, 0);
});

test('apply with confirmSeconds, then confirm; journal and running config; rollback', async () => {
  let res = await f.req('POST', '/config', { cookie: admin, body: { config: labConfig(), message: 'first' } });
  assert.is(res.status, 200);
  const v1 = await res.json();
  assert.equal([v1.version, v1.state, v1.source, v1.author, v1.message], [1, 'applied', 'api', 'admin', 'first']);
  assert.is(v1.document, undefined);
  const changed = labConfig();
  changed.system.hostname = 'changed';
  res = await f.req('POST', '/config', { cookie: admin, body: { config: changed, confirmSeconds: 120 } });
  assert.is(res.status, 200);
  const v2 = await res.json();
  assert.is(v2.state, 'pending_confirm');
  assert.ok(Date.parse(v2.confirmDeadline) > Date.now());
  let status = await (await f.req('GET', '/status', { cookie: admin })).json();
  assert.is(status.pending.version, 2);
  // another change waits for the confirmation
  assert.is((await f.req('POST', '/config', { cookie: admin, body: { config: labConfig() } })).status, 409);
  res = await f.req('POST', '/config/confirm', { cookie: admin, body: {} });
  assert.is(res.status, 200);
  assert.equal([(await res.json()).state], ['applied']);
  assert.is((await f.req('POST', '/config/confirm', { cookie: admin, body: {} })).status, 409);
  status = await (await f.req('GET', '/status', { cookie: admin })).json();
  assert.is(status.pending, null);
  const running = await (await f.req('GET', '/config', { cookie: admin })).json();
  assert.is(running.version, 2);
  assert.is(running.document.system.hostname, 'changed');
  const list = await (await f.req('GET', '/config/versions?limit=10', { cookie: admin })).json();
  assert.equal(list.map((v: { version: number; state: string }) => `${v.version}:${v.state}`), ['2:applied', '1:superseded']);
  const one = await (await f.req('GET', '/config/versions/1', { cookie: admin })).json();
  assert.is(one.document.system.hostname, labConfig().system.hostname);
  // rollback (an empty body is the previous version) and to a version that does not exist
  assert.is((await f.req('POST', '/config/rollback', { cookie: admin, body: { version: 99 } })).status, 404);
  res = await f.req('POST', '/config/rollback', { cookie: admin, raw: '', headers: { 'content-type': 'application/json' } });
  assert.is(res.status, 200);
  assert.is((await res.json()).version, 3);
  const actions = f.audit.list({ username: 'admin', result: 'ok' }).map((e) => `${e.action} ${e.target}`);
  for (const a of ['config.apply version 1', 'config.apply version 2', 'config.confirm version 2', 'config.rollback previous']) assert.ok(actions.includes(a), `${a} in ${actions}`);
  const viewer = await f.login('viewer');
  assert.is((await f.req('GET', '/config', { cookie: viewer })).status, 200);
});

test('blocks: add (201), list, remove (CIDR with %2F), 404 for an unknown one', async () => {
  let res = await f.req('POST', '/blocks', { cookie: admin, body: { address: '203.0.113.0/24', ttlSeconds: 600, reason: 'scanner' } });
  assert.is(res.status, 201);
  const b = await res.json();
  assert.equal([b.address, b.family, b.reason, b.source], ['203.0.113.0/24', 4, 'scanner', 'api']);
  assert.ok(b.expiresAt > Date.now());
  res = await f.req('POST', '/blocks', { cookie: admin, body: { address: '203.0.113.128/25' } });
  assert.is(res.status, 422);
  assert.is((await res.json()).error.details[0].path, '/address');
  const list = await (await f.req('GET', '/blocks', { cookie: admin })).json();
  assert.ok(list.some((x: { address: string }) => x.address === '203.0.113.0/24'));
  res = await f.req('DELETE', `/blocks/${encodeURIComponent('203.0.113.0/24')}`, { cookie: admin, body: {} });
  assert.is(res.status, 200);
  assert.equal(await res.json(), { removed: true });
  assert.is((await f.req('DELETE', '/blocks/2001:db8::1', { cookie: admin, body: {} })).status, 404);
  const e = f.audit.list({ action: 'block.remove' });
  assert.equal(e.map((x) => `${x.target} ${x.result}`), ['2001:db8::1 failed', '203.0.113.0/24 ok']);
});

test('audit: filters by user, action, result and time', async () => {
  const all = await (await f.req('GET', '/audit?limit=1000', { cookie: admin })).json();
  assert.ok(all.length > 5);
  const applies = await (await f.req('GET', '/audit?action=config.apply&result=ok', { cookie: admin })).json();
  assert.ok(applies.length >= 2 && applies.every((e: { action: string; result: string }) => e.action === 'config.apply' && e.result === 'ok'));
  const future = await (await f.req('GET', `/audit?since=${Date.now() + 3_600_000}`, { cookie: admin })).json();
  assert.equal(future, []);
  const iso = await (await f.req('GET', `/audit?until=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&username=admin&limit=2`, { cookie: admin })).json();
  assert.is(iso.length, 2);
  assert.is((await f.req('GET', '/audit?limit=0', { cookie: admin })).status, 422);
  assert.is((await f.req('GET', '/audit?bogus=1', { cookie: admin })).status, 422);
});

async function readEvents(res: Response, until: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 5000;
  while (!until(text)) {
    if (Date.now() > deadline) throw new Error(`no event in time; got: ${text}`);
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  reader.releaseLock();
  return text;
}

test('telemetry: a viewer lists metrics and queries; bad queries are 422 with pointers', async () => {
  const viewer = await f.login('viewer');
  let res = await f.req('GET', '/telemetry/metrics', { cookie: viewer });
  assert.is(res.status, 200);
  assert.ok(Array.isArray(await res.json()));
  res = await f.req('GET', `/telemetry?metric=if.lan0.rx_bytes_rate&from=${Date.now() - 60_000}&to=${new Date().toISOString()}&step=10s`, { cookie: viewer });
  assert.is(res.status, 200);
  const q = await res.json();
  assert.equal([q.metric, q.resolution, q.points], ['if.lan0.rx_bytes_rate', 'raw', []]);
  res = await f.req('GET', '/stats', { cookie: viewer });
  assert.is(res.status, 200);
  assert.is((await res.json()).ts, null, 'no sample: the telemetry is not running here');
  for (const [query, path] of [
    ['metric=bad%20name', '/metric'],
    ['metric=sys.cpu&from=yesterday', '/from'],
    ['metric=sys.cpu&step=-5', '/step'],
    ['metric=sys.cpu&bogus=1', ''],
    ['from=1', '/metric'],
  ]) {
    res = await f.req('GET', `/telemetry?${query}`, { cookie: viewer });
    assert.is(res.status, 422, query);
    const err = (await res.json()).error;
    assert.is(err.code, 'invalid_input');
    assert.ok(err.details.some((d: { path: string }) => d.path === path), `${query}: ${JSON.stringify(err.details)}`);
  }
  res = await f.req('GET', `/telemetry?metric=sys.cpu&from=2000&to=1000`, { cookie: viewer });
  assert.is(res.status, 422);
  assert.is((await res.json()).error.details[0].path, '/from');
  assert.is((await f.req('GET', '/telemetry/metrics')).status, 401);
});

test('events: authenticated Server-Sent Events with config, block, alert and sync events; ends at logout', async () => {
  assert.is((await f.req('GET', '/events')).status, 401);
  const cookie = await f.login('viewer');
  const ctl = new AbortController();
  const res = await f.req('GET', '/events', { cookie, signal: ctl.signal });
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.is(res.headers.get('content-security-policy') !== null, true);
  let text = await readEvents(res, (t) => t.includes('event: ready'));
  f.events.emit('config', { type: 'applied', version: 7, state: 'applied' });
  f.events.emit('block', { type: 'added', addresses: Array.from({ length: 500 }, (_, i) => `10.0.${i >> 8}.${i & 255}`), source: 'api' });
  const alert = (i: number) => ({ id: `a${i}`, seq: i, kind: 'ids' as const, at: 1_795_000_000_000 + i, severity: 2 as const, signature: `sig ${i}`, detail: { eve: 'x'.repeat(1000) } });
  f.events.emit('alert', Array.from({ length: 120 }, (_, i) => alert(i + 1)));
  f.events.emit('sync', { state: 'lost', detail: 'broker unreachable' });
  text = await readEvents(res, (t) => t.includes('event: sync'));
  const data = (ev: string) => JSON.parse(new RegExp(`event: ${ev}\\ndata: (.*)\\n`).exec(text)![1]);
  assert.equal(data('config'), { type: 'applied', version: 7, state: 'applied' });
  assert.is(data('block').count, 500);
  assert.is(data('block').addresses.length, 100);
  assert.is(data('alert').count, 120);
  assert.is(data('alert').alerts.length, 50, 'the newest 50 of the batch');
  assert.is(data('alert').alerts[49].id, 'a120');
  assert.not.ok('detail' in data('alert').alerts[0], 'no EVE detail on the stream');
  assert.equal(data('sync'), { state: 'lost', detail: 'broker unreachable' });
  // logging out ends the stream at the next keep-alive
  await f.req('POST', '/auth/logout', { cookie, body: {} });
  const reader = res.body!.getReader();
  const end = Date.now() + 3000;
  let done = false;
  while (!done && Date.now() < end) done = (await reader.read()).done;
  assert.ok(done, 'the stream ended');
  ctl.abort();
});

test.run();
