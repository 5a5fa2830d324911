/**
 * The two-step load hands a blocklist's prefixes to the netlink helper in nft's own interval encoding (start and
 * end elements, ascending, a leading end at the zero address). Proof that it is the same: for generated blocklists
 * (overlapping, nested, touching prefixes, the first and the last of the address space, IPv4 and IPv6, with single
 * addresses beside them), the lists table loaded in two steps (nft setup, the helper, nft finish) lists exactly as
 * the table nft loads from the one-step script. In a scratch network namespace that this file creates and deletes.
 * Root only.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { parsePrefix } from '../../services/core/net.ts';
import { parseConfig } from '../../services/core/validate.ts';
import { compileListsStaged, compileRuleset, LISTS_TABLE, LISTS_TABLE_ALT } from '../../services/firewall/compile.ts';
import { run, setelemHelper } from '../../services/host/exec.ts';
import { labConfig } from '../helpers/daemon.ts';

const ns = `nftiv-${randomBytes(4).toString('hex')}`;
let created = false;
const dir = mkdtempSync(join(tmpdir(), 'rampart-intervals-'));

function cleanup(): void {
  if (created) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  created = false;
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);

const nft = async (args: string[], input?: string) => {
  const r = await run('nft', args, { netns: ns, input, allowFailure: true });
  if (r.exitCode !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
};

/**
 * A table as nft lists it, and as the kernel holds its set elements: the netlink view shows each element with its
 * flags (the plain listing hides the end element at the zero address, for one), sorted (a hash set's order is the
 * kernel's).
 */
async function listing(table: string): Promise<{ text: string; elements: string[] }> {
  const text = await nft(['list', 'table', 'inet', table]);
  const raw = await nft(['--debug=netlink', 'list', 'table', 'inet', table]);
  const elements = raw.split('\n').filter((l) => /^\s*element /.test(l)).map((l) => l.trim()).sort();
  return { text, elements };
}

/** IPv4 prefixes crowded into a few places, so that they overlap, nest and touch; the space's ends included. */
const v4Entry = fc
  .tuple(fc.constantFrom(0, 10, 192, 255), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 32 }))
  .map(([a, b, c, d, len]) => `${a}.${b}.${c}.${d}/${len}`);
const v6Entry = fc
  .tuple(fc.constantFrom('::', '2001:db8::', '2001:db9::', 'ffff:ffff::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00'), fc.integer({ min: 0, max: 128 }))
  .map(([a, len]) => `${a}/${len}`);
const host = fc.oneof(fc.ipV4(), fc.ipV6());
const entries = fc.array(fc.oneof(v4Entry, v4Entry, v6Entry, host), { minLength: 1, maxLength: 60 });

test.before(async () => {
  const r = spawnSync('ip', ['netns', 'add', ns]);
  if (r.status !== 0) throw new Error(`ip netns add: ${r.stderr}`);
  created = true;
});
test.after(cleanup);

test('prefixes loaded through the helper list exactly as nft loads them', async () => {
  const helper = setelemHelper();
  assert.ok(helper, 'the netlink helper is built by scripts/bootstrap');
  await fc.assert(
    fc.asyncProperty(entries, async (list) => {
      const doc = labConfig();
      // Only entries the validation takes (the property is about loading, not about validation).
      doc.firewall.blocklists = [{ name: 'gen', entries: list.filter((e) => parsePrefix(e)) }];
      const config = parseConfig(doc);
      // One step: nft loads the lists table of the compiled script.
      const compiled = compileRuleset(config);
      await nft(['-f', '-'], compiled.script);
      const one = await listing(LISTS_TABLE);
      // Two steps into the sibling table: setup, the helper, finish.
      const staged = compileListsStaged(config, LISTS_TABLE_ALT);
      await nft(['-f', '-'], staged.setup);
      const file = join(dir, 'elements');
      writeFileSync(file, staged.elements);
      const fill = await run(helper!, ['inet', LISTS_TABLE_ALT, file], { netns: ns, allowFailure: true });
      assert.is(fill.exitCode, 0, `helper: ${fill.stderr}`);
      await nft(['-f', '-'], staged.finish.lines.join('\n') + '\n');
      const two = await listing(LISTS_TABLE_ALT);
      assert.fixture(two.text.replaceAll(LISTS_TABLE_ALT, LISTS_TABLE), one.text);
      assert.equal(two.elements.map((l) => l.replaceAll(LISTS_TABLE_ALT, LISTS_TABLE)), one.elements);
      await nft(['-f', '-'], `table inet ${LISTS_TABLE_ALT}\ndelete table inet ${LISTS_TABLE_ALT}\n`);
    }),
    // fast-check prints the seed of a failure; FUZZ_SEED replays it (CI runs a fixed one).
    { numRuns: Number(process.env.INTERVAL_CASES ?? 60), ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
  );
});

test.run();
