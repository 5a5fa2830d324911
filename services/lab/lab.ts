/**
 * The lab topology (SPEC §7): three network namespaces P-lan, P-fw, P-wan joined by two veth pairs.
 * Veths are created directly inside their namespaces (`ip -n FW link add ... peer ... netns LAN`), so no interface
 * name ever appears in the root namespace and labs with different prefixes never collide.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { RampartError } from '../core/errors.ts';
import { Host, run } from '../host/exec.ts';
import { silentLogger } from '../core/log.ts';
import { DhcpClient } from '../network/dhcp-client.ts';

export interface LabNames {
  lan: string;
  fw: string;
  wan: string;
}

const PREFIX_RE = /^[a-z][a-z0-9-]{0,11}$/;
const READY_TIMEOUT_MS = 5000;

export function labNames(prefix = 'rampart'): LabNames {
  if (!PREFIX_RE.test(prefix)) {
    throw new RampartError('invalid_input', `invalid lab prefix ${JSON.stringify(prefix)}: must match ${PREFIX_RE.source}`);
  }
  return { lan: `${prefix}-lan`, fw: `${prefix}-fw`, wan: `${prefix}-wan` };
}

async function existingNamespaces(): Promise<Set<string>> {
  const { stdout } = await run('ip', ['-j', 'netns', 'list']);
  const list = stdout.trim() ? (JSON.parse(stdout) as Array<{ name: string }>) : [];
  return new Set(list.map((n) => n.name));
}

/** Run several `ip` commands in one process inside a namespace. */
function ipBatch(netns: string, lines: string[]): Promise<unknown> {
  return run('ip', ['-n', netns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

function sysctl(netns: string, settings: string[]): Promise<unknown> {
  return run('sysctl', ['-q', '-w', ...settings], { netns });
}

async function reachable(netns: string, addr: string): Promise<boolean> {
  const res = await run('ping', ['-c1', '-W1', '-n', '-q', addr], { netns, allowFailure: true, timeoutMs: 3000 });
  return res.exitCode === 0;
}

async function waitReachable(netns: string, addr: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (await reachable(netns, addr)) return;
    if (Date.now() > deadline) throw new RampartError('system', `lab: ${addr} not reachable from ${netns} within ${READY_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface LabOptions {
  /**
   * The firewall side gets no addresses and no forwarding from the lab (Rampart applies them, `network.manage`),
   * and the LAN host asks for its IPv4 address by DHCP (a DHCP client in P-lan, MAC LAN_HOST_MAC, which the
   * managed example config leases 192.0.2.10). Its files live in /run/rampart-lab-P/ and go with `lab down`.
   */
  managedNetwork?: boolean;
}

/** The LAN host's MAC address in a managed-network lab (so a static lease can give it 192.0.2.10). */
export const LAN_HOST_MAC = '02:00:00:00:00:10';

function labRunDir(prefix: string): string {
  return `/run/rampart-lab-${prefix}`;
}

/** Create the lab (replacing an existing one with the same prefix); on failure nothing is left behind. */
export async function labUp(prefix = 'rampart', opts: LabOptions = {}): Promise<LabNames> {
  const names = labNames(prefix);
  const managed = opts.managedNetwork === true;
  const { lan, fw, wan } = names;
  const existing = await existingNamespaces();
  if ([lan, fw, wan].some((n) => existing.has(n))) await labDown(prefix);

  try {
    for (const ns of [lan, fw, wan]) await run('ip', ['netns', 'add', ns]);
    // No DAD anywhere (addresses usable at once) and no ICMP rate limits (probes get deterministic answers).
    const common = [
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
      'net.ipv4.icmp_ratelimit=0',
      'net.ipv6.icmp.ratelimit=0',
      'net.ipv4.icmp_ratemask=0',
      'net.ipv6.icmp.ratemask=',
      'net.ipv4.icmp_msgs_per_sec=100000',
      'net.ipv4.icmp_msgs_burst=100000',
    ];
    await Promise.all([
      sysctl(lan, common),
      sysctl(wan, common),
      sysctl(fw, managed ? common : [...common, 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']),
    ]);

    await ipBatch(fw, [
      `link add lan0 type veth peer name eth0 netns ${lan}`,
      `link add wan0 type veth peer name eth0 netns ${wan}`,
      'link set lo up',
      ...(managed
        ? []
        : ['addr add 192.0.2.1/24 dev lan0', 'addr add 2001:db8:1::1/64 dev lan0 nodad', 'addr add 198.51.100.1/24 dev wan0', 'addr add 2001:db8:2::1/64 dev wan0 nodad']),
      'link set lan0 up',
      'link set wan0 up',
    ]);
    const host = (ns: string, v4: string | undefined, v6: string, gw4: string, gw6: string) =>
      ipBatch(ns, [
        'link set lo up',
        ...(v4 ? [`addr add ${v4} dev eth0`] : [`link set dev eth0 address ${LAN_HOST_MAC}`]),
        `addr add ${v6} dev eth0 nodad`,
        'link set eth0 up',
        ...(v4 ? [`route add default via ${gw4} dev eth0`] : []),
        `route add default via ${gw6} dev eth0`,
      ]);
    await Promise.all([
      host(lan, managed ? undefined : '192.0.2.10/24', '2001:db8:1::10/64', '192.0.2.1', '2001:db8:1::1'),
      host(wan, '198.51.100.20/24', '2001:db8:2::20/64', '198.51.100.1', '2001:db8:2::1'),
    ]);
    if (managed) {
      // The LAN host's DHCP client keeps asking until Rampart's DHCP server answers.
      const dir = labRunDir(prefix);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      await new DhcpClient(new Host(lan), dir, 'eth0', silentLogger()).ensure();
      return names;
    }

    await Promise.all([
      waitReachable(lan, '192.0.2.1'),
      waitReachable(lan, '2001:db8:1::1'),
      waitReachable(wan, '198.51.100.1'),
      waitReachable(wan, '2001:db8:2::1'),
    ]);
  } catch (err) {
    await labDown(prefix).catch(() => undefined);
    throw err;
  }
  return names;
}

/** Remove the lab's namespaces (their veths go with them); a lab that is already gone is not an error. */
export async function labDown(prefix = 'rampart'): Promise<void> {
  const names = labNames(prefix);
  const dir = labRunDir(prefix);
  if (existsSync(dir)) {
    await new DhcpClient(new Host(names.lan), dir, 'eth0', silentLogger()).stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const existing = await existingNamespaces();
  for (const ns of [names.lan, names.fw, names.wan]) {
    if (existing.has(ns)) await run('ip', ['netns', 'del', ns]);
  }
}
