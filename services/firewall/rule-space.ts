/**
 * Rules as lookup keys. A rule whose match is a product of address prefixes, protocols and port ranges can be
 * looked up in a verdict map instead of being walked. Consecutive rules whose match spaces are pairwise disjoint
 * can share maps in any order (a packet matches at most one of them), so the compiler cuts the rule list into
 * such runs; first match wins is kept because a run ends before any rule that overlaps an earlier one in it.
 * Pure; used by the compiler.
 */
import type { Config, Rule } from '../core/schema.ts';
import { overlaps, type Prefix } from '../core/net.ts';
import { mergePortRanges, resolveAddresses, resolveServices, type PortRange } from '../core/validate.ts';

export type Fam = '4' | '6' | 'x';

export interface RuleSpace {
  /** Dimensions present: s(ource), d(estination), and p (protocol and port) or o (protocol only). */
  shape: string;
  src?: Record<'4' | '6', Prefix[]>;
  dst?: Record<'4' | '6', Prefix[]>;
  /** Per protocol, merged port ranges (empty: any port); undefined: any protocol. */
  svc?: { proto: string; ports: PortRange[] }[];
  /** Families the rule applies to ('x': no address, both families). */
  fams: Fam[];
  /** Map element keys per family. */
  keys: Record<Fam, string[]>;
  /** Whether every key is a single value (hash map) rather than prefixes or ranges (interval map). */
  exact: boolean;
}

const MAX_KEYS_PER_RULE = 256;
const isHost = (p: Prefix) => p.length === (p.family === 4 ? 32 : 128);

/** The rule as lookup keys, or undefined when it must stay a linear rule (rate limit, ICMP types, too many keys). */
export function ruleSpace(config: Config, rule: Rule, aggregate: (l: Prefix[]) => Prefix[]): RuleSpace | undefined {
  if (rule.limit) return undefined;
  const objects = config.objects.addresses;
  const srcR = resolveAddresses(rule.source, objects);
  const dstR = resolveAddresses(rule.destination, objects);
  const svcR = resolveServices(rule.services, config.objects.services);
  let svc: RuleSpace['svc'];
  let pKind = '';
  if (svcR) {
    if (svcR.some((s) => s.echoOnly)) return undefined;
    const byProto = new Map<string, PortRange[] | null>();
    for (const s of svcR) {
      const prev = byProto.get(s.proto);
      if (s.ports.length === 0 || prev === null) byProto.set(s.proto, null);
      else byProto.set(s.proto, [...(prev ?? []), ...s.ports]);
    }
    svc = [...byProto.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([proto, ports]) => ({ proto, ports: ports ? mergePortRanges(ports) : [] }));
    const withPorts = svc.filter((s) => s.ports.length > 0).length;
    if (withPorts === svc.length) pKind = 'p';
    else if (withPorts === 0) pKind = 'o';
    else return undefined;
  }
  if (!srcR && !dstR && !svcR) return undefined;
  const src = srcR && { '4': aggregate(srcR.v4), '6': aggregate(srcR.v6) };
  const dst = dstR && { '4': aggregate(dstR.v4), '6': aggregate(dstR.v6) };
  const famOk = (f: '4' | '6') => (!src || src[f].length > 0) && (!dst || dst[f].length > 0) && (!svc || svc.some((s) => (f === '4' ? s.proto !== 'icmpv6' : s.proto !== 'icmp')));
  const fams: Fam[] = src || dst ? (['4', '6'] as const).filter(famOk) : ['x'];
  const protoName = (p: string) => (p === 'icmpv6' ? 'ipv6-icmp' : p);
  const protoKeys = svc
    ? svc.flatMap((s) => (s.ports.length ? s.ports.map((r) => `${protoName(s.proto)} . ${r.lo === r.hi ? r.lo : `${r.lo}-${r.hi}`}`) : [protoName(s.proto)]))
    : [''];
  let exact = !svc || svc.every((s) => s.ports.every((r) => r.lo === r.hi));
  const keys: RuleSpace['keys'] = { '4': [], '6': [], x: [] };
  for (const fam of fams) {
    const pick = (a: Record<'4' | '6', Prefix[]> | undefined) => {
      if (!a) return [''];
      const list = a[fam as '4' | '6'];
      if (!list.every(isHost)) exact = false;
      return list.map((p) => p.text);
    };
    const ss = pick(src);
    const ds = pick(dst);
    if (ss.length * ds.length * protoKeys.length > MAX_KEYS_PER_RULE) return undefined;
    for (const a of ss) for (const b of ds) for (const c of protoKeys) keys[fam].push([a, b, c].filter(Boolean).join(' . '));
  }
  return { shape: `${src ? 's' : ''}${dst ? 'd' : ''}${pKind}`, src, dst, svc, fams, keys, exact };
}

function listsOverlap(a: Prefix[] | undefined, b: Prefix[] | undefined): boolean {
  if (!a || !b) return true;
  for (const x of a) for (const y of b) if (overlaps(x, y)) return true;
  return false;
}

/** Whether some packet could match both rules. */
export function spacesOverlap(a: RuleSpace, b: RuleSpace): boolean {
  if (a.svc && b.svc) {
    const hit = a.svc.some((x) =>
      b.svc!.some((y) => x.proto === y.proto && (!x.ports.length || !y.ports.length || x.ports.some((r) => y.ports.some((s) => r.lo <= s.hi && s.lo <= r.hi)))),
    );
    if (!hit) return false;
  }
  for (const f of ['4', '6'] as const) {
    const aHas = a.fams.includes(f) || a.fams.includes('x');
    const bHas = b.fams.includes(f) || b.fams.includes('x');
    if (!aHas || !bHas) continue;
    if (listsOverlap(a.src?.[f], b.src?.[f]) && listsOverlap(a.dst?.[f], b.dst?.[f])) return true;
  }
  return false;
}

/**
 * Tracks the rules of the current run and answers whether a new rule overlaps any of them, using buckets on the
 * destination so that the common case (distinct hosts) costs a few comparisons instead of one per rule.
 */
export class DisjointRun {
  private readonly members: RuleSpace[] = [];
  private readonly buckets = new Map<string, RuleSpace[]>();
  private readonly wide: RuleSpace[] = [];
  private comparisons = 0;

  constructor(private readonly budget = 400_000) {}

  get size(): number {
    return this.members.length;
  }

  /** Add the rule if it overlaps no member (and the comparison budget holds); false means: end the run here. */
  tryAdd(s: RuleSpace): boolean {
    const keys = this.bucketKeys(s);
    const candidates = keys ? new Set([...this.wide, ...keys.flatMap((k) => this.buckets.get(k) ?? [])]) : this.members;
    for (const m of candidates) {
      if (++this.comparisons > this.budget) return false;
      if (spacesOverlap(m, s)) return false;
    }
    this.members.push(s);
    if (keys) for (const k of keys) (this.buckets.get(k) ?? this.buckets.set(k, []).get(k)!).push(s);
    else this.wide.push(s);
    return true;
  }

  /** Buckets by destination /16 (IPv4) or /48 (IPv6); undefined when the rule has no narrow destination. */
  private bucketKeys(s: RuleSpace): string[] | undefined {
    if (!s.dst) return undefined;
    const out = new Set<string>();
    for (const f of ['4', '6'] as const) {
      const width = f === '4' ? 16 : 48;
      const max = f === '4' ? 32n : 128n;
      for (const p of s.dst[f]) {
        if (p.length < width) return undefined;
        out.add(`${f}:${p.value >> (max - BigInt(width))}`);
      }
    }
    return [...out];
  }
}

/** Map type and selector of a shape for one family. */
export function keyShape(shape: string, fam: Fam): { type: string; selector: string } {
  const addrType = fam === '4' ? 'ipv4_addr' : 'ipv6_addr';
  const ip = fam === '4' ? 'ip' : 'ip6';
  const types: string[] = [];
  const sel: string[] = [];
  if (shape.includes('s')) (types.push(addrType), sel.push(`${ip} saddr`));
  if (shape.includes('d')) (types.push(addrType), sel.push(`${ip} daddr`));
  if (shape.includes('p')) (types.push('inet_proto', 'inet_service'), sel.push('meta l4proto', 'th dport'));
  if (shape.includes('o')) (types.push('inet_proto'), sel.push('meta l4proto'));
  return { type: types.join(' . '), selector: sel.join(' . ') };
}
