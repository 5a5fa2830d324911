/**
 * Deterministic inputs for the benchmarks: big configurations derived from system/examples/lab.json and address
 * lists. A seeded PRNG makes every run load exactly the same data. No generated address falls into the lab's own
 * networks (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32) nor into 10.0.0.0/8, which the rule destinations use.
 */
import LAB from '../../system/examples/lab.json' with { type: 'json' };
import { prng } from '../../test/helpers/random.ts';

export { prng };

type Rand = () => number;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)];

/** A deep copy of the lab example. */
export function labDoc(): any {
  return JSON.parse(JSON.stringify(LAB));
}

// First octets for "internet" IPv4 addresses: unicast, not 0/8, 10/8, 127/8, 192/8 (192.0.2.0/24), 198/8
// (198.51.100.0/24), 203/8 (lab.json's example reject), 100/8, 169/8, 172/8.
const V4_FIRST = Array.from({ length: 223 }, (_, i) => i + 1).filter((o) => ![10, 100, 127, 169, 172, 192, 198, 203].includes(o));

function v4(r: Rand): string {
  return `${pick(r, V4_FIRST)}.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 1, 254)}`;
}

function v4Prefix(r: Rand): string {
  const len = pick(r, [16, 20, 22, 23, 24, 24, 24, 24, 25, 26, 27, 28, 29, 30]);
  const value = ((pick(r, V4_FIRST) << 24) | (int(r, 0, 255) << 16) | (int(r, 0, 255) << 8) | int(r, 0, 255)) >>> 0;
  const net = len === 0 ? 0 : (value & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
  return `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${len}`;
}

const hex = (r: Rand) => int(r, 0, 0xffff).toString(16);

/** IPv6 in 2a00::/12-ish space (never 2001:db8::/32). */
function v6(r: Rand): string {
  return `2a${int(r, 0, 15).toString(16).padStart(2, '0')}:${hex(r)}:${hex(r)}:${hex(r)}:${hex(r)}:${hex(r)}:${hex(r)}:${int(r, 1, 0xffff).toString(16)}`;
}

function v6Prefix(r: Rand): string {
  const len = pick(r, [32, 40, 48, 48, 48, 56, 64, 64]);
  const groups = [`2a${int(r, 0, 15).toString(16).padStart(2, '0')}`, hex(r), hex(r), hex(r)];
  // Clear the host bits of the 64-bit network part.
  const bits = groups.map((g) => parseInt(g, 16));
  for (let i = 0; i < 4; i++) {
    const keep = Math.max(0, Math.min(16, len - i * 16));
    bits[i] = keep === 0 ? 0 : bits[i] & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${bits.map((b) => b.toString(16)).join(':')}::/${len}`;
}

function distinct(n: number, make: () => string, seen = new Set<string>()): string[] {
  const out: string[] = [];
  while (out.length < n) {
    const s = make();
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(s);
  }
  return out;
}

/** A realistic threat feed: mostly single IPv4 addresses, IPv4 prefixes, some IPv6 addresses and prefixes. */
export function blocklistEntries(total: number, seed = 2): string[] {
  const r = prng(seed);
  const seen = new Set<string>();
  const n4n = Math.round(total * 0.15);
  const n6h = Math.round(total * 0.06);
  const n6n = Math.round(total * 0.02);
  const n4h = total - n4n - n6h - n6n;
  const list = [
    ...distinct(n4h, () => v4(r), seen),
    ...distinct(n4n, () => v4Prefix(r), seen),
    ...distinct(n6h, () => v6(r), seen),
    ...distinct(n6n, () => v6Prefix(r), seen),
  ];
  // Shuffle (Fisher-Yates) so families and kinds are interleaved as in a real feed.
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

/** Distinct single addresses for dynamic blocks: `v6Share` of them IPv6. */
export function blockAddresses(total: number, v6Share = 0.1, seed = 3): string[] {
  const r = prng(seed);
  const seen = new Set<string>();
  const n6 = Math.round(total * v6Share);
  const list = [...distinct(total - n6, () => v4(r), seen), ...distinct(n6, () => v6(r), seen)];
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

const TCP_PORTS = [22, 25, 53, 80, 110, 143, 389, 443, 465, 587, 636, 993, 995, 1433, 1521, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 27017];
const UDP_PORTS = [53, 123, 161, 500, 514, 1194, 4500, 5060, 51820];

/**
 * `count` forward rules lan→wan with realistic variety: distinct destination hosts (mostly IPv4 in 10.0.0.0/8, some
 * IPv6 and prefixes), varied services, some sources, mostly accept with some drop and reject, a few logged or
 * rate-limited.
 */
export function forwardRules(count: number, seed = 1, idPrefix = 'f'): any[] {
  const r = prng(seed);
  const seenDst = new Set<string>();
  const rules: any[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${idPrefix}${String(i).padStart(5, '0')}`;
    const six = r() < 0.1;
    let destination: string[];
    const k = r();
    if (six) {
      destination = distinct(k < 0.9 ? 1 : 2, () => `2001:db8:${int(r, 0x100, 0xfff).toString(16)}::${hex(r)}`, seenDst);
      if (k > 0.95) destination = distinct(1, () => `2001:db8:${int(r, 0x100, 0xfff).toString(16)}:${hex(r)}::/64`, seenDst);
    } else if (k < 0.85) destination = distinct(1, () => `10.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 1, 254)}`, seenDst);
    else if (k < 0.93) destination = distinct(int(r, 2, 4), () => `10.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 1, 254)}`, seenDst);
    else destination = distinct(1, () => `10.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 0, 15) * 16}/${pick(r, [24, 28])}`.replace(/\.(\d+)\/24$/, '.0/24'), seenDst);

    let services: any[] | undefined;
    const s = r();
    if (s < 0.55) services = [{ proto: 'tcp', ports: [String(r() < 0.5 ? pick(r, TCP_PORTS) : int(r, 1024, 65000))] }];
    else if (s < 0.7) services = [{ proto: 'udp', ports: [String(pick(r, UDP_PORTS))] }];
    else if (s < 0.8) services = [pick(r, ['https', 'ssh', 'dns', 'http', 'ntp'])];
    else if (s < 0.9) {
      const lo = int(r, 1024, 60000);
      services = [{ proto: 'tcp', ports: [String(pick(r, TCP_PORTS)), String(pick(r, TCP_PORTS)), `${lo}-${lo + int(r, 1, 500)}`] }];
    } else if (s < 0.95) services = ['web'];
    // else: any service

    let source: string[] | undefined;
    const src = r();
    if (src < 0.1) source = ['lan-net'];
    else if (src < 0.2) source = [six ? `2001:db8:1::${int(r, 0x11, 0xfff).toString(16)}` : `192.0.2.${int(r, 11, 250)}`];
    else if (src < 0.23) source = six ? ['2001:db8:1::/112'] : [`192.0.2.${int(r, 0, 7) * 32}/27`];

    const a = r();
    const action = a < 0.85 ? 'accept' : a < 0.95 ? 'drop' : 'reject';
    const rule: any = { id, from: 'lan', to: 'wan' };
    if (source) rule.source = source;
    rule.destination = destination;
    if (services) rule.services = services;
    rule.action = action;
    if (r() < 0.02) rule.log = true;
    if (action === 'accept' && r() < 0.01) rule.limit = { rate: `${int(r, 10, 1000)}/second`, burst: int(r, 10, 100) };
    if (r() < 0.1) rule.comment = `ticket CHG-${int(r, 1000, 99999)}`;
    rules.push(rule);
  }
  return rules;
}

/**
 * apply-10k: lab.json with `rules` forward rules in total (its own 3 first) and one blocklist of `entries`.
 * Variant 'b' differs from 'a' only in the blocklist's last entry, so applying a and b in turn makes every apply
 * load the blocklist too (rampart leaves an unchanged blocklist alone).
 */
export function bigConfig(rules = 10_000, entries = 200_000, variant: 'a' | 'b' = 'a'): any {
  const doc = labDoc();
  const own: any[] = doc.firewall.forward;
  doc.firewall.forward = [...own, ...forwardRules(rules - own.length)];
  const list = blocklistEntries(entries);
  if (variant === 'b') list[list.length - 1] = '198.18.0.66';
  doc.firewall.blocklists = [...doc.firewall.blocklists, { name: 'feed', entries: list, comment: 'benchmark threat feed' }];
  return doc;
}

export const CONN_PORT = 9000;
export const WAN_HOST = '198.51.100.20';

/**
 * conn-rate: lab.json with `total` forward rules where only the last one accepts the benchmark flow
 * (lan → 198.51.100.20 tcp/9000); the others are for other destinations, so every new connection passes them all.
 * `mixed`: the realistic variety of forwardRules() (all made accepts); `uniform`: every other rule is a single
 * IPv4 host and a single TCP port, the easiest list there is to turn into lookups.
 */
export function connConfig(total: number, kind: 'mixed' | 'uniform' = 'mixed'): any {
  const doc = labDoc();
  let others: any[];
  if (kind === 'mixed') {
    others = forwardRules(total - 1, 7, 'o').map((rule) => ({ ...rule, action: 'accept', log: false, limit: undefined }));
  } else {
    const r = prng(11);
    const dsts = distinct(total - 1, () => `10.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 1, 254)}`);
    others = dsts.map((d, i) => ({
      id: `u${String(i).padStart(5, '0')}`,
      from: 'lan',
      to: 'wan',
      destination: [d],
      services: [{ proto: 'tcp', ports: [String(int(r, 1, 65535))] }],
      action: 'accept',
    }));
  }
  doc.firewall.forward = [
    ...others,
    { id: 'bench-flow', from: 'lan', to: 'wan', destination: [WAN_HOST], services: [{ proto: 'tcp', ports: [String(CONN_PORT)] }], action: 'accept' },
  ];
  return doc;
}
