/**
 * Thousands of generated valid configurations (test/helpers/arbitraries.ts) must compile to scripts that the kernel
 * accepts: `nft -c -f -` (parse, evaluate, and a kernel transaction that is aborted at the end) inside a scratch
 * network namespace that this file creates and always deletes. Root only.
 *
 * Speed: each compiled script is complete and starts by replacing its own tables, so several scripts concatenated
 * are checked as one transaction in which each part replaces what the previous one made; the first part of every
 * batch also covers loading onto an empty namespace. A failing batch is narrowed down (nft's line numbers, else
 * bisection) to single scripts that fail alone, and every failing configuration is reported with nft's message, grouped by kind of error, each group
 * with a greedily minimised document. A self-test makes sure a bad script in the middle of a batch is caught.
 *
 * Validating and compiling the next batch overlaps with the nft runs of the others.
 * Knobs: NFT_CHECK_CONFIGS (default 2000), NFT_CHECK_SEED, NFT_CHECK_BATCH (default 8); config #i is
 * fc.sample(validConfigArb(), { numRuns: NFT_CHECK_CONFIGS, seed: NFT_CHECK_SEED })[i].
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { validateConfig } from '../../services/core/validate.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { run } from '../../services/host/exec.ts';
import { shrinkDocument, validConfigArb, type Doc } from '../helpers/arbitraries.ts';

const COUNT = Number(process.env.NFT_CHECK_CONFIGS ?? 2000);
const SEED = process.env.NFT_CHECK_SEED ? Number(process.env.NFT_CHECK_SEED) : randomBytes(4).readInt32LE(0);
const BATCH = Number(process.env.NFT_CHECK_BATCH ?? 8);
const WORKERS = 3;

const ns = `nftc-${randomBytes(4).toString('hex')}`;
let created = false;

function removeNamespaceSync(): void {
  if (created) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  created = false;
}
process.on('exit', removeNamespaceSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    removeNamespaceSync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

async function nftCheck(script: string): Promise<{ ok: boolean; message: string }> {
  const r = await run('nft', ['-c', '-f', '-'], { netns: ns, input: script, allowFailure: true, timeoutMs: 120_000 });
  return { ok: r.exitCode === 0, message: r.stderr.trim() };
}

interface Item {
  index: number;
  doc: Doc;
  script: string;
}

/**
 * Indices of the items whose script fails alone. A failing batch is narrowed with nft's own line numbers (each
 * part's line range is known) and, where that does not pin a part down, by bisection; suspects are confirmed alone.
 */
async function findFailures(batchCount: number, batch: (n: number) => Item[]): Promise<Map<number, string>> {
  const failures = new Map<number, string>();
  const check = async (part: Item[]): Promise<void> => {
    if (!part.length) return;
    const res = await nftCheck(part.map((i) => i.script).join(''));
    if (res.ok) return;
    if (part.length === 1) {
      failures.set(part[0].index, res.message);
      return;
    }
    const starts: number[] = [];
    let line = 1;
    for (const i of part) {
      starts.push(line);
      line += i.script.split('\n').length - 1;
    }
    const suspects = new Set<number>();
    for (const m of res.message.matchAll(/\/dev\/stdin:(\d+):/g)) {
      const n = Number(m[1]);
      let k = starts.length - 1;
      while (k > 0 && starts[k] > n) k--;
      suspects.add(k);
    }
    const confirmed: number[] = [];
    for (const k of suspects) {
      const alone = await nftCheck(part[k].script);
      if (!alone.ok) {
        failures.set(part[k].index, alone.message);
        confirmed.push(k);
      }
    }
    if (confirmed.length) return check(part.filter((_, k) => !confirmed.includes(k)));
    const mid = Math.ceil(part.length / 2);
    await check(part.slice(0, mid));
    await check(part.slice(mid));
  };
  // A worker makes its next batch (synchronously, in this process) while the other workers' nft runs go on.
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (next < batchCount) await check(batch(next++));
    }),
  );
  return failures;
}

function batchesOf(items: Item[]): [number, (n: number) => Item[]] {
  return [Math.ceil(items.length / BATCH), (n) => items.slice(n * BATCH, (n + 1) * BATCH)];
}

/** A stable label for an nft error: its first message with numbers, names and quoted text blanked. */
function errorKind(message: string): string {
  const first = message.split('\n').find((l) => /Error:/.test(l)) ?? message.split('\n')[0] ?? '';
  return first
    .replace(/^.*?Error: /, '')
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, 'N')
    .slice(0, 160);
}

test.before(async () => {
  await run('ip', ['netns', 'add', ns]);
  created = true;
});

test.after(async () => {
  if (created) await run('ip', ['netns', 'del', ns]);
  created = false;
});

test('self-test: a broken script in the middle of a batch is found and attributed', async () => {
  const good: string[] = [];
  for (const d of fc.sample(validConfigArb({ maxRules: 5 }), { numRuns: 30, seed: 42 })) {
    const r = validateConfig(d);
    if (!r.ok || good.length === 5) continue;
    const script = compileRuleset(r.config!).script;
    if ((await nftCheck(script)).ok) good.push(script);
  }
  assert.is(good.length, 5, 'not enough scripts that pass alone');
  const bad = good[0].replace(/\n\tchain input \{\n/, '\n\tchain input {\n\t\tip saddr @no_such_set drop\n');
  assert.ok(bad !== good[0], 'could not build the broken script');
  const items: Item[] = [...good.slice(0, 2), bad, ...good.slice(2)].map((script, index) => ({ index, doc: {}, script }));
  const failures = await findFailures(...batchesOf(items));
  assert.equal([...failures.keys()], [2]);
  assert.match(failures.get(2)!, /no_such_set/);
});

test(`${COUNT} generated valid configurations compile to scripts that nft -c accepts`, async () => {
  const started = Date.now();
  const docs = fc.sample(validConfigArb(), { numRuns: COUNT, seed: SEED });
  const generatedMs = Date.now() - started;
  const items = new Map<number, Item>();
  const invalid: string[] = [];
  let bytes = 0;
  let compileMs = 0;
  const batchCount = Math.ceil(COUNT / BATCH);
  // Validating and compiling batch n happens when a worker takes it, while the other workers' nft runs go on.
  const batch = (n: number): Item[] => {
    const t0 = Date.now();
    const out: Item[] = [];
    for (let index = n * BATCH; index < Math.min(COUNT, (n + 1) * BATCH); index++) {
      const doc = docs[index];
      const r = validateConfig(doc);
      if (!r.ok) {
        invalid.push(`#${index}: ${JSON.stringify(r.problems.slice(0, 3))}`);
        continue;
      }
      const item = { index, doc, script: compileRuleset(r.config!).script };
      items.set(index, item);
      bytes += item.script.length;
      out.push(item);
    }
    compileMs += Date.now() - t0;
    return out;
  };
  const failures = await findFailures(batchCount, batch);
  console.log(
    `nft -c: ${items.size} configurations (seed ${SEED}, batches of ${BATCH}, ${(bytes / 1024 / 1024).toFixed(1)} MiB of script) ` +
      `in ${Date.now() - started} ms (generating ${generatedMs} ms, then validating+compiling ${compileMs} ms overlapped with nft); ${failures.size} rejected`,
  );

  const groups = new Map<string, number[]>();
  for (const [index, message] of failures) {
    const kind = errorKind(message);
    groups.set(kind, [...(groups.get(kind) ?? []), index]);
  }
  const report: string[] = [];
  const deadline = Date.now() + 30_000;
  for (const [kind, indices] of groups) {
    const first = items.get(indices[0])!;
    const stillFails = async (d: Doc) => {
      const r = validateConfig(d);
      if (!r.ok) return false;
      const res = await nftCheck(compileRuleset(r.config!).script);
      return !res.ok && errorKind(res.message) === kind;
    };
    const minimal = await shrinkDocument(first.doc, stillFails, Math.max(0, Math.min(10_000, deadline - Date.now())));
    const minimalMessage = (await nftCheck(compileRuleset(validateConfig(minimal).config!).script)).message;
    report.push(
      [
        `--- ${indices.length} configuration(s) rejected: ${kind}`,
        `    configs (index in fc.sample(validConfigArb(), { numRuns: ${COUNT}, seed: ${SEED} })): ${indices.sort((a, b) => a - b).slice(0, 20).join(', ')}${indices.length > 20 ? ', …' : ''}`,
        `    nft said (config #${first.index}): ${failures.get(first.index)!.split('\n').slice(0, 3).join('\n      ')}`,
        `    minimised document: ${JSON.stringify(minimal)}`,
        `    nft on it: ${minimalMessage.split('\n').slice(0, 3).join('\n      ')}`,
      ].join('\n'),
    );
  }
  if (report.length) console.log(report.join('\n'));
  assert.equal(invalid, [], 'generated documents that do not validate');
  assert.is(failures.size, 0, `${failures.size} of ${items.size} valid configurations compile to scripts nft rejects (seed ${SEED}; see above)`);
});

test.run();
