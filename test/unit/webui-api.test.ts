/** The web UI's API wrapper (webui/src/lib/api.ts) against a stand-in fetch: what it sends, how errors come back. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiError, alertList, del, get, hasRoute, onUnauthorized, post, qs } from '../../webui/src/lib/api.ts';

interface Sent {
  url: string;
  init: RequestInit;
}
let sent: Sent[] = [];
let reply: (url: string) => Response | Promise<Response> = () => new Response('{}');
globalThis.fetch = (async (url: string, init: RequestInit) => {
  sent.push({ url, init });
  return reply(url);
}) as typeof fetch;
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

test.before.each(() => {
  sent = [];
});

test('GET: under /api/v1, same-origin credentials, no body; the JSON comes back', async () => {
  reply = () => json(200, { version: 3 });
  const r = await get<{ version: number }>('/status');
  assert.is(r.version, 3);
  assert.is(sent[0].url, '/api/v1/status');
  assert.is(sent[0].init.method, 'GET');
  assert.is(sent[0].init.credentials, 'same-origin');
  assert.is(sent[0].init.body, undefined);
});

test('POST and DELETE always carry a JSON body with its content type (the CSRF defence)', async () => {
  reply = () => json(200, { ok: true });
  await post('/config/confirm');
  await del('/blocks/203.0.113.0%2F24');
  await post('/blocks', { address: '192.0.2.7' });
  assert.equal(sent.map((s) => [s.init.method, s.init.body, (s.init.headers as Record<string, string>)['Content-Type']]), [
    ['POST', '{}', 'application/json'],
    ['DELETE', '{}', 'application/json'],
    ['POST', '{"address":"192.0.2.7"}', 'application/json'],
  ]);
});

test('the error document becomes an ApiError with status, code, message and the problems', async () => {
  reply = () => json(422, { error: { code: 'invalid_input', message: 'invalid request body', details: [{ path: '/address', message: 'not an IP address or CIDR' }] } });
  try {
    await post('/blocks', { address: 'x' });
    assert.unreachable('must throw');
  } catch (err) {
    assert.instance(err, ApiError);
    const e = err as ApiError;
    assert.is(e.status, 422);
    assert.is(e.code, 'invalid_input');
    assert.is(e.message, 'invalid request body');
    assert.equal(e.details, [{ path: '/address', message: 'not an IP address or CIDR' }]);
  }
  reply = () => new Response('<html>proxy error</html>', { status: 502, statusText: 'Bad Gateway' });
  const e2 = (await get('/status').catch((e) => e)) as ApiError;
  assert.is(e2.status, 502);
  assert.is(e2.code, 'http_502');
  reply = () => Promise.reject(new TypeError('Failed to fetch'));
  const e3 = (await get('/status').catch((e) => e)) as ApiError;
  assert.is(e3.code, 'network');
});

test('a 401 tells the app the session ended, except for a failed login', async () => {
  let calls = 0;
  const off = onUnauthorized(() => calls++);
  reply = () => json(401, { error: { code: 'unauthorized', message: 'not logged in', details: [] } });
  await get('/status').catch(() => undefined);
  assert.is(calls, 1);
  await post('/auth/login', { username: 'a', password: 'b' }).catch(() => undefined);
  assert.is(calls, 1, 'wrong credentials are not a lost session');
  off();
  await get('/status').catch(() => undefined);
  assert.is(calls, 1);
});

test('hasRoute reads the OpenAPI document once', async () => {
  reply = () => json(200, { paths: { '/alerts': { get: {} }, '/blocks': { get: {}, post: {} } } });
  assert.ok(await hasRoute('get', '/alerts'));
  assert.ok(await hasRoute('POST', '/blocks'));
  assert.not.ok(await hasRoute('post', '/alerts'));
  assert.not.ok(await hasRoute('get', '/ids/status'));
  assert.is(sent.filter((s) => s.url === '/api/v1/openapi.json').length, 1);
});

test('query strings and both alert list shapes', () => {
  assert.is(qs({ since: 5, severity: undefined, limit: 10, kind: '' }), '?since=5&limit=10');
  assert.is(qs({}), '');
  const a = { id: 'x', seq: 1, kind: 'ids', at: 1, severity: 1, signature: 's' };
  assert.equal(alertList([a]), [a]);
  assert.equal(alertList({ alerts: [a] }), [a]);
  assert.equal(alertList(undefined), []);
});

test.run();
