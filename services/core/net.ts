/** Address parsing and normalisation shared by validation, the compiler, blocks and trace. */

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

/** Parse dotted-quad IPv4 (no leading zeros) to a 32-bit number, or -1. */
export function parseV4(s: string): number {
  let value = 0;
  let parts = 0;
  let i = 0;
  const n = s.length;
  while (parts < 4) {
    const start = i;
    let octet = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || octet > 255 || (len > 1 && s.charCodeAt(start) === 48)) return -1;
    value = value * 256 + octet;
    parts++;
    if (parts < 4) {
      if (s.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === n ? value : -1;
}

/** Parse IPv6 text (with optional embedded IPv4 tail) to 8 groups, or undefined. One pass over the characters. */
function parseV6(s: string): number[] | undefined {
  const n = s.length;
  if (n < 2 || n > 45) return undefined;
  const groups: number[] = [];
  let gap = -1; // index in `groups` where "::" stands
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
    if (i === n) return [0, 0, 0, 0, 0, 0, 0, 0];
  }
  for (;;) {
    const start = i;
    let value = 0;
    while (i < n && i - start < 5) {
      const c = s.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      value = value * 16 + d;
      i++;
    }
    const len = i - start;
    if (i < n && s.charCodeAt(i) === 46) {
      // an embedded IPv4 tail ends the address
      if (groups.length > 6) return undefined;
      const v4 = parseV4(s.slice(start));
      if (v4 < 0) return undefined;
      groups.push(Math.floor(v4 / 65536), v4 % 65536);
      break;
    }
    if (len === 0 || len > 4) return undefined;
    groups.push(value);
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return undefined;
    i++;
    if (i < n && s.charCodeAt(i) === 58) {
      if (gap !== -1) return undefined;
      gap = groups.length;
      i++;
      if (i === n) break;
    } else if (i === n) return undefined; // a trailing single colon
    if (groups.length > 8) return undefined;
  }
  if (gap === -1) return groups.length === 8 ? groups : undefined;
  if (groups.length > 7) return undefined;
  const fill = 8 - groups.length;
  groups.splice(gap, 0, ...new Array(fill).fill(0));
  return groups;
}

/** The canonical (RFC 5952) text of a single IPv6 address, or undefined: parsePrefix's `text` without its value. */
export function canonicalV6(s: string): string | undefined {
  const g = parseV6(s);
  return g && formatV6(g);
}

/** RFC 5952 text of 8 groups: lower case, longest run (≥ 2) of zero groups as "::". */
function formatV6(g: number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += g[i].toString(16);
    if (i < 7) out += ':';
  }
  return out;
}

export const V4_MASKS = Array.from({ length: 33 }, (_, len) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0));

/** Parse an IPv4/IPv6 address or CIDR; host bits are cleared. Returns undefined if it is neither. */
export function parsePrefix(input: string): Prefix | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined;
  const slash = input.indexOf('/');
  const addrPart = slash === -1 ? input : input.slice(0, slash);
  let length: number | undefined;
  if (slash !== -1) {
    const lenPart = input.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenPart)) return undefined;
    length = Number(lenPart);
  }
  if (!addrPart.includes(':')) {
    const v = parseV4(addrPart);
    if (v < 0) return undefined;
    const len = length ?? 32;
    if (len > 32) return undefined;
    const net = (v & V4_MASKS[len]) >>> 0;
    const address = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}`;
    return { family: 4, address, length: len, value: BigInt(net), text: len === 32 ? address : `${address}/${len}` };
  }
  const g = parseV6(addrPart);
  if (!g) return undefined;
  const len = length ?? 128;
  if (len > 128) return undefined;
  for (let i = 0; i < 8; i++) {
    const bitsHere = Math.min(16, Math.max(0, len - i * 16));
    g[i] = bitsHere === 16 ? g[i] : bitsHere === 0 ? 0 : g[i] & ((0xffff << (16 - bitsHere)) & 0xffff);
  }
  let value = 0n;
  for (let i = 0; i < 8; i++) value = (value << 16n) | BigInt(g[i]);
  const address = formatV6(g);
  return { family: 6, address, length: len, value, text: len === 128 ? address : `${address}/${len}` };
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

/** Dotted-quad text of a 32-bit IPv4 value. */
/** The canonical text of an IPv6 address given as a 128-bit value. */
export function formatV6Value(v: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(16 * i)) & 0xffffn));
  return formatV6(g);
}

export function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * A list of addresses and prefixes (a blocklist) split by family and kind, parsed with as little allocation as a
 * list of hundreds of thousands of entries needs: a valid dotted quad is already canonical text, and IPv4 prefixes
 * are plain numbers. Single addresses keep their input order; prefixes are not yet sorted.
 */
export interface ParsedList {
  v4h: string[];
  /** Network values (host bits cleared) and prefix lengths, index by index. */
  v4n: { value: number; length: number }[];
  v6h: string[];
  v6n: Prefix[];
}

/** Parse list entries; `bad(j)` is told of each entry that is neither an address nor a CIDR. */
export function parseList(entries: readonly string[], bad?: (index: number) => void): ParsedList {
  const out: ParsedList = { v4h: [], v4n: [], v6h: [], v6n: [] };
  for (let j = 0; j < entries.length; j++) {
    const e = entries[j];
    if (typeof e === 'string' && e.length <= 18 && e.indexOf(':') === -1) {
      const slash = e.indexOf('/');
      if (slash === -1) {
        if (parseV4(e) >= 0) out.v4h.push(e);
        else bad?.(j);
        continue;
      }
      const v = parseV4(e.slice(0, slash));
      const lenText = e.slice(slash + 1);
      const len = /^(0|[1-9][0-9]?)$/.test(lenText) ? Number(lenText) : 99;
      if (v < 0 || len > 32) {
        bad?.(j);
        continue;
      }
      const net = (v & V4_MASKS[len]) >>> 0;
      if (len === 32) out.v4h.push(formatV4(net));
      else out.v4n.push({ value: net, length: len });
      continue;
    }
    if (typeof e === 'string' && e.indexOf('/') === -1) {
      // A single IPv6 address: its canonical text is all that is kept (no 128-bit value).
      const text = canonicalV6(e);
      if (text === undefined) bad?.(j);
      else out.v6h.push(text);
      continue;
    }
    const p = parsePrefix(e);
    if (!p) bad?.(j);
    else if (p.family === 4) {
      if (p.length === 32) out.v4h.push(p.text);
      else out.v4n.push({ value: Number(p.value), length: p.length });
    } else if (p.length === 128) out.v6h.push(p.text);
    else out.v6n.push(p);
  }
  return out;
}
