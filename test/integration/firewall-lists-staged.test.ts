/**
 * Big blocklists load in two steps (Firewall.load): the sibling lists table is created unhooked and its address sets
 * filled through the netlink helper, then one transaction replaces the main table, completes the new lists table and
 * drops the old one. Real packets in the lab show the lists at work after each step; a kernel that refuses either
 * step leaves the running firewall as it was; an unfinished sibling found at start is removed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run, setelemHelper } from '../../services/host/exec.ts';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { holdOwnerTable as holdOwnerTableIn } from '../helpers/owner-table.ts';
import { probeMany, startServer, type ProbeTarget, type Server } from '../helpers/probe.ts';

const WAN_HOST = '198.51.100.20';
const WAN_OTHER = '198.51.100.21';
const FILLER = 12_000; // above the two-step threshold (10,000 entries)

let lab: Lab;
let d: TestDaemon;
const servers: Server[] = [];

const tcp = (host: string, port: number, timeoutMs: number): ProbeTarget => ({ proto: 'tcp', host, port, timeoutMs });
const statuses = async (targets: ProbeTarget[]) => (await probeMany(lab.lan, targets)).map((r) => r.status);
const nft = (args: string[]) => run('ip', ['netns', 'exec', lab.fw, 'nft', ...args], { allowFailure: true });
const listsTables = async () => ((await nft(['list', 'tables'])).stdout.match(/rampart_lists\w*/g) ?? []).sort();
const version = async () => (await d.call('status')).running?.version;

/** The lab config with a `threats` list of `filler` addresses (10.64.0.0/10, not in the lab) plus `extra`. */
function bigList(extra: string[], filler = FILLER): any {
  const doc = labConfig();
  const entries: string[] = [];
  for (let i = 0; i < filler; i++) entries.push(`10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
  doc.firewall.blocklists[0].entries = [...entries, '203.0.113.0/24', ...extra];
  return doc;
}

async function apply(doc: unknown): Promise<{ code: number; stderr: string }> {
  return d.cli(['apply', d.file(doc), '-m', 'staged lists test']);
}

async function setSize(table: string, set: string): Promise<number> {
  const r = await nft(['-j', 'list', 'set', 'inet', table, set]);
  const doc = JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
  return doc.nftables.find((o) => o.set)?.set?.elem?.length ?? 0;
}

/** PIDs of the processes whose command line contains `text`. */
function processesWith(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) pids.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const target = (path: string) => {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
};

/** The main table's fingerprint comment as the kernel has it. */
const mainFingerprint = async () => /comment "rampart ([0-9a-f]{64})"/.exec((await nft(['-t', 'list', 'table', 'inet', 'rampart'])).stdout)?.[1];

/** `table inet NAME` owned by another process (the kernel refuses our changes to it); returns its `end()`. */
async function holdOwnerTable(name: string): Promise<() => Promise<void>> {
  return (await holdOwnerTableIn(lab.fw, name)).end;
}

test.before(async () => {
  lab = await startLab();
  await run('ip', ['-n', lab.wan, 'addr', 'add', `${WAN_OTHER}/24`, 'dev', 'eth0']);
  d = await startDaemon({ netns: lab.fw, config: labConfig() });
  servers.push(await startServer(lab.wan, { proto: 'tcp', port: 80 }));
});

test.after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await d?.cleanup();
  await lab?.down();
});

if (!setelemHelper()) {
  console.log('SKIP firewall-lists-staged: build/bin/rampart-setelem is missing (scripts/bootstrap builds it from libnftnl)');
  test.skip('two-step load');
} else {
  test('a big list loads into the sibling table, and the next change of it goes back to the first name', async () => {
    assert.equal(await listsTables(), ['rampart_lists'], 'the lab config has a small list: one table');
    const first = await apply(bigList([WAN_HOST]));
    assert.is(first.code, 0, first.stderr);
    assert.equal(await listsTables(), ['rampart_lists_b'], 'loaded in two steps: the old table is gone');
    assert.is(await setSize('rampart_lists_b', 'bl.threats.4h'), FILLER + 1);
    assert.equal(await statuses([tcp(WAN_HOST, 80, 600), tcp(WAN_OTHER, 80, 3000)]), ['timeout', 'open']);
    const st = JSON.parse((await d.cli(['stats', '--json'])).stdout);
    assert.ok(st.blocklists.threats.packets >= 1, `the list's counter is read from the new table: ${JSON.stringify(st.blocklists)}`);
    assert.is((await d.call('status')).firewall.state, 'ok');

    const second = await apply(bigList([WAN_OTHER]));
    assert.is(second.code, 0, second.stderr);
    assert.equal(await listsTables(), ['rampart_lists']);
    assert.equal(await statuses([tcp(WAN_HOST, 80, 3000), tcp(WAN_OTHER, 80, 600)]), ['open', 'timeout']);

    // A rule change keeps the loaded list where it is (no reload).
    const ruleOnly = bigList([WAN_OTHER]);
    ruleOnly.firewall.forward.unshift({ id: 'extra-rule', from: 'lan', to: 'wan', services: [{ proto: 'tcp', ports: ['9000'] }], action: 'accept' });
    const third = await apply(ruleOnly);
    assert.is(third.code, 0, third.stderr);
    assert.equal(await listsTables(), ['rampart_lists']);
    assert.equal(await statuses([tcp(WAN_OTHER, 80, 600)]), ['timeout']);
  });

  test('the kernel refusing the second step (main table) or the first (sibling table) changes nothing', async () => {
    const before = await version();
    const running = await listsTables();
    // Second step refused: another process owns the main table (which it may only take while nobody has it).
    assert.is((await nft(['delete', 'table', 'inet', 'rampart'])).exitCode, 0);
    let end = await holdOwnerTable('rampart');
    try {
      const r = await apply(bigList([WAN_HOST]));
      assert.is(r.code, 1, `refused: ${r.stderr}`);
    } finally {
      await end();
    }
    // The owner's table went with it; the watchdog or the next apply restores the main table. What matters here:
    // the prepared sibling is gone, the running lists table and the version are as they were.
    assert.equal(await listsTables(), running, 'no prepared sibling left behind');
    assert.is(await version(), before);
    // First step refused: another process owns the sibling's name.
    const sibling = running[0] === 'rampart_lists' ? 'rampart_lists_b' : 'rampart_lists';
    end = await holdOwnerTable(sibling);
    try {
      const r = await apply(bigList([WAN_HOST]));
      assert.is(r.code, 1, `refused: ${r.stderr}`);
      assert.is(await version(), before);
    } finally {
      await end();
    }
    assert.equal(await listsTables(), running);
    // And a good apply afterwards works (and restores the main table).
    const ok = await apply(bigList([WAN_HOST]));
    assert.is(ok.code, 0, ok.stderr);
    assert.equal(await statuses([tcp(WAN_HOST, 80, 600), tcp(WAN_OTHER, 80, 3000)]), ['timeout', 'open']);
  });

  test('an unfinished sibling table found at start is removed; the running one stays', async () => {
    const running = await listsTables();
    assert.is(running.length, 1);
    const sibling = running[0] === 'rampart_lists' ? 'rampart_lists_b' : 'rampart_lists';
    const r = await run('ip', ['netns', 'exec', lab.fw, 'nft', '-f', '-'], { input: `table inet ${sibling} {\n\tset bl.threats.4h {\n\t\ttype ipv4_addr\n\t\telements = { 10.1.1.1 }\n\t}\n}\n` });
    assert.is(r.exitCode, 0);
    assert.equal(await listsTables(), [...running, sibling].sort());
    await d.restart();
    assert.equal(await listsTables(), running);
    assert.equal(await statuses([tcp(WAN_HOST, 80, 600)]), ['timeout'], 'the running list still blocks');
  });

  test('rampartd killed while the lists load: nothing of the change applies; the next start removes the prepared table', async () => {
    const before = await version();
    const running = await listsTables();
    const main = await mainFingerprint();
    const reach = await statuses([tcp(WAN_HOST, 80, 600), tcp(WAN_OTHER, 80, 3000)]);
    assert.equal(reach, ['timeout', 'open']);
    // A change of rules and list: WAN_OTHER blocked, and one more rule.
    const doc = bigList([WAN_OTHER], 50_000);
    doc.firewall.forward.unshift({ id: 'crash-rule', from: 'lan', to: 'wan', services: [{ proto: 'tcp', ports: ['9000'] }], action: 'accept' });
    const applying = apply(doc);
    // The helper is held (SIGSTOP) while it fills the sibling table; the daemon meanwhile hands nft the main table
    // through the FIFO, and points the link at its copy of the script once nft has opened the FIFO.
    // It lives for tens of milliseconds: looked for without pause (a look at /proc takes about a millisecond).
    let helper: number[] = [];
    const until = Date.now() + 30_000;
    while (!(helper = processesWith(join(d.dataDir, 'apply.nft.elements'))).length) {
      if (Date.now() > until) throw new Error('timed out waiting for the netlink helper');
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const pid of helper) process.kill(pid, 'SIGSTOP');
    let tx: number[] = [];
    const link = join(d.dataDir, 'apply.nft.link');
    try {
      await waitFor(() => (tx = processesWith(link)).length > 0 && target(link) === join(d.dataDir, 'apply.nft'), 30_000, 'nft reading the FIFO');
      await d.crash();
      // nft now reads the end of a script that stops before the main table's closing brace.
      await waitFor(() => tx.every((pid) => !alive(pid)), 30_000, 'nft to end');
    } finally {
      for (const pid of helper) if (alive(pid)) process.kill(pid, 'SIGCONT');
    }
    await waitFor(() => helper.every((pid) => !alive(pid)), 30_000, 'the helper to end');
    assert.is((await applying).code === 0, false, 'the apply did not complete');
    assert.is(await mainFingerprint(), main, 'the main table is the one before');
    assert.ok((await listsTables()).some((t: string) => t === running[0]), 'the running lists table is there');
    await d.restart();
    assert.is(await version(), before, 'no new version');
    assert.equal(await listsTables(), running, 'the prepared table is gone');
    assert.is(await mainFingerprint(), main);
    assert.equal(await statuses([tcp(WAN_HOST, 80, 600), tcp(WAN_OTHER, 80, 3000)]), reach);
  });
}

test.run();
