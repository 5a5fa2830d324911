/**
 * Enrollment (SPEC §6): the MSSP's bundle `{broker, tenant, deviceId, ca, cert, key, signingKeys}` is checked
 * (shape, names, the certificate chains to the CA, the key matches the certificate, the CN is `tenant/deviceId`)
 * and installed under DATA/sync, readable by root only.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { RampartError, pointer } from '../core/errors.ts';
import { keyIdOf, type SigningKey } from './envelope.ts';

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const pem = (label: RegExp) => z.string().max(64 * 1024).regex(label, { error: 'must be PEM' });

export const BundleSchema = z.strictObject({
  broker: z.string().regex(/^mqtts:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}\/?$/, { error: 'must be mqtts://HOST:PORT' }),
  tenant: z.string().regex(NAME, { error: 'must be a name' }),
  deviceId: z.string().regex(NAME, { error: 'must be a name' }),
  ca: pem(/-----BEGIN CERTIFICATE-----/),
  cert: pem(/-----BEGIN CERTIFICATE-----/),
  key: pem(/-----BEGIN [A-Z ]*PRIVATE KEY-----/),
  signingKeys: z
    .array(z.strictObject({ keyId: z.string().min(1).max(64), publicKey: pem(/-----BEGIN PUBLIC KEY-----/) }))
    .min(1)
    .max(16),
});

export type Bundle = z.infer<typeof BundleSchema>;

/** Parse and check a bundle; a RampartError with JSON-pointer problems when it is not acceptable. */
export function parseBundle(input: unknown): Bundle {
  let doc = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    try {
      doc = JSON.parse(input.toString());
    } catch (err) {
      throw RampartError.invalid([{ path: '', message: `not JSON: ${(err as Error).message}` }], 'invalid enrollment bundle');
    }
  }
  const r = BundleSchema.safeParse(doc);
  if (!r.success) {
    throw RampartError.invalid(
      r.error.issues.map((i) => ({ path: pointer(i.path as (string | number)[]), message: i.message })),
      'invalid enrollment bundle',
    );
  }
  const b = r.data;
  const problems: { path: string; message: string }[] = [];
  let cert: X509Certificate | undefined;
  let ca: X509Certificate | undefined;
  try {
    ca = new X509Certificate(b.ca);
  } catch {
    problems.push({ path: '/ca', message: 'not a readable certificate' });
  }
  try {
    cert = new X509Certificate(b.cert);
  } catch {
    problems.push({ path: '/cert', message: 'not a readable certificate' });
  }
  if (ca && cert) {
    if (!cert.verify(ca.publicKey)) problems.push({ path: '/cert', message: 'not signed by the bundle CA' });
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
    if (cn !== `${b.tenant}/${b.deviceId}`) problems.push({ path: '/cert', message: `certificate CN is ${JSON.stringify(cn)}, expected "${b.tenant}/${b.deviceId}"` });
    if (Date.parse(cert.validTo) < Date.now()) problems.push({ path: '/cert', message: `certificate expired ${cert.validTo}` });
  }
  try {
    const key = createPrivateKey(b.key);
    if (cert && !cert.checkPrivateKey(key)) problems.push({ path: '/key', message: 'does not match the certificate' });
  } catch {
    problems.push({ path: '/key', message: 'not a readable private key' });
  }
  b.signingKeys.forEach((k, i) => {
    try {
      const pub = createPublicKey(k.publicKey);
      if (pub.asymmetricKeyType !== 'ed25519') problems.push({ path: `/signingKeys/${i}/publicKey`, message: 'must be an Ed25519 key' });
      else if (keyIdOf(pub) !== k.keyId) problems.push({ path: `/signingKeys/${i}/keyId`, message: 'does not match the key (first 16 hex digits of SHA-256 of its SPKI)' });
    } catch {
      problems.push({ path: `/signingKeys/${i}/publicKey`, message: 'not a readable public key' });
    }
  });
  if (problems.length) throw RampartError.invalid(problems, 'invalid enrollment bundle');
  return b;
}

export function syncDir(dataDir: string): string {
  return join(dataDir, 'sync');
}

/** Install a checked bundle under DATA/sync (directory 0700, files 0600), replacing an earlier one atomically. */
export function installBundle(dataDir: string, input: unknown): Bundle {
  const b = parseBundle(input);
  const dir = syncDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = join(dir, `bundle.json.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(b, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, join(dir, 'bundle.json'));
  return b;
}

/** The installed bundle, or undefined when the appliance is not enrolled. */
export function loadBundle(dataDir: string): Bundle | undefined {
  const file = join(syncDir(dataDir), 'bundle.json');
  if (!existsSync(file)) return undefined;
  return parseBundle(readFileSync(file, 'utf8'));
}

export function signingKeys(b: Bundle): SigningKey[] {
  return b.signingKeys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));
}
