/**
 * Who may talk to the agent, decided on the message header before the agent library parses anything:
 * v2c only with a configured community from one of its allowed source networks; v3 only for a configured user,
 * at its security level (authPriv), for this engine, within the time window of RFC 3414 §3.2 (150 s). Requests
 * only (get, get-next, get-bulk): the agent is read-only. Everything else is dropped without an answer, so
 * communities and user names cannot be probed. The one exception is the v3 engine discovery (empty engine id and
 * user, no authentication), which must be answered with a report for any v3 manager to work.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { contains, parseAddress, parsePrefix, type Prefix } from '../core/net.ts';
import { PDU, type SnmpHeader } from './ber.ts';

export const TIME_WINDOW_SECONDS = 150;
const FLAG_AUTH = 1;
const FLAG_PRIV = 2;
const FLAG_REPORTABLE = 4;
const REQUESTS = new Set<number>([PDU.get, PDU.getNext, PDU.getBulk]);

export interface AccessPolicy {
  communities: { name: string; sources: Prefix[] }[];
  /** Configured v3 user names (all at authPriv). */
  users: Set<string>;
  engineId: Buffer;
  engineBoots: number;
  /** Seconds since the engine (the agent) started. */
  engineTime(): number;
}

export type Verdict = { ok: true; kind: 'request' | 'discovery' } | { ok: false; reason: string };

/** Addresses and CIDRs (already resolved from address objects) → prefixes; bad entries are skipped. */
export function parseSources(sources: string[]): Prefix[] {
  const out: Prefix[] = [];
  for (const s of sources) {
    const p = parsePrefix(s) ?? parseAddress(s);
    if (p) out.push(p);
  }
  return out;
}

/** The sender's address as the socket reports it (IPv4-mapped IPv6 reduced to IPv4). */
export function sourcePrefix(address: string): Prefix | undefined {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return parseAddress(m ? m[1] : address.replace(/%.*$/, ''));
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function decide(h: SnmpHeader, source: string, policy: AccessPolicy): Verdict {
  if (h.version === 0) return { ok: false, reason: 'SNMPv1 is not served' };
  if (h.version === 1) {
    if (!REQUESTS.has(h.pdu)) return { ok: false, reason: 'not a read request' };
    const src = sourcePrefix(source);
    if (!src) return { ok: false, reason: 'unparsable source address' };
    // Every community is compared (constant time), so the answer time does not tell which one nearly matched.
    let allowed = false;
    let known = false;
    for (const c of policy.communities) {
      const name = Buffer.from(c.name, 'utf8');
      if (sameBytes(name, h.community)) {
        known = true;
        if (c.sources.some((p) => p.family === src.family && contains(p, src))) allowed = true;
      }
    }
    if (!known) return { ok: false, reason: 'unknown community' };
    if (!allowed) return { ok: false, reason: 'source not allowed for this community' };
    return { ok: true, kind: 'request' };
  }
  if (h.version !== 3) return { ok: false, reason: 'unknown version' };
  if (h.securityModel !== 3) return { ok: false, reason: 'not the user-based security model' };
  if (h.pdu !== undefined && !REQUESTS.has(h.pdu)) return { ok: false, reason: 'not a read request' };
  if (h.engineId.length === 0) {
    // Discovery (RFC 3414 §4): answered with a report carrying the engine id, boots and time.
    if (h.user === '' && !(h.flags & FLAG_AUTH) && h.flags & FLAG_REPORTABLE && h.pdu === PDU.get) return { ok: true, kind: 'discovery' };
    return { ok: false, reason: 'no engine id' };
  }
  if (!sameBytes(h.engineId, policy.engineId)) return { ok: false, reason: 'not this engine' };
  if (!policy.users.has(h.user)) return { ok: false, reason: 'unknown user' };
  if ((h.flags & (FLAG_AUTH | FLAG_PRIV)) !== (FLAG_AUTH | FLAG_PRIV)) return { ok: false, reason: 'authPriv required' };
  // (0, 0) is a manager's first authenticated message, before it knows the engine's clock (time synchronisation).
  const sync = h.engineBoots === 0 && h.engineTime === 0;
  if (!sync && (h.engineBoots !== policy.engineBoots || Math.abs(h.engineTime - policy.engineTime()) > TIME_WINDOW_SECONDS)) {
    return { ok: false, reason: 'outside the time window' };
  }
  return { ok: true, kind: 'request' };
}

export interface ListenAddress {
  address: string;
  port: number;
  family: 4 | 6;
}

/** "ADDR", "ADDR:PORT", "[V6]:PORT" or "V6" → a listen address (default port 161); undefined when invalid. */
export function parseListenAddress(s: string): ListenAddress | undefined {
  let host = s;
  let port = 161;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(s);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(s);
  if (v6) {
    host = v6[1];
    if (v6[2]) port = Number(v6[2]);
  } else if (v4) {
    host = v4[1];
    if (v4[2]) port = Number(v4[2]);
  } else if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  if (host.includes(':')) return /^[0-9a-fA-F:.]+$/.test(host) ? { address: host, port, family: 6 } : undefined;
  return host.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o) ? { address: host, port, family: 4 } : undefined;
}

/** RFC 3411 engine id: the enterprise number with the top bit set, format 5 (octets), 8 random octets. */
export function newEngineId(enterprise = 32473): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE((0x80000000 | enterprise) >>> 0, 0);
  head[4] = 5;
  return Buffer.concat([head, randomBytes(8)]);
}
