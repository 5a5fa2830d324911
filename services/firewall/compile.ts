/**
 * The firewall compiler: a validated configuration → one nft script that replaces `table inet rampart` in a single
 * transaction. Pure and deterministic (same config, same bytes). Every emitted line is mapped back to the JSON
 * pointer of the config node it came from, so nft's errors and counters map back to the document.
 *
 * Shape of the table:
 *  - named counters `r_<rule id>`, `pf_<id>`, `sn_<id>`, `bl_<list>` (read cheaply with `nft list counters`);
 *  - address objects as named sets; runs of exact-match rules as verdict maps into per-rule chains;
 *  - blocklists in a table of their own (`inet rampart_lists`, hooked just before), loaded only when they change;
 *  - base chains input / forward / output: ct state (established/related accepted, invalid
 *    dropped), then zone dispatch through verdict maps on interface names into per-zone(-pair) chains that hold
 *    only the rules that can apply there, in config order (first match wins, then the chain policy);
 *  - dstnat / srcnat chains for port forwards, SNAT and masquerade.
 */
import { createHash } from 'node:crypto';
import type { Config, Rule } from '../core/schema.ts';
import { pointer } from '../core/errors.ts';
import { formatV4, formatV6Value, parseAddress, parseV4, parseInterfaceAddress, parsePrefix, type Family, type Prefix } from '../core/net.ts';
import {
  addressFamilies,
  antiLockoutScope,
  mergePortRanges,
  parsedBlocklist,
  parsePort,
  resolveAddresses,
  resolveServices,
  serviceFamilies,
  type PortRange,
  type ResolvedAddresses,
  type RuntimeEnv,
  type ServiceMatch,
} from '../core/validate.ts';
import { DisjointRun, keyShape, ruleSpace, type Fam, type RuleSpace } from './rule-space.ts';

export const TABLE = 'rampart';
export const LISTS_TABLE = 'rampart_lists';
/** The other name of the lists table, for a load in two steps (a new table is filled before the old one goes). */
export const LISTS_TABLE_ALT = 'rampart_lists_b';
/** Bump when the rendering of the lists table changes, so kernels holding the old rendering get the new one. */
const LISTS_FORMAT = 2;
const ELEMENTS_PER_LINE = 500;
/**
 * Chain and set names join config names with dots, which config names cannot hold, and use these two markers,
 * which no zone name can be (zone names start with a letter), so no two scopes can ever share a name.
 */
const UNZONED = '_unzoned';
const ANY_ZONE = '_any';
/** ICMPv6 that IPv6 cannot work without (neighbour discovery, router discovery, MLD). */
const ICMPV6_ESSENTIAL =
  'nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, mld-listener-query, mld-listener-report, mld2-listener-report';

export interface CounterRef {
  kind: 'rule' | 'portForward' | 'snat' | 'blocklist' | 'antiLockout';
  id: string;
  path: string;
}

export interface CompiledRuleset {
  script: string;
  /** JSON pointer of the config node behind each line (index 0 = line 1); '' where none. */
  lineMap: string[];
  /** Named counter → what it counts. */
  counters: Record<string, CounterRef>;
  /** sha256 of the main table's body, also written as its comment, to recognise the ruleset in the kernel. */
  fingerprint: string;
  /** The main table alone (its lines come first in `script`, so its line map is a prefix of `lineMap`). */
  main: { script: string; lineMap: string[] };
  /** Fingerprint of the blocklists table ('none': no blocklists, the table is removed). */
  lists: { fingerprint: string };
}

class Emitter {
  readonly lines: string[] = [];
  readonly map: string[] = [];
  emit(line: string, path = ''): void {
    this.lines.push(line);
    this.map.push(path);
  }
}

type Chain = 'input' | 'forward';

interface Ctx {
  config: Config;
  objects: Record<string, readonly string[]>;
  /** zone → devices, in config order; only zones that have interfaces. */
  zoneDevices: Map<string, string[]>;
  /** Which address-object sets exist, per family. */
  objectSets: Set<string>;
  /** Per-rule chains already emitted (for rules looked up through maps). */
  ruleChains: Set<string>;
  spaceCache: Map<Rule, RuleSpace | null>;
  mapCount: number;
}

const q = (s: string) => `"${s}"`;

/**
 * Compile a validated configuration (validateConfig / parseConfig) for a runtime environment (the API's port, for
 * the anti-lockout rule).
 */
/** Named counter of the packets that open a connection (input and forward), for the new-connection rate. */
export const NEW_CONNECTIONS_COUNTER = 'conn_new';

export function compileRuleset(config: Config, env: RuntimeEnv = {}): CompiledRuleset {
  const objects = config.objects.addresses;
  const zoneDevices = new Map<string, string[]>();
  for (const itf of config.interfaces) {
    if (!itf.zone) continue;
    const list = zoneDevices.get(itf.zone) ?? [];
    list.push(itf.device);
    zoneDevices.set(itf.zone, list);
  }
  const ctx: Ctx = { config, objects, zoneDevices, objectSets: new Set(), ruleChains: new Set(), spaceCache: new Map(), mapCount: 0 };
  const body = new Emitter();
  const counters: Record<string, CounterRef> = {};

  // Named counters: packets opening a connection (for the new-connection rate), then one per rule.
  body.emit(`\tcounter ${NEW_CONNECTIONS_COUNTER} { }`);
  const counter = (name: string, ref: CounterRef) => {
    counters[name] = ref;
    body.emit(`\tcounter ${name} { }`, ref.path);
  };
  for (const chain of ['input', 'forward'] as const) {
    config.firewall[chain].forEach((r, i) => counter(`r_${r.id}`, { kind: 'rule', id: r.id, path: pointer(['firewall', chain, i]) }));
  }
  config.firewall.nat.portForwards.forEach((f, i) => counter(`pf_${f.id}`, { kind: 'portForward', id: f.id, path: pointer(['firewall', 'nat', 'portForwards', i]) }));
  config.firewall.nat.snat.forEach((s, i) => counter(`sn_${s.id}`, { kind: 'snat', id: s.id, path: pointer(['firewall', 'nat', 'snat', i]) }));
  const antiLockout = antiLockoutSpec(config, env);
  if (antiLockout) counter('anti_lockout', { kind: 'antiLockout', id: 'anti-lockout', path: '/firewall/antiLockout' });

  // Address objects.
  for (const name of Object.keys(objects).sort()) {
    const path = pointer(['objects', 'addresses', name]);
    const resolved = resolveAddresses(objects[name], {}) ?? { v4: [], v6: [] };
    for (const fam of [4, 6] as const) {
      const list = aggregate(fam === 4 ? resolved.v4 : resolved.v6);
      if (!list.length) continue;
      ctx.objectSets.add(`a.${name}.${fam}`);
      emitSet(body, `a.${name}.${fam}`, fam, true, list.map((p) => p.text), path);
    }
  }

  // Per-zone rule chains.
  const zones = [...zoneDevices.keys()];
  const inputChains = new Map<string, string>();
  for (const z of [...zones, null]) {
    const rules = rulesFor(ctx, 'input', z, undefined);
    if (!rules.length) continue;
    const name = `in.${z ?? UNZONED}`;
    emitRuleChain(ctx, body, name, 'input', rules);
    inputChains.set(z ?? '', name);
  }
  const forwardDispatch = new Map<string, { pairs: [string, string][]; rest?: string }>();
  for (const from of [...zones, null]) {
    const pairs: [string, string][] = [];
    for (const to of zones) {
      const rules = rulesFor(ctx, 'forward', from, to);
      if (!rules.length) continue;
      const name = `fwd.${from ?? UNZONED}.${to}`;
      emitRuleChain(ctx, body, name, 'forward', rules);
      pairs.push([to, name]);
    }
    const restRules = rulesFor(ctx, 'forward', from, null);
    let rest: string | undefined;
    if (restRules.length) {
      rest = `fwd.${from ?? UNZONED}.${ANY_ZONE}`;
      emitRuleChain(ctx, body, rest, 'forward', restRules);
    }
    if (!pairs.length && !rest) continue;
    const dispatch = `fwd.${from ?? UNZONED}`;
    body.emit(`\tchain ${dispatch} {`);
    const elems = pairs.flatMap(([to, chain]) => zoneDevices.get(to)!.map((d) => `${q(d)} : goto ${chain}`));
    if (elems.length) body.emit(`\t\toifname vmap { ${elems.join(', ')} }`);
    if (rest) body.emit(`\t\tgoto ${rest}`);
    body.emit('\t}');
    forwardDispatch.set(from ?? '', { pairs, rest: dispatch });
  }

  const policy = config.firewall.policy;
  const ctState = '\t\tct state vmap { established : accept, related : accept, invalid : drop }';
  const countNew = `\t\tct state new counter name "${NEW_CONNECTIONS_COUNTER}"`;

  // input
  body.emit('\tchain input {');
  body.emit(`\t\ttype filter hook input priority filter; policy ${policy.input};`, '/firewall/policy/input');
  body.emit('\t\tiifname "lo" accept');
  body.emit(ctState);
  body.emit(countNew);
  body.emit(`\t\ticmpv6 type { ${ICMPV6_ESSENTIAL} } accept`);
  emitPortForwardAccepts(ctx, body, 'input');
  if (antiLockout) {
    body.emit(
      `\t\tiifname { ${antiLockout.devices.map(q).join(', ')} } tcp dport ${portSet(antiLockout.ports)} counter name "anti_lockout" accept comment "anti-lockout"`,
      '/firewall/antiLockout',
    );
  }
  const inElems = zones.filter((z) => inputChains.has(z)).flatMap((z) => zoneDevices.get(z)!.map((d) => `${q(d)} : goto ${inputChains.get(z)}`));
  if (inElems.length) body.emit(`\t\tiifname vmap { ${inElems.join(', ')} }`);
  if (inputChains.has('')) body.emit(`\t\tgoto ${inputChains.get('')}`);
  body.emit('\t}');

  // forward
  body.emit('\tchain forward {');
  body.emit(`\t\ttype filter hook forward priority filter; policy ${policy.forward};`, '/firewall/policy/forward');
  body.emit(ctState);
  body.emit(countNew);
  emitPortForwardAccepts(ctx, body, 'forward');
  const fwdElems = zones.filter((z) => forwardDispatch.has(z)).flatMap((z) => zoneDevices.get(z)!.map((d) => `${q(d)} : goto fwd.${z}`));
  if (fwdElems.length) body.emit(`\t\tiifname vmap { ${fwdElems.join(', ')} }`);
  if (forwardDispatch.has('')) body.emit(`\t\tgoto fwd.${UNZONED}`);
  body.emit('\t}');

  // output
  body.emit('\tchain output {');
  body.emit(`\t\ttype filter hook output priority filter; policy ${policy.output};`, '/firewall/policy/output');
  body.emit('\t\toifname "lo" accept');
  if (policy.output === 'drop') {
    body.emit('\t\tct state { established, related } accept');
    body.emit(`\t\ticmpv6 type { ${ICMPV6_ESSENTIAL} } accept`);
  }
  body.emit('\t}');

  // NAT
  const pfs = config.firewall.nat.portForwards;
  if (pfs.some((f) => f.enabled)) {
    body.emit('\tchain dstnat {');
    body.emit('\t\ttype nat hook prerouting priority dstnat; policy accept;');
    pfs.forEach((f, i) => {
      if (!f.enabled) return;
      const path = pointer(['firewall', 'nat', 'portForwards', i]);
      const devs = zoneDevices.get(f.zone);
      const to = parseAddress(f.to);
      if (!devs || !to) return;
      const port = parsePort(f.port) as PortRange;
      const tp = f.toPort === undefined ? undefined : (parsePort(f.toPort) as PortRange);
      const src = resolveAddresses(f.source, objects);
      const srcMatch = src ? addrMatch(ctx, 'saddr', to.family, f.source!, src) : `meta nfproto ${to.family === 4 ? 'ipv4' : 'ipv6'}`;
      if (srcMatch === undefined) return;
      const target = to.family === 4 ? to.text : `[${to.text}]`;
      const toPort = tp && !(tp.lo === port.lo && tp.hi === port.hi) ? `:${tp.lo}` : '';
      const log = f.log ? ` log prefix "rampart:${f.id} "` : '';
      body.emit(
        `\t\tiifname { ${devs.map(q).join(', ')} } ${srcMatch} fib daddr type local ${f.proto} dport ${portSet([port])} counter name "pf_${f.id}"${log} dnat ${to.family === 4 ? 'ip' : 'ip6'} to ${target}${toPort} comment "pf:${f.id}"`,
        path,
      );
    });
    body.emit('\t}');
  }
  const { masquerade, snat } = config.firewall.nat;
  if (masquerade.length || snat.length) {
    body.emit('\tchain srcnat {');
    body.emit('\t\ttype nat hook postrouting priority srcnat; policy accept;');
    snat.forEach((s, i) => {
      const path = pointer(['firewall', 'nat', 'snat', i]);
      const devs = zoneDevices.get(s.zone);
      const to = parseAddress(s.to);
      if (!devs || !to) return;
      const src = resolveAddresses(s.source, objects);
      const srcMatch = src ? addrMatch(ctx, 'saddr', to.family, s.source!, src) : `meta nfproto ${to.family === 4 ? 'ipv4' : 'ipv6'}`;
      if (srcMatch === undefined) return;
      body.emit(
        `\t\toifname { ${devs.map(q).join(', ')} } ${srcMatch} counter name "sn_${s.id}" snat ${to.family === 4 ? 'ip' : 'ip6'} to ${to.text} comment "snat:${s.id}"`,
        path,
      );
    });
    masquerade.forEach((m, i) => {
      const path = pointer(['firewall', 'nat', 'masquerade', i]);
      const devs = zoneDevices.get(m.zone);
      if (!devs) return;
      const fams: Family[] = m.family === 'both' ? [4, 6] : m.family === 'ipv6' ? [6] : [4];
      const src = resolveAddresses(m.source, objects);
      for (const fam of fams) {
        const srcMatch = src ? addrMatch(ctx, 'saddr', fam, m.source!, src) : `meta nfproto ${fam === 4 ? 'ipv4' : 'ipv6'}`;
        if (srcMatch === undefined) continue;
        body.emit(`\t\toifname { ${devs.map(q).join(', ')} } ${srcMatch} counter masquerade comment "masquerade:${m.zone}"`, path);
      }
    });
    body.emit('\t}');
  }

  const fingerprint = createHash('sha256').update(body.lines.join('\n')).digest('hex');
  const out = new Emitter();
  out.emit(`# Rampart ruleset, generated; do not edit. fingerprint ${fingerprint}`);
  out.emit(`table inet ${TABLE}`);
  out.emit(`delete table inet ${TABLE}`);
  out.emit(`table inet ${TABLE} {`);
  out.emit(`\tcomment "rampart ${fingerprint}"`);
  out.lines.push(...body.lines);
  out.map.push(...body.map);
  out.emit('}');
  config.firewall.blocklists.forEach((b, i) => (counters[`bl_${b.name}`] = { kind: 'blocklist', id: b.name, path: pointer(['firewall', 'blocklists', i]) }));
  const main = { script: out.lines.join('\n') + '\n', lineMap: out.map };
  const listsFp = listsFingerprint(config);
  // The lists table is rendered only when asked for: the applier skips it when the kernel already holds it.
  let lists: { lines: string[]; map: string[] } | undefined;
  const renderLists = () => (lists ??= compileLists(config, listsFp));
  return {
    get script() {
      return main.script + renderLists().lines.join('\n') + '\n';
    },
    get lineMap() {
      return [...main.lineMap, ...renderLists().map];
    },
    counters,
    fingerprint,
    main,
    lists: { fingerprint: listsFp },
  };
}

/** Fingerprint of the blocklists section: what the lists table's comment records. */
export function listsFingerprint(config: Config): string {
  let fp = listsFingerprints.get(config);
  if (fp) return fp;
  if (!config.firewall.blocklists.length) fp = 'none';
  else {
    const h = createHash('sha256').update(`lists-format ${LISTS_FORMAT}\n`);
    for (const b of config.firewall.blocklists) h.update(JSON.stringify([b.name, b.entries]));
    fp = h.digest('hex');
  }
  listsFingerprints.set(config, fp);
  return fp;
}
/** Parsed configurations are not changed after validation: their lists' fingerprint is computed once. */
const listsFingerprints = new WeakMap<Config, string>();

interface ListSet {
  set: string;
  fam: Family;
  interval: boolean;
  /** Entries before repeats are dropped and prefixes merged (what a hash set's size is made for). */
  count: number;
  readonly elements: string[];
  /** An interval set's prefixes as intervals (ascending, none inside another), made when asked for. */
  intervals?: () => Interval[];
  counter: string;
  path: string;
}

/**
 * A blocklist's hash set is declared with its size (its entry count rounded up to a power of two): the kernel then
 * gives it a hash table of that size at once, where a set without one grows by rehashing while it is loaded, which
 * made loading 150,000 addresses take 2.5 times as long. The elements never change without the table being
 * replaced, so the bound is never in the way.
 */
function setSize(s: ListSet): number | undefined {
  if (s.interval) return undefined;
  let n = 64;
  while (n < s.count) n *= 2;
  return n;
}

/**
 * The sets of the blocklists. Their elements (addresses without repeats, prefixes aggregated) are made when first
 * asked for: which sets there are and their sizes follow from the validated entries alone, so a two-step load can
 * create the sets while the elements are made.
 */
function blocklistSets(config: Config): ListSet[] {
  const sets: ListSet[] = [];
  config.firewall.blocklists.forEach((b, i) => {
    const path = pointer(['firewall', 'blocklists', i]);
    const parsed = parsedBlocklist(b.entries);
    const v4n = once(() => aggregateV4(parsed.v4n));
    const v6n = once(() => aggregate(parsed.v6n));
    const kinds: Record<string, { count: number; list: () => string[]; intervals?: () => Interval[] }> = {
      '4h': { count: parsed.v4h.length, list: once(() => distinctV4(parsed.v4h)) },
      '4n': { count: parsed.v4n.length, list: once(() => v4n().map((p) => `${formatV4(p.value)}/${p.length}`)), intervals: () => v4Intervals(v4n()) },
      '6h': { count: parsed.v6h.length, list: once(() => [...new Set(parsed.v6h)]) },
      '6n': { count: parsed.v6n.length, list: once(() => v6n().map((p) => p.text)), intervals: () => v6Intervals(v6n()) },
    };
    for (const key of ['4h', '4n', '6h', '6n']) {
      const { count, list, intervals } = kinds[key];
      if (!count) continue;
      sets.push({
        set: `bl.${b.name}.${key}`,
        fam: Number(key[0]) as Family,
        interval: key[1] === 'n',
        count,
        get elements() {
          return list();
        },
        intervals,
        counter: `bl_${b.name}`,
        path,
      });
    }
  });
  return sets;
}

/** A function that computes its value when first called. */
function once<T>(make: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

/**
 * IPv4 addresses (valid, canonical text) without repeats, first occurrences in order. Big lists rarely repeat an
 * address: their values are sorted and compared first, and the list itself is returned when nothing repeats.
 */
function distinctV4(list: readonly string[]): string[] {
  const values = new Uint32Array(list.length);
  for (let i = 0; i < list.length; i++) values[i] = parseV4(list[i]);
  values.sort();
  let repeats = false;
  for (let i = 1; i < values.length && !repeats; i++) repeats = values[i] === values[i - 1];
  return repeats ? [...new Set(list)] : (list as string[]);
}

/** Counters, sets (those `withElements` accepts, with their elements; the others not at all) and the hooked chains. */
function listsBody(config: Config, sets: ListSet[], declare: (s: ListSet) => boolean): Emitter {
  const body = new Emitter();
  config.firewall.blocklists.forEach((b, i) => body.emit(`\tcounter bl_${b.name} { }`, pointer(['firewall', 'blocklists', i])));
  // Checked (deleted and re-added) by main-only transactions; last among the counters, where re-adding puts it.
  body.emit('\tcounter marker { }');
  for (const s of sets) if (declare(s)) emitSet(body, s.set, s.fam, s.interval, s.elements, s.path, setSize(s));
  for (const [hook, dirs] of [['input', ['saddr']], ['forward', ['saddr', 'daddr']], ['output', ['daddr']]] as const) {
    body.emit(`\tchain ${hook} {`);
    body.emit(`\t\ttype filter hook ${hook} priority filter - 5; policy accept;`);
    for (const s of sets) {
      for (const dir of dirs) body.emit(`\t\t${s.fam === 4 ? 'ip' : 'ip6'} ${dir} @${s.set} counter name ${q(s.counter)} drop`, s.path);
    }
    body.emit('\t}');
  }
  return body;
}

/**
 * Blocklists live in `table inet LISTS_TABLE`, hooked just before the main table, so that big lists are loaded only
 * when they change (the applier leaves an unchanged lists table alone) and never slow down a rule change.
 * Single addresses go into hash sets, prefixes into interval sets. Without blocklists the table is removed.
 */
function compileLists(config: Config, fingerprint: string): { lines: string[]; map: string[] } {
  const sets = blocklistSets(config);
  const out = new Emitter();
  out.emit(`table inet ${LISTS_TABLE}`);
  out.emit(`delete table inet ${LISTS_TABLE}`);
  if (!config.firewall.blocklists.length) return { lines: out.lines, map: out.map };
  const body = listsBody(config, sets, () => true);
  out.emit(`table inet ${LISTS_TABLE} {`);
  out.emit(`\tcomment "rampart ${fingerprint}"`);
  out.lines.push(...body.lines);
  out.map.push(...body.map);
  out.emit('}');
  return { lines: out.lines, map: out.map };
}

/**
 * The same lists table in three parts, for a load in two steps (see Firewall.load): `setup` creates `table` (not
 * hooked, so it changes nothing) with its address sets empty; `elements` are those sets' elements as lines for the
 * netlink helper (`a SET ADDRESS`, and for interval sets also `e SET ADDRESS`: see intervalLines); `finish` adds the
 * counters and the hooked chains, for the transaction that also replaces the main table and drops the previous lists
 * table.
 */
export interface StagedLists {
  table: string;
  fingerprint: string;
  setup: string;
  /** Rendered when first read (the setup can start before). */
  readonly elements: string;
  finish: { lines: string[]; map: string[] };
}

export function compileListsStaged(config: Config, table: string): StagedLists {
  const fingerprint = listsFingerprint(config);
  const sets = blocklistSets(config);
  const setup = new Emitter();
  for (const line of [`table inet ${table}`, `delete table inet ${table}`, `table inet ${table} {`, `\tcomment "rampart ${fingerprint}"`]) setup.emit(line);
  for (const s of sets) emitSet(setup, s.set, s.fam, s.interval, [], s.path, setSize(s));
  setup.emit('}');
  // Rendered when first read: the applier starts creating the table before it asks for them.
  let elements: string | undefined;
  const renderElements = () => {
    const parts: string[] = [];
    for (const s of sets) {
      if (s.interval) parts.push(intervalLines(s.set, s.fam, s.intervals!()));
      else {
        const prefix = `a ${s.set} `;
        parts.push(prefix + s.elements.join(`\n${prefix}`) + '\n');
      }
    }
    return parts.join('');
  };
  const body = listsBody(config, sets, () => false);
  const finish = new Emitter();
  finish.emit(`table inet ${table} {`);
  finish.lines.push(...body.lines);
  finish.map.push(...body.map);
  finish.emit('}');
  return {
    table,
    fingerprint,
    setup: setup.lines.join('\n') + '\n',
    get elements() {
      return (elements ??= renderElements());
    },
    finish: { lines: finish.lines, map: finish.map },
  };
}

/** How many entries the blocklists hold (what a two-step load would hand to the netlink helper). */
export function blocklistEntryCount(config: Config): number {
  let n = 0;
  for (const b of config.firewall.blocklists) {
    const parsed = parsedBlocklist(b.entries);
    n += parsed.v4h.length + parsed.v4n.length + parsed.v6h.length + parsed.v6n.length;
  }
  return n;
}

/**
 * Port forwards open their path by themselves: connections that were DNATed by a forward are accepted in the
 * forward chain, or in the input chain when the target is one of the firewall's own addresses.
 */
function emitPortForwardAccepts(ctx: Ctx, body: Emitter, chain: 'input' | 'forward'): void {
  const local = new Set(ctx.config.interfaces.flatMap((i) => i.addresses.map((a) => parseInterfaceAddress(a)?.host.text)));
  ctx.config.firewall.nat.portForwards.forEach((f, i) => {
    if (!f.enabled) return;
    const devs = ctx.zoneDevices.get(f.zone);
    const to = parseAddress(f.to);
    if (!devs || !to || local.has(to.text) !== (chain === 'input')) return;
    const ip = to.family === 4 ? 'ip' : 'ip6';
    const port = parsePort(f.port) as PortRange;
    const tp = f.toPort === undefined ? port : (parsePort(f.toPort) as PortRange);
    body.emit(
      `\t\tct status dnat iifname { ${devs.map(q).join(', ')} } ${ip} daddr ${to.text} ${f.proto} dport ${portSet([tp])} counter accept comment "pf:${f.id}"`,
      pointer(['firewall', 'nat', 'portForwards', i]),
    );
  });
}

/** Rules of one chain that can apply to traffic from zone `from` (null: an interface in no zone) to `to`. */
function rulesFor(ctx: Ctx, chain: Chain, from: string | null, to: string | null | undefined): { rule: Rule; index: number }[] {
  const out: { rule: Rule; index: number }[] = [];
  ctx.config.firewall[chain].forEach((rule, index) => {
    if (!rule.enabled) return;
    if (rule.from !== 'any' && rule.from !== from) return;
    if (chain === 'forward') {
      const rto = rule.to ?? 'any';
      if (rto !== 'any' && rto !== to) return;
    }
    out.push({ rule, index });
  });
  return out;
}

function emitRuleChain(ctx: Ctx, e: Emitter, name: string, chain: Chain, rules: { rule: Rule; index: number }[]): void {
  // Runs of consecutive rules with pairwise disjoint match spaces become verdict-map lookups (one map per shape and
  // family), so a packet costs a few lookups instead of a walk over thousands of rules; see rule-space.ts.
  const body: { lines: string[]; path: string }[] = [];
  let i = 0;
  while (i < rules.length) {
    const run = new DisjointRun();
    let j = i;
    while (j < rules.length) {
      const space = spaceOf(ctx, rules[j].rule);
      if (!space || !run.tryAdd(space)) break;
      j++;
    }
    if (j - i >= MIN_MAP_RUN) {
      body.push({ lines: emitRunMaps(ctx, e, name, chain, rules.slice(i, j)), path: pointer(['firewall', chain, rules[i].index]) });
      i = j;
      continue;
    }
    const path = pointer(['firewall', chain, rules[i].index]);
    body.push({ lines: compileRule(ctx, rules[i].rule), path });
    i++;
  }
  e.emit(`\tchain ${name} {`);
  for (const b of body) for (const line of b.lines) e.emit(`\t\t${line}`, b.path);
  e.emit('\t}');
}

const MIN_MAP_RUN = 4;

function spaceOf(ctx: Ctx, rule: Rule): RuleSpace | undefined {
  const cached = ctx.spaceCache.get(rule);
  if (cached !== undefined) return cached ?? undefined;
  const s = ruleSpace(ctx.config, rule, aggregate);
  ctx.spaceCache.set(rule, s ?? null);
  return s;
}

/** Maps for one disjoint run (one per shape and family, in first-appearance order) and the lines that consult them. */
function emitRunMaps(ctx: Ctx, e: Emitter, chainName: string, chain: Chain, run: { rule: Rule; index: number }[]): string[] {
  const groups = new Map<string, { elements: string[]; interval: boolean; path: string }>();
  const runNo = ctx.mapCount++;
  for (const { rule, index } of run) {
    const space = spaceOf(ctx, rule)!;
    const path = pointer(['firewall', chain, index]);
    const target = ruleChain(ctx, e, rule, path);
    for (const fam of space.fams) {
      const key = `${space.shape}.${fam}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { elements: [], interval: false, path }));
      g.interval ||= !space.exact;
      for (const k of space.keys[fam]) g.elements.push(`${k} : goto ${target}`);
    }
  }
  const lines: string[] = [];
  for (const [key, g] of groups) {
    const [shape, fam] = key.split('.') as [string, Fam];
    const { type, selector } = keyShape(shape, fam);
    const m = `m.${chainName}.${runNo}.${shape}.${fam}`;
    emitMap(e, m, type, g.interval, g.elements, g.path);
    lines.push(`${selector} vmap @${m}`);
  }
  return lines;
}

/** The chain that carries a mapped rule's counter, log and verdict (shared by every zone chain the rule is in). */
function ruleChain(ctx: Ctx, e: Emitter, rule: Rule, path: string): string {
  const name = `rule.${rule.id}`;
  if (ctx.ruleChains.has(name)) return name;
  ctx.ruleChains.add(name);
  const tail = statements(rule);
  e.emit(`\tchain ${name} {`, path);
  if (rule.action === 'reject') {
    e.emit(`\t\tmeta l4proto tcp ${tail} reject with tcp reset comment "rule:${rule.id}"`, path);
    e.emit(`\t\t${tail} reject with icmpx type port-unreachable comment "rule:${rule.id}"`, path);
  } else e.emit(`\t\t${tail} ${rule.action} comment "rule:${rule.id}"`, path);
  e.emit('\t}', path);
  return name;
}

function emitMap(e: Emitter, name: string, type: string, interval: boolean, elements: string[], path: string): void {
  e.emit(`\tmap ${name} {`, path);
  e.emit(`\t\ttype ${type} : verdict${interval ? '; flags interval' : ''}`, path);
  e.emit('\t\telements = {', path);
  for (let i = 0; i < elements.length; i += ELEMENTS_PER_LINE) {
    e.emit(`\t\t\t${elements.slice(i, i + ELEMENTS_PER_LINE).join(', ')}${i + ELEMENTS_PER_LINE < elements.length ? ',' : ''}`, path);
  }
  e.emit('\t\t}', path);
  e.emit('\t}', path);
}

/** One rule → one or more nft rule lines (per address family and protocol as needed), sharing its named counter. */
function compileRule(ctx: Ctx, rule: Rule): string[] {
  const src = resolveAddresses(rule.source, ctx.objects);
  const dst = resolveAddresses(rule.destination, ctx.objects);
  const svc = resolveServices(rule.services, ctx.config.objects.services);
  const fams = [...addressFamilies(src)].filter((f) => addressFamilies(dst).has(f) && serviceFamilies(svc).has(f)).sort();
  const famList: (Family | null)[] = src || dst ? fams : [null];
  const lines: string[] = [];
  const tail = statements(rule);
  for (const fam of famList) {
    const parts: string[] = [];
    if (src) {
      const m = addrMatch(ctx, 'saddr', fam!, rule.source!, src);
      if (m === undefined) continue;
      parts.push(m);
    }
    if (dst) {
      const m = addrMatch(ctx, 'daddr', fam!, rule.destination!, dst);
      if (m === undefined) continue;
      parts.push(m);
    }
    const groups = svc ? serviceGroups(svc, fam) : [{ match: '', tcp: undefined as boolean | undefined }];
    for (const g of groups) {
      const match = [...parts, g.match].filter(Boolean).join(' ');
      if (rule.action === 'reject') {
        if (g.tcp === true) lines.push(join(match, tail, 'reject with tcp reset', rule.id));
        else if (g.tcp === false) lines.push(join(match, tail, 'reject with icmpx type port-unreachable', rule.id));
        else {
          lines.push(join([match, 'meta l4proto tcp'].filter(Boolean).join(' '), tail, 'reject with tcp reset', rule.id));
          lines.push(join(match, tail, 'reject with icmpx type port-unreachable', rule.id));
        }
      } else lines.push(join(match, tail, rule.action, rule.id));
    }
  }
  return lines;
}

function join(match: string, tail: string, verdict: string, id: string): string {
  return [match, tail, verdict, `comment "rule:${id}"`].filter(Boolean).join(' ');
}

function statements(rule: Rule): string {
  const s: string[] = [];
  if (rule.limit) s.push(`limit rate ${rule.limit.rate}${rule.limit.burst ? ` burst ${rule.limit.burst} packets` : ''}`);
  s.push(`counter name "r_${rule.id}"`);
  if (rule.log) s.push(`log prefix "rampart:${rule.id} "`);
  return s.join(' ');
}

/** Address match for one family: a named object set when the rule names exactly one object, else an inline set. */
function addrMatch(ctx: Ctx, dir: 'saddr' | 'daddr', fam: Family, refs: readonly string[], resolved: ResolvedAddresses): string | undefined {
  const ip = fam === 4 ? 'ip' : 'ip6';
  if (refs.length === 1 && Object.hasOwn(ctx.objects, refs[0])) {
    const set = `a.${refs[0]}.${fam}`;
    return ctx.objectSets.has(set) ? `${ip} ${dir} @${set}` : undefined;
  }
  const list = aggregate(fam === 4 ? resolved.v4 : resolved.v6);
  if (!list.length) return undefined;
  return list.length === 1 ? `${ip} ${dir} ${list[0].text}` : `${ip} ${dir} { ${list.map((p) => p.text).join(', ')} }`;
}

function serviceGroups(svc: ServiceMatch[], fam: Family | null): { match: string; tcp?: boolean }[] {
  const out: { match: string; tcp?: boolean }[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const list = svc.filter((s) => s.proto === proto);
    if (!list.length) continue;
    if (list.some((s) => s.ports.length === 0)) out.push({ match: `meta l4proto ${proto}`, tcp: proto === 'tcp' });
    else out.push({ match: `${proto} dport ${portSet(list.flatMap((s) => s.ports))}`, tcp: proto === 'tcp' });
  }
  if (fam !== 6) {
    const list = svc.filter((s) => s.proto === 'icmp');
    if (list.length) out.push({ match: list.every((s) => s.echoOnly) ? 'icmp type echo-request' : 'meta l4proto icmp', tcp: false });
  }
  if (fam !== 4) {
    const list = svc.filter((s) => s.proto === 'icmpv6');
    if (list.length) out.push({ match: list.every((s) => s.echoOnly) ? 'icmpv6 type echo-request' : 'meta l4proto ipv6-icmp', tcp: false });
  }
  return out;
}

/** Ports as nft: `80`, `1000-2000` or `{ 80, 443, 8000-8100 }`, merged and sorted. */
export function portSet(ranges: PortRange[]): string {
  const text = mergePortRanges(ranges).map((r) => (r.lo === r.hi ? String(r.lo) : `${r.lo}-${r.hi}`));
  return text.length === 1 ? text[0] : `{ ${text.join(', ')} }`;
}

/** Sort prefixes and drop those covered by another, so interval sets never hold overlapping elements. */
export function aggregate(list: Prefix[]): Prefix[] {
  const sorted = [...list].sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.length - b.length));
  const out: Prefix[] = [];
  let end = -1n;
  for (const p of sorted) {
    const max = p.family === 4 ? 32n : 128n;
    const last = p.value + (1n << (max - BigInt(p.length))) - 1n;
    if (p.value <= end) continue;
    out.push(p);
    end = last;
  }
  return out;
}

/** `aggregate` for IPv4 prefixes held as numbers (a big blocklist's). */
export function aggregateV4(list: readonly { value: number; length: number }[]): { value: number; length: number }[] {
  const sorted = [...list].sort((a, b) => a.value - b.value || a.length - b.length);
  const out: { value: number; length: number }[] = [];
  let end = -1;
  for (const p of sorted) {
    if (p.value <= end) continue;
    out.push(p);
    end = p.value + 2 ** (32 - p.length) - 1;
  }
  return out;
}

/** A prefix as an interval: its first address, and the address after its last (none at the end of the space). */
export interface Interval {
  start: string;
  after?: string;
}

function v4Intervals(list: readonly { value: number; length: number }[]): Interval[] {
  return list.map((p) => {
    const after = p.value + 2 ** (32 - p.length);
    return { start: formatV4(p.value), ...(after < 2 ** 32 ? { after: formatV4(after) } : {}) };
  });
}

function v6Intervals(list: readonly Prefix[]): Interval[] {
  return list.map((p) => {
    const after = p.value + (1n << BigInt(128 - p.length));
    return { start: p.address, ...(after < 1n << 128n ? { after: formatV6Value(after) } : {}) };
  });
}

/**
 * An interval set's elements as the netlink helper's lines, encoded as nft encodes them: ascending, each interval a
 * start element ("a") and an end element ("e") at the address after its last; one that reaches the end of the
 * address space has no end, its start is marked open ("o"); before them an end element at the zero address unless
 * the first interval starts there.
 */
export function intervalLines(set: string, fam: Family, intervals: readonly Interval[]): string {
  const zero = fam === 4 ? '0.0.0.0' : '::';
  const out: string[] = [];
  if (intervals.length && intervals[0].start !== zero) out.push(`e ${set} ${zero}`);
  for (const { start, after } of intervals) {
    if (after === undefined) out.push(`o ${set} ${start}`);
    else out.push(`a ${set} ${start}`, `e ${set} ${after}`);
  }
  return out.length ? out.join('\n') + '\n' : '';
}

function emitSet(e: Emitter, name: string, fam: Family, interval: boolean, elements: string[], path: string, size?: number): void {
  e.emit(`\tset ${name} {`, path);
  e.emit(`\t\ttype ${fam === 4 ? 'ipv4_addr' : 'ipv6_addr'}${interval ? '; flags interval' : ''}${size ? `; size ${size}` : ''}`, path);
  if (elements.length) {
    e.emit('\t\telements = {', path);
    for (let i = 0; i < elements.length; i += ELEMENTS_PER_LINE) {
      const chunk = elements.slice(i, i + ELEMENTS_PER_LINE).join(', ');
      e.emit(`\t\t\t${chunk}${i + ELEMENTS_PER_LINE < elements.length ? ',' : ''}`, path);
    }
    e.emit('\t\t}', path);
  }
  e.emit('\t}', path);
}

function antiLockoutSpec(config: Config, env: RuntimeEnv): { devices: string[]; ports: PortRange[] } | undefined {
  const scope = antiLockoutScope(config, env);
  if (!scope) return undefined;
  const devices = config.interfaces.filter((i) => i.zone && scope.zones.includes(i.zone)).map((i) => i.device);
  return devices.length ? { devices, ports: scope.ports } : undefined;
}
