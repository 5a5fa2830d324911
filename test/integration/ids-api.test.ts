/**
 * The IDS routes of the HTTP API, in process (`app.request()`), over a real alert store: GET /alerts with its
 * filters and checked query, GET /alerts/groups, roles, and POST /ids/reload mapping a refused rule to 422 with the
 * failing line (the reload itself runs for real in ids-lab.test.ts; here its result is given, to test the route).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp, serviceBackend } from '../../services/api/app.ts';
import { AlertStore } from '../../services/core/alerts.ts';
import { silentLogger } from '../../services/core/log.ts';
import { groupAlerts } from '../../services/ids/correlate.ts';
import type { ReloadResult } from '../../services/ids/service.ts';
import { fixture, API, type Fixture } from '../helpers/api-fixture.ts';

let f: Fixture;
let app: ReturnType<typeof createApp>;
let nextReload: ReloadResult;

test.before(async () => {
  f = await fixture();
  const alerts = new AlertStore(f.store, f.events);
  const t0 = Date.UTC(2026, 10, 29, 0, 0, 0);
  alerts.add([
    { id: 'a1', kind: 'ids', at: t0, severity: 1, signature: 'one', sid: 1, src: '198.51.100.20', dst: '192.0.2.10', proto: 'tcp', sport: 4000, dport: 80, detail: { event_type: 'alert' } },
    { id: 'a2', kind: 'ids', at: t0 + 1000, severity: 3, signature: 'three', sid: 3, src: '198.51.100.21' },
    { id: 'a3', kind: 'anomaly', at: t0 + 2000, severity: 2, signature: 'cpu above its baseline' },
    { id: 'a4', kind: 'ids', at: t0 + 3000, severity: 1, signature: 'one', sid: 1, src: '198.51.100.20' },
  ]);
  const log = silentLogger();
  app = createApp({
    backend: serviceBackend({ store: f.store, firewall: undefined as any, blocks: undefined as any, status: async () => ({}), counters: async () => ({}), telemetry: undefined as any }),
    auth: f.auth,
    audit: f.audit,
    events: f.events,
    log,
    options: { tls: false },
    ids: {
      alerts: (q) => alerts.list(q),
      groups: (q) => groupAlerts(f.store, q),
      status: () => ({ state: 'running' }),
      rules: () => [{ sid: 1, msg: 'one', action: 'alert', enabled: true, origin: 'localRules/0' }],
      reload: async () => nextReload,
    },
  });
});
test.after(() => f.close());

const req = (method: string, path: string, cookie?: string, body?: unknown) =>
  Promise.resolve(
    app.request(API + path, { method, headers: { ...(cookie ? { cookie } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) }, { incoming: { socket: { remoteAddress: '192.0.2.10' } } }),
  );

test('GET /alerts: newest first, filtered by severity, time and kind; bad queries are 422 with pointers', async () => {
  const viewer = await f.login('viewer');
  assert.is((await req('GET', '/alerts')).status, 401);
  const all = await (await req('GET', '/alerts', viewer)).json();
  assert.equal(all.map((a: any) => a.id), ['a4', 'a3', 'a2', 'a1']);
  assert.equal(all[3].detail, { event_type: 'alert' });
  const severe = await (await req('GET', '/alerts?severity=1', viewer)).json();
  assert.equal(severe.map((a: any) => a.id), ['a4', 'a1']);
  const since = await (await req('GET', `/alerts?since=2026-11-29T00:00:01Z&kind=ids&limit=1`, viewer)).json();
  assert.equal(since.map((a: any) => a.id), ['a4']);
  const tail = await (await req('GET', '/alerts?afterSeq=2', viewer)).json();
  assert.equal(tail.map((a: any) => a.id), ['a3', 'a4'], 'oldest first after a seq');
  const bad = await req('GET', '/alerts?severity=9&limit=x', viewer);
  assert.is(bad.status, 422);
  const err = await bad.json();
  assert.ok(err.error.details.some((d: any) => d.path.includes('severity')), JSON.stringify(err));
});

test('GET /alerts/groups: by signature and source within the window', async () => {
  const viewer = await f.login('viewer');
  const groups = await (await req('GET', '/alerts/groups?window=60', viewer)).json();
  const one = groups.find((g: any) => g.sid === 1);
  assert.is(one.count, 2);
  assert.is(one.src, '198.51.100.20');
  assert.is(groups.length, 3);
});

test('POST /ids/reload: operators only; a refused rule is 422 naming its line, and audited', async () => {
  const viewer = await f.login('viewer');
  const operator = await f.login('operator');
  assert.is((await req('POST', '/ids/reload', viewer, {})).status, 403);
  nextReload = { ok: true, action: 'reloaded', rulesLoaded: 12, rulesFailed: 0 };
  const ok = await req('POST', '/ids/reload', operator, {});
  assert.is(ok.status, 200);
  assert.is((await ok.json()).rulesLoaded, 12);
  nextReload = { ok: false, action: 'rejected', errors: [{ line: 3, origin: 'localRules/1', message: "unknown rule keyword 'bogus'" }], message: 'suricata rejected 1 rule(s)' };
  const res = await req('POST', '/ids/reload', operator, {});
  assert.is(res.status, 422);
  const body = await res.json();
  assert.equal(body.error.details, [{ path: '/ids/localRules/1', message: "rules file line 3 (localRules/1): unknown rule keyword 'bogus'" }]);
  const audit = f.audit.list({ action: 'ids.reload' });
  assert.equal(audit.map((e) => e.result), ['failed', 'ok', 'denied'], 'newest first: the refused reload, the good one, the viewer turned away');
  assert.is((await (await req('GET', '/ids/rules', viewer)).json())[0].sid, 1);
  assert.is((await (await req('GET', '/ids/status', viewer)).json()).state, 'running');
});

test.run();
