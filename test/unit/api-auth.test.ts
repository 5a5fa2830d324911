/** Logins, sessions, forced password change and throttling through the API. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cookieOf, fixture, PASSWORDS, type Fixture } from '../helpers/api-fixture.ts';

let f: Fixture;
test.before.each(async () => {
  f = await fixture();
});
test.after.each(() => f.close());

test('login sets an HttpOnly SameSite=Strict cookie, /auth/me shows the session without its id', async () => {
  const res = await f.req('POST', '/auth/login', { body: { username: 'operator', password: PASSWORDS.operator } });
  assert.is(res.status, 200);
  const set = res.headers.get('set-cookie')!;
  assert.match(set, /^rampart_session=[A-Za-z0-9_-]{43};/);
  assert.match(set, /HttpOnly/i);
  assert.match(set, /SameSite=Strict/i);
  assert.match(set, /Path=\//);
  assert.not.match(set, /Secure/i);
  const body = await res.json();
  assert.is(body.username, 'operator');
  assert.is(body.role, 'operator');
  assert.is(body.id, undefined, 'the session id is never in a body');
  const me = await (await f.req('GET', '/auth/me', { cookie: cookieOf(res) })).json();
  assert.equal([me.username, me.role, me.mustChange, me.id], ['operator', 'operator', false, undefined]);
  const entry = f.audit.list({ action: 'auth.login' })[0];
  assert.equal([entry.username, entry.role, entry.source, entry.result], ['operator', 'operator', '192.0.2.10', 'ok']);
});

test('wrong credentials: 401, audited as denied; the session id rotates at login (the old cookie is dead)', async () => {
  const bad = await f.req('POST', '/auth/login', { body: { username: 'admin', password: 'wrong-password' } });
  assert.is(bad.status, 401);
  assert.is((await bad.json()).error.code, 'unauthorized');
  assert.is(f.audit.list({ action: 'auth.login', result: 'denied' })[0].username, 'admin');
  const first = await f.login('admin');
  const res = await f.req('POST', '/auth/login', { cookie: first, body: { username: 'admin', password: PASSWORDS.admin } });
  assert.is(res.status, 200);
  const second = cookieOf(res)!;
  assert.is.not(second, first);
  assert.is((await f.req('GET', '/auth/me', { cookie: first })).status, 401);
  assert.is((await f.req('GET', '/auth/me', { cookie: second })).status, 200);
});

test('a user who must change the password may only see /auth/me, change it, or log out', async () => {
  const cookie = await f.login('fresh');
  const me = await (await f.req('GET', '/auth/me', { cookie })).json();
  assert.is(me.mustChange, true);
  for (const [method, path, body] of [
    ['GET', '/status'],
    ['GET', '/config'],
    ['GET', '/users'],
    ['POST', '/blocks', { address: '198.51.100.1' }],
    ['POST', '/users', { username: 'x', password: 'long-enough-1', role: 'viewer' }],
  ] as const) {
    const res = await f.req(method, path, { cookie, body });
    assert.is(res.status, 403, `${method} ${path}`);
    assert.match((await res.json()).error.message, /password must be changed/);
  }
  // wrong current password: 422 at /current, still logged in
  let res = await f.req('POST', '/auth/password', { cookie, body: { current: 'nope-nope-nope', next: 'brand-new-password' } });
  assert.is(res.status, 422);
  assert.equal((await res.json()).error.details.map((d: { path: string }) => d.path), ['/current']);
  res = await f.req('POST', '/auth/password', { cookie, body: { current: PASSWORDS.fresh, next: 'short' } });
  assert.is(res.status, 422);
  assert.is((await res.json()).error.details[0].path, '/next');
  res = await f.req('POST', '/auth/password', { cookie, body: { current: PASSWORDS.fresh, next: 'brand-new-password' } });
  assert.is(res.status, 200);
  assert.is((await res.json()).mustChange, false);
  const renewed = cookieOf(res)!;
  assert.ok(renewed && renewed !== cookie, 'a new session id after the change');
  assert.is((await f.req('GET', '/status', { cookie })).status, 401, 'the old id is gone');
  assert.is((await f.req('GET', '/status', { cookie: renewed })).status, 200);
  assert.is(f.audit.list({ action: 'auth.password' })[0].result, 'ok');
  assert.is((await f.req('POST', '/auth/login', { body: { username: 'fresh', password: 'brand-new-password' } })).status, 200);
});

test('100 wrong logins from one address end in 429 with Retry-After; another address is not affected', async () => {
  const statuses: number[] = [];
  let last!: Response;
  for (let i = 0; i < 100; i++) {
    last = await f.req('POST', '/auth/login', { body: { username: 'admin', password: `guess-${i}` }, source: '203.0.113.66' });
    statuses.push(last.status);
  }
  assert.is(last.status, 429);
  assert.ok(statuses.filter((s) => s === 401).length <= 10, `at most a few guesses: ${statuses.filter((s) => s === 401).length}`);
  const retry = Number(last.headers.get('retry-after'));
  assert.ok(retry >= 1, `Retry-After ${retry}`);
  assert.is((await last.json()).error.code, 'throttled');
  // even the right password waits while the address is blocked
  const right = await f.req('POST', '/auth/login', { body: { username: 'admin', password: PASSWORDS.admin }, source: '203.0.113.66' });
  assert.is(right.status, 429);
  assert.ok(f.audit.list({ action: 'auth.login', result: 'throttled' }).length >= 1, 'throttling is audited');
  // the real admin elsewhere logs in
  assert.is((await f.req('POST', '/auth/login', { body: { username: 'admin', password: PASSWORDS.admin }, source: '192.0.2.99' })).status, 200);
  // and after the block, the address may try again
  f.clock.now += (retry + 1) * 1000;
  assert.is((await f.req('POST', '/auth/login', { body: { username: 'admin', password: PASSWORDS.admin }, source: '203.0.113.66' })).status, 200);
});

test('users: admin creates (201), lists and deletes; duplicates 409; cannot delete oneself', async () => {
  const cookie = await f.login('admin');
  let res = await f.req('POST', '/users', { cookie, body: { username: 'carol', password: 'carol-password-1', role: 'viewer' } });
  assert.is(res.status, 201);
  assert.equal(await res.json(), { username: 'carol', role: 'viewer', mustChange: false, createdAt: (await (await f.req('GET', '/users', { cookie })).json()).find((u: { username: string }) => u.username === 'carol').createdAt });
  res = await f.req('POST', '/users', { cookie, body: { username: 'carol', password: 'carol-password-1', role: 'viewer' } });
  assert.is(res.status, 409);
  res = await f.req('POST', '/users', { cookie, body: { username: 'Bad Name', password: 'short', role: 'root' } });
  assert.is(res.status, 422);
  assert.equal((await res.json()).error.details.map((d: { path: string }) => d.path).sort(), ['/password', '/role', '/username']);
  const users = await (await f.req('GET', '/users', { cookie })).json();
  assert.ok(users.every((u: Record<string, unknown>) => !('password_hash' in u) && !('passwordHash' in u)));
  assert.is((await f.req('DELETE', '/users/admin', { cookie, body: {} })).status, 409);
  assert.is((await f.req('DELETE', '/users/nobody', { cookie, body: {} })).status, 404);
  const carol = await f.login('carol', 'carol-password-1');
  assert.is((await f.req('DELETE', '/users/carol', { cookie, body: {} })).status, 200);
  assert.is((await f.req('GET', '/status', { cookie: carol })).status, 401, "a deleted user's session ends");
  const entries = f.audit.list({ username: 'admin' }).map((e) => `${e.action} ${e.target} ${e.result}`);
  assert.ok(entries.includes('user.create carol ok'), entries.join('\n'));
  assert.ok(entries.includes('user.delete carol ok'), entries.join('\n'));
});

test.run();
