import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Refusal,
  canonicalText,
  keyIdOf,
  openEnvelope,
  signEnvelope,
  verifyCommand,
  verifyDesired,
  type SigningKey,
} from '../../services/sync/envelope.ts';

const golden = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/sync/envelope-golden.json'), 'utf8'));
const seedKey = createPrivateKey({ key: Buffer.from('302e020100300506032b657004220420' + golden.seedHex, 'hex'), format: 'der', type: 'pkcs8' });

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, key: { keyId: keyIdOf(pem), publicKey: pem } as SigningKey };
}
const k1 = keyPair();
const k2 = keyPair();
const NOW = Date.parse('2026-06-01T00:00:00Z');
const who = { tenant: 'acme', device: 'fw-1' };
const desired = (over: Record<string, unknown> = {}) => ({ kind: 'desired', ...who, version: 5, issuedAt: '2026-05-31T23:00:00Z', config: { schema: 1 }, ...over });
const refused = (fn: () => unknown, reason: string) => {
  try {
    fn();
  } catch (err) {
    assert.instance(err, Refusal);
    assert.is((err as Refusal).reason, reason, (err as Error).message);
    return;
  }
  assert.unreachable(`expected a refusal (${reason})`);
};

test('Ed25519 of node:crypto matches RFC 8032 test vector 1', () => {
  assert.is(
    sign(null, Buffer.alloc(0), seedKey).toString('hex'),
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  );
  assert.is(createPublicKey(seedKey).export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
});

test('RFC 8785 canonical JSON: key order by UTF-16 units, ES number forms, no whitespace', () => {
  assert.is(canonicalText({ b: 1, a: [true, null, 'x'], '\u20ac': 1, '\r': 2, '1': 3 }), '{"\\r":2,"1":3,"a":[true,null,"x"],"b":1,"€":1}');
  assert.is(canonicalText([1e21, 1e-7, 0.000001, -0, 333333333.33333329, 4.5]), '[1e+21,1e-7,0.000001,0,333333333.3333333,4.5]');
  assert.is(canonicalText({ s: '\u0007\u2028"' }), '{"s":"\\u0007\u2028\\""}');
});

test('golden envelope: same key and payload, same canonical text and signature', () => {
  assert.is(canonicalText(golden.envelope.payload), golden.canonical);
  const keyId = keyIdOf(golden.publicKey);
  assert.is(keyId, golden.envelope.keyId);
  const env = signEnvelope(golden.envelope.payload, { keyId, privateKey: seedKey });
  assert.is(env.signature, golden.envelope.signature);
  const p = verifyDesired(JSON.stringify(golden.envelope), [{ keyId, publicKey: golden.publicKey }], { tenant: 'acme', device: 'fw-1', lastVersion: 6, now: NOW });
  assert.is(p.version, 7);
});

test('signature covers the canonical form, not the bytes: re-ordered keys still verify', () => {
  const env = signEnvelope(desired(), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  const reordered = { signature: env.signature, keyId: env.keyId, payload: Object.fromEntries(Object.entries(env.payload).reverse()) };
  assert.is(verifyDesired(JSON.stringify(reordered, null, 2), [k1.key], { ...who, lastVersion: 0, now: NOW }).version, 5);
});

test('forged: a changed payload or signature is refused', () => {
  const env = signEnvelope(desired(), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  const tampered = { ...env, payload: { ...env.payload, config: { schema: 1, firewall: {} } } };
  refused(() => verifyDesired(tampered, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'bad_signature');
  const sig = Buffer.from(env.signature, 'base64');
  sig[10] ^= 1;
  refused(() => verifyDesired({ ...env, signature: sig.toString('base64') }, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'bad_signature');
  refused(() => verifyDesired({ ...env, signature: 'AAAA' }, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'bad_signature');
  // Signed by another key but claiming k1's id.
  const other = signEnvelope(desired(), { keyId: k1.key.keyId, privateKey: k2.privateKey });
  refused(() => verifyDesired(other, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'bad_signature');
});

test('unknown key id is refused; any enrolled key is accepted', () => {
  const env = signEnvelope(desired(), { keyId: k2.key.keyId, privateKey: k2.privateKey });
  refused(() => verifyDesired(env, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'unknown_key');
  assert.is(verifyDesired(env, [k1.key, k2.key], { ...who, lastVersion: 0, now: NOW }).version, 5);
});

test('older or equal version is refused (anti-rollback)', () => {
  const env = signEnvelope(desired({ version: 5 }), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  refused(() => verifyDesired(env, [k1.key], { ...who, lastVersion: 5, now: NOW }), 'not_newer');
  refused(() => verifyDesired(env, [k1.key], { ...who, lastVersion: 9, now: NOW }), 'not_newer');
  assert.is(verifyDesired(env, [k1.key], { ...who, lastVersion: 4, now: NOW }).version, 5);
});

test('expired envelope and future issuedAt are refused', () => {
  const expired = signEnvelope(desired({ expiresAt: '2026-05-31T23:59:59Z' }), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  refused(() => verifyDesired(expired, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'expired');
  const future = signEnvelope(desired({ issuedAt: '2026-06-01T01:00:00Z' }), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  refused(() => verifyDesired(future, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'not_yet_valid');
  const fresh = signEnvelope(desired({ expiresAt: '2026-06-01T00:10:00Z' }), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  assert.is(verifyDesired(fresh, [k1.key], { ...who, lastVersion: 0, now: NOW }).version, 5);
});

test('an envelope for another device or tenant is refused', () => {
  const env = signEnvelope(desired({ device: 'fw-2' }), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  refused(() => verifyDesired(env, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'wrong_device');
  const t = signEnvelope(desired({ tenant: 'other' }), { keyId: k1.key.keyId, privateKey: k1.privateKey });
  refused(() => verifyDesired(t, [k1.key], { ...who, lastVersion: 0, now: NOW }), 'wrong_device');
});

test('malformed input is refused with reason malformed', () => {
  const opts = { ...who, lastVersion: 0, now: NOW };
  for (const raw of ['{', '', 'null', '[]', '"x"', '{"payload":{}}', '{"payload":1,"keyId":"a","signature":"AA=="}', '{"payload":{},"keyId":"a","signature":"not base64!"}']) {
    refused(() => verifyDesired(raw, [k1.key], opts), 'malformed');
  }
  const extra = { ...signEnvelope(desired(), { keyId: k1.key.keyId, privateKey: k1.privateKey }), more: 1 };
  refused(() => verifyDesired(extra, [k1.key], opts), 'malformed');
  for (const bad of [{ version: 0 }, { version: 1.5 }, { version: '6' }, { issuedAt: 'yesterday' }, { config: null }, { kind: 'cmd' }]) {
    const env = signEnvelope(desired(bad), { keyId: k1.key.keyId, privateKey: k1.privateKey });
    refused(() => verifyDesired(env, [k1.key], opts), 'malformed');
  }
});

test('commands: verified, expiring, typed', () => {
  const cmd = (over: Record<string, unknown> = {}) =>
    signEnvelope({ kind: 'cmd', ...who, id: 'c-1', type: 'block', args: { address: '203.0.113.9' }, issuedAt: '2026-05-31T23:59:00Z', notAfter: '2026-06-01T00:05:00Z', ...over }, { keyId: k1.key.keyId, privateKey: k1.privateKey });
  const c = verifyCommand(cmd(), [k1.key], { ...who, now: NOW });
  assert.is(c.id, 'c-1');
  assert.equal(c.args, { address: '203.0.113.9' });
  refused(() => verifyCommand(cmd({ notAfter: '2026-05-31T23:59:59Z' }), [k1.key], { ...who, now: NOW }), 'expired');
  refused(() => verifyCommand(cmd({ type: 'reboot' }), [k1.key], { ...who, now: NOW }), 'malformed');
  refused(() => verifyCommand(cmd({ id: 'a b' }), [k1.key], { ...who, now: NOW }), 'malformed');
  refused(() => verifyCommand(cmd({ kind: 'desired' }), [k1.key], { ...who, now: NOW }), 'malformed');
  refused(() => verifyCommand(cmd({ device: 'fw-9' }), [k1.key], { ...who, now: NOW }), 'wrong_device');
  // A desired envelope is not a command, and the other way round.
  refused(() => verifyDesired(cmd(), [k1.key], { ...who, lastVersion: 0, now: NOW }), 'malformed');
});

test('openEnvelope returns the payload of a valid envelope only', () => {
  const env = signEnvelope({ kind: 'x', n: 1 }, { keyId: k1.key.keyId, privateKey: k1.privateKey });
  assert.equal(openEnvelope(Buffer.from(JSON.stringify(env)), [k1.key]), { kind: 'x', n: 1 });
  assert.throws(() => signEnvelope({ a: 1 }, { keyId: 'x', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }));
});

test.run();
