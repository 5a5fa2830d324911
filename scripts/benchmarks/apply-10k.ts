/**
 * apply-10k: `rampart apply FILE` (CLI process start to exit) of a config with 10,000 forward rules and a
 * 200,000-entry blocklist, against `nft -f` of the very script it compiles to (`rampart compile FILE`), in the
 * firewall namespace. Runs alternate (and alternate which goes first), after one unmeasured load of each.
 *
 * rampart skips reloading a blocklist that has not changed since its last load. So that every measured apply does
 * the same work as the baseline (rules AND blocklist), two variants whose blocklists differ in one entry are applied
 * in turn; each round's baseline loads the script of the same variant. Extra figures: one traced apply split around
 * the daemon's nft child, estimated pieces (CLI start, transfer, validation, compilation, journal, reply), and a
 * re-apply with the blocklist unchanged (what a rule change costs) against `nft -f` of the rules table alone.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callDaemon } from '../../services/control.ts';
import { documentHash } from '../../services/core/store.ts';
import { parseConfig, validateConfig } from '../../services/core/validate.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { bigConfig, labDoc } from './configs.ts';
import {
  BIN,
  CLI_ENV,
  median,
  mustRun,
  nftIn,
  nftPhases,
  rampartArgs,
  removeTempDir,
  secs,
  startRampartd,
  tempDir,
  timeSync,
  timed,
  traceChildren,
  type Result,
} from './lib.ts';
import type { BenchContext } from './run.ts';

export const RULES = 10_000;
export const ENTRIES = 200_000;
const TARGET = { maxRatio: 1.25 };

type Variant = 'a' | 'b';

export async function applyBench(ctx: BenchContext): Promise<Result> {
  const runs = ctx.runs ?? 5;
  const dir = tempDir('apply');
  const fw = ctx.lab.fw;
  const daemon = await startRampartd({ netns: fw, config: labDoc(), dataDir: join(dir, 'data') });
  try {
    // The input: an operator's pretty-printed JSON file, and the nft script rampart compiles it to.
    const docs: Record<Variant, any> = { a: bigConfig(RULES, ENTRIES, 'a'), b: bigConfig(RULES, ENTRIES, 'b') };
    const files = {} as Record<Variant, string>;
    const scriptFiles = {} as Record<Variant, string>;
    for (const v of ['a', 'b'] as const) {
      files[v] = join(dir, `config-10k-${v}.json`);
      writeFileSync(files[v], JSON.stringify(docs[v], null, 2));
      scriptFiles[v] = join(dir, `ruleset-10k-${v}.nft`);
      await mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['compile', files[v]]), { env: CLI_ENV, stdoutFile: scriptFiles[v] });
    }
    const script = readFileSync(scriptFiles.a, 'utf8');
    const ruleLines = script.split('\n').filter((l) => /comment "rule:/.test(l)).length;
    ctx.progress(`compiled: ${(script.length / 1e6).toFixed(1)} MB of nft script, ${ruleLines} rule lines`);

    // Warm-up: load the big tables once, so every measured run replaces big tables; and one unmeasured apply, so that
    // the daemon's first big apply after its start (code not yet optimised, heap still growing) is not measured either.
    await nftIn(fw, ['-f', scriptFiles.a]);

    const rampartMs: number[] = [];
    const nftMs: number[] = [];
    const apply = async (v: Variant, message: string) => {
      const r = await timed(BIN, rampartArgs(daemon.dataDir, fw, ['apply', files[v], '-m', message]), { env: CLI_ENV });
      if (r.code !== 0) throw new Error(`rampart apply failed (exit ${r.code}): ${r.stderr.trim().slice(0, 1500)}`);
      return r;
    };
    await apply('a', 'benchmark warm-up (not measured)');
    // The daemon logs its own split of each apply ("configuration applied", ms: {validate, compile, nft, journal})
    // in this build; collected when present.
    const daemonMs: Array<Record<string, number>> = [];
    const collectDaemonLog = (since: number) => {
      for (const line of daemon.logs().slice(since).split('\n')) {
        if (!line.includes('configuration applied')) continue;
        try {
          const ms = JSON.parse(line).ms;
          if (ms && typeof ms === 'object') daemonMs.push(ms);
        } catch {
          /* not JSON */
        }
      }
    };
    let last: Variant = 'a';
    for (let i = 0; i < runs; i++) {
      const v: Variant = i % 2 === 0 ? 'b' : 'a';
      last = v;
      const rampart = async () => {
        const logFrom = daemon.logs().length;
        const ms = (await apply(v, `benchmark ${v}`)).ms;
        rampartMs.push(ms);
        collectDaemonLog(logFrom);
        return ms;
      };
      const nft = async () => {
        const ms = (await nftIn(fw, ['-f', scriptFiles[v]])).ms;
        nftMs.push(ms);
        return ms;
      };
      let ra: number;
      let na: number;
      if (i % 2 === 0) {
        ra = await rampart();
        na = await nft();
      } else {
        na = await nft();
        ra = await rampart();
      }
      ctx.progress(`run ${i + 1}/${runs}: rampart apply ${secs(ra)} s, nft -f ${secs(na)} s`);
    }
    const lastScript = readFileSync(scriptFiles[last], 'utf8');
    const fingerprint = /fingerprint ([0-9a-f]{64})/.exec(lastScript)?.[1];
    const inKernel = await nftIn(fw, ['-t', 'list', 'table', 'inet', 'rampart']);
    const loaded = fingerprint !== undefined && inKernel.stdout.includes(`rampart ${fingerprint}`);

    // One extra full apply (the other variant, not in the medians), traced from outside: when the daemon's nft
    // child starts and ends splits it into before nft / nft / after nft.
    ctx.progress('extra: one traced apply; a re-apply with the blocklist unchanged; the pieces');
    const next: Variant = last === 'a' ? 'b' : 'a';
    const traced = await traceChildren(daemon.pid, () => apply(next, 'benchmark (traced)'));
    const phases = nftPhases(traced);

    // A re-apply with the same blocklist (a rule change): rampart loads the rules table only. Its baseline is
    // `nft -f` of the rules table alone (the compiler's `main` part), when the compiler exposes it.
    const reapply = await traceChildren(daemon.pid, () => apply(next, 'benchmark (re-apply)'));
    const reapplyPhases = nftPhases(reapply);
    let mainOnlyNft: number | undefined;
    const main = (compileRuleset(parseConfig(docs[next])) as { main?: { script?: string } }).main?.script;
    if (typeof main === 'string') {
      const mainFile = join(dir, `ruleset-10k-${next}-main.nft`);
      writeFileSync(mainFile, main);
      mainOnlyNft = (await nftIn(fw, ['-f', mainFile])).ms;
    }

    // The pieces, measured in this process as the daemon does them (medians).
    const inProcessRuns = Math.max(runs, 5);
    const doc = docs.a;
    const text = readFileSync(files.a, 'utf8');
    const parseMs = timeSync(inProcessRuns, () => JSON.parse(text));
    let validated: ReturnType<typeof validateConfig> | undefined;
    const validateMs = timeSync(inProcessRuns, () => (validated = validateConfig(doc)));
    if (!validated?.ok) throw new Error(`generated config is invalid: ${JSON.stringify(validated?.problems.slice(0, 3))}`);
    let inProcessScript = '';
    const compileMs = timeSync(inProcessRuns, () => (inProcessScript = compileRuleset(validated!.config!).script));
    const bothMs = timeSync(inProcessRuns, () => compileRuleset(parseConfig(doc)).script);
    const hashMs = timeSync(inProcessRuns, () => (JSON.stringify(doc), documentHash(doc)));

    const cliStartMs: number[] = [];
    for (let i = 0; i < runs; i++) cliStartMs.push((await mustRun(BIN, ['--help'], { env: CLI_ENV })).ms);
    const call = async (method: string, params: unknown) => {
      const t0 = performance.now();
      await callDaemon(daemon.sock, method, params);
      return performance.now() - t0;
    };
    // `history` ignores extra parameters: the difference is sending and parsing the document, nothing else.
    const emptyMs: number[] = [];
    const withDocMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      emptyMs.push(await call('history', { limit: 1 }));
      withDocMs.push(await call('history', { limit: 1, document: doc }));
    }
    const requestBytes = Buffer.byteLength(JSON.stringify({ id: 1, method: 'apply', params: { document: doc } }));

    const value = median(rampartMs) / 1000;
    const baseline = median(nftMs) / 1000;
    const ratio = value / baseline;
    return {
      name: 'apply-10k',
      value,
      baseline,
      ratio,
      target: TARGET,
      pass: ratio <= TARGET.maxRatio,
      unit: 's',
      details: {
        runs,
        rampartApplySeconds: rampartMs.map(secs),
        nftSeconds: nftMs.map(secs),
        method: 'configs a and b differ in one blocklist entry and are applied in turn, so every measured apply loads rules and blocklist; each baseline loads the compiled script of the same config',
        forwardRules: doc.firewall.forward.length,
        blocklistEntries: ENTRIES,
        configBytes: text.length,
        requestBytes,
        scriptBytes: script.length,
        scriptLines: script.split('\n').length - 1,
        nftRuleLines: ruleLines,
        scriptMatchesInProcessCompile: inProcessScript === script,
        rulesetLoaded: loaded,
        compileSeconds: secs(median(bothMs)),
        validateSeconds: secs(median(validateMs)),
        compileOnlySeconds: secs(median(compileMs)),
        daemonReportedSeconds: daemonMs.length
          ? Object.fromEntries(Object.keys(daemonMs[0]).map((k) => [k, secs(median(daemonMs.map((m) => Number(m[k]))))]))
          : null,
        tracedApplySeconds: phases ?? { total: secs(traced.ms), note: 'no nft child seen' },
        tracedChildren: traced.spans.map((c) => ({ cmd: c.cmd.slice(0, 60), from: secs(c.from), to: secs(c.to) })),
        reapplyUnchangedBlocklist: {
          rampartApplySeconds: secs(reapply.ms),
          phases: reapplyPhases,
          nftRulesTableOnlySeconds: mainOnlyNft === undefined ? null : secs(mainOnlyNft),
        },
        estimatesSeconds: {
          cliStart: secs(median(cliStartMs)),
          readAndParseFile: secs(median(parseMs)),
          requestTransfer: secs(Math.max(0, median(withDocMs) - median(emptyMs))),
          validate: secs(median(validateMs)),
          compile: secs(median(compileMs)),
          journalHash: secs(median(hashMs)),
        },
        breakdownNotes:
          'tracedApplySeconds: one extra full apply (not in the medians) split where the daemon runs nft (its child processes polled every 2 ms). estimatesSeconds: medians measured separately; cliStart = `rampart --help`; validate/compile/journalHash in the benchmark process; requestTransfer = a control-socket call with the document minus one without; journalHash = JSON.stringify + canonical-JSON sha256 of the document',
      },
    };
  } finally {
    await daemon.stop();
    removeTempDir(dir);
  }
}
