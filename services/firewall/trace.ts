/**
 * Packet trace: which rule of a configuration decides a new packet, and the verdict. Pure; it follows the same
 * order as the compiled ruleset (dynamic blocks, blocklists, port forwards, anti-lockout, zone rules in order,
 * policy) and shares the compiler's resolvers, so trace and kernel agree (a differential test holds them to it).
 */
import type { Config, Rule } from '../core/schema.ts';
import { RampartError, pointer, type Problem } from '../core/errors.ts';
import { contains, parseAddress, parseInterfaceAddress, parsePrefix, type Prefix } from '../core/net.ts';
import { antiLockoutScope, parsePort, resolveAddresses, resolveServices, type L4, type RuntimeEnv } from '../core/validate.ts';

export interface TraceRequest {
  from: string;
  to?: string;
  src: string;
  dst: string;
  proto: L4;
  dport?: number;
  /** For icmp/icmpv6: the message type; default echo-request. */
  icmpType?: string;
}

export type Verdict = 'accept' | 'drop' | 'reject';

export interface TraceResult {
  verdict: Verdict;
  chain: 'input' | 'forward';
  decidedBy: 'rule' | 'policy' | 'blocklist' | 'dynamic-block' | 'anti-lockout' | 'port-forward';
  rule?: string;
  path?: string;
  dnat?: { to: string; port?: number };
  steps: string[];
}

export interface TraceContext extends RuntimeEnv {
  /** Addresses/prefixes dynamically blocked right now. */
  blocks?: string[];
}

export function tracePacket(config: Config, req: TraceRequest, ctx: TraceContext = {}): TraceResult {
  const problems: Problem[] = [];
  const zones = new Set(config.zones.map((z) => z.name));
  if (typeof req.from !== 'string' || (!zones.has(req.from) && req.from !== 'any')) problems.push({ path: '/from', message: 'unknown zone' });
  if (req.to !== undefined && (typeof req.to !== 'string' || !zones.has(req.to))) problems.push({ path: '/to', message: 'unknown zone' });
  const src = typeof req.src === 'string' ? parseAddress(req.src) : undefined;
  let dst = typeof req.dst === 'string' ? parseAddress(req.dst) : undefined;
  if (!src) problems.push({ path: '/src', message: 'not an IP address' });
  if (!dst) problems.push({ path: '/dst', message: 'not an IP address' });
  if (src && dst && src.family !== dst.family) problems.push({ path: '/dst', message: 'source and destination are of different families' });
  if (!['tcp', 'udp', 'icmp', 'icmpv6'].includes(req.proto)) problems.push({ path: '/proto', message: 'must be tcp, udp, icmp or icmpv6' });
  if ((req.proto === 'tcp' || req.proto === 'udp') && !(Number.isInteger(req.dport) && req.dport! >= 1 && req.dport! <= 65535)) {
    problems.push({ path: '/dport', message: 'a port from 1 to 65535 is required for tcp and udp' });
  }
  if (src && ((req.proto === 'icmp' && src.family !== 4) || (req.proto === 'icmpv6' && src.family !== 6))) {
    problems.push({ path: '/proto', message: `${req.proto} does not fit an IPv${src.family} packet` });
  }
  if (problems.length) throw RampartError.invalid(problems, 'invalid trace request');
  const steps: string[] = [];
  let dport = req.dport;
  const icmpType = req.icmpType ?? 'echo-request';

  const local = config.interfaces.flatMap((i) => i.addresses.map((a) => parseInterfaceAddress(a)?.host).filter((p): p is Prefix => !!p));
  const isLocal = (a: Prefix) => local.some((l) => l.text === a.text);
  const zoneOfAddress = (a: Prefix): string | undefined => {
    for (const itf of config.interfaces) {
      for (const a2 of itf.addresses) {
        const n = parseInterfaceAddress(a2)?.network;
        if (n && contains(n, a) && itf.zone) return itf.zone;
      }
    }
    return undefined;
  };
  const zoneHasDevices = (z: string | undefined) => !!z && config.interfaces.some((i) => i.zone === z);
  const fromZone = zoneHasDevices(req.from) ? req.from : null;

  // Port forwards (prerouting DNAT to a local address arriving from the forward's zone).
  let dnat: TraceResult['dnat'];
  let pfId: string | undefined;
  let pfPath: string | undefined;
  if (isLocal(dst!) && fromZone && (req.proto === 'tcp' || req.proto === 'udp')) {
    config.firewall.nat.portForwards.forEach((f, i) => {
      if (pfId || !f.enabled || f.zone !== fromZone || f.proto !== req.proto) return;
      const port = parsePort(f.port);
      const to = parseAddress(f.to);
      if (typeof port === 'string' || !to || to.family !== dst!.family) return;
      if (dport! < port.lo || dport! > port.hi) return;
      const srcs = resolveAddresses(f.source, config.objects.addresses);
      if (srcs && !(src!.family === 4 ? srcs.v4 : srcs.v6).some((p) => contains(p, src!))) return;
      const tp = f.toPort === undefined ? undefined : parsePort(f.toPort);
      const newPort = tp && typeof tp !== 'string' && !(tp.lo === port.lo && tp.hi === port.hi) ? tp.lo : dport;
      // A translation to the very same address and port changes nothing, and conntrack does not mark it as DNAT,
      // so the port forward's own accept rule (`ct status dnat`) does not apply either.
      if (to.text === dst!.text && newPort === dport) return;
      steps.push(`port forward ${f.id}: destination ${dst!.text}:${dport} becomes ${to.text}:${newPort}`);
      dnat = { to: to.text, port: newPort };
      pfId = f.id;
      pfPath = pointer(['firewall', 'nat', 'portForwards', i]);
      dst = to;
      dport = newPort;
    });
  }

  const chain: 'input' | 'forward' = !req.to && isLocal(dst!) ? 'input' : 'forward';
  steps.push(`chain ${chain}`);
  // Blocks match the source on input, and either end on forward (the firewall's own addresses are never blocked).
  const blocked = (p: Prefix) => contains(p, src!) || (chain === 'forward' && contains(p, dst!));

  // Dynamic blocks (their own table, hooked first).
  for (const b of ctx.blocks ?? []) {
    const p = parsePrefix(b);
    if (p && blocked(p)) {
      steps.push(`dynamic block ${p.text} matches`);
      return { verdict: 'drop', chain, decidedBy: 'dynamic-block', rule: p.text, ...(dnat ? { dnat } : {}), steps };
    }
  }

  // Blocklists (their own table, hooked before the main one, so before connection tracking's verdicts).
  for (const [i, b] of config.firewall.blocklists.entries()) {
    const hit = b.entries.some((e) => {
      const p = parsePrefix(e);
      return p && blocked(p);
    });
    if (hit) {
      steps.push(`blocklist ${b.name} matches`);
      return { verdict: 'drop', chain, decidedBy: 'blocklist', rule: b.name, path: pointer(['firewall', 'blocklists', i]), ...(dnat ? { dnat } : {}), steps };
    }
  }

  let toZone: string | null = null;
  if (chain === 'forward') {
    const t = req.to ?? zoneOfAddress(dst!);
    toZone = zoneHasDevices(t) ? t! : null;
    steps.push(`from zone ${fromZone ?? '(none)'} to zone ${toZone ?? '(none)'}`);
    if (dnat && pfId) {
      steps.push(`port forward ${pfId} opens the forward path`);
      return { verdict: 'accept', chain, decidedBy: 'port-forward', rule: pfId, path: pfPath, dnat, steps };
    }
  } else {
    if (dnat && pfId) {
      steps.push(`port forward ${pfId} to the firewall itself opens the input path`);
      return { verdict: 'accept', chain, decidedBy: 'port-forward', rule: pfId, path: pfPath, dnat, steps };
    }
    const al = antiLockoutScope(config, ctx);
    if (al && fromZone && al.zones.includes(fromZone) && req.proto === 'tcp' && al.ports.some((p) => dport! >= p.lo && dport! <= p.hi)) {
      steps.push('anti-lockout keeps management reachable');
      return { verdict: 'accept', chain, decidedBy: 'anti-lockout', path: '/firewall/antiLockout', steps };
    }
  }

  const rules = config.firewall[chain];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (!r.enabled) continue;
    if (r.from !== 'any' && r.from !== fromZone) continue;
    if (chain === 'forward' && r.to !== undefined && r.to !== 'any' && r.to !== toZone) continue;
    if (!ruleMatches(config, r, src!, dst!, req.proto, dport, icmpType)) continue;
    steps.push(`rule ${r.id} matches`);
    return { verdict: r.action, chain, decidedBy: 'rule', rule: r.id, path: pointer(['firewall', chain, i]), ...(dnat ? { dnat } : {}), steps };
  }
  const policy = config.firewall.policy[chain];
  steps.push(`no rule matches: ${chain} policy ${policy}`);
  return { verdict: policy, chain, decidedBy: 'policy', path: `/firewall/policy/${chain}`, ...(dnat ? { dnat } : {}), steps };
}

function ruleMatches(config: Config, r: Rule, src: Prefix, dst: Prefix, proto: L4, dport: number | undefined, icmpType: string): boolean {
  const objects = config.objects.addresses;
  const fam = src.family;
  const inList = (refs: string[] | undefined, a: Prefix) => {
    const res = resolveAddresses(refs, objects);
    if (!res) return true;
    return (fam === 4 ? res.v4 : res.v6).some((p) => contains(p, a));
  };
  if (!inList(r.source, src) || !inList(r.destination, dst)) return false;
  const svc = resolveServices(r.services, config.objects.services);
  if (!svc) return true;
  const candidates = svc.filter((s) => s.proto === proto);
  if (!candidates.length) return false;
  if (proto === 'tcp' || proto === 'udp') {
    // The compiler merges all port lists of a protocol, and any "no ports" entry makes the protocol match any port.
    if (candidates.some((s) => s.ports.length === 0)) return true;
    return candidates.some((s) => s.ports.some((p) => dport! >= p.lo && dport! <= p.hi));
  }
  return candidates.every((s) => s.echoOnly) ? icmpType === 'echo-request' : true;
}

