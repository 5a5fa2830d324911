/**
 * Cross checks of the network part of a configuration document (interfaces, routes, the `network` section), each
 * problem with a JSON pointer. Pure: whether a device exists is a fact of the running system, checked by the
 * service before it applies anything (`deviceProblems`).
 */
import type { Config } from '../core/schema.ts';
import type { Problem } from '../core/errors.ts';
import { pointer } from '../core/errors.ts';
import { contains, overlaps, parseAddress, parseInterfaceAddress, type Prefix } from '../core/net.ts';

type Path = (string | number)[];
type Add = (path: Path, message: string) => void;

/** The connected networks of each interface (static addresses only), by interface name. */
export function connectedNetworks(c: Config): Map<string, { network: Prefix; host: Prefix; path: Path }[]> {
  const out = new Map<string, { network: Prefix; host: Prefix; path: Path }[]>();
  c.interfaces.forEach((itf, i) => {
    const list: { network: Prefix; host: Prefix; path: Path }[] = [];
    itf.addresses.forEach((a, j) => {
      const parsed = parseInterfaceAddress(a);
      if (parsed) list.push({ ...parsed, path: ['interfaces', i, 'addresses', j] });
    });
    out.set(itf.name, list);
  });
  return out;
}

function cmp(a: Prefix, b: Prefix): number {
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The network checks, reported through `add` (the core validator's problem list). */
export function checkNetwork(c: Config, add: Add): void {
  const n = c.network;
  const byName = new Map(c.interfaces.map((itf, i) => [itf.name, { itf, i }]));
  const connected = connectedNetworks(c);
  const dynamic = new Set(c.interfaces.filter((i) => i.dhcp || i.slaac || i.dhcpv6).map((i) => i.name));

  if (n.manage) {
    // Overlapping subnets on different interfaces: the kernel would route one of them nowhere useful.
    const all = [...connected.entries()].flatMap(([name, list]) => list.map((x) => ({ name, ...x })));
    for (let a = 0; a < all.length; a++) {
      for (let b = 0; b < a; b++) {
        if (all[a].name !== all[b].name && overlaps(all[a].network, all[b].network)) {
          add(all[a].path, `subnet ${all[a].network.text} overlaps ${all[b].network.text} of interface "${all[b].name}" (${pointer(all[b].path)})`);
        }
      }
    }
    // The same address twice.
    const seen = new Map<string, Path>();
    for (const x of all) {
      const key = x.host.text;
      const prev = seen.get(key);
      if (prev) add(x.path, `address ${key} is already at ${pointer(prev)}`);
      else seen.set(key, x.path);
    }
    c.interfaces.forEach((itf, i) => {
      if (itf.dhcp && n.dhcpServer.ranges.some((r) => r.interface === itf.name)) {
        add(['interfaces', i, 'dhcp'], 'an interface cannot be a DHCP client and serve DHCP ranges at once');
      }
    });
    // Routes: a gateway must be reachable through a connected subnet (of its interface, when one is named).
    c.routes.forEach((r, i) => {
      if (r.gateway === undefined) return;
      const gw = parseAddress(r.gateway);
      if (!gw) return;
      if (gw.family === 6 && gw.value >> 118n === 0x3fan) {
        if (r.interface === undefined) add(['routes', i, 'interface'], 'a link-local gateway needs an interface');
        return;
      }
      const names = r.interface !== undefined ? [r.interface] : [...connected.keys()];
      if (names.some((name) => dynamic.has(name))) return; // the subnet is learned at run time
      const reachable = names.some((name) => (connected.get(name) ?? []).some((x) => contains(x.network, gw)));
      if (!reachable) {
        add(['routes', i, 'gateway'], r.interface !== undefined ? `gateway ${gw.text} is outside every subnet of interface "${r.interface}"` : `gateway ${gw.text} is outside every connected subnet`);
      }
    });
  } else {
    const used: [string, boolean][] = [
      ['dhcpServer', n.dhcpServer.ranges.length > 0 || n.dhcpServer.staticLeases.length > 0],
      ['ra', n.ra.interfaces.length > 0],
      ['dns', n.dns.enabled],
    ];
    for (const [key, on] of used) if (on) add(['network', key], 'LAN services run only when "network.manage" is true');
  }

  // DHCP ranges: inside a subnet of their interface, start ≤ end, no two ranges overlapping.
  const ranges: { itf: string; net: Prefix; start: Prefix; end: Prefix; index: number }[] = [];
  n.dhcpServer.ranges.forEach((r, i) => {
    const base = ['network', 'dhcpServer', 'ranges', i];
    const entry = byName.get(r.interface);
    if (!entry) {
      add([...base, 'interface'], `unknown interface "${r.interface}"`);
      return;
    }
    const start = parseAddress(r.start);
    const end = parseAddress(r.end);
    if (!start) add([...base, 'start'], 'not an IP address');
    if (!end) add([...base, 'end'], 'not an IP address');
    if (!start || !end) return;
    if (start.family !== end.family) return add([...base, 'end'], 'start and end are of different address families');
    if (cmp(start, end) > 0) return add([...base, 'end'], 'the range ends before it starts');
    const net = (connected.get(r.interface) ?? []).find((x) => contains(x.network, start) && contains(x.network, end));
    if (!net) return add(base, `range ${start.text}-${end.text} is outside every subnet of interface "${r.interface}"`);
    if (cmp(start, net.host) <= 0 && cmp(net.host, end) <= 0) add(base, `the range contains the interface's own address ${net.host.text}`);
    for (const o of ranges) {
      if (o.start.family === start.family && cmp(start, o.end) <= 0 && cmp(o.start, end) <= 0) {
        add(base, `overlaps range /network/dhcpServer/ranges/${o.index}`);
      }
    }
    ranges.push({ itf: r.interface, net: net.network, start, end, index: i });
  });

  const macs = new Map<string, number>();
  const leaseAddrs = new Map<string, number>();
  const names = new Map<string, string>();
  n.dhcpServer.staticLeases.forEach((l, i) => {
    const base = ['network', 'dhcpServer', 'staticLeases', i];
    const mac = l.mac.toLowerCase();
    if (macs.has(mac)) add([...base, 'mac'], `MAC ${mac} already has a lease (/network/dhcpServer/staticLeases/${macs.get(mac)})`);
    else macs.set(mac, i);
    const a = parseAddress(l.address);
    if (!a || a.family !== 4) return add([...base, 'address'], 'not an IPv4 address');
    if (leaseAddrs.has(a.text)) add([...base, 'address'], `address ${a.text} already has a lease (/network/dhcpServer/staticLeases/${leaseAddrs.get(a.text)})`);
    else leaseAddrs.set(a.text, i);
    if (!ranges.some((r) => contains(r.net, a))) add([...base, 'address'], 'not inside the subnet of any DHCP range');
    if (l.hostname) {
      const key = l.hostname.toLowerCase();
      if (names.has(key)) add([...base, 'hostname'], `host name "${l.hostname}" is already used (${names.get(key)})`);
      else names.set(key, pointer(base));
    }
  });

  n.ra.interfaces.forEach((name, j) => {
    if (!byName.has(name)) return add(['network', 'ra', 'interfaces', j], `unknown interface "${name}"`);
    if (!(connected.get(name) ?? []).some((x) => x.network.family === 6 && x.network.length === 64)) {
      add(['network', 'ra', 'interfaces', j], `interface "${name}" has no static IPv6 /64 to advertise`);
    }
  });

  const dns = n.dns;
  dns.interfaces?.forEach((name, j) => {
    if (!byName.has(name)) add(['network', 'dns', 'interfaces', j], `unknown interface "${name}"`);
  });
  dns.upstream.forEach((u, j) => {
    if (!parseAddress(u)) add(['network', 'dns', 'upstream', j], 'not an IP address');
  });
  dns.hosts.forEach((h, i) => {
    const key = h.name.toLowerCase();
    if (names.has(key)) add(['network', 'dns', 'hosts', i, 'name'], `host name "${h.name}" is already used (${names.get(key)})`);
    else names.set(key, pointer(['network', 'dns', 'hosts', i]));
    h.addresses.forEach((a, j) => {
      if (!parseAddress(a)) add(['network', 'dns', 'hosts', i, 'addresses', j], 'not an IP address');
    });
  });
}

/** Problems for interfaces whose device does not exist on the running system (only when the network is managed). */
export function deviceProblems(c: Config, existing: ReadonlySet<string>): Problem[] {
  if (!c.network.manage) return [];
  const out: Problem[] = [];
  c.interfaces.forEach((itf, i) => {
    if (!existing.has(itf.device)) out.push({ path: pointer(['interfaces', i, 'device']), message: `no device "${itf.device}" on this system` });
  });
  return out;
}
