/**
 * The netlink reader (rampart-counters) against the tools it replaces: after traffic through a daemon-managed scratch
 * namespace, it gives the very same named counters as nft for all three tables, the same interface counters as
 * `ip -s -s -j link` and the same conntrack figures as sysctl; an absent table gives none; hostile arguments are
 * refused by the helper, not passed on.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countersHelper, Host, run } from '../../services/host/exec.ts';
import { listCounters } from '../../services/firewall/counters.ts';
import { parseConntrack, parseIpLinkStats } from '../../services/telemetry/collectors.ts';
import { readKernel } from '../../services/telemetry/kernel.ts';
import { startScratchDaemon, type TestDaemon } from '../helpers/daemon.ts';

let ns: string;
let d: TestDaemon;
let close: () => Promise<void>;
const helper = countersHelper();

test.before(async () => {
  ({ ns, d, close } = await startScratchDaemon('rc'));
});

test.after(async () => {
  await close?.();
});

/** nft's own view: `nft -j list counters table inet T`. */
async function nftCounters(table: string): Promise<Map<string, { packets: number; bytes: number }>> {
  const r = await run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'counters', 'table', 'inet', table], { allowFailure: true });
  const out = new Map<string, { packets: number; bytes: number }>();
  if (r.exitCode !== 0) return out;
  for (const item of JSON.parse(r.stdout).nftables) if (item.counter) out.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
  return out;
}

if (!helper) {
  console.log('SKIP counters-helper: build/bin/rampart-counters is missing (scripts/bootstrap builds it from libnftnl)');
  test.skip('helper path');
} else {
  test('the helper reads exactly what nft lists, for every table', async () => {
    // Traffic to the namespace's own loopback passes the input chain and moves some counters.
    await run('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '127.0.0.1'], { allowFailure: true });
    const blocked = await d.cli(['block', '203.0.113.99', '--ttl', '600']);
    assert.is(blocked.code, 0, blocked.stderr);
    const tables = ['rampart', 'rampart_lists', 'rampart_blocks'];
    const mine = await listCounters(new Host(ns), tables);
    let total = 0;
    for (const t of tables) {
      const theirs = await nftCounters(t);
      const got = mine.get(t) ?? new Map();
      assert.equal([...got.entries()].sort(), [...theirs.entries()].sort(), `counters of inet ${t}`);
      total += got.size;
    }
    assert.ok(total > 3, `the lab ruleset has named counters (${total})`);
  });

  test('interfaces and conntrack: the same figures as ip and sysctl, read from inside the namespace', async () => {
    // A quiet moment: the namespace has no traffic of its own between the two readings.
    const mine = (await readKernel(ns, []))!;
    const ip = parseIpLinkStats((await run('ip', ['-n', ns, '-j', '-s', '-s', 'link', 'show'])).stdout);
    assert.equal(
      mine.links.map((l) => ({ ...l })).sort((a, b) => a.ifindex - b.ifindex),
      ip.sort((a, b) => a.ifindex - b.ifindex),
    );
    assert.ok(mine.links.some((l) => l.name === 'lo'), 'the namespace\'s own loopback, not the host\'s interfaces');
    const sysctl = parseConntrack((await run('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.netfilter.nf_conntrack_count', 'net.netfilter.nf_conntrack_max'], { allowFailure: true })).stdout);
    assert.equal(mine.conntrack?.max, sysctl?.max);
  });

  test('an absent table gives nothing; bad arguments are refused with exit 2', async () => {
    const none = await run('ip', ['netns', 'exec', ns, helper, 'inet', 'no_such_table']);
    assert.is(none.stdout, '');
    for (const args of [['bogus', 'rampart'], ['inet'], ['inet', 'x'.repeat(200)], ['-n', '../etc', 'inet', 'rampart'], ['-n', '', '-c', 'inet'], ['-x', 'inet', 'rampart']]) {
      const r = await run('ip', ['netns', 'exec', ns, helper, ...args], { allowFailure: true });
      assert.is(r.exitCode, 2, args.join(' '));
    }
    const missing = await run(helper, ['-n', 'no-such-namespace-here', '-c', 'inet'], { allowFailure: true });
    assert.is(missing.exitCode, 1);
    assert.is(missing.stdout, '', 'nothing read from the wrong namespace');
  });
}

test.run();
