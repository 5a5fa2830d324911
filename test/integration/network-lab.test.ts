/**
 * The lab with a managed network (`rampart lab up --managed-network`, as `npm start` can run it): the lab leaves
 * the firewall side unaddressed and puts the LAN host on DHCP; rampartd with system/examples/lab-managed.json gives
 * the firewall its addresses, serves the LAN host its static lease (192.0.2.10, as in the static lab), and traffic
 * flows from the LAN host through the firewall. `lab down` ends the LAN host's DHCP client too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../services/host/exec.ts';
import { labDown, labUp } from '../../services/lab/lab.ts';
import { startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { uniquePrefix } from '../helpers/lab.ts';
import MANAGED from '../../system/examples/lab-managed.json' with { type: 'json' };

const prefix = uniquePrefix();
let d: TestDaemon | undefined;
let up = false;
process.on('exit', () => {
  if (up) for (const ns of ['lan', 'fw', 'wan']) run('ip', ['netns', 'del', `${prefix}-${ns}`]).catch(() => undefined);
});

async function globalAddrs(ns: string, dev: string): Promise<string[]> {
  const r = await run('ip', ['-j', '-4', 'addr', 'show', 'dev', dev], { netns: ns });
  return ((JSON.parse(r.stdout)[0]?.addr_info ?? []) as any[]).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
}

test.after(async () => {
  await d?.cleanup();
  if (up) await labDown(prefix);
});

test('the firewall gets its addresses from Rampart and the LAN host its address by DHCP', async () => {
  const names = await labUp(prefix, { managedNetwork: true });
  up = true;
  assert.equal(await globalAddrs(names.fw, 'lan0'), [], 'the lab leaves the firewall side unaddressed');
  assert.equal(await globalAddrs(names.lan, 'eth0'), [], 'the LAN host has no IPv4 address yet');
  const pidFile = `/run/rampart-lab-${prefix}/dhclient-eth0.pid`;
  const clientPid = Number(readFileSync(pidFile, 'utf8').trim());
  assert.ok(existsSync(`/proc/${clientPid}`), 'the LAN host runs a DHCP client');

  d = await startDaemon({ netns: names.fw, config: MANAGED });
  assert.equal(await globalAddrs(names.fw, 'lan0'), ['192.0.2.1/24']);
  assert.equal(await globalAddrs(names.fw, 'wan0'), ['198.51.100.1/24']);
  await waitFor(async () => (await globalAddrs(names.lan, 'eth0')).includes('192.0.2.10/24'), 40_000, 'the LAN host to get 192.0.2.10 by DHCP');
  const ping = await run('ping', ['-c1', '-W2', '-n', '-q', '198.51.100.20'], { netns: names.lan, allowFailure: true });
  assert.is(ping.exitCode, 0, 'the LAN host reaches the WAN host through the firewall');
  const status = JSON.parse((await d.cli(['status', '--json'])).stdout);
  assert.is(status.network.leases, 1);

  await d.cleanup();
  d = undefined;
  await labDown(prefix);
  up = false;
  assert.not.ok(existsSync(`/proc/${clientPid}`) && readFileSync(`/proc/${clientPid}/cmdline`, 'utf8').includes('dhclient'), 'lab down ended the DHCP client');
  assert.not.ok(existsSync(`/run/rampart-lab-${prefix}`));
});

test.run();
