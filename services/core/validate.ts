/**
 * Validation of a configuration document: structure (zod) and then cross references, each problem with a JSON
 * pointer. Also the resolvers (address references → prefixes, service references → protocol/port sets) that the
 * compiler and the packet tracer share, so all three agree on what a rule means.
 */
import { Config, type InlineService } from './schema.ts';
import { RampartError, pointer, type Problem } from './errors.ts';
import { parseAddress, parseInterfaceAddress, parseList, parsePrefix, type Family, type ParsedList, type Prefix } from './net.ts';
import { checkNetwork } from '../network/validate.ts';
import { ruleProblem } from '../ids/rules.ts';
import { markerProblems } from './secrets.ts';

const MAX_PROBLEMS = 200;
const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

export interface PortRange {
  lo: number;
  hi: number;
}

export function parsePort(spec: string | number): PortRange | string {
  const s = String(spec);
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) return 'must be a port (1-65535) or a range "low-high"';
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535) return 'port out of range 1-65535';
  if (hi < lo) return 'range low end is above its high end';
  return { lo, hi };
}

export type L4 = 'tcp' | 'udp' | 'icmp' | 'icmpv6';

/** One protocol with its destination ports (empty: any port), or ICMP with optional echo-only restriction. */
export interface ServiceMatch {
  proto: L4;
  ports: PortRange[];
  /** For icmp/icmpv6: only echo requests ("ping"). */
  echoOnly?: boolean;
}

export const BUILTIN_SERVICES: Record<string, ServiceMatch[]> = {
  ssh: [{ proto: 'tcp', ports: [{ lo: 22, hi: 22 }] }],
  http: [{ proto: 'tcp', ports: [{ lo: 80, hi: 80 }] }],
  https: [{ proto: 'tcp', ports: [{ lo: 443, hi: 443 }] }],
  dns: [
    { proto: 'udp', ports: [{ lo: 53, hi: 53 }] },
    { proto: 'tcp', ports: [{ lo: 53, hi: 53 }] },
  ],
  ntp: [{ proto: 'udp', ports: [{ lo: 123, hi: 123 }] }],
  snmp: [{ proto: 'udp', ports: [{ lo: 161, hi: 161 }] }],
  dhcp: [{ proto: 'udp', ports: [{ lo: 67, hi: 68 }] }],
  icmp: [
    { proto: 'icmp', ports: [] },
    { proto: 'icmpv6', ports: [] },
  ],
  ping: [
    { proto: 'icmp', ports: [], echoOnly: true },
    { proto: 'icmpv6', ports: [], echoOnly: true },
  ],
};

export interface ResolvedAddresses {
  v4: Prefix[];
  v6: Prefix[];
}

/** Resolve address references (IPs, CIDRs, object names). Throws nothing: unknown entries are reported by validate. */
export function resolveAddresses(refs: readonly string[] | undefined, objects: Record<string, readonly string[]>): ResolvedAddresses | undefined {
  if (!refs || refs.length === 0) return undefined;
  const out: ResolvedAddresses = { v4: [], v6: [] };
  for (const ref of refs) {
    const list = Object.hasOwn(objects, ref) ? objects[ref] : [ref];
    for (const item of list) {
      const p = parsePrefix(item);
      if (p) (p.family === 4 ? out.v4 : out.v6).push(p);
    }
  }
  return out;
}

export function inlineServiceMatch(s: InlineService): ServiceMatch {
  const ports = (s.ports ?? []).map(parsePort).filter((p): p is PortRange => typeof p !== 'string');
  return { proto: s.proto, ports };
}

export function resolveServices(
  refs: ReadonlyArray<string | InlineService> | undefined,
  objects: Record<string, readonly InlineService[]>,
): ServiceMatch[] | undefined {
  if (!refs || refs.length === 0) return undefined;
  const out: ServiceMatch[] = [];
  for (const ref of refs) {
    if (typeof ref !== 'string') out.push(inlineServiceMatch(ref));
    else if (Object.hasOwn(objects, ref)) out.push(...objects[ref].map(inlineServiceMatch));
    else if (Object.hasOwn(BUILTIN_SERVICES, ref)) out.push(...BUILTIN_SERVICES[ref]);
  }
  return out;
}

/** Sort and merge overlapping or adjacent port ranges. */
export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.lo - b.lo || a.hi - b.hi);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi);
    else out.push({ ...r });
  }
  return out;
}

/** Facts of the running appliance that the ruleset depends on, beside the document. */
export interface RuntimeEnv {
  /** The TCP port the management API listens on (default 443). */
  apiPort?: number;
}

/**
 * The anti-lockout rule: which zones and TCP ports stay reachable on input whatever the rules say. Default zones:
 * those of interfaces marked `management`, else the zone `lan`; default ports 22 and the management API's port
 * (443 unless the daemon listens elsewhere). Undefined when off.
 */
export function antiLockoutScope(config: Config, env: RuntimeEnv = {}): { zones: string[]; ports: PortRange[] } | undefined {
  const al = config.firewall.antiLockout;
  if (al === false || (typeof al === 'object' && !al.enabled)) return undefined;
  let zones = typeof al === 'object' && al.zones ? al.zones : undefined;
  if (!zones) {
    const mgmt = config.interfaces.filter((i) => i.management && i.zone).map((i) => i.zone!);
    zones = mgmt.length ? mgmt : config.zones.some((z) => z.name === 'lan') ? ['lan'] : [];
  }
  const ports = (typeof al === 'object' && al.ports ? al.ports : ['22', String(env.apiPort ?? 443)]).map((p) => parsePort(p) as PortRange);
  return { zones, ports };
}

/** Address families a service list can match: icmp is IPv4 only, icmpv6 IPv6 only. */
export function serviceFamilies(services: ServiceMatch[] | undefined): Set<Family> {
  if (!services) return new Set([4, 6]);
  const f = new Set<Family>();
  for (const s of services) {
    if (s.proto === 'icmp') f.add(4);
    else if (s.proto === 'icmpv6') f.add(6);
    else {
      f.add(4);
      f.add(6);
    }
  }
  return f;
}

export function addressFamilies(a: ResolvedAddresses | undefined): Set<Family> {
  if (!a) return new Set([4, 6]);
  const f = new Set<Family>();
  if (a.v4.length) f.add(4);
  if (a.v6.length) f.add(6);
  return f;
}

/** Blocklists parsed during validation, keyed by the validated entries array, so the compiler parses them once. */
const parsedLists = new WeakMap<readonly string[], ParsedList>();

/** The parsed entries of a validated blocklist (parsed now if it did not come through validation). */
export function parsedBlocklist(entries: readonly string[]): ParsedList {
  let parsed = parsedLists.get(entries);
  if (!parsed) {
    parsed = parseList(entries);
    parsedLists.set(entries, parsed);
  }
  return parsed;
}

export interface ValidationResult {
  ok: boolean;
  config?: Config;
  problems: Problem[];
}

/** Validate a document: structure first; cross references only when the structure holds. */
export function validateConfig(doc: unknown): ValidationResult {
  const parsed = Config.safeParse(doc);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, MAX_PROBLEMS).map((i) => ({ path: pointer(i.path as PropertyKey[] as (string | number)[]), message: issueMessage(i) }));
    return { ok: false, problems };
  }
  const problems = [...markerProblems(parsed.data), ...crossCheck(parsed.data)];
  return problems.length ? { ok: false, problems } : { ok: true, config: parsed.data, problems: [] };
}

/** Validate or throw a RampartError('invalid_input') carrying the problems. */
export function parseConfig(doc: unknown): Config {
  const r = validateConfig(doc);
  if (!r.ok || !r.config) throw RampartError.invalid(r.problems, `invalid configuration (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'})`);
  return r.config;
}

function issueMessage(i: { code: string; message: string; keys?: string[] }): string {
  if (i.code === 'unrecognized_keys' && i.keys) return `unknown field${i.keys.length > 1 ? 's' : ''}: ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  return i.message;
}

class Problems {
  readonly list: Problem[] = [];
  add(path: (string | number)[], message: string): void {
    if (this.list.length < MAX_PROBLEMS) this.list.push({ path: pointer(path), message });
    else if (this.list.length === MAX_PROBLEMS) this.list.push({ path: '', message: 'too many problems; the rest are not listed' });
  }
}

function crossCheck(c: Config): Problem[] {
  const p = new Problems();
  const zones = new Set<string>();
  c.zones.forEach((z, i) => {
    if (z.name === 'any') p.add(['zones', i, 'name'], '"any" is reserved (it means every zone in rules)');
    if (zones.has(z.name)) p.add(['zones', i, 'name'], `duplicate zone "${z.name}"`);
    zones.add(z.name);
  });

  const ifNames = new Set<string>();
  const devices = new Set<string>();
  c.interfaces.forEach((itf, i) => {
    if (ifNames.has(itf.name)) p.add(['interfaces', i, 'name'], `duplicate interface name "${itf.name}"`);
    ifNames.add(itf.name);
    if (devices.has(itf.device)) p.add(['interfaces', i, 'device'], `device "${itf.device}" is used by another interface`);
    devices.add(itf.device);
    if (itf.device === '.' || itf.device === '..') p.add(['interfaces', i, 'device'], 'not a valid interface name');
    if (itf.zone !== undefined && !zones.has(itf.zone)) p.add(['interfaces', i, 'zone'], `unknown zone "${itf.zone}"`);
    itf.addresses.forEach((a, j) => {
      if (!parseInterfaceAddress(a)) p.add(['interfaces', i, 'addresses', j], 'not an interface address (IP/prefix length)');
    });
  });

  const addrObjects = c.objects.addresses;
  for (const [name, entries] of Object.entries(addrObjects)) {
    entries.forEach((e, j) => {
      if (!parsePrefix(e)) p.add(['objects', 'addresses', name, j], 'not an IP address or CIDR');
    });
  }
  for (const [name, entries] of Object.entries(c.objects.services)) {
    if (Object.hasOwn(BUILTIN_SERVICES, name)) p.add(['objects', 'services', name], `"${name}" is a built-in service name`);
    entries.forEach((s, j) => checkInlineService(p, ['objects', 'services', name, j], s));
  }

  const checkAddrRefs = (path: (string | number)[], refs: string[] | undefined): boolean => {
    let ok = true;
    refs?.forEach((r, j) => {
      if (Object.hasOwn(addrObjects, r)) return;
      if (!parsePrefix(r)) {
        p.add([...path, j], NAME_RE.test(r) ? `unknown address object "${r}"` : 'not an IP address or object name');
        ok = false;
      }
    });
    return ok;
  };

  const ruleIds = new Map<string, string>();
  const claimId = (path: (string | number)[], id: string) => {
    const prev = ruleIds.get(id);
    if (prev) p.add(path, `duplicate id "${id}" (also at ${prev})`);
    else ruleIds.set(id, pointer(path.slice(0, -1)));
  };

  for (const chain of ['input', 'forward'] as const) {
    c.firewall[chain].forEach((r, i) => {
      const base = ['firewall', chain, i];
      claimId([...base, 'id'], r.id);
      if (r.from !== 'any' && !zones.has(r.from)) p.add([...base, 'from'], `unknown zone "${r.from}"`);
      if (chain === 'input' && r.to !== undefined) p.add([...base, 'to'], 'input rules have no "to" zone (traffic to the firewall itself)');
      if (chain === 'forward' && r.to !== undefined && r.to !== 'any' && !zones.has(r.to)) p.add([...base, 'to'], `unknown zone "${r.to}"`);
      const srcOk = checkAddrRefs([...base, 'source'], r.source);
      const dstOk = checkAddrRefs([...base, 'destination'], r.destination);
      let servicesOk = srcOk && dstOk;
      r.services?.forEach((s, j) => {
        if (typeof s === 'string') {
          if (!Object.hasOwn(c.objects.services, s) && !Object.hasOwn(BUILTIN_SERVICES, s)) {
            p.add([...base, 'services', j], `unknown service "${s}"`);
            servicesOk = false;
          }
        } else if (!checkInlineService(p, [...base, 'services', j], s)) servicesOk = false;
      });
      if (r.limit) {
        const problem = limitProblem(r.limit.rate, r.limit.burst);
        if (problem) p.add([...base, 'limit', 'burst'], problem);
      }
      if (servicesOk) {
        const src = resolveAddresses(r.source, addrObjects);
        const dst = resolveAddresses(r.destination, addrObjects);
        const svc = resolveServices(r.services, c.objects.services);
        const fam = intersect(intersect(addressFamilies(src), addressFamilies(dst)), serviceFamilies(svc));
        if (fam.size === 0) p.add(base, 'source, destination and services have no address family in common, so the rule can never match');
      }
    });
  }

  const forwards: { zone: string; proto: string; range: { lo: number; hi: number }; index: number }[] = [];
  c.firewall.nat.portForwards.forEach((f, i) => {
    const base = ['firewall', 'nat', 'portForwards', i];
    claimId([...base, 'id'], f.id);
    if (!zones.has(f.zone)) p.add([...base, 'zone'], `unknown zone "${f.zone}"`);
    const port = parsePort(f.port);
    if (typeof port === 'string') p.add([...base, 'port'], port);
    const to = parseAddress(f.to);
    if (!to) p.add([...base, 'to'], 'not an IP address');
    if (f.toPort !== undefined) {
      const tp = parsePort(f.toPort);
      if (typeof tp === 'string') p.add([...base, 'toPort'], tp);
      else if (typeof port !== 'string' && tp.hi !== tp.lo && (tp.lo !== port.lo || tp.hi !== port.hi)) {
        p.add([...base, 'toPort'], 'a target port range must be a single port or the same range as "port"');
      }
    }
    checkAddrRefs([...base, 'source'], f.source);
    if (to && f.source) {
      const src = resolveAddresses(f.source, addrObjects);
      if (src && !addressFamilies(src).has(to.family)) p.add([...base, 'source'], `no source of the target's family (IPv${to.family})`);
    }
    if (typeof port !== 'string' && f.enabled) {
      for (const other of forwards) {
        if (other.zone === f.zone && other.proto === f.proto && port.lo <= other.range.hi && other.range.lo <= port.hi) {
          p.add([...base, 'port'], `overlaps port forward /firewall/nat/portForwards/${other.index} (${f.proto} ${other.range.lo}-${other.range.hi})`);
        }
      }
      forwards.push({ zone: f.zone, proto: f.proto, range: port, index: i });
    }
  });

  c.firewall.nat.masquerade.forEach((m, i) => {
    if (!zones.has(m.zone)) p.add(['firewall', 'nat', 'masquerade', i, 'zone'], `unknown zone "${m.zone}"`);
    checkAddrRefs(['firewall', 'nat', 'masquerade', i, 'source'], m.source);
  });
  c.firewall.nat.snat.forEach((s, i) => {
    const base = ['firewall', 'nat', 'snat', i];
    claimId([...base, 'id'], s.id);
    if (!zones.has(s.zone)) p.add([...base, 'zone'], `unknown zone "${s.zone}"`);
    const to = parseAddress(s.to);
    if (!to) p.add([...base, 'to'], 'not an IP address');
    checkAddrRefs([...base, 'source'], s.source);
    if (to && s.source) {
      const src = resolveAddresses(s.source, addrObjects);
      if (src && !addressFamilies(src).has(to.family)) p.add([...base, 'source'], `no source of the target's family (IPv${to.family})`);
    }
  });

  const lists = new Set<string>();
  c.firewall.blocklists.forEach((b, i) => {
    if (lists.has(b.name)) p.add(['firewall', 'blocklists', i, 'name'], `duplicate blocklist "${b.name}"`);
    lists.add(b.name);
    parsedLists.set(
      b.entries,
      parseList(b.entries, (j) => p.add(['firewall', 'blocklists', i, 'entries', j], 'not an IP address or CIDR')),
    );
  });

  const al = c.firewall.antiLockout;
  if (typeof al === 'object') {
    al.zones?.forEach((z, j) => {
      if (!zones.has(z)) p.add(['firewall', 'antiLockout', 'zones', j], `unknown zone "${z}"`);
    });
    al.ports?.forEach((port, j) => {
      const r = parsePort(port);
      if (typeof r === 'string') p.add(['firewall', 'antiLockout', 'ports', j], r);
    });
  }

  c.routes.forEach((r, i) => {
    if (!parsePrefix(r.destination) && r.destination !== 'default') p.add(['routes', i, 'destination'], 'not a CIDR or "default"');
    if (r.gateway !== undefined && !parseAddress(r.gateway)) p.add(['routes', i, 'gateway'], 'not an IP address');
    if (r.interface !== undefined && !ifNames.has(r.interface)) p.add(['routes', i, 'interface'], `unknown interface "${r.interface}"`);
    if (r.gateway === undefined && r.interface === undefined) p.add(['routes', i], 'a route needs a gateway or an interface');
  });

  c.ids.interfaces.forEach((n, j) => {
    if (!ifNames.has(n)) p.add(['ids', 'interfaces', j], `unknown interface "${n}"`);
  });
  c.ids.autoBlock?.allowlist.forEach((a, j) => {
    if (!Object.hasOwn(addrObjects, a) && !parsePrefix(a)) p.add(['ids', 'autoBlock', 'allowlist', j], 'not an IP address or object name');
  });
  // IDS rules and their knobs (services/ids/rules.ts): nothing unchecked reaches the rules or threshold files.
  c.ids.localRules.forEach((r, j) => {
    const why = ruleProblem(r);
    if (why) p.add(['ids', 'localRules', j], why);
  });
  c.ids.ruleFiles.forEach((f, j) => {
    if (!f || /[\u0000-\u001f]/.test(f)) p.add(['ids', 'ruleFiles', j], 'must be a file path without control characters');
  });
  c.ids.sids.enable.forEach((sid, j) => {
    if (c.ids.sids.disable.includes(sid)) p.add(['ids', 'sids', 'enable', j], `sid ${sid} is also disabled`);
  });
  c.ids.suppress.forEach((s, i) => s.ip?.forEach((a, j) => {
    if (!Object.hasOwn(addrObjects, a) && !parsePrefix(a)) p.add(['ids', 'suppress', i, 'ip', j], 'not an IP address or object name');
  }));
  if (c.ids.enabled && c.ids.mode === 'ids' && !c.ids.interfaces.length) p.add(['ids', 'interfaces'], 'IDS mode needs at least one interface to watch');
  c.snmp.communities.forEach((cm, i) => checkAddrRefs(['snmp', 'communities', i, 'sources'], cm.sources));
  if (c.sync.enabled) {
    if (!c.sync.broker) p.add(['sync', 'broker'], 'required when sync is enabled');
    else if (!/^mqtts:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^mqtts:\/\/\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(c.sync.broker)) p.add(['sync', 'broker'], 'must be mqtts://host[:port]');
  }
  checkNetwork(c, (path, message) => p.add(path, message));
  return p.list;
}

function checkInlineService(p: Problems, path: (string | number)[], s: InlineService): boolean {
  let ok = true;
  if ((s.proto === 'icmp' || s.proto === 'icmpv6') && s.ports && s.ports.length) {
    p.add([...path, 'ports'], `${s.proto} has no ports`);
    ok = false;
  }
  s.ports?.forEach((port, j) => {
    const r = parsePort(port);
    if (typeof r === 'string') {
      p.add([...path, 'ports', j], r);
      ok = false;
    }
  });
  return ok;
}

const UNIT_SECONDS: Record<string, bigint> = { second: 1n, minute: 60n, hour: 3600n, day: 86400n };

/**
 * The kernel's token bucket holds (nanoseconds per unit ÷ rate) × burst in 64 bits and refuses a rule beyond that
 * ("Value too large"); nft's default burst is 5.
 */
export function limitProblem(rate: string, burst = 5): string | undefined {
  const [n, unit] = rate.split('/');
  const perToken = (UNIT_SECONDS[unit] * 1_000_000_000n) / BigInt(n);
  if (perToken * BigInt(burst) >= 1n << 64n) return `burst too large for a rate of ${rate} (the kernel cannot hold it)`;
  return undefined;
}

function intersect<T>(a: Set<T>, b: Set<T>): Set<T> {
  return new Set([...a].filter((x) => b.has(x)));
}

