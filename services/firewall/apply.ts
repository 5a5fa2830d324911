/**
 * The firewall applier: validate → compile → one `nft -f` transaction → journal, with commit-confirm, rollback,
 * plan (dry run with `nft -c`) and reconciliation of the kernel with the running version at start.
 */
import { createTwoFilesPatch } from 'diff';
import type { Logger } from '../core/log.ts';
import { RampartError, type Problem } from '../core/errors.ts';
import { parseConfig, type RuntimeEnv } from '../core/validate.ts';
import { parseConfigOnce, rememberVersionConfig, runningConfig } from '../core/config-cache.ts';
import type { Config } from '../core/schema.ts';
import { prepareDocument, type PreparedDocument, type Store, type VersionRecord, type VersionSource } from '../core/store.ts';
import type { Host, RunResult } from '../host/exec.ts';
import type { EventBus } from '../core/events.ts';
import { SerialQueue } from '../core/serial.ts';
import { blocklistEntryCount, compileListsStaged, compileRuleset, listsFingerprint, LISTS_TABLE, LISTS_TABLE_ALT, TABLE, type CompiledRuleset, type StagedLists } from './compile.ts';
import { setelemHelper } from '../host/exec.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BLOCK_TABLE } from './blocks.ts';
import { configDiff } from './config-diff.ts';

export interface ApplyRequest {
  document: unknown;
  author: string;
  source: VersionSource;
  message?: string;
  /** Seconds before the change reverts by itself unless confirmed. */
  confirmSeconds?: number;
}

export interface PlanResult {
  running?: number;
  configChanges: { op: 'add' | 'remove' | 'replace'; path: string; from?: unknown; to?: unknown }[];
  rulesetDiff: string;
  problems: Problem[];
}

/** Map nft's `/dev/stdin:LINE:COL-COL: Error: ...` lines back to config pointers. */
export function mapNftErrors(stderr: string, lineMap: string[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const m of stderr.matchAll(/^[^:\n]*:(\d+):\d+(?:-\d+)?: Error: (.*)$/gm)) {
    const line = Number(m[1]);
    const problem = { path: lineMap[line - 1] ?? '', message: `nft: ${m[2]}` };
    const key = `${problem.path}\n${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  if (!problems.length && stderr.trim()) problems.push({ path: '', message: `nft: ${stderr.trim().split('\n')[0]}` });
  return problems;
}

export interface FirewallHooks {
  /** Where big scripts are written for nft to read (inside the data directory); stdin when unset. */
  scratchFile?: string;
  /** The runtime facts the ruleset depends on (the API's port for anti-lockout). */
  env?: RuntimeEnv;
  /** Rebuild the dynamic blocks table from the store (after it vanished). */
  restoreBlocks?: () => Promise<void>;
  /** Whether the dynamic blocks table carries a marker to check in every transaction. */
  blocksMarker?: boolean;
  /**
   * From how many entries (addresses and prefixes) in the blocklists a changed lists table is loaded in two steps
   * (default 10,000; see Firewall.load). 0 turns the two-step load off.
   */
  stageListsFrom?: number;
}

/** The sibling lists table: the name a two-step load fills while the running one stays. */
function otherListsTable(table: string): string {
  return table === LISTS_TABLE ? LISTS_TABLE_ALT : LISTS_TABLE;
}

/** Statements that remove a table whether or not it exists. */
function dropTable(table: string): string {
  return `table inet ${table}\ndelete table inet ${table}\n`;
}

/** A lists table being prepared by the first step of a two-step load. */
interface Staging {
  lists: StagedLists;
  /**
   * Renders the elements, waits for the table's setup and fills its sets through the netlink helper; settles when
   * the table and its address sets are in the kernel (rejects with what failed). Called once.
   */
  fill(): Promise<void>;
  /** Settles when the setup's nft has exited (whatever it did). */
  setupExited: Promise<unknown>;
  /** When the table was set up and when the helper finished (performance.now()), for the apply's log. */
  setUp?: number;
  done?: number;
}

/** Statements that fail unless the table and its marker counter exist, and leave them as they were. */
function markerCheck(table: string): string {
  return `delete counter inet ${table} marker\nadd counter inet ${table} marker\n`;
}

export class Firewall {
  private confirmTimer?: NodeJS.Timeout;
  private watchTimer?: NodeJS.Timeout;
  private readonly queue = new SerialQueue();
  /** Fingerprint of the blocklists table the kernel holds, as far as this process knows. */
  private listsLoaded?: string;
  /** Which of the two names the running lists table has (a two-step load alternates them). */
  listsTable = LISTS_TABLE;
  /** Fingerprint of the main table of the running version (what the kernel should hold). */
  expectedFingerprint?: string;
  /** What the kernel held when last looked at. */
  kernelSeen?: { fingerprint?: string; at: number };

  constructor(
    private readonly store: Store,
    private readonly host: Host,
    private readonly log: Logger,
    private readonly events?: EventBus,
    private readonly hooks: FirewallHooks = {},
  ) {}

  /** The runtime facts the ruleset depends on. */
  get env(): RuntimeEnv {
    return this.hooks.env ?? {};
  }

  /** Compile for this appliance (its runtime environment). */
  compile(config: Config): CompiledRuleset {
    const compiled = compileRuleset(config, this.env);
    this.counters.set(config, compiled.counters);
    return compiled;
  }

  /** The named counters of each configuration compiled (parsed configurations are not changed after validation). */
  private readonly counters = new WeakMap<Config, CompiledRuleset['counters']>();

  /** Which named counter belongs to which rule in `config`: from its compilation (the apply's), else compiled now. */
  countersOf(config: Config): CompiledRuleset['counters'] {
    return this.counters.get(config) ?? this.compile(config).counters;
  }

  /** Why the last reconciliation at start failed, if it did (the daemon keeps serving so a change can repair it). */
  startError?: string;

  /** Reconcile the kernel with the journal: revert a pending change left by a crash, re-apply a missing table. */
  async start(): Promise<void> {
    this.startError = undefined;
    await this.queue.run(() => this.reconcile()).catch((err) => {
      this.startError = RampartError.from(err).message;
      this.log.error({ err: this.startError }, 'could not bring the kernel to the running version; serving anyway so a change can repair it');
    });
  }

  private async reconcile(): Promise<void> {
    {
      const pending = this.store.pendingVersion();
      if (pending) {
        this.log.warn({ version: pending.version }, 'pending change found at start: reverting');
        await this.revertPendingLocked(pending, 'not confirmed before the daemon stopped');
      }
      const running = this.store.runningVersion();
      if (!running) return;
      const compiled = this.compile(parseConfig(running.document));
      this.expectedFingerprint = compiled.fingerprint;
      const inKernel = await this.checkKernel();
      await this.findListsTable();
      this.listsLoaded = await this.kernelFingerprint(this.listsTable);
      if (inKernel !== compiled.fingerprint || this.listsLoaded !== compiled.lists.fingerprint) {
        this.log.warn({ version: running.version, inKernel }, 'kernel ruleset differs from the running version: re-applying');
        await this.load(compiled);
      }
    }
  }

  stop(): void {
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
  }

  /**
   * Self-healing: every `intervalMs`, if the kernel's main table is missing or not the running version (someone ran
   * `nft flush ruleset`, say), load the running version again, blocklists included.
   */
  watch(intervalMs: number): void {
    this.unwatch();
    this.watchTimer = setInterval(() => {
      void this.queue
        .run(async () => {
          // The fingerprint of what should run is known since the last load: only a table that changed costs a
          // read of the document and a compile.
          if (!this.expectedFingerprint) return;
          const inKernel = await this.checkKernel();
          if (inKernel === this.expectedFingerprint) return;
          const running = this.store.runningVersion();
          if (!running) return;
          this.log.warn({ version: running.version, inKernel: inKernel ?? null }, 'firewall table changed behind our back: restoring the running version');
          this.listsLoaded = undefined;
          await this.load(this.compile(parseConfig(running.document)));
        })
        .catch((err) => this.log.error({ err: String(err) }, 'firewall watchdog failed'));
    }, intervalMs);
    this.watchTimer.unref?.();
  }

  unwatch(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /**
   * The fingerprint in the comment of one of our tables: undefined when the main table is missing, 'none' when the
   * lists table is missing (which is right for a config without blocklists).
   */
  /** Look at the kernel's main table now and remember what was seen (status reports it without looking again). */
  async checkKernel(): Promise<string | undefined> {
    const fingerprint = await this.kernelFingerprint();
    this.kernelSeen = { fingerprint, at: Date.now() };
    return fingerprint;
  }

  /** ok / drift / missing / unconfigured, from the last look at the kernel. */
  health(): { state: 'ok' | 'drift' | 'missing' | 'unconfigured'; checkedAt?: string } {
    const checkedAt = this.kernelSeen && new Date(this.kernelSeen.at).toISOString();
    if (!this.expectedFingerprint) return { state: 'unconfigured', ...(checkedAt ? { checkedAt } : {}) };
    const seen = this.kernelSeen?.fingerprint;
    return { state: seen === this.expectedFingerprint ? 'ok' : seen ? 'drift' : 'missing', ...(checkedAt ? { checkedAt } : {}) };
  }

  async kernelFingerprint(table = TABLE): Promise<string | undefined> {
    const res = await this.host.run('nft', ['-t', 'list', 'table', 'inet', table], { allowFailure: true });
    if (res.exitCode !== 0) return table === LISTS_TABLE || table === LISTS_TABLE_ALT ? 'none' : undefined;
    return /comment "rampart ([0-9a-f]{64})"/.exec(res.stdout)?.[1];
  }

  async apply(req: ApplyRequest): Promise<VersionRecord> {
    return this.queue.run(async () => {
      const pending = this.store.pendingVersion();
      if (pending) throw new RampartError('conflict', `version ${pending.version} is waiting for confirmation: confirm or roll it back first`);
      const t0 = performance.now();
      const config = parseConfigOnce(req.document);
      const t1 = performance.now();
      // Big changed blocklists: their sibling table is set up while the main table compiles.
      const staging = this.stage(config);
      let compiled: CompiledRuleset;
      try {
        compiled = this.compile(config);
      } catch (err) {
        await this.discard(staging);
        throw err;
      }
      const t2 = performance.now();
      const previous = this.store.runningVersionMeta();
      let prepared: PreparedDocument | undefined;
      try {
        // While nft works in its own process: serialise and hash the document for the journal.
        await this.load(compiled, staging, () => (prepared = prepareDocument(req.document)));
      } catch (err) {
        const e = RampartError.from(err);
        const failed = this.store.addVersion({ ...req, state: 'failed' });
        this.store.updateVersion(failed.version, { error: e.message });
        this.log.error({ version: failed.version, err: e.message }, 'apply failed; the kernel keeps the previous ruleset');
        throw new RampartError('apply_failed', `apply failed, nothing changed: ${e.message}`, e.problems);
      }
      const t3 = performance.now();
      const now = new Date();
      const confirm = req.confirmSeconds && req.confirmSeconds > 0 ? req.confirmSeconds : undefined;
      const rec = this.store.sql.transaction(() => {
        const v = this.store.addVersion({ ...req, state: confirm ? 'pending_confirm' : 'applied' }, prepared);
        this.store.updateVersion(v.version, {
          appliedAt: now.toISOString(),
          confirmDeadline: confirm ? new Date(now.getTime() + confirm * 1000).toISOString() : null,
        });
        if (previous && !confirm) this.store.updateVersion(previous.version, { state: 'superseded' });
        return this.store.getVersionMeta(v.version)!;
      })();
      // Every service that follows the running version finds it parsed already.
      rememberVersionConfig(rec.version, rec.hash, config);
      if (confirm) this.armConfirm(rec);
      const ms = (a: number, b: number) => Math.round(b - a);
      const t4 = performance.now();
      this.log.info(
        {
          version: rec.version,
          source: rec.source,
          author: rec.author,
          confirm,
          // The steps, and when the two-step load's table was set up and its netlink helper finished (from the start).
          ms: { validate: ms(t0, t1), compile: ms(t1, t2), nft: ms(t2, t3), journal: ms(t3, t4), ...(staging?.done ? { setupDone: ms(t0, staging.setUp!), helperDone: ms(t0, staging.done) } : {}) },
        },
        'configuration applied',
      );
      this.events?.emit('config', { type: 'applied', version: rec.version, state: rec.state });
      return rec;
    });
  }

  async confirm(): Promise<VersionRecord> {
    return this.queue.run(async () => {
      const pending = this.store.pendingVersion();
      if (!pending) throw new RampartError('conflict', 'no change is waiting for confirmation');
      this.stop();
      this.store.sql.transaction(() => {
        const prev = this.store.lastGoodVersion(pending.version);
        this.store.updateVersion(pending.version, { state: 'applied', confirmDeadline: null });
        if (prev && prev.state === 'applied') this.store.updateVersion(prev.version, { state: 'superseded' });
      })();
      this.log.info({ version: pending.version }, 'change confirmed');
      this.events?.emit('config', { type: 'confirmed', version: pending.version, state: 'applied' });
      return this.store.getVersion(pending.version)!;
    });
  }

  /**
   * With a pending change: revert it. Otherwise apply an earlier version's document again as a new version
   * (default: the one before the running version).
   */
  async rollback(opts: { version?: number; author: string; source: VersionSource }): Promise<VersionRecord> {
    const pending = this.store.pendingVersion();
    if (pending && opts.version === undefined) {
      return this.queue.run(async () => {
        const back = await this.revertPendingLocked(pending, `rolled back by ${opts.author}`);
        return back ?? this.store.getVersion(pending.version)!;
      });
    }
    const running = this.store.runningVersion();
    const target = opts.version !== undefined ? this.store.getVersion(opts.version) : running && this.store.lastGoodVersion(running.version);
    if (!target) throw new RampartError('not_found', opts.version !== undefined ? `no version ${opts.version}` : 'no earlier version to roll back to');
    return this.apply({ document: target.document, author: opts.author, source: opts.source, message: `rollback to version ${target.version}` });
  }

  /** What apply would change: config diff, ruleset diff, and nft's verdict on the new script (`nft -c`). */
  async plan(document: unknown): Promise<PlanResult> {
    const config = parseConfigOnce(document);
    const compiled = this.compile(config);
    const running = this.store.runningVersion();
    const runningDoc = running && runningConfig(this.store);
    const before = runningDoc ? this.compile(runningDoc).script : '';
    const check = await this.host.nft(compiled.script, { check: true, allowFailure: true });
    return {
      running: running?.version,
      configChanges: configDiff(running?.document ?? {}, document),
      rulesetDiff: createTwoFilesPatch(running ? `running (version ${running.version})` : 'running (none)', 'candidate', before, compiled.script, '', '', { context: 2 }),
      problems: check.exitCode === 0 ? [] : mapNftErrors(check.stderr, compiled.lineMap),
    };
  }

  private armConfirm(rec: VersionRecord): void {
    this.stop();
    const ms = Math.max(0, Date.parse(rec.confirmDeadline!) - Date.now());
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      this.queue.run(async () => {
        const pending = this.store.pendingVersion();
        if (pending?.version === rec.version) await this.revertPendingLocked(pending, 'not confirmed in time');
      }).catch((err) => this.log.error({ err: String(err) }, 'automatic revert failed'));
    }, ms);
    this.confirmTimer.unref?.();
  }

  /** Revert a pending version to the last good one before it. Caller holds the queue. */
  private async revertPendingLocked(pending: VersionRecord, reason: string): Promise<VersionRecord | undefined> {
    this.stop();
    const good = this.store.lastGoodVersion(pending.version);
    if (good) await this.load(this.compile(parseConfig(good.document)));
    else {
      await this.host.nft(dropTable(TABLE) + dropTable(LISTS_TABLE) + dropTable(LISTS_TABLE_ALT));
      this.listsLoaded = 'none';
      this.listsTable = LISTS_TABLE;
      this.expectedFingerprint = undefined;
      this.kernelSeen = { fingerprint: undefined, at: Date.now() };
    }
    this.store.sql.transaction(() => {
      this.store.updateVersion(pending.version, { state: 'reverted', error: reason, confirmDeadline: null });
      if (good) this.store.updateVersion(good.version, { state: 'applied' });
    })();
    this.log.warn({ version: pending.version, back: good?.version, reason }, 'change reverted');
    this.events?.emit('config', { type: 'reverted', version: pending.version, back: good?.version, reason });
    return good && this.store.getVersion(good.version);
  }

  /**
   * Which lists table runs: the one with hooked chains. A sibling left unhooked (a two-step load that stopped
   * between its steps) is removed.
   */
  private async findListsTable(): Promise<void> {
    const hooked: string[] = [];
    const present: string[] = [];
    for (const t of [LISTS_TABLE, LISTS_TABLE_ALT]) {
      const res = await this.host.run('nft', ['-t', 'list', 'table', 'inet', t], { allowFailure: true });
      if (res.exitCode !== 0) continue;
      present.push(t);
      if (/\bhook\b/.test(res.stdout)) hooked.push(t);
    }
    this.listsTable = hooked[0] ?? LISTS_TABLE;
    const stale = present.filter((t) => t !== this.listsTable);
    if (stale.length) {
      this.log.warn({ tables: stale }, 'removing an unfinished lists table');
      await this.host.nft(stale.map(dropTable).join(''));
    }
  }

  /**
   * The first step of a two-step load, started when the blocklists changed and hold many entries: the sibling lists
   * table is created unhooked (so it changes nothing) while the main table compiles; fill() then renders the
   * elements and fills the sets through the netlink helper (addresses and prefixes), which loads elements several
   * times faster than nft parses them. The second step is the transaction of load(): main table, the rest of the new
   * lists table with its hooks, and the old lists table gone.
   */
  private stage(config: Config): Staging | undefined {
    const from = this.hooks.stageListsFrom ?? 10_000;
    const helper = setelemHelper();
    if (!from || !helper || !config.firewall.blocklists.length) return undefined;
    if (this.listsLoaded !== undefined && this.listsLoaded !== 'none' && this.listsLoaded === listsFingerprint(config)) return undefined;
    if (blocklistEntryCount(config) < from) return undefined;
    const lists = compileListsStaged(config, otherListsTable(this.listsTable));
    const scratch = this.hooks.scratchFile;
    const setupRun = this.host.nft(lists.setup, { allowFailure: true, ...(scratch ? { viaFile: `${scratch}.setup` } : {}) });
    const staging: Staging = {
      lists,
      setupExited: setupRun.catch(() => undefined),
      fill: async () => {
        // The elements go through a file: the helper then needs nothing more from this process (a pipe would wait
        // for the event loop).
        const file = scratch ? `${scratch}.elements` : join(mkdtempSync(join(tmpdir(), 'rampart-lists-')), 'elements');
        try {
          writeFileSync(file, lists.elements, { mode: 0o600 });
          const setup = await setupRun;
          staging.setUp = performance.now();
          if (setup.exitCode !== 0) throw new RampartError('apply_failed', `nft: ${setup.stderr.trim().split('\n')[0]}`);
          const fill = await this.host.run(helper, ['inet', lists.table, file], { allowFailure: true });
          staging.done = performance.now();
          if (fill.exitCode !== 0) throw new RampartError('apply_failed', `loading the blocklist addresses failed: ${fill.stderr.trim().slice(0, 300)}`);
        } catch (err) {
          await staging.setupExited; // so that a drop of the table comes after its setup
          throw RampartError.from(err);
        } finally {
          await rm(scratch ? file : dirname(file), { recursive: true, force: true });
        }
      },
    };
    return staging;
  }

  /** A prepared lists table goes again when the load fails at either step (or before), once its setup is over. */
  private async discard(staging: Staging | undefined): Promise<void> {
    if (!staging) return;
    await staging.setupExited;
    await this.host.nft(dropTable(staging.lists.table), { allowFailure: true });
  }

  /**
   * The second step of a two-step load. nft is given the main table, which it parses while this process renders the
   * lists' elements and the helper loads them, and the rest once the lists are in: the main table's closing brace
   * comes with the rest, so that whatever this process leaves unsaid (it dies, the helper fails) is an unclosed block
   * that nft refuses whole. `meanwhile` runs once nft has the whole script (this thread is free then).
   */
  private async loadStaged(main: string, script: string, staging: Staging, meanwhile?: () => void): Promise<RunResult> {
    const scratch = this.hooks.scratchFile;
    const tx = scratch ? await this.host.nftHeld(script, script.length - main.lastIndexOf('}\n'), scratch) : undefined;
    try {
      await staging.fill();
    } catch (err) {
      await tx?.abort();
      throw err;
    }
    const loading = tx ? tx.release() : this.host.nft(script, { allowFailure: true });
    loading.catch(() => undefined); // the caller awaits it; not unhandled while meanwhile runs
    meanwhile?.();
    return loading;
  }

  /**
   * One transaction. The blocklists table is left out when the kernel already holds exactly the compiled lists
   * (big lists are not reloaded for a rule change). Marker objects of the sibling tables are deleted and re-added in
   * the same transaction: if a sibling vanished behind our back (`nft flush ruleset`), the kernel refuses, and we
   * restore the dynamic blocks and load everything. With `staging`, the new lists table was prepared by stage() and
   * this transaction completes it and drops the old one; if anything fails, the prepared table is removed and the
   * kernel keeps what it had.
   */
  private async load(compiled: CompiledRuleset, staging?: Staging, meanwhile?: () => void): Promise<void> {
    const mainOnly = !staging && this.listsLoaded !== undefined && this.listsLoaded !== 'none' && this.listsLoaded === compiled.lists.fingerprint;
    const markers = [...(mainOnly ? [markerCheck(this.listsTable)] : []), ...(this.hooks.blocksMarker ? [markerCheck(BLOCK_TABLE)] : [])].join('');
    let part: { script: string; lineMap: string[] };
    let res: RunResult;
    if (staging) {
      const finish = staging.lists.finish;
      const main = compiled.main.script;
      part = { script: main + finish.lines.join('\n') + '\n' + dropTable(this.listsTable), lineMap: [...compiled.main.lineMap, ...finish.map, '', ''] };
      try {
        res = await this.loadStaged(main, part.script + markers, staging, meanwhile);
      } catch (err) {
        await this.discard(staging);
        throw err;
      }
    } else {
      if (mainOnly) part = compiled.main;
      // The full script names the lists table LISTS_TABLE: its sibling goes in the same transaction.
      else part = { script: compiled.script + dropTable(LISTS_TABLE_ALT), lineMap: [...compiled.lineMap, '', ''] };
      const loading = this.host.nft(part.script + markers, { allowFailure: true, viaFile: this.hooks.scratchFile });
      meanwhile?.();
      res = await loading;
    }
    if (res.exitCode !== 0) {
      await this.discard(staging);
      const problems = mapNftErrors(res.stderr, part.lineMap);
      const markerLine = part.lineMap.length;
      const onlyMarkers = [...res.stderr.matchAll(/^[^:\n]*:(\d+):/gm)].every((m) => Number(m[1]) > markerLine);
      if (!onlyMarkers || !markers) throw new RampartError('apply_failed', problems[0]?.message ?? 'nft failed', problems);
      this.log.warn('a sibling table vanished behind our back: restoring dynamic blocks and loading everything');
      await this.hooks.restoreBlocks?.();
      const full = await this.host.nft(compiled.script + dropTable(LISTS_TABLE_ALT), { allowFailure: true });
      if (full.exitCode !== 0) {
        const p2 = mapNftErrors(full.stderr, compiled.lineMap);
        throw new RampartError('apply_failed', p2[0]?.message ?? 'nft failed', p2);
      }
      this.listsTable = LISTS_TABLE;
    } else if (staging) this.listsTable = staging.lists.table;
    else if (!mainOnly) this.listsTable = LISTS_TABLE;
    this.listsLoaded = compiled.lists.fingerprint;
    this.expectedFingerprint = compiled.fingerprint;
    this.kernelSeen = { fingerprint: compiled.fingerprint, at: Date.now() };
  }
}
