/**
 * The network planner (pure): the desired state from a configuration document, the running state from iproute2's
 * JSON output (`ip -j addr`, `ip -j route`), and the minimal list of `ip` operations that turns one into the other.
 *
 * What is Rampart's to change: the links of configured interfaces (up/down, MTU), their permanent global addresses,
 * and routes of protocol `static` in the main table. Left alone: link-local and dynamic addresses (DHCP leases have
 * a lifetime, SLAAC addresses are the kernel's), kernel routes, routes of other protocols (`dhcp`, `ra`), and every
 * device the document does not name.
 */
import type { Config } from '../core/schema.ts';
import { parseAddress, parseInterfaceAddress, parsePrefix, type Family } from '../core/net.ts';

/** One address of `ip -j addr show`. */
export interface IpAddrInfo {
  family: 'inet' | 'inet6' | string;
  local: string;
  prefixlen: number;
  scope?: string;
  dynamic?: boolean;
  valid_life_time?: number;
  [k: string]: unknown;
}

/** One link of `ip -j addr show`. */
export interface IpLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  operstate?: string;
  address?: string;
  addr_info?: IpAddrInfo[];
  [k: string]: unknown;
}

/** One route of `ip -j route show`. */
export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  metric?: number;
  type?: string;
  [k: string]: unknown;
}

export interface RunningState {
  links: IpLink[];
  routes4: IpRoute[];
  routes6: IpRoute[];
}

export interface DesiredLink {
  device: string;
  up: boolean;
  mtu?: number;
  /** Canonical "address/length" of each static address. */
  addresses: string[];
}

export interface DesiredRoute {
  family: Family;
  /** "default" or a canonical "network/length". */
  destination: string;
  gateway?: string;
  device?: string;
  metric: number;
  /** JSON pointer of the route in the document. */
  path: string;
}

export interface DesiredState {
  links: DesiredLink[];
  routes: DesiredRoute[];
}

/** One `ip` invocation (argv after `ip`) with the reason, for the log and `plan`. */
export interface NetOp {
  argv: string[];
  why: string;
}

const DEFAULT_METRIC: Record<Family, number> = { 4: 0, 6: 1024 };

function canonicalAddress(a: string): string | undefined {
  const p = parseInterfaceAddress(a);
  return p ? `${p.host.address}/${p.network.length}` : undefined;
}

function canonicalDestination(d: string): { family?: Family; text: string } | undefined {
  if (d === 'default') return { text: 'default' };
  const p = parsePrefix(d);
  return p ? { family: p.family, text: `${p.address}/${p.length}` } : undefined;
}

/** What the document asks of the kernel (callers check `network.manage` first). */
export function desiredState(c: Config): DesiredState {
  const links: DesiredLink[] = c.interfaces.map((itf) => ({
    device: itf.device,
    up: itf.enabled !== false,
    ...(itf.mtu !== undefined ? { mtu: itf.mtu } : {}),
    addresses: [...new Set(itf.addresses.map(canonicalAddress).filter((x): x is string => !!x))],
  }));
  const devOf = new Map(c.interfaces.map((i) => [i.name, i.device]));
  const routes: DesiredRoute[] = [];
  c.routes.forEach((r, i) => {
    const dst = canonicalDestination(r.destination);
    const gw = r.gateway !== undefined ? parseAddress(r.gateway) : undefined;
    if (!dst) return;
    const family: Family = dst.family ?? gw?.family ?? 4;
    routes.push({
      family,
      destination: dst.text,
      ...(gw ? { gateway: gw.address } : {}),
      ...(r.interface !== undefined && devOf.has(r.interface) ? { device: devOf.get(r.interface)! } : {}),
      metric: r.metric ?? DEFAULT_METRIC[family],
      path: `/routes/${i}`,
    });
  });
  return { links, routes };
}

/** The permanent global addresses of a link that Rampart may own (dynamic and link-local ones are not). */
export function ownedAddresses(link: IpLink): string[] {
  const out: string[] = [];
  for (const a of link.addr_info ?? []) {
    if (a.family !== 'inet' && a.family !== 'inet6') continue;
    if (a.dynamic) continue;
    if (a.scope !== undefined && a.scope !== 'global') continue;
    const c = canonicalAddress(`${a.local}/${a.prefixlen}`);
    if (c) out.push(c);
  }
  return out;
}

function routeKey(family: Family, dst: string, gateway: string | undefined, device: string | undefined, metric: number): string {
  return [family, dst, gateway ?? '', device ?? '', metric].join(' ');
}

function runningRoute(r: IpRoute, family: Family): { key: string; dst: string; gateway?: string; device?: string; metric: number } | undefined {
  const dst = canonicalDestination(r.dst);
  if (!dst) return undefined;
  const gw = r.gateway ? parseAddress(r.gateway)?.address : undefined;
  const metric = r.metric ?? DEFAULT_METRIC[family];
  return { key: routeKey(family, dst.text, gw, r.dev, metric), dst: dst.text, gateway: gw, device: r.dev, metric };
}

function routeArgs(family: Family, dst: string, gateway: string | undefined, device: string | undefined, metric: number): string[] {
  return [
    family === 4 ? '-4' : '-6',
    'route',
    '__verb__',
    dst,
    ...(gateway ? ['via', gateway] : []),
    ...(device ? ['dev', device] : []),
    'proto',
    'static',
    'metric',
    String(metric),
  ];
}

/**
 * The operations, in a safe order: MTU first, then new addresses before old ones go (a changed address never
 * leaves its subnet without one), links up, routes that go, routes that come, and links down last.
 * Devices missing from the running state are skipped here (the service refuses such a document before planning).
 */
export function planNetwork(want: DesiredState, running: RunningState): NetOp[] {
  const byDev = new Map(running.links.map((l) => [l.ifname, l]));
  const mtu: NetOp[] = [];
  const add: NetOp[] = [];
  const del: NetOp[] = [];
  const up: NetOp[] = [];
  const down: NetOp[] = [];
  for (const l of want.links) {
    const cur = byDev.get(l.device);
    if (!cur) continue;
    if (l.mtu !== undefined && cur.mtu !== l.mtu) mtu.push({ argv: ['link', 'set', 'dev', l.device, 'mtu', String(l.mtu)], why: `MTU ${cur.mtu ?? '?'} → ${l.mtu}` });
    const have = new Set(ownedAddresses(cur));
    const wantSet = new Set(l.addresses);
    for (const a of l.addresses) if (!have.has(a)) add.push({ argv: ['addr', 'add', a, 'dev', l.device], why: `address ${a} on ${l.device}` });
    for (const a of have) if (!wantSet.has(a)) del.push({ argv: ['addr', 'del', a, 'dev', l.device], why: `address ${a} no longer on ${l.device}` });
    const isUp = (cur.flags ?? []).includes('UP');
    if (l.up && !isUp) up.push({ argv: ['link', 'set', 'dev', l.device, 'up'], why: `${l.device} up` });
    if (!l.up && isUp) down.push({ argv: ['link', 'set', 'dev', l.device, 'down'], why: `${l.device} down` });
  }

  const wanted = new Map<string, DesiredRoute>();
  for (const r of want.routes) wanted.set(routeKey(r.family, r.destination, r.gateway, r.device, r.metric), r);
  const routeDel: NetOp[] = [];
  const present = new Set<string>();
  for (const [family, list] of [[4, running.routes4], [6, running.routes6]] as const) {
    for (const r of list) {
      if (r.protocol !== 'static' || (r.type !== undefined && r.type !== 'unicast')) continue;
      const cur = runningRoute(r, family);
      if (!cur) continue;
      // A wanted route without a named device matches the same route on whatever device the kernel chose.
      const match = wanted.has(cur.key) ? cur.key : routeKey(family, cur.dst, cur.gateway, undefined, cur.metric);
      if (wanted.has(match) && !present.has(match)) {
        present.add(match);
        continue;
      }
      const argv = routeArgs(family, cur.dst, cur.gateway, cur.device, cur.metric);
      argv[2] = 'del';
      routeDel.push({ argv, why: `route ${cur.dst}${cur.gateway ? ` via ${cur.gateway}` : ''} no longer configured` });
    }
  }
  const routeAdd: NetOp[] = [];
  for (const [key, r] of wanted) {
    if (present.has(key)) continue;
    const argv = routeArgs(r.family, r.destination, r.gateway, r.device, r.metric);
    argv[2] = 'replace';
    routeAdd.push({ argv, why: `route ${r.destination}${r.gateway ? ` via ${r.gateway}` : ''} (${r.path})` });
  }
  return [...mtu, ...add, ...del, ...up, ...routeDel, ...routeAdd, ...down];
}

/** Router sysctls (forwarding, strict reverse-path filter, no ICMP redirects), secondary-address promotion, and per-interface IPv6 RA acceptance. */
export function routerSysctls(c: Config): Record<string, string> {
  const out: Record<string, string> = {};
  if (c.network.routerSysctls) {
    Object.assign(out, {
      'net/ipv4/ip_forward': '1',
      'net/ipv6/conf/all/forwarding': '1',
      'net/ipv4/conf/all/rp_filter': '1',
      'net/ipv4/conf/default/rp_filter': '1',
      'net/ipv4/conf/all/send_redirects': '0',
      'net/ipv4/conf/default/send_redirects': '0',
      'net/ipv4/conf/all/accept_redirects': '0',
      'net/ipv4/conf/default/accept_redirects': '0',
      'net/ipv4/conf/all/secure_redirects': '0',
      'net/ipv4/conf/default/secure_redirects': '0',
      'net/ipv6/conf/all/accept_redirects': '0',
      'net/ipv6/conf/default/accept_redirects': '0',
    });
  }
  // Always (the planner relies on it): removing the primary IPv4 address of a subnet keeps the other addresses of
  // that subnet, which the kernel would otherwise drop with it.
  out['net/ipv4/conf/all/promote_secondaries'] = '1';
  for (const itf of c.interfaces) {
    // A forwarding host ignores router advertisements unless accept_ra is 2.
    if (itf.slaac || itf.dhcpv6) out[`net/ipv6/conf/${itf.device}/accept_ra`] = '2';
    if (itf.slaac) out[`net/ipv6/conf/${itf.device}/autoconf`] = '1';
  }
  return out;
}

/** The sysctl writes needed (key=value argv items), given the current values. */
export function planSysctls(want: Record<string, string>, current: Record<string, string | undefined>): string[] {
  return Object.keys(want)
    .sort()
    .filter((k) => current[k]?.trim() !== want[k])
    .map((k) => `${k}=${want[k]}`);
}
