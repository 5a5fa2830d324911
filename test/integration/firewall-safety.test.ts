/**
 * Safety of the firewall applier against real nftables in a lab firewall namespace: hostile and broken documents
 * never reach the kernel, free text never reaches the ruleset, commit-confirm reverts by itself (also across a
 * kill -9), the kernel is reconciled at start, a transaction the kernel refuses changes nothing, rollback / diff /
 * plan, and the CLI without a daemon.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { parseConfig } from '../../services/core/validate.ts';
import { run } from '../../services/host/exec.ts';
import { labConfig, rulesetText, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { holdOwnerTable as holdOwnerTableIn } from '../helpers/owner-table.ts';

let lab: Lab;
let d: TestDaemon;

/** The ruleset as a map table → text (the listing order of tables follows their creation, which is not meaningful). */
async function tables(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const block of (await rulesetText(lab.fw)).split(/^(?=table )/m)) {
    const head = /^table (\S+ \S+)/.exec(block);
    if (head) out[head[1]] = block.trimEnd();
  }
  return out;
}

/** The tables an apply of `doc` loads (`table inet NAME {` in the compiled script). */
const configTables = (doc: unknown) => [...compileRuleset(parseConfig(doc)).script.matchAll(/^table inet (\S+) \{/gm)].map((m) => m[1]);

const nft = (args: string[]) => run('nft', args, { netns: lab.fw, allowFailure: true });
const tableText = async () => (await nft(['list', 'table', 'inet', 'rampart'])).stdout;

async function ok(args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.is(r.code, 0, `rampart ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Apply and return the new version number (first word of the output). */
async function apply(doc: unknown, extra: string[] = []): Promise<number> {
  const out = await ok(['apply', d.file(doc), ...extra]);
  const v = Number(out.trim().split(/\s/)[0]);
  assert.ok(Number.isInteger(v) && v > 0, `apply printed ${JSON.stringify(out)}`);
  return v;
}

async function history(): Promise<any[]> {
  return d.call('history', { limit: 10_000 });
}

async function stateOf(version: number): Promise<string | undefined> {
  return (await history()).find((v) => v.version === version)?.state;
}

/** True if `cond` stays true for `ms` (a bounded wait, like a probe timing out). */
async function holds(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await cond())) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

function variant(mutate: (doc: any) => void): any {
  const doc = labConfig();
  mutate(doc);
  return doc;
}

/** A variant with one extra forward rule `id` (so the kernel ruleset shows `rule:id`). */
const withRule = (id: string, port = '9000') =>
  variant((c) => c.firewall.forward.unshift({ id, from: 'lan', to: 'wan', services: [{ proto: 'tcp', ports: [port] }], action: 'accept' }));

/** `table inet rampart` owned by another process; proves the kernel refuses another process's change to it here. */
async function holdOwnerTable(): Promise<{ pid: number; end(): Promise<void> }> {
  const holder = await holdOwnerTableIn(lab.fw, 'rampart');
  try {
    const other = await nft(['add', 'chain', 'inet', 'rampart', 'intruder']);
    assert.is.not(other.exitCode, 0, 'another process could change an owner table');
    assert.match(other.stderr, /Operation not permitted/);
  } catch (err) {
    await holder.end();
    throw err;
  }
  return holder;
}

test.before(async () => {
  lab = await startLab();
  d = await startDaemon({ netns: lab.fw, config: labConfig() });
});

test.after(async () => {
  await d?.cleanup();
  await lab?.down();
});

// ---------------------------------------------------------------------------------------------------------------
// Hostile and broken documents.

const INJECT = '"; flush ruleset; "';

interface Case {
  name: string;
  /** A document (mutation of the lab config) or raw file text. */
  doc: () => unknown;
  /** The JSON pointer that must start one stderr line (`POINTER: message`); '/' for the whole document. */
  path: string;
  message?: RegExp;
  /** Also run through `rampart apply` and `rampart validate` (processes are slow; the rest go over the socket). */
  cli?: boolean;
}

const CASES: Case[] = [
  { cli: true, name: 'wrong type: action', doc: () => variant((c) => (c.firewall.forward[0].action = 'allow')), path: '/firewall/forward/0/action' },
  { cli: true, name: 'wrong type: addresses is a string', doc: () => variant((c) => (c.interfaces[0].addresses = '192.0.2.1/24')), path: '/interfaces/0/addresses' },
  { name: 'wrong type: enabled is a string', doc: () => variant((c) => (c.firewall.forward[1].enabled = 'yes')), path: '/firewall/forward/1/enabled' },
  { name: 'wrong type: port is a float', doc: () => variant((c) => (c.firewall.nat.portForwards[0].port = 80.5)), path: '/firewall/nat/portForwards/0/port' },
  { cli: true, name: 'unknown zone', doc: () => variant((c) => (c.firewall.forward[0].from = 'dmz')), path: '/firewall/forward/0/from', message: /unknown zone/ },
  { cli: true, name: 'unknown service', doc: () => variant((c) => (c.firewall.forward[0].services = ['web', 'nosuch'])), path: '/firewall/forward/0/services/1', message: /unknown service/ },
  { cli: true, name: 'unknown address object', doc: () => variant((c) => (c.firewall.forward[2].destination = ['nosuch'])), path: '/firewall/forward/2/destination/0', message: /unknown address object/ },
  { name: 'prototype name as address object', doc: () => variant((c) => (c.firewall.forward[2].destination = ['constructor'])), path: '/firewall/forward/2/destination/0' },
  { name: 'prototype name as service', doc: () => variant((c) => (c.firewall.input[0].services = ['constructor'])), path: '/firewall/input/0/services/0' },
  { cli: true, name: 'duplicate rule id across chains', doc: () => variant((c) => (c.firewall.forward[1].id = 'mgmt')), path: '/firewall/forward/1/id', message: /duplicate/ },
  { name: 'duplicate id: port forward vs rule', doc: () => variant((c) => (c.firewall.nat.portForwards[0].id = 'lan-web')), path: '/firewall/nat/portForwards/0/id', message: /duplicate/ },
  { name: 'duplicate device', doc: () => variant((c) => (c.interfaces[1].device = 'lan0')), path: '/interfaces/1/device' },
  { cli: true, name: 'bad CIDR in blocklist', doc: () => variant((c) => (c.firewall.blocklists[0].entries[0] = '203.0.113.0/33')), path: '/firewall/blocklists/0/entries/0' },
  { name: 'bad IPv4 in address object', doc: () => variant((c) => (c.objects.addresses['web-srv'] = ['192.0.2.256'])), path: '/objects/addresses/web-srv/0' },
  { name: 'IPv6 with zone index', doc: () => variant((c) => (c.firewall.forward[2].destination = ['fe80::1%lan0'])), path: '/firewall/forward/2/destination/0' },
  { name: 'interface address without prefix length', doc: () => variant((c) => (c.interfaces[0].addresses[0] = '192.0.2.1')), path: '/interfaces/0/addresses/0' },
  { cli: true, name: 'nft in a rule id', doc: () => variant((c) => (c.firewall.forward[0].id = `x${INJECT}`)), path: '/firewall/forward/0/id' },
  { cli: true, name: 'nft in a device name', doc: () => variant((c) => (c.interfaces[0].device = `lan0${INJECT}`)), path: '/interfaces/0/device' },
  { cli: true, name: 'newline in a device name', doc: () => variant((c) => (c.interfaces[1].device = 'wan0\nflush ruleset')), path: '/interfaces/1/device' },
  { cli: true, name: 'nft in an address', doc: () => variant((c) => (c.firewall.forward[2].destination = ['203.0.113.0/24; flush ruleset'])), path: '/firewall/forward/2/destination/0' },
  { name: 'nft in a port', doc: () => variant((c) => (c.objects.services.web[0].ports = ['80}flush'])), path: '/objects/services/web/0/ports/0' },
  { cli: true, name: 'nft in a limit rate', doc: () => variant((c) => (c.firewall.input[1].limit.rate = '10/second; flush ruleset')), path: '/firewall/input/1/limit/rate' },
  { name: 'nft in a port forward target', doc: () => variant((c) => (c.firewall.nat.portForwards[0].to = '192.0.2.10; flush ruleset')), path: '/firewall/nat/portForwards/0/to' },
  { name: 'nft in a blocklist name', doc: () => variant((c) => (c.firewall.blocklists[0].name = `t${INJECT}`)), path: '/firewall/blocklists/0/name' },
  { name: 'nft in a host name', doc: () => variant((c) => (c.system.hostname = 'fw; flush ruleset')), path: '/system/hostname' },
  {
    name: 'quote, slash and tilde in an object name (pointer escaping)',
    cli: true,
    doc: () => variant((c) => (c.objects.addresses['a/b~c"x'] = ['192.0.2.1'])),
    path: '/objects/addresses/a~1b~0c"x',
  },
  { name: 'nft in an unknown field name', doc: () => variant((c) => (c.firewall.forward[0][`x${INJECT}`] = true)), path: '/firewall/forward/0', message: /unknown field/ },
  { cli: true, name: 'unicode look-alike zone name', doc: () => variant((c) => (c.zones[0].name = 'l\u0430n')), path: '/zones/0/name' },
  { name: 'unicode rule id', doc: () => variant((c) => (c.firewall.forward[0].id = 'r\u00e8gle')), path: '/firewall/forward/0/id' },
  { cli: true, name: 'huge port number', doc: () => variant((c) => (c.firewall.nat.portForwards[0].port = 1e12)), path: '/firewall/nat/portForwards/0/port' },
  { name: 'port out of range', doc: () => variant((c) => (c.objects.services.alt[0].ports = ['65536'])), path: '/objects/services/alt/0/ports/0' },
  { name: 'reversed port range', doc: () => variant((c) => (c.objects.services.alt[0].ports = ['8100-8000'])), path: '/objects/services/alt/0/ports/0' },
  { name: 'huge burst', doc: () => variant((c) => (c.firewall.input[1].limit.burst = 1e15)), path: '/firewall/input/1/limit/burst' },
  { cli: true, name: 'huge comment', doc: () => variant((c) => (c.firewall.forward[0].comment = 'x'.repeat(100_000))), path: '/firewall/forward/0/comment' },
  { name: 'huge mtu', doc: () => variant((c) => (c.interfaces[0].mtu = 1e9)), path: '/interfaces/0/mtu' },
  { cli: true, name: 'missing schema', doc: () => variant((c) => delete c.schema), path: '/schema' },
  { name: 'schema 2', doc: () => variant((c) => (c.schema = 2)), path: '/schema' },
  { cli: true, name: 'document is an array', doc: () => [], path: '/' },
  { name: 'document is a string', doc: () => JSON.stringify('flush ruleset'), path: '/' },
];

test(`hostile and broken documents (${CASES.length} cases): refused with pointers, the kernel is untouched`, async () => {
  const before = await rulesetText(lab.fw);
  const versions = (await history()).length;
  assert.ok(before.includes('table inet rampart {'), 'the lab config is loaded');
  assert.ok(CASES.filter((c) => c.cli).length >= 15);
  const viaCli = async (c: Case) => {
    const file = d.file(c.doc(), `hostile-${CASES.indexOf(c)}.json`);
    const [applied, validated] = await Promise.all([d.cli(['apply', file]), d.cli(['validate', file])]);
    for (const [verb, r] of [['apply', applied], ['validate', validated]] as const) {
      assert.is(r.code, 2, `${c.name}: ${verb} exited ${r.code}: ${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith(`${c.path}: `));
      assert.ok(lines.length > 0, `${c.name}: ${verb} has no "${c.path}: ..." line in:\n${r.stderr}`);
      if (c.message) assert.ok(lines.some((l) => c.message!.test(l)), `${c.name}: ${verb}: ${lines.join(' | ')}`);
    }
  };
  const viaSocket = async (c: Case) => {
    const doc = c.doc();
    const err = await d.call('apply', { document: typeof doc === 'string' ? JSON.parse(doc) : doc }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err, `${c.name}: applied over the control socket`);
    assert.is(err.code, 'invalid_input', `${c.name}: ${err}`);
    const paths = err.problems.map((p: { path: string }) => p.path || '/');
    assert.ok(paths.includes(c.path), `${c.name}: ${c.path} not among ${JSON.stringify(err.problems)}`);
  };
  for (const c of CASES) await viaSocket(c);
  assert.fixture(await rulesetText(lab.fw), before);
  // A few processes at a time; the kernel is compared after every batch.
  const cli = CASES.filter((c) => c.cli);
  for (let i = 0; i < cli.length; i += 4) {
    await Promise.all(cli.slice(i, i + 4).map(viaCli));
    assert.fixture(await rulesetText(lab.fw), before);
  }
  assert.is((await history()).length, versions, 'no version recorded for an invalid document');

  // Not JSON at all: invalid input, nothing applied.
  const garbage = d.file('{"schema": 1, "firewall": { flush ruleset', 'garbage.json');
  for (const verb of ['apply', 'validate', 'plan']) {
    const r = await d.cli([verb, garbage]);
    assert.is(r.code, 2, `${verb} of non-JSON: ${r.stderr}`);
    assert.match(r.stderr, /not valid JSON/);
  }
  assert.fixture(await rulesetText(lab.fw), before);
});

test('hostile CLI arguments and control requests are refused without touching the kernel', async () => {
  const before = await rulesetText(lab.fw);
  const good = d.file(labConfig(), 'good.json');
  const refused = [
    ['apply', good, '--confirm', 'abc'],
    ['apply', good, '--confirm', '0'],
    ['apply', good, '--confirm', '99999999'],
    ['block', `198.51.100.20${INJECT}`],
    ['block', '198.51.100.20/33'],
    ['block', '198.51.100.20', '--ttl', '0'],
    ['block', '198.51.100.20', '--ttl', '999999999'],
    ['unblock', `x${INJECT}`],
  ];
  const results = await Promise.all(refused.map((args) => d.cli(args)));
  results.forEach((r, i) => assert.is(r.code, 2, `rampart ${refused[i].join(' ')} exited ${r.code}: ${r.stderr}`));
  for (const params of [
    { document: labConfig(), confirmSeconds: -1 },
    { document: labConfig(), confirmSeconds: 'soon' },
    { document: labConfig(), message: 'x'.repeat(5000) },
    { document: null },
  ]) {
    const err = await d.call('apply', params).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err, `apply ${JSON.stringify(params).slice(0, 80)} was accepted`);
    assert.is(err.code, 'invalid_input', String(err));
  }
  assert.fixture(await rulesetText(lab.fw), before);
  assert.equal(await d.call('blocks'), []);
});

test('free text with quotes, braces, newlines and `; flush ruleset` is accepted and never reaches nft', async () => {
  const TEXT = `he said "hi" } { ; flush ruleset\nadd table ip evil { }\n' \`id\` $(id) \\ ünïcødé ☃`;
  const doc = variant((c) => {
    c.firewall.forward[0].comment = TEXT;
    c.firewall.nat.portForwards[0].comment = TEXT;
    c.firewall.blocklists[0].comment = TEXT;
    c.zones[0].description = TEXT;
    c.interfaces[0].description = TEXT;
    c.system.contact = TEXT;
    c.system.location = TEXT;
  });
  const v = await apply(doc, ['-m', TEXT]);
  const ruleset = await rulesetText(lab.fw);
  assert.ok(ruleset.includes('table inet rampart {'), ruleset);
  assert.ok(ruleset.includes('table inet rampart_blocks {'), 'blocks table untouched');
  const chains = [...compileRuleset(parseConfig(doc)).script.matchAll(/^\tchain (\S+) \{/gm)].map((m) => m[1]);
  assert.ok(chains.length >= 8, `chains: ${chains}`);
  for (const chain of chains) assert.ok(ruleset.includes(`\tchain ${chain} {`), `chain ${chain} missing`);
  for (const bit of ['flush ruleset', 'he said', 'evil', 'ünïcødé', '$(id)']) assert.not.ok(ruleset.includes(bit), `"${bit}" reached the ruleset`);
  assert.not.ok(/table ip evil/.test(ruleset));
  const s = await d.call('status');
  assert.is(s.version, v);
  assert.is(s.firewall.state, 'ok');
  // The text round-trips through the journal unchanged.
  const shown = JSON.parse((await ok(['show', String(v), '--json'])).trim());
  assert.is(shown.document.firewall.forward[0].comment, TEXT);
  assert.is(shown.message, TEXT);
  await apply(labConfig());
});

// ---------------------------------------------------------------------------------------------------------------
// Commit-confirm.

test('apply --confirm 2 without confirm: reverts by itself to the previous version and ruleset', async () => {
  const prev = (await d.call('status')).version;
  const before = await tables();
  const out = await ok(['apply', d.file(withRule('pending-a')), '--confirm', '2']);
  const v = Number(out.trim().split(/\s/)[0]);
  assert.match(out, /pending/);
  assert.is(await stateOf(v), 'pending_confirm');
  assert.ok((await tableText()).includes('rule:pending-a'), 'the pending change is in the kernel');
  const s = await d.call('status');
  assert.is(s.pending?.version, v);
  await waitFor(async () => (await stateOf(v)) === 'reverted', 10_000, `version ${v} to revert`);
  assert.is(await stateOf(prev), 'applied', 'the previous version runs again');
  assert.equal(await tables(), before, 'the kernel holds the earlier ruleset');
  const after = await d.call('status');
  assert.is(after.version, prev);
  assert.is(after.pending, null);
  assert.is(after.firewall.state, 'ok');
});

test('apply --confirm then confirm: stays applied, nothing reverts', async () => {
  const prev = (await d.call('status')).version;
  const v = await apply(withRule('confirmed-a'), ['--confirm', '30']);
  assert.is(await stateOf(v), 'pending_confirm');
  assert.match(await ok(['confirm']), new RegExp(`version ${v} confirmed`));
  assert.is(await stateOf(v), 'applied');
  assert.is(await stateOf(prev), 'superseded');
  assert.is((await d.call('status')).pending, null);
  const confirmAgain = await d.cli(['confirm']);
  assert.is(confirmAgain.code, 1, 'nothing left to confirm');

  // A short window, confirmed at once: still applied well after its deadline.
  const w = await apply(withRule('confirmed-b'), ['--confirm', '2']);
  await ok(['confirm']);
  assert.ok(await holds(async () => (await stateOf(w)) === 'applied', 3500), `version ${w} changed state after confirm`);
  assert.ok((await tableText()).includes('rule:confirmed-b'));
  await apply(labConfig());
});

test('while a change is pending another apply is refused, and `rampart rollback` reverts it at once', async () => {
  const prev = (await d.call('status')).version;
  const before = await tables();
  const v = await apply(withRule('pending-b'), ['--confirm', '60']);
  const second = await d.cli(['apply', d.file(withRule('pending-c'))]);
  assert.is(second.code, 1, `second apply exited ${second.code}: ${second.stderr}`);
  assert.match(second.stderr, /confirm/);
  assert.match(await ok(['rollback']), new RegExp(`running version ${prev}\\b`));
  assert.is(await stateOf(v), 'reverted');
  assert.is(await stateOf(prev), 'applied');
  assert.equal(await tables(), before, 'the kernel holds the earlier ruleset');
  assert.is((await d.call('status')).pending, null);
});

test('kill -9 while a change is pending: the next start reverts it', async () => {
  const prev = (await d.call('status')).version;
  const before = await tables();
  const v = await apply(withRule('crash-a'), ['--confirm', '60']);
  assert.ok((await tableText()).includes('rule:crash-a'));
  await d.crash();
  await d.restart();
  assert.is(await stateOf(v), 'reverted');
  assert.is(await stateOf(prev), 'applied');
  assert.equal(await tables(), before, 'the kernel holds the earlier ruleset');
  const s = await d.call('status');
  assert.is(s.version, prev);
  assert.is(s.pending, null);
  assert.is(s.firewall.state, 'ok');
});

// ---------------------------------------------------------------------------------------------------------------
// Reconciliation with the kernel.

test('tables deleted behind the daemon: restored at start with the unexpired dynamic blocks only', async () => {
  await ok(['block', '203.0.113.7']);
  await ok(['block', '2001:db8:77::/48', '--ttl', '600']);
  await ok(['block', '203.0.113.8', '--ttl', '3']);
  const set = async (name: string) => (await nft(['list', 'set', 'inet', 'rampart_blocks', name])).stdout;
  assert.match(await set('b4h'), /203\.0\.113\.8/);
  await waitFor(async () => !(await set('b4h')).includes('203.0.113.8'), 8000, 'the kernel to expire 203.0.113.8');
  const ours = configTables(labConfig());
  assert.ok(ours.includes('rampart'), `tables: ${ours}`);
  const before = await tables();

  for (const t of [...ours, 'rampart_blocks']) assert.is((await nft(['delete', 'table', 'inet', t])).exitCode, 0, `delete ${t}`);
  assert.is((await d.call('status')).firewall.state, 'missing', 'status sees the missing table');

  await d.restart();
  const after = await tables();
  for (const t of ours) assert.fixture(after[`inet ${t}`] ?? '(missing)', before[`inet ${t}`], `table inet ${t} restored`);
  assert.is((await d.call('status')).firewall.state, 'ok');
  const b4h = await set('b4h');
  assert.match(b4h, /203\.0\.113\.7/);
  assert.not.match(b4h, /203\.0\.113\.8/);
  assert.match(await set('b6n'), /2001:db8:77::\/48/);
  const listed = (await d.call('blocks')).map((b: any) => b.address).sort();
  assert.equal(listed, ['2001:db8:77::/48', '203.0.113.7']);

  await ok(['unblock', '203.0.113.7']);
  await ok(['unblock', '2001:db8:77::/48']);
  assert.not.match(await set('b4h'), /203\.0\.113\.7/);
  assert.not.match(await set('b6n'), /2001:db8:77/);
});

test('tables deleted while the daemon runs: the next apply loads all of them again', async () => {
  const doc = withRule('restore-a');
  const ours = configTables(doc);
  for (const t of ours) assert.is((await nft(['delete', 'table', 'inet', t])).exitCode, 0, `delete ${t}`);
  await apply(doc);
  const now = await tables();
  const script = compileRuleset(parseConfig(doc)).script;
  for (const t of ours) {
    const fp = new RegExp(`^table inet ${t} \\{\\n\\tcomment "(rampart [0-9a-f]{64})"`, 'm').exec(script)?.[1];
    assert.ok(now[`inet ${t}`], `table inet ${t} missing after apply`);
    if (fp) assert.ok(now[`inet ${t}`].includes(`comment "${fp}"`), `table inet ${t} is not the compiled one`);
  }
  assert.ok(now['inet rampart'].includes('rule:restore-a'));
  assert.is((await d.call('status')).firewall.state, 'ok');
  await apply(labConfig());
});

test('apply failure: the kernel refuses the transaction (owner table) → exit 1, version failed, nothing changed', async () => {
  const running = (await d.call('status')).version;
  assert.is((await nft(['delete', 'table', 'inet', 'rampart'])).exitCode, 0);
  const holder = await holdOwnerTable();
  try {
    const before = await rulesetText(lab.fw);
    const r = await d.cli(['apply', d.file(withRule('refused-a'))]);
    assert.is(r.code, 1, `apply exited ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /Operation not permitted/);
    const top = (await history())[0];
    assert.is(top.state, 'failed');
    assert.ok(top.version > running);
    assert.fixture(await rulesetText(lab.fw), before);
    const s = await d.call('status');
    assert.is(s.version, running, 'the running version is unchanged');
    assert.is.not(s.firewall.state, 'ok');
  } finally {
    await holder.end();
  }
  const v = await apply(labConfig());
  assert.is(await stateOf(v), 'applied');
  assert.is((await d.call('status')).firewall.state, 'ok');
});

test('the daemon starts even when the kernel refuses to load the running version, and reports it', async () => {
  await d.stop();
  assert.is((await nft(['delete', 'table', 'inet', 'rampart'])).exitCode, 0);
  const holder = await holdOwnerTable();
  let started = false;
  try {
    const before = await rulesetText(lab.fw);
    try {
      await d.restart();
    } catch (err) {
      const log = String((err as Error).message).split('\n');
      assert.unreachable(`rampartd exited at start because the kernel refused the reconcile; its last words: ${log.find((l) => l.startsWith('rampart:')) ?? log[0]}`);
    }
    started = true;
    const s = await d.call('status');
    assert.is.not(s.firewall.state, 'ok', 'status must not claim the firewall is fine');
    const r = await d.cli(['apply', d.file(withRule('refused-b'))]);
    assert.is(r.code, 1, `apply exited ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /Operation not permitted/);
    assert.is((await history())[0].state, 'failed');
    assert.fixture(await rulesetText(lab.fw), before);
  } finally {
    await holder.end();
    if (!started) await d.restart();
  }
  await apply(labConfig());
  assert.is((await d.call('status')).firewall.state, 'ok');
});

// ---------------------------------------------------------------------------------------------------------------
// Rollback, diff, plan.

test('rollback to the previous and to a given version; diff and plan show the changed rule', async () => {
  const docA = withRule('roll-a');
  const docB = withRule('roll-b', '9001');
  const a = await apply(docA);
  const b = await apply(docB);
  assert.ok((await tableText()).includes('rule:roll-b'));

  const back = Number(/running version (\d+)/.exec(await ok(['rollback']))?.[1]);
  assert.ok(back > b, `rollback made version ${back}`);
  const shownBack = JSON.parse(await ok(['show', String(back), '--json']));
  const shownA = JSON.parse(await ok(['show', String(a), '--json']));
  assert.is(shownBack.hash, shownA.hash, "rollback runs version A's document");
  assert.is((await d.call('status')).version, back);
  let table = await tableText();
  assert.ok(table.includes('rule:roll-a') && !table.includes('rule:roll-b'), 'kernel runs A');

  const one = Number(/running version (\d+)/.exec(await ok(['rollback', '1']))?.[1]);
  assert.ok(one > back);
  assert.is(JSON.parse(await ok(['show', String(one), '--json'])).hash, JSON.parse(await ok(['show', '1', '--json'])).hash);
  table = await tableText();
  assert.not.ok(table.includes('rule:roll-'), 'kernel runs version 1');
  assert.is((await d.call('status')).firewall.state, 'ok');
  assert.is((await d.cli(['rollback', '99999'])).code, 2, 'rollback to a version that does not exist');

  const diff = await ok(['diff', String(a), String(b)]);
  assert.match(diff, /\/firewall\/forward\/0/);
  assert.match(diff, /^-.*rule:roll-a/m);
  assert.match(diff, /^\+.*rule:roll-b/m);

  const before = await rulesetText(lab.fw);
  const plan = await ok(['plan', d.file(docB)]);
  assert.match(plan, new RegExp(`against running version ${one}: [1-9]\\d* config change`));
  assert.match(plan, /add\s+\/firewall\/forward\/0/);
  assert.match(plan, /^\+.*rule:roll-b/m);
  const bad = await d.cli(['plan', d.file(variant((c) => (c.firewall.forward[0].from = 'dmz')))]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^\/firewall\/forward\/0\/from: /m);
  assert.fixture(await rulesetText(lab.fw), before, 'plan changes nothing');
});

// ---------------------------------------------------------------------------------------------------------------
// No daemon.

test('verbs that need the daemon fail with a clear message and exit 1 when it is not running', async () => {
  const file = d.file(labConfig(), 'nodaemon.json');
  const verbs = [
    ['status'],
    ['apply', file],
    ['confirm'],
    ['rollback'],
    ['plan', file],
    ['history'],
    ['show'],
    ['diff', '1', '2'],
    ['block', '203.0.113.9'],
    ['unblock', '203.0.113.9'],
    ['blocks'],
    ['stats'],
    ['trace', '--from', 'lan', '--to', 'wan', '--src', '192.0.2.10', '--dst', '198.51.100.20', '--proto', 'tcp', '--dport', '80'],
  ];
  const check = async (how: string, list: string[][]) => {
    const results = await Promise.all(list.map((v) => d.cli(v)));
    results.forEach((r, i) => {
      assert.is(r.code, 1, `${how}: rampart ${list[i].join(' ')} exited ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /daemon is not running/, `${how}: rampart ${list[i].join(' ')}`);
      assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    });
  };
  await d.crash();
  await check('after kill -9 (stale socket)', [['status'], ['apply', file], ['block', '203.0.113.9']]);
  await d.restart();
  await d.stop();
  await check('after a clean stop', verbs);
  // Offline verbs still work.
  assert.is((await d.cli(['validate', file])).code, 0);
  assert.is((await d.cli(['compile', file])).code, 0);
});

test.run();
