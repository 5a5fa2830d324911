/**
 * fast-check arbitraries shared by the config fuzz, the `nft -c` sweep and the trace differential test.
 *
 *  - `validConfigArb()`: documents inside the schema of SPEC §3 (and its cross-reference rules), built from random
 *    zones, interfaces, address/service objects, rules, NAT and blocklists, with hostile free text everywhere text
 *    is allowed. Validity is by construction (ids de-duplicated, port forwards without overlaps, rule families
 *    repaired); the tests assert `validateConfig` agrees.
 *  - `labConfigArb()`: small valid documents over the lab of SPEC §7 (lan0/wan0), for the trace differential.
 *  - `mutationsArb` / `applyMutations`: damage a document (wrong types, hostile strings, deleted and unknown fields).
 *  - `shrinkDocument`: greedy reduction of a document while a predicate still holds, to report minimal cases.
 *
 * Family/port logic here is written independently of services/** on purpose: it must not share the bugs it tests.
 */
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { limitProblem } from '../../services/core/validate.ts';

export type Doc = Record<string, any>;
type Fam = 4 | 6;

/* ------------------------------------------------------------------------------------------------ text */

/** Strings that would break out of an nft string, statement or script if the compiler ever emitted them. */
export const HOSTILE_STRINGS = [
  '"; flush ruleset',
  '" ; flush ruleset ; "',
  '\n flush ruleset\n',
  '\\"; delete table inet rampart; #',
  '}; table inet evil { chain x { type filter hook input priority -500; policy drop; } }',
  'comment "x" accept',
  "'; drop; '",
  '$(reboot)',
  '`id`',
  '# not a comment',
  '\r\n',
  '\t',
  '\u0000',
  '\u202e',
  '\ufeff',
  'é',
  '😀',
  '{ }',
  '@set',
  '\\',
  '"',
];

/** Marker every generated free text starts with: `~c<n>~` never occurs in a compiled script. */
export const TEXT_MARKER = '~c';

function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  let out = s.slice(0, max);
  const last = out.charCodeAt(out.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) out = out.slice(0, -1);
  return out;
}

/** Free text (comments, descriptions, contact...) with hostile pieces; always starts with TEXT_MARKER. */
export function hostileTextArb(max: number): fc.Arbitrary<string> {
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
    { weight: 1, arbitrary: fc.constant('x'.repeat(2000)) },
  );
  return fc.tuple(fc.nat(99999), fc.array(piece, { maxLength: 5 })).map(([n, parts]) => cut(`${TEXT_MARKER}${n}~${parts.join('')}`, max));
}

/* ------------------------------------------------------------------------------------------- addresses */

export const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;
export const nameArb = fc.stringMatching(NAME_RE);
const deviceArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('eth0', 'eth1', 'lan0', 'wan0', 'br-lan', 'eth0.10', 'wg0', 'lo', 'X', 'a_b.c-d', '123456789012345') },
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/) },
);
/** Zone names: random ones plus names that collide with the compiler's own chain-name scheme. */
const zoneNameArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('lan', 'wan', 'dmz', 'guest-net', 'other', 'from', 'a', 'b', 'c', 'a_b', 'b_c') },
  { weight: 2, arbitrary: nameArb },
);

const byte = fc.integer({ min: 0, max: 255 });
const hextet = fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 0xffff, 0x2001, 0xdb8) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }) });

export const ipv4Arb = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('0.0.0.0', '255.255.255.255', '127.0.0.1', '192.0.2.10', '10.0.0.1') },
  { weight: 5, arbitrary: fc.tuple(byte, byte, byte, byte).map((b) => b.join('.')) },
);

export const ipv6Arb = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('::', '::1', '2001:db8::1', 'fe80::1', '::ffff:192.0.2.1', 'ff02::1') },
  {
    weight: 5,
    arbitrary: fc.tuple(fc.array(hextet, { minLength: 8, maxLength: 8 }), fc.constantFrom('short', 'normal', 'fixed', 'upper')).map(([h, style]) => {
      const a = new ipaddr.IPv6(h);
      if (style === 'short') return a.toString();
      if (style === 'normal') return a.toNormalizedString();
      if (style === 'fixed') return h.map((x) => x.toString(16).padStart(4, '0')).join(':');
      return a.toString().toUpperCase();
    }),
  },
);

export const cidr4Arb = fc.tuple(ipv4Arb, fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`);
export const cidr6Arb = fc.tuple(ipv6Arb, fc.integer({ min: 0, max: 128 })).map(([a, l]) => `${a}/${l}`);
export const addressArb = fc.oneof(ipv4Arb, ipv6Arb, cidr4Arb, cidr6Arb);

const ifAddr4 = fc.tuple(ipv4Arb, fc.integer({ min: 1, max: 32 })).map(([a, l]) => `${a}/${l}`);
const ifAddr6 = fc.tuple(ipv6Arb, fc.integer({ min: 1, max: 128 })).map(([a, l]) => `${a}/${l}`);

/* --------------------------------------------------------------------------------------------- ports */

const portNum = fc.oneof({ weight: 1, arbitrary: fc.constantFrom(1, 22, 53, 80, 443, 65535) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 65535 }) });
const portRange = fc.tuple(portNum, portNum).map(([a, b]) => (a <= b ? `${a}-${b}` : `${b}-${a}`));
/** A port spec as the schema allows it: a number, a numeric string or a "lo-hi" range. */
export const portSpecArb: fc.Arbitrary<string | number> = fc.oneof(portNum, portNum.map(String), portRange);

function portBounds(spec: string | number): { lo: number; hi: number } {
  const [lo, hi] = String(spec).split('-').map(Number);
  return { lo, hi: hi ?? lo };
}

/* -------------------------------------------------------------------------------------------- services */

export const BUILTIN_NAMES = ['ssh', 'http', 'https', 'dns', 'ntp', 'snmp', 'dhcp', 'icmp', 'ping'];

const inlineServiceArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      { proto: fc.constantFrom('tcp', 'udp'), ports: fc.array(portSpecArb, { maxLength: 4 }) },
      { requiredKeys: ['proto'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ proto: fc.constantFrom('icmp', 'icmpv6') }) },
);

/* ------------------------------------------------------------------------------- family bookkeeping */

const famOf = (a: string): Fam => (a.includes(':') ? 6 : 4);

function addrFams(refs: string[] | undefined, objs: Record<string, string[]>): Set<Fam> {
  if (!refs) return new Set([4, 6]);
  const out = new Set<Fam>();
  for (const r of refs) for (const e of Object.hasOwn(objs, r) ? objs[r] : [r]) out.add(famOf(e));
  return out;
}

function inlineFams(s: { proto: string }): Fam[] {
  return s.proto === 'icmp' ? [4] : s.proto === 'icmpv6' ? [6] : [4, 6];
}

function svcFams(refs: unknown[] | undefined, objs: Record<string, { proto: string }[]>): Set<Fam> {
  if (!refs) return new Set([4, 6]);
  const out = new Set<Fam>();
  for (const r of refs) {
    const list = typeof r === 'string' ? (Object.hasOwn(objs, r) ? objs[r] : [{ proto: 'tcp' }]) : [r as { proto: string }];
    for (const s of list) for (const f of inlineFams(s)) out.add(f);
  }
  return out;
}

const inter = (a: Set<Fam>, b: Set<Fam>) => new Set([...a].filter((x) => b.has(x)));

/** Make source, destination and services share an address family (else the rule could never match). */
function repairRuleFamilies(rule: Doc, addrObjs: Record<string, string[]>, svcObjs: Record<string, { proto: string }[]>): void {
  if (inter(addrFams(rule.source, addrObjs), addrFams(rule.destination, addrObjs)).size === 0) delete rule.destination;
  const both = inter(addrFams(rule.source, addrObjs), addrFams(rule.destination, addrObjs));
  if (inter(both, svcFams(rule.services, svcObjs)).size === 0) delete rule.services;
}

/** Source list of a NAT entry must hold an address of the target's family. */
function repairNatSource(source: string[] | undefined, to: string, objs: Record<string, string[]>, fix4: string, fix6: string): string[] | undefined {
  if (!source) return undefined;
  if (addrFams(source, objs).has(famOf(to))) return source;
  return [...source, famOf(to) === 4 ? fix4 : fix6];
}

function uniqueIds(): (id: string) => string {
  const taken = new Set<string>();
  return (id: string) => {
    let out = id;
    for (let k = 2; taken.has(out); k++) out = `${id.slice(0, 26)}-${k}`;
    taken.add(out);
    return out;
  };
}

/* ----------------------------------------------------------------------------- the valid-config arbitrary */

type Raw<T> = T | undefined;
const opt = <T>(a: fc.Arbitrary<T>, freq = 2) => fc.option(a, { nil: undefined, freq });

/** A reference as generated: a literal address, or the n-th address object (resolved modulo their number). */
const addrRefRaw = fc.oneof({ weight: 3, arbitrary: addressArb }, { weight: 1, arbitrary: fc.record({ obj: fc.nat() }) });
const svcRefRaw = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...BUILTIN_NAMES) },
  { weight: 1, arbitrary: fc.record({ svcObj: fc.nat() }) },
  { weight: 3, arbitrary: inlineServiceArb },
);
const zoneRefRaw = fc.oneof(fc.constant('any'), fc.nat(), fc.constant(undefined));

const ruleRawArb = fc.record(
  {
    id: nameArb,
    chain: fc.constantFrom('input', 'forward'),
    from: zoneRefRaw,
    to: zoneRefRaw,
    source: opt(fc.array(addrRefRaw, { minLength: 1, maxLength: 4 })),
    destination: opt(fc.array(addrRefRaw, { minLength: 1, maxLength: 4 })),
    services: opt(fc.array(svcRefRaw, { minLength: 1, maxLength: 3 })),
    action: fc.constantFrom('accept', 'drop', 'reject'),
    log: opt(fc.boolean()),
    limit: opt(
      fc.record(
        {
          rate: fc.tuple(fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 999_999_999 })), fc.constantFrom('second', 'minute', 'hour', 'day')).map(([n, u]) => `${n}/${u}`),
          burst: fc.integer({ min: 1, max: 1_000_000 }),
        },
        { requiredKeys: ['rate'] },
      ).filter((l) => !limitProblem(l.rate, l.burst)),
      4,
    ),
    enabled: opt(fc.boolean(), 4),
    comment: opt(hostileTextArb(1024)),
  },
  { requiredKeys: ['id', 'chain', 'from', 'to', 'action'] },
);

const pfRawArb = fc.record({
  id: nameArb,
  zone: fc.nat(),
  proto: fc.constantFrom('tcp', 'udp'),
  port: portSpecArb,
  to: fc.oneof(ipv4Arb, ipv6Arb),
  toPortKind: fc.constantFrom('none', 'single', 'same'),
  toPortSingle: portNum,
  toPortAsNumber: fc.boolean(),
  source: opt(fc.array(addrRefRaw, { minLength: 1, maxLength: 3 }), 3),
  enabled: opt(fc.boolean(), 4),
  log: opt(fc.boolean()),
  comment: opt(hostileTextArb(1024)),
  fix4: ipv4Arb,
  fix6: ipv6Arb,
});

const snatRawArb = fc.record({
  id: nameArb,
  zone: fc.nat(),
  to: fc.oneof(ipv4Arb, ipv6Arb),
  source: opt(fc.array(addrRefRaw, { minLength: 1, maxLength: 3 })),
  fix4: ipv4Arb,
  fix6: ipv6Arb,
});

const masqRawArb = fc.record({
  zone: fc.nat(),
  source: opt(fc.array(addrRefRaw, { minLength: 1, maxLength: 3 }), 3),
  family: opt(fc.constantFrom('ipv4', 'ipv6', 'both')),
});

const antiLockoutRawArb = fc.oneof(
  fc.constant(undefined),
  fc.boolean(),
  fc.record(
    { enabled: fc.boolean(), zones: fc.array(fc.nat(), { maxLength: 3 }), ports: fc.array(portSpecArb, { minLength: 1, maxLength: 3 }) },
    { requiredKeys: [] },
  ),
);

const policyArb = fc.record(
  { input: fc.constantFrom('accept', 'drop'), forward: fc.constantFrom('accept', 'drop'), output: fc.constantFrom('accept', 'drop') },
  { requiredKeys: [] },
);

export interface ValidConfigOptions {
  /** Most rules (input + forward) in one document; default 60. */
  maxRules?: number;
  /** Most blocklist entries per list; default 40. */
  maxBlocklistEntries?: number;
}

/** Valid configuration documents (SPEC §3), built within the schema and its cross-reference rules. */
export function validConfigArb(opts: ValidConfigOptions = {}): fc.Arbitrary<Doc> {
  const maxRules = opts.maxRules ?? 60;
  const universe = fc.record({
    zones: fc.uniqueArray(zoneNameArb, { minLength: 1, maxLength: 4 }),
    zoneDescriptions: fc.array(opt(hostileTextArb(256), 4), { minLength: 4, maxLength: 4 }),
    interfaces: fc.array(
      fc.record(
        {
          name: nameArb,
          device: deviceArb,
          zone: fc.oneof({ weight: 5, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.constant(undefined) }),
          addresses: fc.array(fc.oneof(ifAddr4, ifAddr6), { maxLength: 3 }),
          management: opt(fc.boolean(), 4),
          dhcp: opt(fc.boolean(), 6),
          mtu: opt(fc.integer({ min: 576, max: 65535 }), 6),
          description: opt(hostileTextArb(256), 4),
        },
        { requiredKeys: ['name', 'device', 'zone', 'addresses'] },
      ),
      { minLength: 1, maxLength: 6 },
    ),
    addrObjects: fc.uniqueArray(fc.tuple(nameArb, fc.array(addressArb, { minLength: 1, maxLength: 6 })), { maxLength: 4, selector: (t) => t[0] }),
    svcObjects: fc.uniqueArray(
      fc.tuple(nameArb.filter((n) => !BUILTIN_NAMES.includes(n)), fc.array(inlineServiceArb, { minLength: 1, maxLength: 3 })),
      { maxLength: 3, selector: (t) => t[0] },
    ),
  });
  const rest = fc.record({
    rules: fc.array(ruleRawArb, { maxLength: maxRules, size: 'medium' }),
    policy: opt(policyArb, 5),
    antiLockout: antiLockoutRawArb,
    portForwards: fc.array(pfRawArb, { maxLength: 4 }),
    snat: fc.array(snatRawArb, { maxLength: 2 }),
    masquerade: fc.array(masqRawArb, { maxLength: 2 }),
    blocklists: fc.uniqueArray(
      fc.record({ name: nameArb, entries: fc.array(addressArb, { maxLength: opts.maxBlocklistEntries ?? 40 }), comment: opt(hostileTextArb(1024), 4) }, { requiredKeys: ['name', 'entries'] }),
      { maxLength: 3, selector: (b) => b.name },
    ),
    system: fc.record(
      {
        hostname: fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/),
        contact: hostileTextArb(255),
        location: hostileTextArb(255),
      },
      { requiredKeys: [] },
    ),
  });
  return fc.tuple(universe, rest).map(([u, r]) => buildValid(u, r));
}

function buildValid(u: any, r: any): Doc {
  const zones: string[] = u.zones;
  const zoneAt = (n: number) => zones[n % zones.length];
  const zoneRef = (z: Raw<string | number>) => (typeof z === 'number' ? zoneAt(z) : z);

  const ifNames = new Set<string>();
  const devices = new Set<string>();
  const interfaces: Doc[] = [];
  for (const itf of u.interfaces) {
    if (ifNames.has(itf.name) || devices.has(itf.device)) continue;
    ifNames.add(itf.name);
    devices.add(itf.device);
    const out: Doc = { name: itf.name, device: itf.device, addresses: itf.addresses };
    if (itf.zone !== undefined) out.zone = zoneAt(itf.zone);
    for (const k of ['management', 'dhcp', 'mtu', 'description']) if (itf[k] !== undefined) out[k] = itf[k];
    interfaces.push(out);
  }

  const addrObjs: Record<string, string[]> = Object.fromEntries(u.addrObjects);
  const svcObjs: Record<string, Doc[]> = Object.fromEntries(u.svcObjects);
  const addrNames = Object.keys(addrObjs);
  const svcNames = Object.keys(svcObjs);

  const addrRef = (x: any): string => (typeof x === 'string' ? x : addrNames.length ? addrNames[x.obj % addrNames.length] : '192.0.2.1');
  const svcRef = (x: any): unknown => (typeof x === 'object' && 'svcObj' in x ? (svcNames.length ? svcNames[x.svcObj % svcNames.length] : 'ssh') : x);

  const claim = uniqueIds();
  const input: Doc[] = [];
  const forward: Doc[] = [];
  for (const raw of r.rules) {
    const rule: Doc = { id: claim(raw.id) };
    const from = zoneRef(raw.from);
    if (from !== undefined) rule.from = from;
    if (raw.chain === 'forward') {
      const to = zoneRef(raw.to);
      if (to !== undefined) rule.to = to;
    }
    if (raw.source) rule.source = raw.source.map(addrRef);
    if (raw.destination) rule.destination = raw.destination.map(addrRef);
    if (raw.services) rule.services = raw.services.map(svcRef);
    rule.action = raw.action;
    for (const k of ['log', 'limit', 'enabled', 'comment']) if (raw[k] !== undefined) rule[k] = raw[k];
    repairRuleFamilies(rule, addrObjs, svcObjs as Record<string, { proto: string }[]>);
    (raw.chain === 'input' ? input : forward).push(rule);
  }

  const portForwards: Doc[] = [];
  const taken: { zone: string; proto: string; lo: number; hi: number }[] = [];
  for (const raw of r.portForwards) {
    const zone = zoneAt(raw.zone);
    const { lo, hi } = portBounds(raw.port);
    const enabled = raw.enabled ?? true;
    if (enabled && taken.some((t) => t.zone === zone && t.proto === raw.proto && lo <= t.hi && t.lo <= hi)) continue;
    if (enabled) taken.push({ zone, proto: raw.proto, lo, hi });
    const pf: Doc = { id: claim(raw.id), zone, proto: raw.proto, port: raw.port, to: raw.to };
    if (raw.toPortKind === 'single') pf.toPort = raw.toPortAsNumber ? raw.toPortSingle : String(raw.toPortSingle);
    if (raw.toPortKind === 'same') pf.toPort = raw.port;
    const source = repairNatSource(raw.source?.map(addrRef), raw.to, addrObjs, raw.fix4, raw.fix6);
    if (source) pf.source = source;
    for (const k of ['enabled', 'log', 'comment']) if (raw[k] !== undefined) pf[k] = raw[k];
    portForwards.push(pf);
  }

  const snat: Doc[] = r.snat.map((raw: Doc) => {
    const s: Doc = { id: claim(raw.id), zone: zoneAt(raw.zone), to: raw.to };
    const source = repairNatSource(raw.source?.map(addrRef), raw.to, addrObjs, raw.fix4, raw.fix6);
    if (source) s.source = source;
    return s;
  });
  const masquerade: Doc[] = r.masquerade.map((raw: Doc) => {
    const m: Doc = { zone: zoneAt(raw.zone) };
    if (raw.source) m.source = raw.source.map(addrRef);
    if (raw.family) m.family = raw.family;
    return m;
  });

  let antiLockout: unknown = r.antiLockout;
  if (antiLockout && typeof antiLockout === 'object') {
    const al = { ...(antiLockout as Doc) };
    if (al.zones) al.zones = [...new Set((al.zones as number[]).map(zoneAt))];
    antiLockout = al;
  }

  const firewall: Doc = {
    input,
    forward,
    nat: { masquerade, portForwards, snat },
    blocklists: r.blocklists,
  };
  if (r.policy) firewall.policy = r.policy;
  if (antiLockout !== undefined) firewall.antiLockout = antiLockout;

  return {
    schema: 1,
    system: r.system,
    interfaces,
    zones: zones.map((name, i) => (u.zoneDescriptions[i] === undefined ? { name } : { name, description: u.zoneDescriptions[i] })),
    objects: { addresses: addrObjs, services: svcObjs },
    firewall,
  };
}

/** Every free-text value of a document (comments, descriptions, contact, location). */
export function freeTexts(doc: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key?: string) => {
    if (typeof v === 'string') {
      if (key && ['comment', 'description', 'contact', 'location'].includes(key)) out.push(v);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(doc);
  return out;
}

/* --------------------------------------------------------------------------------- lab configurations */

/** Addresses of the lab (SPEC §7). */
export const LAB = {
  lanHost: { 4: '192.0.2.10', 6: '2001:db8:1::10' },
  wanHost: { 4: '198.51.100.20', 6: '2001:db8:2::20' },
  fwLan: { 4: '192.0.2.1', 6: '2001:db8:1::1' },
  fwWan: { 4: '198.51.100.1', 6: '2001:db8:2::1' },
} as const;

/** Ports the differential test listens on and probes (TCP and UDP). */
export const LAB_PORTS = [22, 53, 80, 443, 8080, 9000] as const;

const LAB_ADDR_OBJECTS: Record<string, string[]> = {
  lanhost: ['192.0.2.10', '2001:db8:1::10'],
  wanhost: ['198.51.100.20', '2001:db8:2::20'],
  fwaddrs: ['192.0.2.1', '198.51.100.1', '2001:db8:1::1', '2001:db8:2::1'],
  nowhere: ['203.0.113.0/24', '2001:db8:99::/48'],
  v4nets: ['192.0.2.0/24', '198.51.100.0/24'],
};
const LAB_SVC_OBJECTS: Record<string, Doc[]> = {
  web: [{ proto: 'tcp', ports: ['80', '443'] }],
  alt: [{ proto: 'udp', ports: ['5000-9000'] }, { proto: 'tcp', ports: [9000] }],
};
/** Sources / destinations a lab rule draws from: lab hosts, the firewall, their networks, prefixes that match nothing. */
const LAB_ADDR_POOL = [
  '192.0.2.10', '2001:db8:1::10', '198.51.100.20', '2001:db8:2::20',
  '192.0.2.1', '198.51.100.1', '2001:db8:1::1', '2001:db8:2::1',
  '192.0.2.0/24', '2001:db8:1::/64', '198.51.100.0/24', '2001:db8:2::/64',
  '203.0.113.0/24', '10.0.0.0/8', '2001:db8:99::/48', '192.0.2.128/25', '198.51.100.0/28', '0.0.0.0/0', '::/0',
  ...Object.keys(LAB_ADDR_OBJECTS),
];
const labPortSpec = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<string | number>(...LAB_PORTS, ...LAB_PORTS.map(String)) },
  { weight: 1, arbitrary: fc.constantFrom('50-90', '400-500', '8000-9000', '1-1024', '81-442', '23-52', '9001-65535') },
);
const labServiceArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('ssh', 'http', 'https', 'dns', 'web', 'alt', 'ping') },
  {
    weight: 4,
    arbitrary: fc.record({ proto: fc.constantFrom('tcp', 'udp'), ports: fc.array(labPortSpec, { minLength: 1, maxLength: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ proto: fc.constantFrom('tcp', 'udp') }) },
);

/** Exact addresses only (hosts, no prefixes): rules made of these and single ports compile to verdict-map lookups. */
const LAB_EXACT_POOL = [
  '192.0.2.10', '2001:db8:1::10', '198.51.100.20', '2001:db8:2::20', '192.0.2.1', '198.51.100.1', '2001:db8:1::1', '2001:db8:2::1',
  '203.0.113.7', '2001:db8:99::7', 'lanhost', 'wanhost', 'fwaddrs',
];
const labExactServiceArb = fc.oneof(
  fc.constantFrom('ssh', 'http', 'https', 'dns', 'web'),
  fc.record({ proto: fc.constantFrom('tcp', 'udp'), ports: fc.array(fc.constantFrom<string | number>(...LAB_PORTS, ...LAB_PORTS.map(String), 7, '9999'), { minLength: 1, maxLength: 3 }) }),
);
const labProtoOnlyServiceArb = fc.record({ proto: fc.constantFrom('tcp', 'udp') });

/** Zone names given to lan0 / wan0: mostly lan/wan, sometimes names that stress the compiler's chain names. */
const labZoneNamesArb: fc.Arbitrary<readonly [string, string]> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(['lan', 'wan'] as const) },
  { weight: 2, arbitrary: fc.constantFrom(['from', 'wan'] as const, ['wan', 'lan'] as const, ['lan', 'other'] as const, ['inside', 'outside'] as const, ['from', 'other'] as const) },
);

export interface LabZones {
  /** Zone of lan0 (the lan host's side). */
  lan: string;
  /** Zone of wan0. */
  wan: string;
}

/**
 * Small valid documents over the lab topology: 1-8 rules (a third of the documents: 4-8 rules of one exact-match
 * shape), random policies, optional port forward / NAT / blocklist, zone names mostly lan/wan.
 */
export function labConfigArb(): fc.Arbitrary<Doc> {
  type ZoneRef = 'lan' | 'wan' | 'any' | undefined;
  const zoneRef = fc.constantFrom<ZoneRef>('lan', 'wan', 'any', undefined);
  const rule = fc.record(
    {
      chain: fc.constantFrom('input', 'forward', 'forward'),
      from: zoneRef,
      to: zoneRef,
      source: opt(fc.array(fc.constantFrom(...LAB_ADDR_POOL), { minLength: 1, maxLength: 3 })),
      destination: opt(fc.array(fc.constantFrom(...LAB_ADDR_POOL), { minLength: 1, maxLength: 3 })),
      services: opt(fc.array(labServiceArb, { minLength: 1, maxLength: 2 }), 4),
      action: fc.constantFrom('accept', 'drop', 'reject'),
      log: opt(fc.boolean(), 4),
      enabled: opt(fc.boolean(), 6),
      comment: opt(hostileTextArb(200), 4),
    },
    { requiredKeys: ['chain', 'from', 'to', 'action'] },
  );
  // "exact" configurations: every rule has the same shape of exact matches (hosts, single ports or bare protocols),
  // so that runs of them are compiled into verdict maps.
  type Shape = { src: boolean; dst: boolean; svc: 'ports' | 'proto' | 'none'; chain: 'input' | 'forward'; from: ZoneRef; to: ZoneRef };
  const exactRule = (shape: Shape) =>
    fc.record(
      {
        chain: fc.constant(shape.chain),
        from: fc.constant(shape.from),
        to: fc.constant(shape.to),
        source: shape.src ? fc.array(fc.constantFrom(...LAB_EXACT_POOL), { minLength: 1, maxLength: 2 }) : fc.constant(undefined),
        destination: shape.dst ? fc.array(fc.constantFrom(...LAB_EXACT_POOL), { minLength: 1, maxLength: 2 }) : fc.constant(undefined),
        services:
          shape.svc === 'ports'
            ? fc.array(labExactServiceArb, { minLength: 1, maxLength: 2 })
            : shape.svc === 'proto'
              ? fc.array(labProtoOnlyServiceArb, { minLength: 1, maxLength: 2 })
              : fc.constant(undefined),
        action: fc.constantFrom('accept', 'drop', 'reject'),
        log: opt(fc.boolean(), 4),
        enabled: opt(fc.boolean(), 8),
        comment: opt(hostileTextArb(200), 4),
      },
      { requiredKeys: ['chain', 'from', 'to', 'action', 'source', 'destination', 'services'] },
    );
  const shapeArb: fc.Arbitrary<Shape> = fc
    .record({
      src: fc.boolean(),
      dst: fc.boolean(),
      svc: fc.constantFrom<'ports' | 'proto' | 'none'>('ports', 'ports', 'proto', 'none'),
      chain: fc.constantFrom<'input' | 'forward'>('input', 'forward', 'forward'),
      from: zoneRef,
      to: zoneRef,
    })
    .filter((sh) => sh.src || sh.dst || sh.svc !== 'none');
  const rulesArb = fc.oneof(
    { weight: 2, arbitrary: fc.array(rule, { minLength: 1, maxLength: 8 }) },
    { weight: 1, arbitrary: shapeArb.chain((sh) => fc.array(exactRule(sh), { minLength: 4, maxLength: 8 })) },
  );
  return fc
    .record({
      zones: labZoneNamesArb,
      management: opt(fc.boolean(), 3),
      policy: policyArb,
      antiLockout: fc.oneof(
        fc.constant(undefined),
        fc.boolean(),
        fc.record({ zones: fc.subarray(['lan', 'wan'] as const, { minLength: 1 }), ports: fc.subarray(['22', '443', '80', 9000], { minLength: 1 }) }),
      ),
      rules: rulesArb,
      portForward: opt(
        fc.record({
          proto: fc.constantFrom('tcp', 'tcp', 'udp'),
          to: fc.oneof({ weight: 6, arbitrary: fc.constant('192.0.2.10') }, { weight: 2, arbitrary: fc.constant('2001:db8:1::10') }, { weight: 1, arbitrary: fc.constant('192.0.2.1') }),
          toPort: fc.constantFrom<string | number | undefined>('80', 80, 80, 'same'),
          source: opt(fc.constantFrom(['198.51.100.0/24', '2001:db8:2::/64'], ['wanhost'], ['203.0.113.0/24', '2001:db8:99::/48']), 4),
        }),
        2,
      ),
      masquerade: opt(fc.constantFrom('ipv4', 'ipv6', 'both'), 3),
      blocklist: opt(fc.subarray(['203.0.113.66', '2001:db8:66::/48', '198.51.100.20', '2001:db8:1::10', '192.0.2.0/25'], { minLength: 1, maxLength: 2 }), 5),
    })
    .map((r) => {
      const [lanZone, wanZone] = r.zones;
      const z = (x: 'lan' | 'wan' | 'any' | undefined) => (x === 'lan' ? lanZone : x === 'wan' ? wanZone : x);
      const input: Doc[] = [];
      const forward: Doc[] = [];
      r.rules.forEach((raw, i) => {
        const rule: Doc = { id: `r${i + 1}` };
        if (raw.from !== undefined) rule.from = z(raw.from);
        if (raw.chain === 'forward' && raw.to !== undefined) rule.to = z(raw.to);
        for (const k of ['source', 'destination', 'services'] as const) if (raw[k] !== undefined && raw[k] !== null) rule[k] = raw[k];
        rule.action = raw.action;
        for (const k of ['log', 'enabled', 'comment'] as const) if (raw[k] !== undefined) rule[k] = raw[k];
        repairRuleFamilies(rule, LAB_ADDR_OBJECTS, LAB_SVC_OBJECTS as Record<string, { proto: string }[]>);
        (raw.chain === 'input' ? input : forward).push(rule);
      });
      const lanItf: Doc = { name: 'lan', device: 'lan0', zone: lanZone, addresses: ['192.0.2.1/24', '2001:db8:1::1/64'] };
      if (r.management !== undefined) lanItf.management = r.management;
      const portForwards: Doc[] = [];
      if (r.portForward) {
        const pf: Doc = { id: 'pf1', zone: wanZone, proto: r.portForward.proto, port: '8080', to: r.portForward.to };
        if (r.portForward.toPort === 'same') pf.toPort = '8080';
        else if (r.portForward.toPort !== undefined) pf.toPort = r.portForward.toPort;
        if (r.portForward.source) pf.source = r.portForward.source;
        portForwards.push(pf);
      }
      let antiLockout: unknown = r.antiLockout;
      if (antiLockout && typeof antiLockout === 'object') {
        const al = antiLockout as { zones: ('lan' | 'wan')[]; ports: (string | number)[] };
        antiLockout = { zones: al.zones.map(z), ports: al.ports };
      }
      const firewall: Doc = {
        policy: r.policy,
        input,
        forward,
        nat: { masquerade: r.masquerade ? [{ zone: wanZone, family: r.masquerade }] : [], portForwards, snat: [] },
        blocklists: r.blocklist ? [{ name: 'threats', entries: r.blocklist }] : [],
      };
      if (antiLockout !== undefined) firewall.antiLockout = antiLockout;
      return {
        schema: 1,
        system: { hostname: 'fw-lab' },
        interfaces: [lanItf, { name: 'wan', device: 'wan0', zone: wanZone, addresses: ['198.51.100.1/24', '2001:db8:2::1/64'] }],
        zones: [{ name: lanZone }, { name: wanZone }],
        objects: { addresses: LAB_ADDR_OBJECTS, services: LAB_SVC_OBJECTS },
        firewall,
      };
    });
}

/** The zones a lab document gives lan0 and wan0. */
export function labZones(doc: Doc): LabZones {
  const zoneOf = (dev: string) => (doc.interfaces as Doc[]).find((i) => i.device === dev)!.zone as string;
  return { lan: zoneOf('lan0'), wan: zoneOf('wan0') };
}

/* ------------------------------------------------------------------------------------------ mutations */

/** Values that do not belong where they are put: wrong types, hostile and huge strings, odd numbers. */
export const badValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.constantFrom(
    '', ' ', 'any', 'lan', '0', '-1', '65536', '1-0', '80-', '192.0.2.1/33', '::/129', '1.2.3.04', '1.2.3', 'fe80::1%eth0',
    'x'.repeat(100), 'y'.repeat(70_000), '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'ssh', 'icmp',
  ),
  fc.constantFrom(0, -0, -1, 1.5, 65536, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, Number.MIN_VALUE),
  fc.constantFrom(null, true, false),
  fc.constantFrom([], {}, [[]], [{}], [null], { proto: 'tcp' }, { '': 1 }, ['192.0.2.1', 7]),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

const keyArb = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'x', '', 'a/b', '~0', '~1/', 'é', 'Schema', 'schema ', 'enabled'),
  fc.string({ maxLength: 8 }),
);

export type Mutation =
  | { op: 'set'; at: number; value: unknown }
  | { op: 'delete'; at: number }
  | { op: 'addKey'; at: number; key: string; value: unknown }
  | { op: 'wrap'; at: number }
  | { op: 'stringify'; at: number }
  | { op: 'duplicate'; at: number };

export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: badValueArb }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('addKey' as const), at: fc.nat(), key: keyArb, value: badValueArb }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('wrap' as const), at: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('stringify' as const), at: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }) },
  ),
  { minLength: 1, maxLength: 3 },
);

type Path = (string | number)[];

/** All paths of a JSON-like value, the root included (as []). */
export function allPaths(v: unknown, base: Path = []): Path[] {
  const out: Path[] = [base];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...allPaths(x, [...base, i])));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) out.push(...allPaths((v as Doc)[k], [...base, k]));
  return out;
}

function setOwn(obj: Doc, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function getAt(root: unknown, path: Path): unknown {
  let v = root as Doc;
  for (const k of path) v = v[k as string];
  return v;
}

/** Apply mutations to a deep copy of `doc`; each picks its target among the paths that exist at that moment. */
export function applyMutations(doc: unknown, mutations: Mutation[]): unknown {
  let root: unknown = structuredClone(doc);
  for (const m of mutations) {
    const paths = allPaths(root);
    const path = paths[m.at % paths.length];
    const parentPath = path.slice(0, -1);
    const key = path[path.length - 1];
    const parent = path.length ? (getAt(root, parentPath) as Doc) : undefined;
    const current = getAt(root, path);
    const replace = (value: unknown) => {
      if (!parent) root = value;
      else if (Array.isArray(parent)) parent[key as number] = value;
      else setOwn(parent, key as string, value);
    };
    switch (m.op) {
      case 'set':
        replace(structuredClone(m.value));
        break;
      case 'delete':
        if (!parent) root = undefined;
        else if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key as string];
        break;
      case 'addKey':
        if (current && typeof current === 'object' && !Array.isArray(current)) setOwn(current as Doc, m.key, structuredClone(m.value));
        else if (Array.isArray(current)) current.push(structuredClone(m.value));
        else replace({ [m.key]: current });
        break;
      case 'wrap':
        replace([current]);
        break;
      case 'stringify':
        replace(typeof current === 'string' ? Number(current) : JSON.stringify(current) ?? 'undefined');
        break;
      case 'duplicate':
        if (parent && Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(current));
        else replace(structuredClone(current));
        break;
    }
  }
  return root;
}

/* ------------------------------------------------------------------------------------ JSON pointers */

/** Decode an RFC 6901 pointer; undefined if it is not well-formed. */
export function decodePointer(ptr: string): string[] | undefined {
  if (typeof ptr !== 'string') return undefined;
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) return undefined;
  const tokens = ptr.slice(1).split('/');
  if (tokens.some((t) => /~(?![01])/.test(t))) return undefined;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Whether the location a decoded pointer names exists in `doc`. */
export function pointerExists(doc: unknown, tokens: string[]): boolean {
  let v: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(v)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t) || Number(t) >= v.length) return false;
      v = v[Number(t)];
    } else if (v !== null && typeof v === 'object') {
      if (!Object.hasOwn(v, t)) return false;
      v = (v as Doc)[t];
    } else return false;
  }
  return true;
}

/* ------------------------------------------------------------------------------------------- shrinking */

/**
 * Greedy reduction: repeatedly try removing one array element or one object member (and replacing arrays by their
 * first element), keeping a change while `stillFails` holds; stops at a fixpoint or when the budget is spent.
 */
export async function shrinkDocument(doc: Doc, stillFails: (d: Doc) => Promise<boolean> | boolean, budgetMs = 20_000): Promise<Doc> {
  let best = structuredClone(doc);
  const deadline = Date.now() + budgetMs;
  let progress = true;
  while (progress && Date.now() < deadline) {
    progress = false;
    const paths = allPaths(best).filter((p) => p.length > 0).sort((a, b) => a.length - b.length);
    for (const path of paths) {
      if (Date.now() >= deadline) break;
      const candidate = structuredClone(best);
      const parent = getAt(candidate, path.slice(0, -1)) as Doc | undefined;
      if (!parent || typeof parent !== 'object') continue;
      const key = path[path.length - 1];
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      if (await stillFails(candidate)) {
        best = candidate;
        progress = true;
        break;
      }
    }
  }
  return best;
}
