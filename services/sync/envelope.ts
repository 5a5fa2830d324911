/**
 * Signed envelopes of the sync channel (SPEC §6): `{ payload, keyId, signature }`, the signature being Ed25519 over
 * the RFC 8785 (JCS) canonical JSON of `payload`. Pure code: signing, and verification that says why it refused.
 *
 * Two payload kinds travel in envelopes:
 * - desired state: `{ kind: 'desired', tenant, device, version, issuedAt, expiresAt?, config }`
 * - command:       `{ kind: 'cmd', tenant, device, id, type, args, issuedAt, notAfter }`
 * Tenant and device are inside the signed payload, so an envelope made for one appliance is refused by every other.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

// A CommonJS module whose export is the function itself (the typings describe it as an ES default export).
const canonicalize = ((canonicalizeModule as any).default ?? canonicalizeModule) as (input: unknown) => string | undefined;

export interface SigningKey {
  keyId: string;
  /** PEM (SPKI) Ed25519 public key. */
  publicKey: string;
}

export interface Envelope {
  payload: Record<string, unknown>;
  keyId: string;
  signature: string;
}

export type RefusalReason =
  | 'malformed'
  | 'unknown_key'
  | 'bad_signature'
  | 'wrong_device'
  | 'not_newer'
  | 'expired'
  | 'not_yet_valid'
  | 'invalid_config'
  | 'replayed';

/** Why an envelope (or what it carries) was refused; `reason` is machine-readable, the message is for people. */
export class Refusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

export const COMMAND_TYPES = ['block', 'unblock', 'confirm', 'rollback', 'sync'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export interface DesiredPayload {
  kind: 'desired';
  tenant: string;
  device: string;
  version: number;
  issuedAt: string;
  expiresAt?: string;
  config: unknown;
}

export interface CommandPayload {
  kind: 'cmd';
  tenant: string;
  device: string;
  id: string;
  type: CommandType;
  args: Record<string, unknown>;
  issuedAt: string;
  notAfter: string;
}

/** RFC 8785 canonical JSON text. Throws on values JSON cannot carry (undefined at top level, cycles). */
export function canonicalText(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Refusal('malformed', 'payload cannot be expressed as JSON');
  return text;
}

/** Key id of a public key: the first 16 hex digits of SHA-256 over its DER (SPKI) encoding. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signEnvelope(payload: Record<string, unknown>, key: { keyId: string; privateKey: string | KeyObject }): Envelope {
  const priv = typeof key.privateKey === 'string' ? createPrivateKey(key.privateKey) : key.privateKey;
  if (priv.asymmetricKeyType !== 'ed25519') throw new Error('signing key must be Ed25519');
  const signature = sign(null, Buffer.from(canonicalText(payload), 'utf8'), priv).toString('base64');
  return { payload, keyId: key.keyId, signature };
}

const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function time(value: unknown, name: string): number {
  if (typeof value !== 'string' || !ISO_RE.test(value) || Number.isNaN(Date.parse(value))) {
    throw new Refusal('malformed', `${name} must be an ISO 8601 time`);
  }
  return Date.parse(value);
}

/** Parse and check the signature of an envelope (text or object) against the enrolled keys. */
export function openEnvelope(raw: string | Buffer | unknown, keys: readonly SigningKey[]): Record<string, unknown> {
  let env: any = raw;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    if (raw.length > MAX_ENVELOPE_BYTES) throw new Refusal('malformed', 'envelope too large');
    try {
      env = JSON.parse(raw.toString());
    } catch (err) {
      throw new Refusal('malformed', `not JSON: ${(err as Error).message}`);
    }
  }
  if (!env || typeof env !== 'object' || Array.isArray(env)) throw new Refusal('malformed', 'envelope must be an object');
  const extra = Object.keys(env).filter((k) => !['payload', 'keyId', 'signature'].includes(k));
  if (extra.length) throw new Refusal('malformed', `unexpected envelope field ${extra[0]}`);
  if (!env.payload || typeof env.payload !== 'object' || Array.isArray(env.payload)) throw new Refusal('malformed', 'payload must be an object');
  if (typeof env.keyId !== 'string' || !env.keyId) throw new Refusal('malformed', 'keyId must be a string');
  if (typeof env.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(env.signature)) throw new Refusal('malformed', 'signature must be base64');
  const key = keys.find((k) => k.keyId === env.keyId);
  if (!key) throw new Refusal('unknown_key', `key ${JSON.stringify(env.keyId.slice(0, 64))} is not one of the enrolled signing keys`);
  const sig = Buffer.from(env.signature, 'base64');
  let ok = false;
  try {
    ok = sig.length === 64 && verify(null, Buffer.from(canonicalText(env.payload), 'utf8'), createPublicKey(key.publicKey), sig);
  } catch (err) {
    if (err instanceof Refusal) throw err;
    ok = false;
  }
  if (!ok) throw new Refusal('bad_signature', `signature does not verify with key ${key.keyId}`);
  return env.payload;
}

function checkTarget(p: Record<string, unknown>, kind: string, who: { tenant: string; device: string }): void {
  if (p.kind !== kind) throw new Refusal('malformed', `payload kind must be "${kind}"`);
  if (p.tenant !== who.tenant || p.device !== who.device) {
    throw new Refusal('wrong_device', `envelope is for ${String(p.tenant)}/${String(p.device)}, not ${who.tenant}/${who.device}`);
  }
}

export interface DesiredCheck {
  tenant: string;
  device: string;
  /** The last version applied from the MSSP (0: none): a desired state must be newer. */
  lastVersion: number;
  now?: number;
}

/** A verified desired-state envelope, or a Refusal saying why not. */
export function verifyDesired(raw: string | Buffer | unknown, keys: readonly SigningKey[], check: DesiredCheck): DesiredPayload {
  const p = openEnvelope(raw, keys);
  checkTarget(p, 'desired', check);
  if (!Number.isSafeInteger(p.version) || (p.version as number) < 1) throw new Refusal('malformed', 'version must be a positive integer');
  const issued = time(p.issuedAt, 'issuedAt');
  const now = check.now ?? Date.now();
  if (issued > now + 5 * 60_000) throw new Refusal('not_yet_valid', `issuedAt ${p.issuedAt} is in the future`);
  if (p.expiresAt !== undefined && time(p.expiresAt, 'expiresAt') <= now) throw new Refusal('expired', `expired at ${p.expiresAt}`);
  if (!('config' in p) || !p.config || typeof p.config !== 'object') throw new Refusal('malformed', 'config must be an object');
  if ((p.version as number) <= check.lastVersion) {
    throw new Refusal('not_newer', `version ${p.version} is not newer than the applied version ${check.lastVersion}`);
  }
  return p as unknown as DesiredPayload;
}

/** A verified, unexpired command envelope, or a Refusal. Replay (an id seen before) is the caller's to check. */
export function verifyCommand(raw: string | Buffer | unknown, keys: readonly SigningKey[], check: { tenant: string; device: string; now?: number }): CommandPayload {
  const p = openEnvelope(raw, keys);
  checkTarget(p, 'cmd', check);
  if (typeof p.id !== 'string' || !ID_RE.test(p.id)) throw new Refusal('malformed', 'id must be 1-128 of A-Z a-z 0-9 _ . : -');
  if (!COMMAND_TYPES.includes(p.type as CommandType)) throw new Refusal('malformed', `type must be one of ${COMMAND_TYPES.join(', ')}`);
  if (p.args !== undefined && (!p.args || typeof p.args !== 'object' || Array.isArray(p.args))) throw new Refusal('malformed', 'args must be an object');
  time(p.issuedAt, 'issuedAt');
  const notAfter = time(p.notAfter, 'notAfter');
  if (notAfter <= (check.now ?? Date.now())) throw new Refusal('expired', `expired at ${p.notAfter}`);
  return { ...(p as unknown as CommandPayload), args: (p.args as Record<string, unknown>) ?? {} };
}
