/** Address parsing and normalisation shared by validation, the compiler, blocks and trace. */
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  /** Canonical text of the network address (host bits cleared). */
  address: string;
  /** Prefix length; 32 or 128 for a single address. */
  length: number;
  /** Canonical text: a bare address for full-length prefixes, else address/length. */
  text: string;
  /** Network address as a bigint, for containment checks. */
  value: bigint;
}

function toBigInt(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function fromBigInt(v: bigint, family: Family): string {
  const n = family === 4 ? 4 : 16;
  const bytes: number[] = [];
  for (let i = 0; i < n; i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

const V4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;
const V6_RE = /^[0-9A-Fa-f:.]+$/;

/** Parse an IPv4/IPv6 address or CIDR; host bits are cleared. Returns undefined if it is neither. */
export function parsePrefix(input: string): Prefix | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined;
  const slash = input.indexOf('/');
  const addrPart = slash === -1 ? input : input.slice(0, slash);
  const lenPart = slash === -1 ? undefined : input.slice(slash + 1);
  if (!(V4_RE.test(addrPart) || (addrPart.includes(':') && V6_RE.test(addrPart)))) return undefined;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    if (V4_RE.test(addrPart)) {
      if (!ipaddr.IPv4.isValidFourPartDecimal(addrPart)) return undefined;
      addr = ipaddr.IPv4.parse(addrPart);
    } else {
      if (addrPart.includes('%')) return undefined;
      addr = ipaddr.IPv6.parse(addrPart);
    }
  } catch {
    return undefined;
  }
  const family: Family = addr.kind() === 'ipv4' ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let length = max;
  if (lenPart !== undefined) {
    if (!/^\d{1,3}$/.test(lenPart)) return undefined;
    length = Number(lenPart);
    if (length > max) return undefined;
  }
  const raw = toBigInt(addr.toByteArray());
  const hostBits = BigInt(max - length);
  const value = (raw >> hostBits) << hostBits;
  const address = fromBigInt(value, family);
  return { family, address, length, value, text: length === max ? address : `${address}/${length}` };
}

/** Parse a single address (no prefix). */
export function parseAddress(input: string): Prefix | undefined {
  if (typeof input !== 'string' || input.includes('/')) return undefined;
  return parsePrefix(input);
}

/** An interface address keeps its host part: "192.0.2.1/24" → address 192.0.2.1, network 192.0.2.0/24. */
export function parseInterfaceAddress(input: string): { host: Prefix; network: Prefix } | undefined {
  const slash = input.indexOf('/');
  if (slash === -1) return undefined;
  const host = parseAddress(input.slice(0, slash));
  const network = parsePrefix(input);
  if (!host || !network || host.family !== network.family) return undefined;
  return { host, network };
}

export function contains(net: Prefix, addr: Prefix): boolean {
  if (net.family !== addr.family || addr.length < net.length) return false;
  const max = net.family === 4 ? 32 : 128;
  const shift = BigInt(max - net.length);
  return addr.value >> shift === net.value >> shift;
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  return contains(a, b) || contains(b, a);
}
