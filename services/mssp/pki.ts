/**
 * Certificates of the reference MSSP tool: a CA, the broker's and the backend's certificates, one client certificate
 * per device (CN `tenant/device`, which Mosquitto uses as the user name), and the Ed25519 config-signing key.
 * Node 20 cannot create X.509 certificates, so the openssl CLI does it (through host/exec.ts, argv only, validated
 * names only).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { run } from '../host/exec.ts';
import { RampartError } from '../core/errors.ts';
import { keyIdOf } from '../sync/envelope.ts';

const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function checkName(value: string, what: string): string {
  if (!NAME_RE.test(value)) throw RampartError.invalid([{ path: `/${what}`, message: 'must be a name: lower-case letter, then up to 31 of a-z 0-9 _ -' }]);
  return value;
}

export function checkHost(host: string): string {
  if (!isIP(host) && !HOST_RE.test(host)) throw RampartError.invalid([{ path: '/broker', message: `not a host name or IP address: ${JSON.stringify(host)}` }]);
  return host;
}

export interface Issued {
  key: string;
  cert: string;
}

const DAYS = '3650';

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-pki-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A self-signed CA (EC P-256). */
export async function makeCa(cn: string): Promise<Issued> {
  return withTemp(async (dir) => {
    const key = join(dir, 'ca.key');
    const cert = join(dir, 'ca.crt');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', DAYS, '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  });
}

/**
 * A certificate signed by the CA. `cn` may hold one `/` (device identities `tenant/device`), escaped for -subj.
 * `hosts` become subjectAltNames (server certificates).
 */
export async function issue(ca: Issued, cn: string, opts: { hosts?: string[]; server?: boolean } = {}): Promise<Issued> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,96}$/.test(cn)) throw new RampartError('invalid_input', `bad certificate name ${JSON.stringify(cn)}`);
  return withTemp(async (dir) => {
    const p = (f: string) => join(dir, f);
    writeFileSync(p('ca.key'), ca.key, { mode: 0o600 });
    writeFileSync(p('ca.crt'), ca.cert);
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${opts.server ? 'serverAuth' : 'clientAuth'}`,
      ...(opts.hosts?.length ? [`subjectAltName=${opts.hosts.map((h) => (isIP(checkHost(h)) ? `IP:${h}` : `DNS:${h}`)).join(',')}`] : []),
    ];
    // One openssl process: new key, signed by the CA (-CA implies -x509); a minimal config so that no default
    // extension section (v3_ca) sneaks in.
    writeFileSync(p('min.cnf'), '[req]\ndistinguished_name = dn\n[dn]\n');
    await run('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('k.pem'), '-out', p('c.pem'),
      '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-days', DAYS, '-config', p('min.cnf'), '-subj', `/CN=${cn.replace(/\//g, '\\/')}`,
      ...ext.flatMap((e) => ['-addext', e]),
    ]);
    return { key: readFileSync(p('k.pem'), 'utf8'), cert: readFileSync(p('c.pem'), 'utf8') };
  });
}

/** The Ed25519 config-signing key: PEM private key, PEM public key and its key id. */
export function makeSigningKey(): { keyId: string; privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { keyId: keyIdOf(pub), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: pub };
}
