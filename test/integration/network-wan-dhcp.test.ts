/**
 * The WAN interface on DHCP: a real rampartd runs ISC dhclient in the lab's firewall namespace; the ISP is a
 * dnsmasq the test runs in the WAN namespace (ended by its PID). The firewall gets its address and default route
 * from it, IPv6 addresses by SLAAC and DHCPv6 and the IPv6 default route from its router advertisements; when the ISP is gone
 * and the client starts over (a crash or reboot of the client), the lease is lost and the address and the default
 * route go. Hostile lease values are covered by the unit tests of the request script.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../services/host/exec.ts';
import { labConfig, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';

let lab: Lab;
let d: TestDaemon | undefined;
let tmp: string;
let ispPidFile: string;

function killPid(file: string | undefined): void {
  if (!file || !existsSync(file)) return;
  try {
    process.kill(Number(readFileSync(file, 'utf8').trim()), 'SIGTERM');
  } catch {
    /* gone */
  }
  rmSync(file, { force: true });
}
const killIsp = () => killPid(ispPidFile);

async function wanState(): Promise<{ addrs: any[]; defaults: any[] }> {
  const a = JSON.parse((await run('ip', ['-j', '-4', 'addr', 'show', 'dev', 'wan0'], { netns: lab.fw })).stdout)[0];
  const r = JSON.parse((await run('ip', ['-j', '-4', 'route', 'show', 'default'], { netns: lab.fw })).stdout);
  return { addrs: (a?.addr_info ?? []).filter((x: any) => x.scope === 'global'), defaults: r };
}

/** Set-up errors are reported by every test (a failing before-hook would otherwise pass silently). */
let setupError: unknown;
test.before(async () => {
  try {
    lab = await startLab();
    tmp = mkdtempSync(join(tmpdir(), 'rampart-wan-'));
    ispPidFile = join(tmp, 'isp.pid');
    await run('ip', ['addr', 'flush', 'dev', 'wan0', 'scope', 'global'], { netns: lab.fw });
  } catch (err) {
    setupError = err;
  }
});
test.before.each(() => {
  if (setupError) throw setupError;
});

/** The ISP: DHCPv4, router advertisements and DHCPv6 on the WAN host (started once Rampart runs, so its first
 * router advertisements meet a firewall that accepts them). */
async function startIsp(): Promise<void> {
  await run('dnsmasq', [
    `--pid-file=${ispPidFile}`, '--port=0', '--interface=eth0', '--bind-interfaces', `--dhcp-leasefile=${join(tmp, 'isp.leases')}`,
    '--dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,2m', '--dhcp-option=option:router,198.51.100.20', '--dhcp-authoritative',
    // IPv6: router advertisements with the prefix for SLAAC, and DHCPv6 addresses from a range.
    '--enable-ra', '--dhcp-range=2001:db8:2::100,2001:db8:2::1ff,slaac,64,2m',
  ], { netns: lab.wan });
}

test.after(async () => {
  killIsp();
  await d?.cleanup();
  await lab?.down();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the WAN gets its address and default route from the ISP; losing the lease removes them', async () => {
  const c = labConfig();
  c.network = { manage: true };
  c.interfaces[1].addresses = ['2001:db8:2::1/64'];
  c.interfaces[1].dhcp = true;
  c.interfaces[1].slaac = true;
  c.interfaces[1].dhcpv6 = true;
  // DHCPv6 answers come to a UDP socket (not a raw one, as for DHCPv4): the WAN zone accepts them.
  c.firewall.input.push({ id: 'dhcpv6-client', from: 'wan', services: [{ proto: 'udp', ports: ['546'] }], action: 'accept' });
  d = await startDaemon({ netns: lab.fw, config: c });
  await startIsp();

  await waitFor(async () => (await wanState()).addrs.length === 1 && (await wanState()).defaults.length === 1, 30_000, 'a DHCP lease on wan0');
  const s = await wanState();
  const addr = s.addrs[0];
  assert.match(addr.local, /^198\.51\.100\.1[0-4][0-9]$|^198\.51\.100\.150$/);
  assert.is(addr.prefixlen, 24);
  assert.ok(addr.dynamic, 'the address has the lease lifetime');
  assert.equal({ gateway: s.defaults[0].gateway, dev: s.defaults[0].dev, protocol: s.defaults[0].protocol }, { gateway: '198.51.100.20', dev: 'wan0', protocol: 'dhcp' });
  const ping = await run('ping', ['-c1', '-W2', '-n', '-q', '198.51.100.20'], { netns: lab.fw, allowFailure: true });
  assert.is(ping.exitCode, 0, 'the ISP is reachable through the leased address');
  const status = JSON.parse((await d.cli(['status', '--json'])).stdout);
  assert.equal(
    { state: status.network.dhcpClients.wan0.state, address: status.network.dhcpClients.wan0.address, router: status.network.dhcpClients.wan0.router },
    { state: 'bound', address: addr.local, router: '198.51.100.20' },
  );

  // IPv6: the ISP's router advertisements reach the forwarding firewall (Rampart set accept_ra=2 on wan0): a SLAAC
  // address (/64, from the MAC) and the default route; and an address from the ISP's DHCPv6 range.
  assert.is((await run('sysctl', ['-n', 'net.ipv6.conf.wan0.accept_ra'], { netns: lab.fw })).stdout.trim(), '2');
  const v6 = async () => {
    const a = JSON.parse((await run('ip', ['-j', '-6', 'addr', 'show', 'dev', 'wan0'], { netns: lab.fw })).stdout)[0];
    const r = JSON.parse((await run('ip', ['-j', '-6', 'route', 'show', 'default'], { netns: lab.fw })).stdout);
    const dyn = ((a?.addr_info ?? []) as any[]).filter((x) => x.scope === 'global' && x.dynamic);
    return {
      slaac: dyn.filter((x) => x.prefixlen === 64 && x.local.startsWith('2001:db8:2:')),
      dhcpv6: dyn.filter((x) => /^2001:db8:2::1[0-9a-f]{2}$/.test(x.local) && x.prefixlen !== 64),
      defaults: r,
    };
  };
  await waitFor(async () => {
    const x = await v6();
    return x.slaac.length === 1 && x.dhcpv6.length === 1 && x.defaults.length > 0;
  }, 30_000, 'a SLAAC address, a DHCPv6 address and an IPv6 default route on wan0');
  const six = await v6();
  assert.is(six.defaults[0].protocol, 'ra');
  assert.is(six.defaults[0].dev, 'wan0');
  const status6 = JSON.parse((await d.cli(['status', '--json'])).stdout);
  assert.equal({ state: status6.network.dhcpv6Clients.wan0.state, address: status6.network.dhcpv6Clients.wan0.address }, { state: 'bound', address: six.dhcpv6[0].local });

  // The ISP goes away; the client starts over (killed here; the daemon starts it again) and cannot confirm its lease.
  killIsp();
  const pid = Number(readFileSync(join(d.dataDir, 'network', 'dhclient-wan0.pid'), 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  await waitFor(async () => {
    const w = await wanState();
    return w.addrs.length === 0 && w.defaults.length === 0;
  }, 60_000, 'the lost lease to take the address and the default route');
  const after = JSON.parse((await d.cli(['status', '--json'])).stdout);
  assert.is(after.network.dhcpClients.wan0.state, 'none');
  assert.is(after.network.dhcpClients.wan0.running, true, 'the client keeps asking');
});

test.run();
