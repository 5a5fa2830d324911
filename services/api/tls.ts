/**
 * The API's TLS certificate: self-signed, made with the `openssl` CLI on first start and kept in DATA/tls
 * (cert.pem, key.pem mode 0600). An existing pair is reused while it is valid, its key matches and it names the
 * listen address; otherwise a new one is made. EC P-256, CN = the host name, SAN = host name and listen address,
 * 825 days (the longest validity clients accept).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import type { Logger } from '../core/log.ts';
import { RampartError } from '../core/errors.ts';
import { run } from '../host/exec.ts';

export const CERT_DAYS = 825;

export interface TlsMaterial {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
  created: boolean;
}

/** A host name fit for a certificate (letters, digits, dots, hyphens), else 'rampart'. */
export function certHostname(name = osHostname()): string {
  return /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(name) ? name.toLowerCase() : 'rampart';
}

const UNSPECIFIED = new Set(['0.0.0.0', '::', '']);

function subjectAltNames(listenHost: string, name: string): string[] {
  const alt = new Set<string>([`DNS:${name}`]);
  if (!UNSPECIFIED.has(listenHost)) {
    if (isIP(listenHost)) alt.add(`IP:${listenHost}`);
    else if (/^[A-Za-z0-9.-]{1,253}$/.test(listenHost)) alt.add(`DNS:${listenHost.toLowerCase()}`);
  }
  return [...alt];
}

/** Why an existing pair cannot be used, or undefined when it can. */
function unusable(cert: string, key: string, listenHost: string): string | undefined {
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
    if (!x.checkPrivateKey(createPrivateKey(key))) return 'the key does not match the certificate';
  } catch (err) {
    return `cannot read it: ${(err as Error).message}`;
  }
  if (Date.parse(x.validTo) < Date.now() + 24 * 3600 * 1000) return 'it expires within a day';
  if (Date.parse(x.validFrom) > Date.now() + 3600 * 1000) return 'it is not valid yet';
  if (!UNSPECIFIED.has(listenHost)) {
    const covered = isIP(listenHost) ? x.checkIP(listenHost) : x.checkHost(listenHost);
    if (!covered) return `it does not name the listen address ${listenHost}`;
  }
  return undefined;
}

/** The certificate and key in `dir`, made (or remade) when needed. */
export async function ensureCertificate(dir: string, listenHost: string, log?: Logger): Promise<TlsMaterial> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath, 'utf8');
    const key = readFileSync(keyPath, 'utf8');
    const why = unusable(cert, key, listenHost);
    if (!why) {
      chmodSync(keyPath, 0o600);
      return { cert, key, certPath, keyPath, created: false };
    }
    log?.warn({ certPath, reason: why }, 'making a new TLS certificate');
  }
  const name = certHostname();
  const tmpCert = join(dir, `.cert.${process.pid}.pem`);
  const tmpKey = join(dir, `.key.${process.pid}.pem`);
  try {
    await run(
      'openssl',
      [
        'req', '-x509', '-nodes',
        '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
        '-keyout', tmpKey, '-out', tmpCert,
        '-days', String(CERT_DAYS),
        '-subj', `/CN=${name}`,
        '-addext', `subjectAltName=${subjectAltNames(listenHost, name).join(',')}`,
        '-addext', 'extendedKeyUsage=serverAuth',
      ],
      { timeoutMs: 60_000 },
    );
    chmodSync(tmpKey, 0o600);
    chmodSync(tmpCert, 0o644);
    renameSync(tmpKey, keyPath);
    renameSync(tmpCert, certPath);
  } finally {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCert, { force: true });
  }
  const cert = readFileSync(certPath, 'utf8');
  const x = new X509Certificate(cert);
  log?.info({ certPath, subjectAltName: x.subjectAltName, fingerprint256: x.fingerprint256, validTo: x.validTo }, 'made a self-signed TLS certificate');
  return { cert, key: readFileSync(keyPath, 'utf8'), certPath, keyPath, created: true };
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
  subjectAltName: string;
}

export function certificateInfo(cert: string): CertificateInfo {
  const x = new X509Certificate(cert);
  return {
    subject: x.subject,
    issuer: x.issuer,
    validFrom: new Date(x.validFrom).toISOString(),
    validTo: new Date(x.validTo).toISOString(),
    fingerprint256: x.fingerprint256,
    subjectAltName: x.subjectAltName ?? '',
  };
}

/**
 * Replace the pair in `dir` with an uploaded certificate (PEM, chain allowed) and key: refused with a problem when
 * the key does not match, it is expired or not yet valid, or it does not name the listen address. Written
 * atomically, the key 0600.
 */
export function installCertificate(dir: string, listenHost: string, cert: string, key: string): TlsMaterial {
  const why = unusable(cert, key, listenHost);
  if (why) throw RampartError.invalid([{ path: '/cert', message: `certificate not usable: ${why}` }], `certificate not usable: ${why}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const tmpCert = join(dir, `.upload-cert.${process.pid}.pem`);
  const tmpKey = join(dir, `.upload-key.${process.pid}.pem`);
  try {
    writeFileSync(tmpKey, key, { mode: 0o600 });
    writeFileSync(tmpCert, cert, { mode: 0o644 });
    renameSync(tmpKey, keyPath);
    renameSync(tmpCert, certPath);
  } finally {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCert, { force: true });
  }
  return { cert, key, certPath, keyPath, created: false };
}
