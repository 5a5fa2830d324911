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
function parseV4(s: string): number {
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

/** Parse IPv6 text (with optional embedded IPv4 tail) to 8 groups, or undefined. */
function parseV6(s: string): number[] | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return undefined;
  const parseSide = (side: string): number[] | undefined => {
    if (side === '') return [];
    const out: number[] = [];
    const items = side.split(':');
    for (let k = 0; k < items.length; k++) {
      const it = items[k];
      if (k === items.length - 1 && it.includes('.')) {
        const v4 = parseV4(it);
        if (v4 < 0) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(it)) return undefined;
      out.push(parseInt(it, 16));
    }
    return out;
  };
  let groups: number[] | undefined;
  if (dbl === -1) {
    groups = parseSide(s);
    if (!groups || groups.length !== 8) return undefined;
  } else {
    const head = parseSide(s.slice(0, dbl));
    const tail = parseSide(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  }
  return groups;
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
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (bestStart === -1) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

const V4_MASKS = Array.from({ length: 33 }, (_, len) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0));

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
