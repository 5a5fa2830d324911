/** The API's guard rails: sessions on every route, roles, CSRF defence, body handling, headers, error documents. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { API, PASSWORDS, concretePath, fixture, type Fixture } from '../helpers/api-fixture.ts';
import { CSP } from '../../services/api/app.ts';
import { sessionCookie } from '../../services/api/routes/define.ts';
import { openApiPath } from '../../services/api/openapi.ts';

let f: Fixture;
test.before(async () => {
  f = await fixture();
});
test.after(() => f.close());

const routes = () => f.app.apiRoutes.map((r) => ({ ...r, url: concretePath(r.path) }));

async function errorOf(res: Response) {
  const body = await res.json();
  assert.type(body.error, 'object', 'error document');
  assert.type(body.error.code, 'string');
  assert.type(body.error.message, 'string');
  assert.ok(Array.isArray(body.error.details));
  assert.not.match(JSON.stringify(body), /at .*\.ts:\d+/, 'no stack trace');
  return body.error;
}

test('every route but login and the OpenAPI document needs a session (401)', async () => {
  const open = new Set(['POST /auth/login', 'GET /openapi.json']);
  let checked = 0;
  for (const r of routes()) {
    const key = `${r.method.toUpperCase()} ${r.path}`;
    if (open.has(key)) continue;
    const res = await f.req(r.method.toUpperCase(), r.url, r.method === 'get' ? {} : { body: {} });
    assert.is(res.status, 401, key);
    assert.is((await errorOf(res)).code, 'unauthorized', key);
    checked++;
  }
  assert.ok(checked >= 20, `checked ${checked} routes`);
  const doc = await f.req('GET', '/openapi.json');
  assert.is(doc.status, 200);
});

test('a forged, a logged-out and an expired session are all 401', async () => {
  const forged = 'rampart_session=' + 'A'.repeat(43);
  assert.is((await f.req('GET', '/status', { cookie: forged })).status, 401);
  assert.is((await f.req('GET', '/status', { cookie: 'rampart_session=../../etc' })).status, 401);
  const cookie = await f.login('viewer');
  assert.is((await f.req('GET', '/status', { cookie })).status, 200);
  f.clock.now += 31 * 60 * 1000; // idle for longer than the idle timeout
  assert.is((await f.req('GET', '/status', { cookie })).status, 401);
  const again = await f.login('viewer');
  assert.is((await f.req('POST', '/auth/logout', { cookie: again, body: {} })).status, 200);
  assert.is((await f.req('GET', '/auth/me', { cookie: again })).status, 401);
});

test('a viewer is refused every mutating route (403), and each refusal is audited', async () => {
  const cookie = await f.login('viewer');
  const mutating = routes().filter((r) => r.method !== 'get' && r.action && !r.path.startsWith('/auth/'));
  assert.ok(mutating.length >= 7);
  for (const r of mutating) {
    const before = f.audit.list({ action: r.action, result: 'denied', username: 'viewer' }).length;
    const res = await f.req(r.method.toUpperCase(), r.url, { cookie, body: {} });
    assert.is(res.status, 403, `${r.method} ${r.path}`);
    assert.is((await errorOf(res)).code, 'forbidden');
    const after = f.audit.list({ action: r.action, result: 'denied', username: 'viewer' });
    assert.is(after.length, before + 1, `audited: ${r.action}`);
    assert.is(after[0].role, 'viewer');
    assert.is(after[0].source, '192.0.2.10');
  }
  // but reading is fine, and validating is not a change
  assert.is((await f.req('GET', '/config/versions', { cookie })).status, 200);
  assert.is((await f.req('POST', '/config/validate', { cookie, body: { config: { schema: 1 } } })).status, 200);
});

test('an operator may change the firewall but not manage users or read them', async () => {
  const cookie = await f.login('operator');
  assert.is((await f.req('GET', '/users', { cookie })).status, 403);
  assert.is((await f.req('POST', '/users', { cookie, body: { username: 'eve', password: 'eve-password-1', role: 'admin' } })).status, 403);
  assert.is((await f.req('DELETE', '/users/viewer', { cookie, body: {} })).status, 403);
  assert.is((await f.req('GET', '/audit', { cookie })).status, 200);
  const res = await f.req('POST', '/blocks', { cookie, body: { address: '198.51.100.7', ttlSeconds: 60 } });
  assert.is(res.status, 201);
});

test('cross-site requests: foreign Origin 403, Sec-Fetch-Site cross-site 403, text/plain and form posts 415', async () => {
  const cookie = await f.login('admin');
  const apply = (headers: Record<string, string>, raw = JSON.stringify({ address: '198.51.100.8' })) => f.req('POST', '/blocks', { cookie, headers, raw });
  let res = await apply({ 'content-type': 'application/json', origin: 'https://evil.example', host: 'localhost' });
  assert.is(res.status, 403);
  assert.match((await errorOf(res)).message, /Origin/);
  res = await apply({ 'content-type': 'application/json', origin: 'null' });
  assert.is(res.status, 403);
  res = await apply({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' });
  assert.is(res.status, 403);
  res = await apply({ 'content-type': 'text/plain' });
  assert.is(res.status, 415);
  assert.is((await errorOf(res)).code, 'unsupported_media_type');
  res = await apply({ 'content-type': 'application/x-www-form-urlencoded' }, 'address=198.51.100.8');
  assert.is(res.status, 415);
  res = await apply({ 'content-type': 'multipart/form-data; boundary=x' }, '--x--');
  assert.is(res.status, 415);
  res = await apply({});
  assert.is(res.status, 415);
  // a cross-site login is refused as well (login CSRF)
  res = await f.req('POST', '/auth/login', { body: { username: 'admin', password: 'x' }, headers: { origin: 'http://evil.example' } });
  assert.is(res.status, 403);
  // same origin passes
  res = await apply({ 'content-type': 'application/json; charset=utf-8', origin: 'http://localhost', 'sec-fetch-site': 'same-origin' });
  assert.is(res.status, 201);
  assert.ok(f.audit.list({ action: 'block.add', result: 'denied' }).length >= 3, 'refusals are audited');
});

test('malformed JSON 400, oversized 413, wrong types 422 with pointers; never a 500', async () => {
  const cookie = await f.login('admin');
  let res = await f.req('POST', '/blocks', { cookie, raw: '{"address": ', headers: { 'content-type': 'application/json' } });
  assert.is(res.status, 400);
  assert.is((await errorOf(res)).code, 'bad_request');
  res = await f.req('POST', '/blocks', { cookie, raw: '\xff\xfe{}', headers: { 'content-type': 'application/json' } });
  assert.ok(res.status === 400 || res.status === 422, String(res.status));
  res = await f.req('POST', '/blocks', { cookie, body: { address: '198.51.100.9', reason: 'x'.repeat(70 * 1024) } });
  assert.is(res.status, 413);
  assert.is((await errorOf(res)).code, 'too_large');
  // the configuration route takes big documents
  res = await f.req('POST', '/config/validate', { cookie, body: { config: { schema: 1, system: { hostname: 'a' }, pad: 'x'.repeat(100 * 1024) } } });
  assert.is(res.status, 200);
  res = await f.req('POST', '/blocks', { cookie, body: { address: 42, ttlSeconds: 'soon', reason: ['x'], extra: true } });
  assert.is(res.status, 422);
  const err = await errorOf(res);
  assert.is(err.code, 'invalid_input');
  const paths = err.details.map((d: { path: string }) => d.path);
  for (const p of ['/address', '/ttlSeconds', '/reason']) assert.ok(paths.includes(p), `pointer ${p} in ${paths}`);
  res = await f.req('POST', '/blocks', { cookie, body: { address: 'not-an-ip' } });
  assert.is(res.status, 422);
  assert.equal((await errorOf(res)).details.map((d: { path: string }) => d.path), ['/address']);
  res = await f.req('POST', '/blocks', { cookie, body: [1, 2] });
  assert.is(res.status, 422);
  res = await f.req('POST', '/blocks', { cookie, body: null });
  assert.is(res.status, 422);
  res = await f.req('GET', '/config/versions?limit=abc', { cookie });
  assert.is(res.status, 422);
  assert.equal((await errorOf(res)).details[0].path, '/limit');
  res = await f.req('GET', '/config/versions/0', { cookie });
  assert.is(res.status, 422);
  res = await f.req('GET', '/config/versions/999', { cookie });
  assert.is(res.status, 404);
  res = await f.req('GET', '/audit?since=yesterday', { cookie });
  assert.is(res.status, 422);
  res = await f.req('DELETE', '/blocks/nonsense', { cookie, body: {} });
  assert.is(res.status, 422);
  res = await f.req('GET', '/no/such/route', { cookie });
  assert.is(res.status, 404);
  assert.is((await errorOf(res)).code, 'not_found');
  res = await f.req('POST', '/auth/login', { body: { username: { $ne: 1 }, password: 1 } });
  assert.is(res.status, 422);
});

test('security headers on every response, errors included; HSTS only under TLS', async () => {
  const cookie = await f.login('viewer');
  for (const res of [await f.req('GET', '/status', { cookie }), await f.req('GET', '/status'), await f.req('GET', '/nope'), await f.req('GET', '/openapi.json')]) {
    assert.is(res.headers.get('content-security-policy'), CSP);
    assert.is(res.headers.get('x-content-type-options'), 'nosniff');
    assert.is(res.headers.get('referrer-policy'), 'no-referrer');
    assert.is(res.headers.get('x-frame-options'), 'DENY');
    assert.is(res.headers.get('strict-transport-security'), null);
  }
  const tls = await fixture({ tls: true });
  try {
    const res = await tls.req('POST', '/auth/login', { body: { username: 'viewer', password: 'viewer-password-1' } });
    assert.is(res.status, 200);
    assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
    assert.match(res.headers.get('set-cookie') ?? '', /;\s*Secure/i);
    // under TLS the Origin must be https
    const c = tls.req('POST', '/auth/logout', { cookie: /(rampart_session=[^;]*)/.exec(res.headers.get('set-cookie')!)![1], body: {}, headers: { origin: 'http://localhost' } });
    assert.is((await c).status, 403);
  } finally {
    tls.close();
  }
});

test('the OpenAPI document covers every registered route and its schemas', async () => {
  const res = await f.req('GET', '/openapi.json');
  assert.is(res.status, 200);
  const doc = await res.json();
  assert.is(doc.openapi, '3.1.0');
  const missing: string[] = [];
  const honoRoutes = f.app.routes.filter((r) => r.method !== 'ALL' && r.path.startsWith(API + '/'));
  assert.ok(honoRoutes.length >= 22, `${honoRoutes.length} routes`);
  for (const r of honoRoutes) {
    const path = openApiPath(r.path.slice(API.length));
    const op = doc.paths[path]?.[r.method.toLowerCase()];
    if (!op) missing.push(`${r.method} ${r.path}`);
    else {
      assert.ok(op.responses, path);
      assert.ok(op.operationId, path);
    }
  }
  assert.equal(missing, [], 'routes missing from the OpenAPI document');
  // nothing registered outside /api/v1 but the middleware, the web UI's files (GET/HEAD of any other path) and,
  // when the daemon gives it one, the Prometheus exposition (GET /metrics, behind its own bearer token)
  const outside = f.app.routes.filter((r) => r.method !== 'ALL' && !r.path.startsWith(API + '/')).map((r) => `${r.method} ${r.path}`);
  assert.equal(outside.filter((r) => !['GET /*', 'HEAD /*', 'GET /metrics'].includes(r)), [], 'unexpected routes outside /api/v1');
  // request bodies reference schemas that exist; the config document is the Config schema
  const text = JSON.stringify(doc);
  for (const m of text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)) assert.ok(doc.components.schemas[m[1]], `schema ${m[1]}`);
  assert.match(JSON.stringify(doc.components.schemas.postConfigRequest), /#\/components\/schemas\/Config/);
  assert.ok(doc.components.schemas.Config.properties.firewall);
  assert.is(doc.paths['/config/versions/{v}'].get.parameters[0].in, 'path');
  assert.ok(doc.paths['/auth/login'].post.responses['429'].headers['Retry-After']);
  assert.not.match(text, /https?:\/\//, 'no host names in the document');
});

test('the session cookie is read exactly: first rampart_session, never a cookie whose name only ends with it', () => {
  const id = 'B'.repeat(43);
  assert.is(sessionCookie(`rampart_session=${id}`), id);
  assert.is(sessionCookie(`theme=dark; rampart_session=${id}; x=1`), id);
  assert.is(sessionCookie(`xrampart_session=evil; rampart_session=${id}`), id);
  assert.is(sessionCookie(`xrampart_session=evil`), undefined);
  assert.is(sessionCookie(`rampart_session="${id}"`), id);
  assert.is(sessionCookie(''), undefined);
  assert.is(sessionCookie(null), undefined);
});

test('a session that was just used (and cached) still ends at once on logout, password change and user deletion', async () => {
  // logout within the same second as a successful request
  const a = await f.login('viewer');
  assert.is((await f.req('GET', '/status', { cookie: a })).status, 200);
  assert.is((await f.req('POST', '/auth/logout', { cookie: a, body: {} })).status, 200);
  assert.is((await f.req('GET', '/status', { cookie: a })).status, 401);
  // an administrator resets another user's password: that user's sessions end at once
  const b = await f.login('viewer');
  assert.is((await f.req('GET', '/status', { cookie: b })).status, 200);
  await f.auth.setPassword('viewer', PASSWORDS.viewer);
  assert.is((await f.req('GET', '/status', { cookie: b })).status, 401);
});

test.run();
