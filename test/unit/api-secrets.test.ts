/**
 * Secrets through the API: every role reads "(secret)", never the value; a document read back with its markers
 * applies with the stored secrets kept; a marker without a running value is refused with its pointer, nothing changes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixture, rulesetOf, type Fixture } from '../helpers/api-fixture.ts';
import { labConfig } from '../helpers/daemon.ts';

let f: Fixture;
const cookies: Record<string, string> = {};
test.before(async () => {
  f = await fixture();
  for (const role of ['admin', 'operator', 'viewer']) cookies[role] = await f.login(role);
});
test.after(() => f.close());

const SECRETS = ['community-Zq81', 'auth-key-Xy7a', 'priv-key-Wv3b', 'trap-comm-9Tg', 'prom-token-0123456789abcdef'];

function withSecrets() {
  const doc = labConfig();
  doc.snmp = {
    enabled: false,
    communities: [
      { name: 'community-Zq81', sources: ['127.0.0.1'] },
      { name: 'community-2nd-Kp', sources: ['192.0.2.0/24'] },
    ],
    users: [{ name: 'nms', auth: { protocol: 'sha256', key: 'auth-key-Xy7a' }, priv: { protocol: 'aes', key: 'priv-key-Wv3b' } }],
    targets: [{ host: '192.0.2.50', version: 'v2c', community: 'trap-comm-9Tg' }],
  };
  doc.telemetry = { prometheus: { token: 'prom-token-0123456789abcdef' } };
  return doc;
}

const running = () => f.store.runningVersion()!.document as ReturnType<typeof withSecrets>;
const noSecret = (text: string, what: string) => {
  for (const s of [...SECRETS, 'community-2nd-Kp']) assert.not.ok(text.includes(s), `${what} shows ${s}`);
};

test('a marker with no running value is refused with its pointer; nothing is applied', async () => {
  const doc = withSecrets();
  doc.snmp.users[0].priv.key = '(secret)';
  const ruleset = await rulesetOf(f.host);
  let res = await f.req('POST', '/config', { cookie: cookies.admin, body: { config: doc } });
  assert.is(res.status, 422);
  const err = (await res.json()).error;
  assert.is(err.code, 'invalid_input');
  assert.equal(err.details, [{ path: '/config/snmp/users/0/priv/key', message: 'secret not set: enter a value' }]);
  assert.is(f.store.listVersions().length, 0, 'no version recorded');
  assert.is(await rulesetOf(f.host), ruleset, 'the kernel ruleset is unchanged');
  res = await f.req('POST', '/config/validate', { cookie: cookies.viewer, body: { config: doc } });
  const v = await res.json();
  assert.is(v.ok, false);
  assert.equal(v.problems.filter((p: { path: string }) => p.path === '/snmp/users/0/priv/key'), [{ path: '/snmp/users/0/priv/key', message: 'secret not set: enter a value' }]);
});

test('viewer, operator and admin read "(secret)" in /config, /config/versions/{v} and /config/diff', async () => {
  let res = await f.req('POST', '/config', { cookie: cookies.admin, body: { config: withSecrets(), message: 'with secrets' } });
  assert.is(res.status, 200, await res.clone().text());
  const v1 = (await res.json()).version;
  assert.is(running().snmp.communities[0].name, 'community-Zq81', 'the store holds the real value');
  for (const role of ['viewer', 'operator', 'admin']) {
    for (const path of ['/config', `/config/versions/${v1}`]) {
      res = await f.req('GET', path, { cookie: cookies[role] });
      assert.is(res.status, 200);
      const text = await res.text();
      noSecret(text, `${role} ${path}`);
      const doc = JSON.parse(text).document;
      assert.equal(doc.snmp.communities.map((c: { name: string }) => c.name), ['(secret)', '(secret)']);
      assert.equal([doc.snmp.users[0].auth.key, doc.snmp.users[0].priv.key, doc.snmp.targets[0].community], ['(secret)', '(secret)', '(secret)']);
      assert.is(doc.telemetry.prometheus.token, '(secret)');
      assert.is(doc.snmp.users[0].name, 'nms', 'what is not a secret is shown');
    }
  }
});

test('a document read back with its markers applies with the secrets kept; the diff says which secret changed', async () => {
  const before = running();
  // An operator reads the redacted document, changes one field and applies it back.
  let res = await f.req('GET', '/config', { cookie: cookies.operator });
  const { document, version: v1 } = await res.json();
  document.snmp.contact = 'noc@example.net';
  res = await f.req('POST', '/config/validate', { cookie: cookies.operator, body: { config: document } });
  assert.equal(await res.json(), { ok: true, problems: [] });
  res = await f.req('POST', '/config', { cookie: cookies.operator, body: { config: document, message: 'contact' } });
  assert.is(res.status, 200, await res.clone().text());
  const v2 = (await res.json()).version;
  const after = running();
  assert.is(after.snmp.contact, 'noc@example.net');
  assert.equal(after.snmp.communities, before.snmp.communities, 'communities kept');
  assert.equal(after.snmp.users, before.snmp.users, 'keys kept');
  assert.equal(after.snmp.targets, before.snmp.targets);
  assert.equal(after.telemetry, before.telemetry);

  // Then the first community is removed and the priv key replaced: the second community keeps its own string.
  document.snmp.communities.shift();
  document.snmp.users[0].priv.key = 'priv-key-NEW-77';
  res = await f.req('POST', '/config', { cookie: cookies.admin, body: { config: document } });
  assert.is(res.status, 200, await res.clone().text());
  const v3 = (await res.json()).version;
  assert.equal(running().snmp.communities, [{ name: 'community-2nd-Kp', sources: ['192.0.2.0/24'] }]);
  assert.is(running().snmp.users[0].priv.key, 'priv-key-NEW-77');
  assert.is(running().snmp.users[0].auth.key, 'auth-key-Xy7a');

  res = await f.req('GET', `/config/diff?from=${v1}&to=${v2}`, { cookie: cookies.viewer });
  assert.is(res.status, 200);
  let d = await res.json();
  assert.equal(d.secretsChanged, []);
  res = await f.req('GET', `/config/diff?from=${v2}&to=${v3}`, { cookie: cookies.viewer });
  const text = await res.text();
  noSecret(text, 'diff');
  assert.not.ok(text.includes('priv-key-NEW-77'));
  d = JSON.parse(text);
  assert.equal([d.from.version, d.to.version], [v2, v3]);
  assert.equal(d.secretsChanged, ['/snmp/users/0/priv/key']);
  assert.is(d.to.document.snmp.users[0].priv.key, '(secret, changed)');
  assert.is(d.from.document.snmp.users[0].priv.key, '(secret)');
  assert.is((await f.req('GET', `/config/diff?from=${v2}&to=999`, { cookie: cookies.viewer })).status, 404);

  // The diff marker is not a value.
  document.snmp.users[0].auth.key = '(secret, changed)';
  res = await f.req('POST', '/config', { cookie: cookies.admin, body: { config: document } });
  assert.is(res.status, 422);
  assert.equal((await res.json()).error.details.map((p: { path: string }) => p.path), ['/config/snmp/users/0/auth/key']);
  assert.is(f.store.runningVersion()!.version, v3, 'nothing applied');

  // The audit log never holds a secret.
  noSecret(JSON.stringify(f.audit.list({})), 'the audit log');
  res = await f.req('GET', '/audit', { cookie: cookies.admin });
  noSecret(await res.text(), 'GET /audit');
});

test.run();
