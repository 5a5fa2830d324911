/**
 * Dynamic blocks of single addresses go to the kernel through the netlink helper (rampart-setelem): elements with
 * their timeouts, renewals, and a refused transaction that leaves the store as it was.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, setelemHelper } from '../../services/host/exec.ts';
import { startScratchDaemon, type TestDaemon } from '../helpers/daemon.ts';

let ns: string;
let d: TestDaemon;
let close: () => Promise<void>;
const helper = setelemHelper();

const setText = async (set: string) => (await run('ip', ['netns', 'exec', ns, 'nft', 'list', 'set', 'inet', 'rampart_blocks', set])).stdout;
const timeoutOf = (text: string, addr: string) => {
  const m = new RegExp(`${addr.replace(/[.:]/g, '\\$&')} timeout (\\S+)`).exec(text);
  return m?.[1];
};

test.before(async () => {
  ({ ns, d, close } = await startScratchDaemon('rb'));
});

test.after(async () => {
  await close?.();
});

test('a prefix that overlaps a blocked prefix is refused with its pointer; once that one goes, it is accepted', async () => {
  const first = await d.cli(['block', '198.18.0.0/16', '--ttl', '600']);
  assert.is(first.code, 0, first.stderr);
  const clash = await d.cli(['block', '198.18.128.0/17']);
  assert.is(clash.code, 2);
  assert.match(clash.stderr, /\/addresses\/0: overlaps the blocked prefix 198\.18\.0\.0\/16/);
  assert.not.ok(JSON.parse((await d.cli(['blocks', '--json'])).stdout).some((b: any) => b.address === '198.18.128.0/17'));
  const renew = await d.cli(['block', '198.18.0.0/16', '--ttl', '900']);
  assert.is(renew.code, 0, `renewing the same prefix is no clash: ${renew.stderr}`);
  assert.is((await d.cli(['unblock', '198.18.0.0/16'])).code, 0);
  const after = await d.cli(['block', '198.18.128.0/17', '--ttl', '60']);
  assert.is(after.code, 0, after.stderr);
  assert.is((await d.cli(['unblock', '198.18.128.0/17'])).code, 0);
});

test('a list on stdin: comments and blank lines skipped, a bad line refuses the whole list and names it', async () => {
  const bad = await d.cli(['block', '-', '--ttl', '300'], '# feed\n198.51.100.40\n\n198.51.100.300\n');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /\/addresses\/1: not an IP address or CIDR: "198\.51\.100\.300"/);
  let blocks = JSON.parse((await d.cli(['blocks', '--json'])).stdout).map((b: any) => b.address);
  assert.not.ok(blocks.includes('198.51.100.40'), 'nothing of a refused list is blocked');
  const ok = await d.cli(['block', '-', '--ttl', '300'], '# feed\n198.51.100.40\n  198.51.100.41  \n\n2001:db8:5::/48\n198.51.100.40\n');
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /blocked 3 addresses for 300 s/);
  blocks = JSON.parse((await d.cli(['blocks', '--json'])).stdout).map((b: any) => b.address);
  for (const a of ['198.51.100.40', '198.51.100.41', '2001:db8:5::/48']) assert.ok(blocks.includes(a), a);
  assert.match(await setText('b4h'), /198\.51\.100\.41/);
  assert.match(await setText('b6n'), /2001:db8:5::\/48/);
  const all = await d.cli(['unblock', '--all', '--json']);
  assert.is(all.code, 0, all.stderr);
  assert.equal(JSON.parse(all.stdout), { removed: 3 });
  assert.equal(JSON.parse((await d.cli(['blocks', '--json'])).stdout), []);
  assert.not.match(await setText('b4h'), /198\.51\.100\.4[01]/);
});

if (!helper) {
  console.log('SKIP blocks-helper: build/bin/rampart-setelem is missing (scripts/bootstrap builds it from libnftnl)');
  test.skip('helper path');
} else {
  test('addresses land in the kernel with their timeouts, and a renewal replaces the timeout', async () => {
    const r = await d.cli(['block', '203.0.113.10', '203.0.113.11', '2001:db8:77::1', '--ttl', '600']);
    assert.is(r.code, 0, r.stderr);
    const v4 = await setText('b4h');
    assert.is(timeoutOf(v4, '203.0.113.10'), '10m');
    assert.is(timeoutOf(v4, '203.0.113.11'), '10m');
    assert.is(timeoutOf(await setText('b6h'), '2001:db8:77::1'), '10m');
    const blocked = async (address: string) => JSON.parse((await d.cli(['blocks', '--json'])).stdout).find((b: any) => b.address === address);
    const first = await blocked('203.0.113.10');
    const again = await d.cli(['block', '203.0.113.10', '--ttl', '7200']);
    assert.is(again.code, 0, again.stderr);
    assert.is(timeoutOf(await setText('b4h'), '203.0.113.10'), '2h');
    const renewed = await blocked('203.0.113.10');
    assert.is(renewed.createdAt, first.createdAt, 'a renewal keeps the creation time');
    assert.ok(renewed.expiresAt > first.expiresAt, 'and gets the new expiry');
    const permanent = await d.cli(['block', '203.0.113.11']);
    assert.is(permanent.code, 0, permanent.stderr);
    assert.match(await setText('b4h'), /203\.0\.113\.11(,| \})/);
    const list = JSON.parse((await d.cli(['blocks', '--json'])).stdout);
    assert.equal(list.map((b: any) => b.address).sort(), ['2001:db8:77::1', '203.0.113.10', '203.0.113.11']);
  });

  test('the helper reads its lines strictly: one malformed line refuses the whole input, nothing is loaded', async () => {
    const nft = (input: string) => run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input });
    await nft('table inet hx {\n\tset s {\n\t\ttype ipv4_addr; flags timeout;\n\t}\n}\n');
    const load = (input: string) => run('ip', ['netns', 'exec', ns, helper!, 'inet', 'hx'], { input, allowFailure: true });
    const elements = async () => (await run('ip', ['netns', 'exec', ns, 'nft', 'list', 'set', 'inet', 'hx', 's'])).stdout;
    try {
      for (const bad of ['ab s 192.0.2.1', 'a s 192.0.2.1 60000 7', 'a s 192.0.2.1 60x', 'e s 192.0.2.1 5', 'x s 192.0.2.1', 'a s', 'a s 192.0.2.300']) {
        const r = await load(`a s 192.0.2.9 60000\n${bad}\n`);
        assert.is(r.exitCode, 2, `${bad}: ${r.stderr}`);
        assert.match(r.stderr, /bad line|not an address/, bad);
        assert.not.match(await elements(), /192\.0\.2\.9/, `${bad}: nothing loaded`);
      }
      // Spaces and tabs between fields are fine; the timeout is in milliseconds.
      const ok = await load('a  s\t192.0.2.9   600000\n a s 192.0.2.10\n');
      assert.is(ok.exitCode, 0, ok.stderr);
      const text = await elements();
      assert.match(text, /192\.0\.2\.9 timeout 10m/);
      assert.match(text, /192\.0\.2\.10[,\s]/);
    } finally {
      await nft('delete table inet hx\n');
    }
  });

  test('a transaction the kernel refuses changes nothing in the store', async () => {
    await run('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'rampart_blocks']);
    const before = JSON.parse((await d.cli(['blocks', '--json'])).stdout);
    const r = await d.cli(['block', '203.0.113.12', '203.0.113.10', '--ttl', '60']);
    assert.is(r.code, 1, 'refused');
    assert.match(r.stderr, /refused/);
    assert.match(r.stderr, /No such file or directory/, 'the kernel\'s own reason, not a full receive buffer');
    const after = JSON.parse((await d.cli(['blocks', '--json'])).stdout);
    assert.equal(after, before, 'the store is as it was (no new block, the renewed one keeps its old expiry)');
  });
}

test.run();
