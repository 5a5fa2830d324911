/** Secrets of the configuration document: redaction, restoring markers from the running version, diffs (golden cases). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Config } from '../../services/core/schema.ts';
import { validateConfig } from '../../services/core/validate.ts';
import {
  SECRET_CHANGED_MARKER as CHANGED,
  SECRET_MARKER as S,
  SECRET_PATHS,
  isSecretPointer,
  redactForDiff,
  redactSecrets,
  restoreSecrets,
} from '../../services/core/secrets.ts';

const user = (name: string, auth: string, priv: string) => ({ name, auth: { protocol: 'sha256', key: auth }, priv: { protocol: 'aes', key: priv } });

/** A running document with every kind of secret. */
function running() {
  return {
    schema: 1,
    firewall: { blocklists: [{ name: 'big', entries: ['192.0.2.1', '192.0.2.2'] }] },
    snmp: {
      enabled: true,
      communities: [
        { name: 'c-public-1', sources: ['10.0.0.0/8'] },
        { name: 'c-mgmt-2', sources: ['192.0.2.7', '192.0.2.8'] },
      ],
      users: [user('alice', 'alice-auth-key', 'alice-priv-key'), user('bob', 'bob-auth-key1', 'bob-priv-key1')],
      targets: [
        { host: '192.0.2.50', version: 'v2c', community: 'trap-one' },
        { host: '192.0.2.51', port: 1162, version: 'v3', user: 'alice' },
      ],
    },
    telemetry: { prometheus: { token: 'prometheus-token-0123456789' } },
  };
}

const SECRETS = ['c-public-1', 'c-mgmt-2', 'alice-auth-key', 'alice-priv-key', 'bob-auth-key1', 'bob-priv-key1', 'trap-one', 'prometheus-token-0123456789'];

test('the list of secret paths covers every password, key, token and community of the schema', () => {
  assert.equal([...SECRET_PATHS], ['/snmp/communities/*/name', '/snmp/users/*/auth/key', '/snmp/users/*/priv/key', '/snmp/targets/*/community', '/telemetry/prometheus/token']);
  // Every string in the fixture that is a secret sits at one of the paths, and the fixture is a valid document.
  assert.ok(Config.safeParse(running()).success);
  assert.ok(isSecretPointer('/snmp/users/1/priv/key'));
  assert.not.ok(isSecretPointer('/snmp/users/1/name'));
  assert.not.ok(isSecretPointer('/snmp/users/x/auth/key'));
});

test('redactSecrets: golden document; the input is unchanged and the sections without secrets are shared', () => {
  const doc = running();
  const before = JSON.stringify(doc);
  const red = redactSecrets(doc);
  assert.equal(red.snmp, {
    enabled: true,
    communities: [
      { name: S, sources: ['10.0.0.0/8'] },
      { name: S, sources: ['192.0.2.7', '192.0.2.8'] },
    ],
    users: [user('alice', S, S), user('bob', S, S)],
    targets: [
      { host: '192.0.2.50', version: 'v2c', community: S },
      { host: '192.0.2.51', port: 1162, version: 'v3', user: 'alice' },
    ],
  });
  assert.equal(red.telemetry, { prometheus: { token: S } });
  const text = JSON.stringify(red);
  for (const s of SECRETS) assert.not.ok(text.includes(s), `${s} is not in the redacted document`);
  assert.is(JSON.stringify(doc), before, 'the input is not changed');
  assert.is(red.firewall, doc.firewall, 'no copy of what holds no secret');
  // Absent secrets stay absent; non-documents pass through.
  assert.equal(redactSecrets({ schema: 1, telemetry: {} }), { schema: 1, telemetry: {} });
  assert.is(redactSecrets(null), null);
  assert.is(redactSecrets('x'), 'x');
});

test('restoreSecrets: the redacted document comes back whole, with one field changed', () => {
  const red = redactSecrets(running()) as ReturnType<typeof running>;
  red.snmp.communities[1].sources.push('192.0.2.9'); // changed key, same length: matched by position
  const { document, problems } = restoreSecrets(red, running());
  assert.equal(problems, []);
  const want = running();
  want.snmp.communities[1].sources.push('192.0.2.9');
  assert.equal(document, want);
});

test('restoreSecrets: users matched by name after a reorder and a removal; a new value is kept', () => {
  const red = redactSecrets(running()) as ReturnType<typeof running>;
  red.snmp.users = [red.snmp.users[1], user('carol', 'carol-auth-key', S)];
  const { document, problems } = restoreSecrets(red, running());
  assert.equal(problems, [{ path: '/snmp/users/1/priv/key', message: 'secret not set: enter a value' }]);
  assert.equal(document.snmp.users[0], user('bob', 'bob-auth-key1', 'bob-priv-key1'));
  assert.equal(document.snmp.users[1].auth.key, 'carol-auth-key');
  // Reordered only: each keeps its own keys.
  const red2 = redactSecrets(running()) as ReturnType<typeof running>;
  red2.snmp.users.reverse();
  assert.equal(restoreSecrets(red2, running()).document.snmp.users, [...running().snmp.users].reverse());
});

test('restoreSecrets: communities matched by their sources; a removed one never lends its string', () => {
  // The first community removed: the second keeps its own string (same sources), not the one at its new index.
  const red = redactSecrets(running()) as ReturnType<typeof running>;
  red.snmp.communities.shift();
  let r = restoreSecrets(red, running());
  assert.equal(r.problems, []);
  assert.equal(r.document.snmp.communities, [{ name: 'c-mgmt-2', sources: ['192.0.2.7', '192.0.2.8'] }]);
  // Sources as a set: order and duplicates do not matter.
  red.snmp.communities[0].sources = ['192.0.2.8', '192.0.2.7', '192.0.2.8'];
  assert.is(restoreSecrets(red, running()).document.snmp.communities[0].name, 'c-mgmt-2');
  // Removed and the other's sources changed: no counterpart (not by position after a removal).
  red.snmp.communities[0].sources = ['198.51.100.0/24'];
  r = restoreSecrets(red, running());
  assert.equal(r.problems, [{ path: '/snmp/communities/0/name', message: 'secret not set: enter a value' }]);
  assert.is(r.document.snmp.communities[0].name, S, 'left as it was');
  // Swapped: each by its sources.
  const red2 = redactSecrets(running()) as ReturnType<typeof running>;
  red2.snmp.communities.reverse();
  assert.equal(restoreSecrets(red2, running()).document.snmp.communities.map((c) => c.name), ['c-mgmt-2', 'c-public-1']);
});

test('restoreSecrets: targets by host and port; a target that did not have a community; the token', () => {
  const red = redactSecrets(running()) as ReturnType<typeof running>;
  red.snmp.targets = [{ host: '192.0.2.51', port: 1162, version: 'v2c', community: S } as never, { host: '192.0.2.50', port: 162, version: 'v2c', community: S } as never];
  const r = restoreSecrets(red, running());
  assert.equal(r.problems, [{ path: '/snmp/targets/0/community', message: 'secret not set: enter a value' }]);
  assert.is(r.document.snmp.targets[1].community, 'trap-one', 'port 162 is the default');
  // Nothing running: every marker is a problem; the token too.
  const none = restoreSecrets(redactSecrets(running()), undefined);
  assert.equal(none.problems.map((p) => p.path), [
    '/telemetry/prometheus/token',
    '/snmp/communities/0/name',
    '/snmp/communities/1/name',
    '/snmp/users/0/auth/key',
    '/snmp/users/0/priv/key',
    '/snmp/users/1/auth/key',
    '/snmp/users/1/priv/key',
    '/snmp/targets/0/community',
  ]);
  // The diff marker is never a value.
  const d = running();
  d.telemetry.prometheus.token = CHANGED;
  assert.equal(restoreSecrets(d, running()).problems.map((p) => p.path), ['/telemetry/prometheus/token']);
  // A document without markers comes back equal.
  assert.equal(restoreSecrets(running(), undefined), { document: running(), problems: [] });
});

test('redactForDiff: both sides redacted; a changed secret says so, an unchanged one does not', () => {
  const a = running();
  const b = running();
  b.snmp.users.reverse();
  b.snmp.users[0].priv.key = 'bob-new-priv-key';
  b.snmp.communities.shift();
  b.snmp.communities.push({ name: 'c-new-3', sources: ['203.0.113.0/24'] });
  b.telemetry.prometheus.token = 'another-token-0123456789';
  const d = redactForDiff(a, b);
  assert.equal(d.changed, ['/telemetry/prometheus/token', '/snmp/communities/1/name', '/snmp/users/0/priv/key']);
  assert.equal(d.to.snmp.users[0], user('bob', S, CHANGED));
  assert.equal(d.to.snmp.users[1], user('alice', S, S));
  assert.equal(d.to.snmp.communities.map((c) => c.name), [S, CHANGED]);
  assert.is(d.to.telemetry.prometheus.token, CHANGED);
  assert.equal(d.from, redactSecrets(a));
  const text = JSON.stringify(d);
  for (const s of [...SECRETS, 'bob-new-priv-key', 'c-new-3', 'another-token-0123456789']) assert.not.ok(text.includes(s), s);
  assert.equal(redactForDiff(a, running()).changed, [], 'equal documents: nothing changed');
});

test('validateConfig refuses a marker left in a document, whatever path it came by (local validate, MSSP)', () => {
  const d = running();
  assert.ok(validateConfig(d).ok, 'the document is valid with its secrets');
  d.snmp.communities[1].name = S;
  d.snmp.users[0].auth.key = S; // "(secret)" has 8 characters: a valid key for the schema alone
  d.snmp.targets[0].community = CHANGED.replace(' ', '');
  const r = validateConfig(d);
  assert.is(r.ok, false);
  assert.equal(r.problems.slice(0, 2), [
    { path: '/snmp/communities/1/name', message: 'secret not set: enter a value' },
    { path: '/snmp/users/0/auth/key', message: 'secret not set: enter a value' },
  ]);
  assert.not.ok(r.problems.some((p) => p.path === '/snmp/targets/0/community'), 'only the markers themselves');
});

test('restoreSecrets: the running document given as a function is read only when a marker needs it, and once', () => {
  let reads = 0;
  const lazy = () => (reads++, running());
  const plain = running();
  assert.equal(restoreSecrets(plain, lazy), { document: plain, problems: [] });
  assert.is(reads, 0, 'no marker: the running document is not read');
  const red = redactSecrets(running()) as ReturnType<typeof running>;
  assert.equal(restoreSecrets(red, lazy), restoreSecrets(red, running()));
  assert.is(reads, 1, 'markers in scalars and lists: read once');
});

test.run();
