import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RampartError } from '../../services/core/errors.ts';
import { run } from '../../services/host/exec.ts';
import { labDown, labNames, labUp } from '../../services/lab/lab.ts';
import { startLab, uniquePrefix, withLab, type Lab } from '../helpers/lab.ts';
import { ping, probe, probeMany, startServer } from '../helpers/probe.ts';

async function namespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', 'netns', 'list']);
  return stdout.trim() ? (JSON.parse(stdout) as Array<{ name: string }>).map((n) => n.name) : [];
}

async function addrs(netns: string, dev: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', '-n', netns, 'addr', 'show', 'dev', dev]);
  const [link] = JSON.parse(stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>;
  return link.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort();
}

let lab: Lab;

test.before(async () => {
  lab = await startLab();
});

test.after(async () => {
  await lab?.down();
});

test('prefix is validated', async () => {
  for (const bad of ['', 'Rampart', '1lab', 'a_b', 'abcdefghijklm', 'a/b']) {
    assert.throws(() => labNames(bad), (e: unknown) => e instanceof RampartError && e.code === 'invalid_input');
    await labUp(bad).then(
      () => assert.unreachable(`labUp accepted ${JSON.stringify(bad)}`),
      (e) => assert.ok(e instanceof RampartError && e.code === 'invalid_input'),
    );
  }
  assert.equal(labNames('rampart'), { lan: 'rampart-lan', fw: 'rampart-fw', wan: 'rampart-wan' });
});

test('three namespaces with the addresses of SPEC §7', async () => {
  const present = await namespaces();
  for (const ns of [lab.lan, lab.fw, lab.wan]) assert.ok(present.includes(ns), `${ns} missing`);
  assert.equal(await addrs(lab.fw, 'lan0'), ['192.0.2.1/24', '2001:db8:1::1/64']);
  assert.equal(await addrs(lab.fw, 'wan0'), ['198.51.100.1/24', '2001:db8:2::1/64']);
  assert.equal(await addrs(lab.lan, 'eth0'), ['192.0.2.10/24', '2001:db8:1::10/64']);
  assert.equal(await addrs(lab.wan, 'eth0'), ['198.51.100.20/24', '2001:db8:2::20/64']);
  const fwd = await run('sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'], { netns: lab.fw });
  assert.equal(fwd.stdout.split('\n').filter(Boolean), ['1', '1']);
});

test('lan reaches wan through the firewall namespace (IPv4 and IPv6)', async () => {
  assert.ok(await ping(lab.lan, '198.51.100.20'));
  assert.ok(await ping(lab.lan, '2001:db8:2::20'));
  assert.ok(await ping(lab.wan, '192.0.2.10'));
  assert.ok(await ping(lab.wan, '2001:db8:1::10'));
  assert.not.ok(await ping(lab.lan, '203.0.113.9'), 'an address outside the lab must not answer');
});

test('TCP and UDP probes: open, refused, and the source address the server saw', async () => {
  const tcp = await startServer(lab.wan, { proto: 'tcp', port: 8080 });
  const udp = await startServer(lab.wan, { proto: 'udp', port: 5353 });
  try {
    const one = await probe(lab.lan, { proto: 'tcp', host: '198.51.100.20', port: 8080 });
    assert.equal(one, { status: 'open', text: 'hello from 192.0.2.10\n' });

    const many = await probeMany(lab.lan, [
      { proto: 'tcp', host: '2001:db8:2::20', port: 8080 },
      { proto: 'tcp', host: '198.51.100.20', port: 8081 },
      { proto: 'tcp', host: '2001:db8:2::20', port: 8081 },
      { proto: 'udp', host: '198.51.100.20', port: 5353 },
      { proto: 'udp', host: '2001:db8:2::20', port: 5353 },
      { proto: 'udp', host: '198.51.100.20', port: 5354 },
      { proto: 'udp', host: '2001:db8:2::20', port: 5354 },
    ]);
    assert.equal(
      many.map((r) => [r.status, r.text]),
      [
        ['open', 'hello from 2001:db8:1::10\n'],
        ['refused', ''],
        ['refused', ''],
        ['open', 'hello from 192.0.2.10\n'],
        ['open', 'hello from 2001:db8:1::10\n'],
        ['refused', ''],
        ['refused', ''],
      ],
    );
  } finally {
    await tcp.stop();
    await udp.stop();
  }
});

test('dropped and unreachable packets', async () => {
  // Nothing answers inside the lab's own subnet (ARP / ND fail): no reply within the timeout.
  const [silent] = await probeMany(lab.lan, [{ proto: 'tcp', host: '192.0.2.99', port: 80, timeoutMs: 500 }]);
  assert.ok(['timeout', 'unreachable'].includes(silent.status), silent.status);
  // Real drop / reject rules in the firewall namespace (iptables-free: one nft table made and removed here).
  await run('nft', ['-f', '-'], {
    netns: lab.fw,
    input: `table inet labtest {
  chain forward_test { type filter hook forward priority 0;
    tcp dport 7001 drop
    tcp dport 7002 reject with icmpx admin-prohibited
    udp dport 7003 drop
  }
}\n`,
  });
  try {
    const r = await probeMany(lab.lan, [
      { proto: 'tcp', host: '198.51.100.20', port: 7001, timeoutMs: 500 },
      { proto: 'tcp', host: '198.51.100.20', port: 7002 },
      { proto: 'tcp', host: '2001:db8:2::20', port: 7002 },
      { proto: 'udp', host: '198.51.100.20', port: 7003, timeoutMs: 500 },
    ]);
    assert.equal(r.map((x) => x.status), ['timeout', 'unreachable', 'unreachable', 'timeout']);
  } finally {
    await run('nft', ['delete', 'table', 'inet', 'labtest'], { netns: lab.fw });
  }
});

test('labUp on an existing lab recreates it; two labs with different prefixes coexist', async () => {
  const prefix = uniquePrefix();
  await withLab(prefix, async (second) => {
    assert.ok(await ping(second.lan, '2001:db8:2::20'));
    assert.ok(await ping(lab.lan, '198.51.100.20'), 'first lab still works');
    await labUp(prefix);
    assert.ok(await ping(second.lan, '198.51.100.20'));
  });
  const left = await namespaces();
  assert.not.ok(left.some((n) => n.startsWith(`${prefix}-`)), `${prefix} namespaces left: ${left}`);
});

test('labDown removes the lab and tolerates a lab that is gone', async () => {
  const prefix = uniquePrefix();
  const names = Object.values(await labUp(prefix));
  try {
    const present = await namespaces();
    for (const ns of names) assert.ok(present.includes(ns), `${ns} missing`);
  } finally {
    await labDown(prefix);
  }
  const after = await namespaces();
  for (const ns of names) assert.not.ok(after.includes(ns), `${ns} left`);
  for (const ns of [lab.lan, lab.fw, lab.wan]) assert.ok(after.includes(ns), `other lab's ${ns} removed`);
  await labDown(prefix);
});

test.run();
