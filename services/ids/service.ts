/**
 * IdsService: Suricata managed from the configuration document. Generates DATA/suricata (suricata.yaml, rules,
 * threshold and classification files), checks every candidate with `suricata -T` before it is used, runs the
 * engine as a supervised child, reloads rules live over the command socket, tails EVE into the alert store, feeds
 * auto-block and syslog, and (IPS mode) queues forwarded traffic to the engine with bypass or fail-closed.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { AlertQuery, AlertRecord, AlertStore } from '../core/alerts.ts';
import { RampartError } from '../core/errors.ts';
import type { EventBus } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Config } from '../core/schema.ts';
import type { Store } from '../core/store.ts';
import { SerialQueue } from '../core/serial.ts';
import type { BlockRequest } from '../firewall/blocks.ts';
import { projectRoot, type Host } from '../host/exec.ts';
import { AutoBlocker, autoBlockPolicy } from './autoblock.ts';
import { firewallMatch, groupAlerts, type AlertGroup, type FirewallMatch } from './correlate.ts';
import { SuricataEngine, type EngineHealth } from './engine.ts';
import { EveTailer } from './eve.ts';
import { mergeRules, ruleErrors, thresholdConfig, type RuleInfo, type RuleSource } from './rules.ts';
import { RuleUpdater, type FetchedSource } from './update.ts';
import {
  classificationConfig,
  ipsIptablesRules,
  ipsNftScript,
  IPS_TABLE,
  NFT_QUEUE_PROBE,
  renderSuricataYaml,
  suricataLayout,
  suricataSettings,
  type SuricataLayout,
  type SuricataSettings,
} from './suricata-config.ts';
import { SyslogForwarder, type AuditLike } from './syslog.ts';
import { SeriesStore } from '../telemetry/series.ts';

export interface IdsServiceOptions {
  store: Store;
  alerts: AlertStore;
  host: Host;
  dataDir: string;
  log: Logger;
  events: EventBus;
  /** The running configuration (undefined before the first version). */
  config: () => Config | undefined;
  /** The running version's number: the parsed configuration is kept per version. */
  version?: () => number | undefined;
  /** The running version's document, or its configuration when parsed already: with the IDS off and no syslog target, nothing more needs parsing. */
  document?: () => any;
  /** The dynamic blocks (auto-block). */
  block: (requests: BlockRequest[], source: string) => Promise<unknown>;
  /** The suricata binary (default from PATH). */
  binary?: string;
  /** Alert retention (default 90 days, 1,000,000 alerts). */
  retention?: { maxAgeMs: number; maxRows: number };
  /** EVE is rotated once it is this big and fully read (default 64 MiB). */
  eveRotateBytes?: number;
}

export interface ReloadResult {
  ok: boolean;
  /** What happened: reloaded live, (re)started, stopped (disabled), unchanged. */
  action: 'reloaded' | 'started' | 'restarted' | 'stopped' | 'none' | 'rejected';
  rulesLoaded?: number;
  rulesFailed?: number;
  errors?: { line: number; origin: string; message: string }[];
  message?: string;
  problems?: { path: string; message: string }[];
}

/** `rampart ids update`: the sources fetched and the reload of the rule set built from them. */
export interface UpdateResult extends ReloadResult {
  sources: { name: string; rules: number }[];
}

type QueueMethod = 'nft' | 'iptables-nft';

export class IdsService {
  readonly layout: SuricataLayout;
  readonly engine: SuricataEngine;
  readonly tailer: EveTailer;
  readonly autoBlocker: AutoBlocker;
  readonly syslog: SyslogForwarder;
  readonly updater: RuleUpdater;
  /** While an update is being checked, the rule merge reads the fetched sources from staging. */
  private staged = false;
  private updating = false;
  private readonly queue = new SerialQueue();
  private rules: RuleInfo[] = [];
  private settings?: SuricataSettings;
  private yamlText?: string;
  private lastReload?: ReloadResult & { at: number };
  private ruleStats?: { loaded: number; failed: number; skipped?: number };
  private engineStats?: Record<string, unknown>;
  private queueMethod?: QueueMethod;
  private queueInstalled?: QueueMethod;
  private enabled = false;
  private unsubscribe: (() => void)[] = [];
  private housekeeping?: NodeJS.Timeout;
  private cfgCache?: { version: number; cfg?: Config };
  private series?: SeriesStore;
  private queueChecked = false;
  private auditTimer?: NodeJS.Timeout;
  private auditSeen?: number;

  constructor(private readonly opts: IdsServiceOptions) {
    this.layout = suricataLayout(join(opts.dataDir, 'suricata'));
    const log = opts.log;
    this.engine = new SuricataEngine({
      host: opts.host,
      layout: this.layout,
      log: log.child({ part: 'engine' }),
      binary: opts.binary,
      onStarted: () => void this.refreshRuleStats(),
      onCrash: (h) => log.warn({ restarts: h.restarts, detail: h.detail }, 'suricata died: restarting'),
    });
    this.tailer = new EveTailer({ store: opts.store, alerts: opts.alerts, path: this.layout.eve, log: log.child({ part: 'eve' }), onStats: (s, at) => this.onStats(s, at) });
    this.autoBlocker = new AutoBlocker({ store: opts.store, block: opts.block, log: log.child({ part: 'autoblock' }) });
    this.syslog = new SyslogForwarder({ log: log.child({ part: 'syslog' }) });
    this.updater = new RuleUpdater({ suricataDir: join(opts.dataDir, 'suricata'), log: log.child({ part: 'update' }), suricata: opts.binary });
  }

  async start(): Promise<void> {
    mkdirSync(this.layout.rulesDir, { recursive: true, mode: 0o700 });
    this.unsubscribe.push(
      this.opts.events.on('alert', (recs: AlertRecord[]) => {
        this.autoBlocker.onAlerts(recs);
        this.syslog.alerts(recs);
      }),
      this.opts.events.on('config', (e) => {
        if (e.type === 'applied' || e.type === 'reverted') void this.apply().catch((err) => this.opts.log.error({ err: String(err) }, 'ids: applying the configuration failed'));
      }),
      this.opts.events.on('block', (e) => {
        if (e.type === 'removed') this.autoBlocker.forget(e.addresses);
      }),
    );
    // Alerts Suricata wrote while the daemon was down are read first (the tailer resumes at its saved position).
    this.tailer.start();
    this.housekeeping = setInterval(() => this.housekeep(), 60_000);
    this.housekeeping.unref?.();
    this.forwardAudit();
    this.auditTimer = setInterval(() => {
      try {
        this.forwardAudit();
      } catch (err) {
        this.opts.log.error({ err: String(err) }, 'syslog: audit forwarding failed');
      }
    }, 2000);
    this.auditTimer.unref?.();
    await this.apply().catch((err) => this.opts.log.error({ err: String(err) }, 'ids: start failed'));
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.housekeeping) clearInterval(this.housekeeping);
    if (this.auditTimer) clearInterval(this.auditTimer);
    await this.queue.run(async () => {
      await this.engine.stop();
      this.tailer.poll();
      this.tailer.stop();
      await this.autoBlocker.settle();
      this.syslog.close();
    });
  }

  /** Reload: re-read the rule files and apply the running configuration (live rule reload when possible). */
  reload(): Promise<ReloadResult> {
    return this.apply(true);
  }

  /** Bring the engine in line with the running configuration. */
  apply(forceRules = false): Promise<ReloadResult> {
    return this.queue.run(() => this.applyNow(forceRules));
  }

  /** The running configuration, parsed once per version. */
  private currentConfig(): Config | undefined {
    const v = this.opts.version?.();
    if (v !== undefined && this.cfgCache?.version === v) return this.cfgCache.cfg;
    const cfg = this.opts.config();
    if (v !== undefined) this.cfgCache = { version: v, cfg };
    return cfg;
  }

  private async applyNow(forceRules: boolean): Promise<ReloadResult> {
    const raw = this.opts.document?.();
    if (this.opts.document && !raw?.ids?.enabled && !raw?.syslog?.targets?.length && this.engine.status().state === 'stopped' && this.queueChecked && !this.queueInstalled) {
      // Off and staying off: no need to parse a (possibly huge) document.
      this.enabled = false;
      this.syslog.configure([], 'rampart');
      this.autoBlocker.configure({ enabled: false, maxSeverity: 1, ttlSeconds: 1, allow: [], homeNet: [] });
      return this.record({ ok: true, action: 'none' });
    }
    const cfg = this.currentConfig();
    this.syslog.configure(cfg?.syslog.targets ?? [], cfg?.system.hostname ?? 'rampart');
    if (!cfg || !cfg.ids.enabled) {
      this.enabled = false;
      const wasRunning = this.engine.status().state !== 'stopped';
      await this.engine.stop();
      await this.removeQueue();
      this.autoBlocker.configure({ enabled: false, maxSeverity: 1, ttlSeconds: 1, allow: [], homeNet: [] });
      return this.record({ ok: true, action: wasRunning ? 'stopped' : 'none' });
    }
    this.enabled = true;
    const settings = suricataSettings(cfg);
    this.autoBlocker.configure(autoBlockPolicy(cfg, settings.homeNet));
    if (settings.mode === 'ids' && !settings.devices.length) {
      return this.record({ ok: false, action: 'rejected', message: 'ids.interfaces is empty: nothing to watch', problems: [{ path: '/ids/interfaces', message: 'needs at least one interface in IDS mode' }] });
    }
    // The candidate: generated files in their own directory, checked by Suricata before anything live changes.
    const merged = mergeRules(cfg.ids, this.readRuleFiles(cfg));
    const threshold = thresholdConfig(cfg.ids, (ref) => (Object.hasOwn(cfg.objects.addresses, ref) ? cfg.objects.addresses[ref] : [ref]));
    const problems = [...merged.problems, ...threshold.problems];
    if (problems.length) return this.record({ ok: false, action: 'rejected', message: 'the IDS rules are invalid; the running rules stay active', problems });
    const base = readFileSync(join(projectRoot(), 'system', 'suricata', 'base.yaml'), 'utf8');
    const cand = { ...suricataLayout(this.layout.candidateDir) };
    cand.socket = this.layout.socket;
    cand.eve = this.layout.eve;
    rmSync(cand.dir, { recursive: true, force: true });
    mkdirSync(cand.rulesDir, { recursive: true, mode: 0o700 });
    const candYaml = renderSuricataYaml(base, settings, cand);
    writeFileSync(cand.yaml, candYaml);
    writeFileSync(join(cand.rulesDir, cand.rulesFile), merged.text);
    writeFileSync(cand.thresholdFile, threshold.text);
    writeFileSync(cand.classificationFile, classificationConfig());
    writeFileSync(cand.referenceFile, '');
    const test = await this.engine.test(cand.yaml, cand.dir);
    if (!test.ok) {
      const errors = ruleErrors(test.output, merged, cand.rulesFile);
      const message = errors.length
        ? `suricata rejected ${errors.length} rule(s); the running rules stay active: ${errors.map((e) => `line ${e.line} (${e.origin})`).join(', ')}`
        : `suricata rejected the configuration: ${lastErrors(test.output)}`;
      this.opts.log.warn({ errors, output: lastErrors(test.output) }, 'ids: candidate rejected');
      return this.record({ ok: false, action: 'rejected', errors, message });
    }
    // Accepted: make it live.
    const liveYaml = renderSuricataYaml(base, settings, this.layout);
    const yamlChanged = liveYaml !== this.yamlText || !existsSync(this.layout.yaml);
    const rulesPath = join(this.layout.rulesDir, this.layout.rulesFile);
    const rulesChanged = forceRules || !existsSync(rulesPath) || readFileSync(rulesPath, 'utf8') !== merged.text || readFileOr(this.layout.thresholdFile) !== threshold.text;
    atomicWrite(rulesPath, merged.text);
    atomicWrite(this.layout.thresholdFile, threshold.text);
    atomicWrite(this.layout.classificationFile, classificationConfig());
    atomicWrite(this.layout.referenceFile, '');
    atomicWrite(this.layout.yaml, liveYaml);
    this.rules = merged.rules;
    const running = this.engine.status().state === 'running';
    let result: ReloadResult;
    if (running && !yamlChanged && this.settings) {
      if (!rulesChanged) result = { ok: true, action: 'none' };
      else {
        await this.liveReload();
        result = { ok: true, action: 'reloaded' };
      }
    } else {
      const action = running || this.engine.status().state !== 'stopped' ? 'restarted' : 'started';
      await this.engine.stop();
      this.yamlText = liveYaml;
      this.settings = settings;
      try {
        await this.engine.start(settings.mode === 'ids' ? ['--af-packet'] : ['-q', String(settings.queue)]);
      } catch (err) {
        return this.record({ ok: false, action: 'rejected', message: RampartError.from(err).message });
      }
      result = { ok: true, action };
    }
    this.yamlText = liveYaml;
    this.settings = settings;
    if (settings.mode === 'ips') await this.installQueue(settings);
    else await this.removeQueue();
    await this.refreshRuleStats();
    return this.record({ ...result, rulesLoaded: this.ruleStats?.loaded, rulesFailed: this.ruleStats?.failed });
  }

  private record(r: ReloadResult): ReloadResult {
    this.lastReload = { ...r, at: Date.now() };
    if (!r.ok) this.opts.log.warn({ message: r.message, problems: r.problems, errors: r.errors }, 'ids: configuration not applied');
    return r;
  }

  private readRuleFiles(cfg: Config): RuleSource[] {
    return [...this.readConfiguredFiles(cfg), ...this.updater.ruleSources(cfg.ids.sources, this.staged)];
  }

  /**
   * Fetch the rule sources (suricata-update) and load the rule set built from them like a reload: `suricata -T`
   * first, then live. Anything failing (suricata-update missing, a source unreachable or broken, a rule Suricata
   * refuses) keeps the running rules and the rules of the last good update, and says why.
   */
  async update(): Promise<UpdateResult> {
    if (this.updating) throw new RampartError('conflict', 'a rule update is already running');
    this.updating = true;
    try {
      const cfg = this.currentConfig();
      if (!cfg?.ids.enabled) throw new RampartError('unavailable', 'the IDS is disabled (ids.enabled): nothing to update');
      // Downloads run outside the queue: configuration changes are not held up by a slow source.
      const fetched = await this.updater.fetch(cfg.ids.sources, { suricataConf: existsSync(this.layout.yaml) ? this.layout.yaml : undefined });
      return await this.queue.run(() => this.loadUpdate(fetched));
    } finally {
      this.updating = false;
    }
  }

  /** Load the rule set with the fetched sources from staging (`suricata -T` first); promote them when it loads. */
  private async loadUpdate(fetched: FetchedSource[]): Promise<UpdateResult> {
    const cfg = this.currentConfig();
    if (!cfg?.ids.enabled) {
      this.updater.discard();
      throw new RampartError('unavailable', 'the IDS was disabled during the update: nothing loaded');
    }
    this.staged = true;
    let r: ReloadResult;
    try {
      r = await this.applyNow(true);
    } catch (err) {
      this.updater.discard();
      throw err;
    } finally {
      this.staged = false;
    }
    if (!r.ok) {
      this.updater.discard();
      const problems = r.problems?.length
        ? r.problems
        : (r.errors ?? []).map((e) => {
            const i = cfg.ids.sources.findIndex((s) => e.origin.startsWith(`source ${s.name}:`));
            const path = i >= 0 ? `/ids/sources/${i}` : e.origin.startsWith('localRules/') ? `/ids/${e.origin}` : '/ids/ruleFiles';
            return { path, message: `rules file line ${e.line} (${e.origin}): ${e.message}` };
          });
      throw new RampartError('apply_failed', `rule update not loaded; the running rules stay active: ${r.message ?? 'rejected'}`, problems);
    }
    this.updater.promote(fetched);
    return { ...r, sources: fetched.map((f) => ({ name: f.name, rules: f.rules })) };
  }

  private readConfiguredFiles(cfg: Config): RuleSource[] {
    return cfg.ids.ruleFiles.map((p) => {
      const path = isAbsolute(p) ? p : join(this.layout.dir, p);
      try {
        if (statSync(path).size > 256 * 1024 * 1024) return { path: p, error: 'larger than 256 MiB' };
        return { path: p, text: readFileSync(path, 'utf8') };
      } catch (err) {
        return { path: p, error: (err as NodeJS.ErrnoException).code ?? String(err) };
      }
    });
  }

  /** Non-blocking reload over the socket, then wait until the engine reports the new load time. */
  private async liveReload(): Promise<void> {
    const before = await this.reloadTime();
    await this.engine.command('ruleset-reload-nonblocking');
    const end = Date.now() + 120_000;
    while (Date.now() < end) {
      const now = await this.reloadTime().catch(() => before);
      if (now !== before) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new RampartError('system', 'suricata did not finish reloading its rules within 120 s');
  }

  private async reloadTime(): Promise<string | undefined> {
    const r = await this.engine.command('ruleset-reload-time');
    const m = r.message as { last_reload?: string }[] | undefined;
    return Array.isArray(m) ? m[0]?.last_reload : undefined;
  }

  private async refreshRuleStats(): Promise<void> {
    try {
      const r = await this.engine.command('ruleset-stats');
      const m = (r.message as any[])?.[0];
      if (m) this.ruleStats = { loaded: m.rules_loaded, failed: m.rules_failed, skipped: m.rules_skipped };
    } catch {
      /* engine not up */
    }
  }

  /** Inline IPS: queue forwarded traffic to the engine, with nft's queue statement or the xt NFQUEUE target. */
  private async installQueue(s: SuricataSettings): Promise<void> {
    const host = this.opts.host;
    if (!this.queueMethod) {
      const probe = await host.nft(NFT_QUEUE_PROBE, { check: true, allowFailure: true });
      this.queueMethod = probe.exitCode === 0 ? 'nft' : 'iptables-nft';
      this.opts.log.info({ method: this.queueMethod }, 'ids: inline queue method');
    }
    if (this.queueInstalled && this.queueInstalled !== this.queueMethod) await this.removeQueue();
    if (this.queueMethod === 'nft') await host.nft(ipsNftScript(s.queue, s.failOpen));
    else {
      await host.run('iptables-nft-restore', [], { input: ipsIptablesRules(s.queue, s.failOpen, 4) });
      await host.run('ip6tables-nft-restore', [], { input: ipsIptablesRules(s.queue, s.failOpen, 6) });
    }
    this.queueInstalled = this.queueMethod;
  }

  /** Remove the inline queue: the one this process installed, and once at start whatever an earlier run left. */
  private async removeQueue(): Promise<void> {
    if (this.queueChecked && !this.queueInstalled) return;
    const host = this.opts.host;
    // `list tables` is cheap (no sets or elements are read).
    const tables = (await host.run('nft', ['list', 'tables'], { allowFailure: true })).stdout;
    if (new RegExp(`^table inet ${IPS_TABLE}$`, 'm').test(tables)) await host.nft(`delete table inet ${IPS_TABLE}\n`, { allowFailure: true });
    for (const fam of ['ip', 'ip6']) {
      if (!new RegExp(`^table ${fam} security$`, 'm').test(tables)) continue;
      // The security table is Rampart's only when it holds the queue rule it wrote.
      const list = await host.run('nft', ['list', 'table', fam, 'security'], { allowFailure: true });
      if (list.exitCode === 0 && list.stdout.includes('rampart-ips')) await host.nft(`delete table ${fam} security\n`, { allowFailure: true });
    }
    this.queueInstalled = undefined;
    this.queueChecked = true;
  }

  /** Audit entries recorded since the last look go to syslog (from the current end at start: no history). */
  private forwardAudit(): void {
    const store = this.opts.store;
    if (!this.syslog.active || this.auditSeen === undefined) {
      // Without a target, the position follows the log (nothing old is sent once a target is configured).
      this.auditSeen = (store.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit').get() as { id: number }).id;
      return;
    }
    const rows = store.prepare('SELECT id, at, username, role, source, action, target, result, detail FROM audit WHERE id > ? ORDER BY id LIMIT 1000').all(this.auditSeen) as AuditLike[];
    if (!rows.length) return;
    this.auditSeen = rows[rows.length - 1].id;
    this.syslog.audit(rows);
  }

  /**
   * Engine counters from EVE stats events: kept for `status` and written to the telemetry series (`ids.*`), where
   * the API's /telemetry, rollups and retention take them like any other metric.
   */
  private onStats(s: any, at: number): void {
    const now = summariseStats(s);
    this.engineStats = now;
    const points = Object.entries(now)
      .filter(([k, v]) => k !== 'uptime' && typeof v === 'number')
      .map(([k, v]) => ({ metric: `ids.${k}`, value: v as number }));
    if (!points.length) return;
    try {
      (this.series ??= new SeriesStore(this.opts.store)).record(at, points);
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'ids: engine counters not recorded');
    }
  }

  private housekeep(): void {
    try {
      const r = this.opts.retention ?? { maxAgeMs: 90 * 24 * 3600_000, maxRows: 1_000_000 };
      const n = this.opts.alerts.purge(r.maxAgeMs, r.maxRows);
      if (n) this.opts.log.info({ removed: n }, 'alert retention');
      void this.rotateEve();
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'ids housekeeping failed');
    }
  }

  /** Rotate eve.json once it is big and fully read: rename, then the engine reopens its log files. */
  async rotateEve(force = false): Promise<boolean> {
    const limit = this.opts.eveRotateBytes ?? 64 * 1024 * 1024;
    let st;
    try {
      st = statSync(this.layout.eve);
    } catch {
      return false;
    }
    this.tailer.poll();
    const pos = this.tailer.position();
    if (!force && (st.size < limit || !pos || pos.inode !== st.ino || pos.offset < st.size)) return false;
    if (this.engine.status().state !== 'running') return false;
    renameSync(this.layout.eve, `${this.layout.eve}.1`);
    await this.engine.command('reopen-log-files');
    this.tailer.poll();
    return true;
  }

  status(): Record<string, unknown> {
    const engine: EngineHealth = this.engine.status();
    const state = !this.enabled ? 'disabled' : this.lastReload && !this.lastReload.ok && engine.state !== 'running' ? 'error' : engine.state;
    return {
      state,
      ...(this.settings ? { mode: this.settings.mode, interfaces: this.settings.devices, homeNet: this.settings.homeNet } : {}),
      engine,
      rules: { configured: this.rules.filter((r) => r.enabled).length, ...(this.ruleStats ?? {}) },
      ...(this.lastReload ? { lastReload: this.lastReload } : {}),
      eve: { ...this.tailer.counters, position: this.tailer.position() ?? null },
      alerts: this.opts.alerts.countsBySeverity(),
      autoBlock: this.autoBlocker.counters,
      ...(this.queueInstalled ? { inline: { method: this.queueInstalled, queue: this.settings?.queue } } : {}),
      ...(this.enabled && this.currentConfig()?.ids.sources.length ? { update: this.updater.status(this.currentConfig()!.ids.sources) } : {}),
      ...(this.engineStats ? { engineStats: this.engineStats } : {}),
      syslog: this.syslog.counters,
    };
  }

  /** Alerts from the store, each IDS alert with the firewall rule that lets its flow in under the running config. */
  listAlerts(q: AlertQuery): (AlertRecord & { firewall?: FirewallMatch })[] {
    const list = this.opts.alerts.list(q);
    const cfg = this.currentConfig();
    if (!cfg) return list;
    return list.map((a) => {
      const m = firewallMatch(cfg, a);
      return m ? { ...a, firewall: m } : a;
    });
  }

  /** Alerts grouped by signature and source within windows of `windowMs`. */
  groupAlerts(q: { since?: number; windowMs: number; limit?: number }): AlertGroup[] {
    return groupAlerts(this.opts.store, q);
  }

  /** A compact health summary (for `rampart stats`). */
  health(): { state: string; alerts: number; autoBlocked: number; restarts: number; kernelDrops?: number } {
    const s = this.status() as { state: string };
    const counts = this.opts.alerts.countsBySeverity();
    const drops = this.engineStats?.kernel_drops;
    return {
      state: s.state,
      alerts: counts[1] + counts[2] + counts[3] + counts[4],
      autoBlocked: this.autoBlocker.counters.blocked,
      restarts: this.engine.status().restarts,
      ...(typeof drops === 'number' ? { kernelDrops: drops } : {}),
    };
  }

  /** The merged rule set: every rule with its SID, state, action and origin. */
  listRules(): RuleInfo[] {
    return this.rules;
  }
}

function readFileOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function atomicWrite(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}

function lastErrors(output: string): string {
  const errs = output.split('\n').filter((l) => /^E:|rror/.test(l));
  return (errs.length ? errs : output.split('\n')).slice(-3).join(' | ').slice(0, 1000);
}

/** The engine counters worth keeping from a stats event. */
function summariseStats(s: any): Record<string, unknown> {
  return {
    uptime: s?.uptime,
    packets: s?.decoder?.pkts,
    kernel_packets: s?.capture?.kernel_packets,
    kernel_drops: s?.capture?.kernel_drops,
    alerts: s?.detect?.alert,
    flow_memuse: s?.flow?.memuse,
    ips_accepted: s?.ips?.accepted,
    ips_blocked: s?.ips?.blocked,
  };
}
