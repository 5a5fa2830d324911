/**
 * Static addressing in the lab's firewall namespace by a real rampartd: addresses, routes and router sysctls
 * applied from nothing, then changed (only what changed moves, watched with `ip monitor`, and a TCP connection from
 * the LAN host through the firewall stays open), a commit-confirm that is not confirmed brings the old addresses
 * back, and broken documents are refused with pointers while nothing changes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../services/host/exec.ts';
import { labConfig, rulesetText, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';

let lab: Lab;
let d: TestDaemon | undefined;
const children: ChildProcess[] = [];

function managed(): any {
  const c = labConfig();
  c.network = { manage: true };
  c.routes = [{ destination: '203.0.113.0/24', gateway: '198.51.100.20' }];
  return c;
}

async function addrs(dev: string): Promise<string[]> {
  const r = await run('ip', ['-j', 'addr', 'show', 'dev', dev], { netns: lab.fw });
  return (JSON.parse(r.stdout)[0].addr_info as any[]).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort();
}

async function staticRoutes(): Promise<string[]> {
  const r = await run('ip', ['-j', '-4', 'route', 'show', 'proto', 'static'], { netns: lab.fw });
  return (JSON.parse(r.stdout) as any[]).map((x) => `${x.dst} via ${x.gateway}`);
}

async function sysctl(key: string): Promise<string> {
  return (await run('sysctl', ['-n', key], { netns: lab.fw })).stdout.trim();
}

function spawnIn(ns: string, args: string[]): ChildProcess & { out: string } {
  const c = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcess & { out: string };
  c.out = '';
  c.stdout!.on('data', (b) => (c.out += b));
  c.stderr!.on('data', (b) => (c.out += b));
  children.push(c);
  return c;
}

async function apply(doc: unknown, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return d!.cli(['apply', d!.file(doc), ...extra]);
}

/** Set-up errors are reported by every test (a failing before-hook would otherwise pass silently). */
let setupError: unknown;
test.before(async () => {
  try {
    lab = await startLab();
    // From nothing: the firewall side of the lab loses the addresses the lab script gave it.
    for (const dev of ['lan0', 'wan0']) await run('ip', ['addr', 'flush', 'dev', dev, 'scope', 'global'], { netns: lab.fw });
    await run('sysctl', ['-q', '-w', 'net.ipv4.conf.all.send_redirects=1', 'net.ipv4.conf.all.rp_filter=0'], { netns: lab.fw });
  } catch (err) {
    setupError = err;
  }
});
test.before.each(() => {
  if (setupError) throw setupError;
});

test.after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await d?.cleanup();
  await lab?.down();
});

test('applied from nothing: addresses, static route and router sysctls', async () => {
  d = await startDaemon({ netns: lab.fw, config: managed() });
  assert.equal(await addrs('lan0'), ['192.0.2.1/24', '2001:db8:1::1/64']);
  assert.equal(await addrs('wan0'), ['198.51.100.1/24', '2001:db8:2::1/64']);
  assert.equal(await staticRoutes(), ['203.0.113.0/24 via 198.51.100.20']);
  assert.is(await sysctl('net.ipv4.conf.all.send_redirects'), '0');
  assert.is(await sysctl('net.ipv4.conf.all.rp_filter'), '1');
  assert.is(await sysctl('net.ipv4.ip_forward'), '1');
  const r = await run('ping', ['-c1', '-W2', '-n', '-q', '192.0.2.1'], { netns: lab.lan, allowFailure: true });
  assert.is(r.exitCode, 0, 'the LAN host reaches the address Rampart put on lan0');
  const status = JSON.parse((await d.cli(['status', '--json'])).stdout);
  assert.is(status.network.managed, true);
  assert.is(status.network.state, 'ok');
});

test('a change moves only the changed addresses; a connection through the firewall stays open', async () => {
  // An echo server on the WAN host, a client on the LAN host connected through the firewall (rule lan-web, port 8000).
  const server = spawnIn(lab.wan, [process.execPath, '-e', "require('net').createServer((s) => s.pipe(s)).listen(8000, '198.51.100.20', () => console.log('listening'))"]);
  await waitFor(() => server.out.includes('listening'), 10_000, 'the echo server');
  const client = spawnIn(lab.lan, [
    process.execPath,
    '-e',
    "const s = require('net').connect(8000, '198.51.100.20', () => console.log('connected')); s.on('data', (b) => console.log('echo ' + b)); s.on('close', () => console.log('closed')); process.stdin.on('data', (b) => s.write(String(b).trim()));",
  ]);
  await waitFor(() => client.out.includes('connected'), 10_000, 'the client to connect');
  client.stdin!.write('one\n');
  await waitFor(() => client.out.includes('echo one'), 10_000, 'the first echo');

  const monitor = spawnIn(lab.fw, ['ip', 'monitor', 'address']);
  // The monitor is listening once it reports a marker address added on lo. It may subscribe only after a first
  // marker went by, so the marker is added again (removed first) until the monitor has seen one.
  await waitFor(
    async () => {
      if (monitor.out.includes('127.0.0.42')) return true;
      await run('ip', ['addr', 'del', '127.0.0.42/32', 'dev', 'lo'], { netns: lab.fw, allowFailure: true });
      await run('ip', ['addr', 'add', '127.0.0.42/32', 'dev', 'lo'], { netns: lab.fw });
      return false;
    },
    10_000,
    'ip monitor to start',
  );
  monitor.out = '';

  const doc = managed();
  doc.interfaces[0].addresses = ['192.0.2.1/24', '2001:db8:1::1/64', '192.0.2.2/24'];
  doc.interfaces[1].addresses = ['198.51.100.1/24', '2001:db8:2::99/64'];
  const r = await apply(doc);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await addrs('lan0'), ['192.0.2.1/24', '192.0.2.2/24', '2001:db8:1::1/64']);
  assert.equal(await addrs('wan0'), ['198.51.100.1/24', '2001:db8:2::99/64']);
  await waitFor(() => monitor.out.includes('2001:db8:2::1/64'), 10_000, 'the monitor to see the removal');
  const lines = monitor.out.split('\n').filter((l) => /inet6? /.test(l));
  assert.ok(lines.some((l) => l.includes('192.0.2.2/24') && !l.startsWith('Deleted')), monitor.out);
  assert.ok(lines.some((l) => l.includes('2001:db8:2::99/64') && !l.startsWith('Deleted')), monitor.out);
  assert.ok(lines.some((l) => l.startsWith('Deleted') && l.includes('2001:db8:2::1/64')), monitor.out);
  for (const untouched of ['192.0.2.1/24', '2001:db8:1::1/64', '198.51.100.1/24']) {
    assert.not.ok(lines.some((l) => l.includes(` ${untouched} `)), `${untouched} must not move:\n${monitor.out}`);
  }
  client.stdin!.write('two\n');
  await waitFor(() => client.out.includes('echo two'), 10_000, 'the echo after the change');
  assert.not.ok(client.out.includes('closed'), 'the connection stayed open');
});

test('routes follow the document; an unconfirmed change brings the old addresses back', async () => {
  const doc = managed();
  doc.routes = [{ destination: '203.0.113.128/25', gateway: '198.51.100.20', metric: 10 }];
  doc.interfaces[0].addresses = ['192.0.2.1/24', '2001:db8:1::1/64', '192.0.2.3/24'];
  const before = await addrs('lan0');
  const r = await apply(doc, ['--confirm', '2']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await staticRoutes(), ['203.0.113.128/25 via 198.51.100.20']);
  assert.ok((await addrs('lan0')).includes('192.0.2.3/24'));
  // Not confirmed: the running version comes back, network included.
  await waitFor(async () => JSON.stringify(await addrs('lan0')) === JSON.stringify(before), 15_000, 'the revert of the addresses');
  await waitFor(async () => JSON.stringify(await staticRoutes()) === JSON.stringify(['203.0.113.0/24 via 198.51.100.20']), 10_000, 'the revert of the routes');
});

test('plan lists the network operations; a change the kernel refuses half-way leaves the running network', async () => {
  const doc = managed();
  doc.interfaces[0].addresses = ['192.0.2.1/24', '2001:db8:1::1/64', '192.0.2.4/24'];
  const plan = await d!.cli(['plan', d!.file(doc)]);
  assert.is(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /^network: ip addr add 192\.0\.2\.4\/24 dev lan0$/m);
  assert.match(plan.stdout, /^network: ip addr del 192\.0\.2\.2\/24 dev lan0$/m);
  assert.not.ok((await addrs('lan0')).includes('192.0.2.4/24'), 'plan changes nothing');

  // The gateway cannot be checked before the WAN has a lease (DHCP), and the kernel refuses it: the address
  // added before the route failed is taken back, and no version is recorded.
  const before = { lan: await addrs('lan0'), routes: await staticRoutes() };
  const history = (await d!.call('history', { limit: 1000 })).length;
  doc.interfaces[1].dhcp = true;
  doc.routes = [{ destination: '10.0.0.0/8', gateway: '203.0.113.1' }];
  const r = await apply(doc);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /network apply failed.*ip -4 route replace 10\.0\.0\.0\/8 via 203\.0\.113\.1/);
  assert.equal({ lan: await addrs('lan0'), routes: await staticRoutes() }, before);
  assert.is((await d!.call('history', { limit: 1000 })).length, history);
  assert.not.ok(existsSync(join(d!.dataDir, 'network', 'dhclient-wan0.pid')), 'no DHCP client was left running');
});

test('broken documents are refused with pointers and nothing changes', async () => {
  const before = { lan: await addrs('lan0'), wan: await addrs('wan0'), routes: await staticRoutes(), ruleset: await rulesetText(lab.fw) };
  const history = (await d!.call('history', { limit: 1000 })).length;

  const missing = managed();
  missing.interfaces[1].device = 'wan9';
  missing.interfaces[0].addresses = ['192.0.2.7/24'];
  let r = await apply(missing);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /\/interfaces\/1\/device: no device "wan9"/);

  const overlap = managed();
  overlap.interfaces[1].addresses = ['192.0.2.129/25'];
  r = await apply(overlap);
  assert.is(r.code, 2);
  assert.match(r.stderr, /\/interfaces\/1\/addresses\/0: subnet 192\.0\.2\.128\/25 overlaps/);

  const gateway = managed();
  gateway.routes = [{ destination: 'default', gateway: '203.0.113.1' }];
  r = await apply(gateway);
  assert.is(r.code, 2);
  assert.match(r.stderr, /\/routes\/0\/gateway: gateway 203\.0\.113\.1 is outside every connected subnet/);

  assert.equal({ lan: await addrs('lan0'), wan: await addrs('wan0'), routes: await staticRoutes(), ruleset: await rulesetText(lab.fw) }, before);
  assert.is((await d!.call('history', { limit: 1000 })).length, history, 'no version recorded');
});

test.run();
