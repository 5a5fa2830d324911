/**
 * rampartd: the composition root. Builds the services in order, starts them, and stops them in reverse order.
 * Constructors do no I/O; start() does.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { RampartError } from './core/errors.ts';
import { EventBus } from './core/events.ts';
import { AlertStore, type AlertInput } from './core/alerts.ts';
import { knownRunningConfig, parseConfigOnce, runningConfig } from './core/config-cache.ts';
import { MetricsEndpoint, prometheusText } from './telemetry/prometheus.ts';
import type { AnomalyEvent } from './telemetry/anomaly.ts';
import type { Logger } from './core/log.ts';
import { Store, type VersionSource } from './core/store.ts';
import { parseConfig, validateConfig } from './core/validate.ts';
import { Host } from './host/exec.ts';
import { SystemdNotifier } from './host/notify.ts';
import { Firewall } from './firewall/apply.ts';
import { Blocks } from './firewall/blocks.ts';
import { NEW_CONNECTIONS_COUNTER, TABLE } from './firewall/compile.ts';
import { configDiff } from './firewall/config-diff.ts';
import { listCounters, readCounters, ruleCounters } from './firewall/counters.ts';
import { tracePacket, type TraceRequest } from './firewall/trace.ts';
import { ControlServer, type Handler } from './control.ts';
import { Auth } from './api/auth.ts';
import { AuditLog } from './api/audit.ts';
import { ApiServer, parseListen } from './api/server.ts';
import { serviceBackend } from './api/app.ts';
import { TelemetryService, parseTelemetryRequest } from './telemetry/service.ts';
import { SnmpService } from './snmp/service.ts';
import { SyncService } from './sync/service.ts';
import { NetworkService } from './network/service.ts';
import { IdsService } from './ids/service.ts';
import { imageRelease } from './core/release.ts';
import { parseAlertQuery, parseGroupQuery, reloadError } from './api/routes/ids.ts';
import type { ApplyRequest } from './firewall/apply.ts';
import type { Config } from './core/schema.ts';
import { restoreSecrets } from './core/secrets.ts';

export interface DaemonOptions {
  dataDir: string;
  netns?: string;
  /** A configuration document that seeds version 1 when the journal is empty. */
  seed?: unknown;
  log: Logger;
  /** How often the firewall watchdog compares the kernel with the running version (default 60 s). */
  watchIntervalMs?: number;
  /** HOST:PORT of the HTTP API (HTTPS unless HOST is a loopback address); no API without it. */
  listen?: string;
  /** Telemetry interval (default: the running config's `telemetry.intervalSeconds`, else 10 s). */
  telemetryIntervalMs?: number;
}

const startedAt = Date.now();

/**
 * The configuration document of a control request: `document` (parsed), or `documentText`, the JSON text as the
 * CLI read it from its file, parsed here once instead of in both processes (a big config is megabytes).
 */
function documentParam(p: { document?: unknown; documentText?: unknown }): unknown {
  if (typeof p.documentText !== 'string') return p.document;
  try {
    return JSON.parse(p.documentText);
  } catch (err) {
    throw new RampartError('invalid_input', `the configuration is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

/** The addresses of a list given as text: one a line, blank lines and `#` comments skipped. */
function addressLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const a = line.trim();
    if (a && a[0] !== '#') out.push(a);
  }
  return out;
}

/** The alert record of a telemetry anomaly; its id is stable for the event (metric and start). */
function anomalyAlert(a: AnomalyEvent): AlertInput {
  return {
    id: `anomaly:${a.metric}:${a.start}`,
    kind: 'anomaly',
    at: a.start,
    severity: 2,
    signature: `${a.metric} ${a.direction === 'up' ? 'above' : 'below'} its baseline (${a.peak.toPrecision(3)} vs ${a.baseline.toPrecision(3)})`,
    category: 'telemetry anomaly',
    detail: { metric: a.metric, start: a.start, peak: a.peak, baseline: a.baseline, score: a.score, direction: a.direction },
  };
}
const AUDIT_RETENTION_MS = 365 * 24 * 3600_000;
const STATUS_CACHE_MS = 1000;

export class Daemon {
  readonly store: Store;
  readonly host: Host;
  readonly events: EventBus;
  /** IDS alerts and telemetry anomalies (services/core/alerts.ts). */
  readonly alerts: AlertStore;
  readonly metrics: MetricsEndpoint;
  readonly firewall: Firewall;
  readonly blocks: Blocks;
  readonly control: ControlServer;
  readonly audit: AuditLog;
  readonly auth: Auth;
  readonly api?: ApiServer;
  readonly telemetry: TelemetryService;
  /** The SNMP agent and notifications (SPEC §5): started after telemetry, stopped before it. */
  readonly snmp: SnmpService;
  /** The MSSP channel (SPEC §6): started last, stopped first. */
  readonly sync: SyncService;
  /** Links, addresses, routes, DHCP client and LAN services (only when the document says network.manage). */
  readonly network: NetworkService;
  /** Suricata IDS/IPS: engine, rules, EVE ingest, auto-block, syslog (started after the firewall, stopped before). */
  readonly ids: IdsService;
  /** systemd readiness, status and watchdog notifications (nothing without NOTIFY_SOCKET). */
  readonly notifier: SystemdNotifier;
  private readonly log: Logger;
  private housekeeping?: NodeJS.Timeout;
  private statusCache?: { at: number; value: Record<string, unknown> };

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.log;
    this.notifier = new SystemdNotifier(opts.log.child({ svc: 'notify' }));
    this.store = new Store(join(opts.dataDir, 'rampart.db'));
    this.host = new Host(opts.netns);
    this.events = new EventBus(opts.log);
    this.alerts = new AlertStore(this.store, this.events);
    // An anomaly that opens is an alert like any other: it reaches the API, SNMP, syslog and the MSSP the same way.
    this.events.on('anomaly', (a) => {
      if (a.type === 'opened') this.alerts.add([anomalyAlert(a)]);
    });
    this.blocks = new Blocks(this.store, this.host, opts.log.child({ svc: 'blocks' }), this.events);
    this.firewall = new Firewall(this.store, this.host, opts.log.child({ svc: 'firewall' }), this.events, {
      restoreBlocks: () => this.blocks.restoreNow(),
      blocksMarker: true,
      scratchFile: join(opts.dataDir, 'apply.nft'),
      // Anti-lockout keeps the port the API really listens on reachable (443 when there is no listener).
      env: { apiPort: opts.listen ? parseListen(opts.listen).port : undefined },
    });
    this.telemetry = new TelemetryService({
      store: this.store,
      netns: opts.netns,
      dataDir: opts.dataDir,
      log: opts.log.child({ svc: 'telemetry' }),
      events: this.events,
      // Per-rule series (rule.<id>.packets_rate ...) from the main table's named counters, read with the rest of
      // the kernel's figures in one netlink reading when the reader is built.
      counterTables: [TABLE],
      newConnections: { table: TABLE, counter: NEW_CONNECTIONS_COUNTER },
      rules: async (tables) => {
        const refs = this.counterRefs();
        if (!refs) return {};
        return ruleCounters(refs, (tables ?? (await listCounters(this.host, [TABLE]))).get(TABLE));
      },
    });
    this.network = new NetworkService(this.host, opts.dataDir, opts.log.child({ svc: 'network' }));
    this.ids = new IdsService({
      store: this.store,
      alerts: this.alerts,
      host: this.host,
      dataDir: opts.dataDir,
      log: opts.log.child({ svc: 'ids' }),
      events: this.events,
      config: () => this.runningConfig(),
      version: () => this.store.runningVersionMeta()?.version,
      document: () => knownRunningConfig(this.store) ?? this.store.runningVersion()?.document,
      block: (requests, source) => this.blocks.block(requests, source),
    });
    // The network follows the running version through confirms, reverts and rollbacks.
    this.events.on('config', () => this.network.follow(this.runningConfig()));
    this.sync = new SyncService({
      store: this.store,
      dataDir: opts.dataDir,
      // MSSP pushes go the same way as local applies (network part included).
      firewall: { apply: (r) => this.applyConfig(r), confirm: () => this.firewall.confirm(), rollback: (o) => this.rollbackConfig(o) },
      blocks: this.blocks,
      events: this.events,
      alerts: this.alerts,
      log: opts.log.child({ svc: 'sync' }),
    });
    const dropStatus = () => (this.statusCache = undefined);
    this.events.on('config', dropStatus);
    this.events.on('block', dropStatus);
    this.events.on('sync', dropStatus);
    this.audit = new AuditLog(this.store, opts.log.child({ svc: 'audit' }));
    this.auth = new Auth(this.store, opts.log.child({ svc: 'auth' }), { audit: this.audit });
    const handlers = this.handlers();
    this.snmp = new SnmpService({
      store: this.store,
      events: this.events,
      telemetry: this.telemetry,
      netns: opts.netns,
      log: opts.log.child({ svc: 'snmp' }),
      refreshMs: opts.telemetryIntervalMs,
      ruleCounters: () => this.telemetry.latestSample()?.rules?.counters,
      sync: () => {
        const s = this.sync.status() as { state?: unknown; outbox?: { rows?: unknown } };
        return { state: typeof s.state === 'string' ? s.state : undefined, outbox: Number(s.outbox?.rows) };
      },
    });
    // Prometheus exposition (GET /metrics), on when the running config names a token.
    // Figures of the latest telemetry sample (interfaces and per-rule counters of the same reading).
    this.metrics = new MetricsEndpoint(async () =>
      prometheusText({
        sample: this.telemetry.latestSample(),
        configVersion: this.store.runningVersionMeta()?.version ?? null,
        blocks: this.store.countBlocks(),
        alerts: Object.entries(this.alerts.countsBySeverity()).map(([severity, count]) => ({ kind: 'all', severity: Number(severity), count })),
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      }),
    );
    this.events.on('config', () => this.metrics.configure(this.runningConfig()?.telemetry.prometheus));
    this.control = new ControlServer(join(opts.dataDir, 'rampart.sock'), handlers, opts.log.child({ svc: 'control' }));
    if (opts.listen) {
      this.api = new ApiServer({
        listen: opts.listen,
        dataDir: opts.dataDir,
        log: opts.log.child({ svc: 'api' }),
        deps: {
          backend: serviceBackend({ store: this.store, firewall: this.firewall, apply: (r) => this.applyConfig(r), rollback: (r) => this.rollbackConfig(r), blocks: this.blocks, status: () => this.status({ live: false }), counters: async () => handlers.counters({}, { peer: 'api' }), telemetry: this.telemetry, stats: async () => handlers.stats({}, { peer: 'api' }) }),
          auth: this.auth,
          audit: this.audit,
          events: this.events,
          log: opts.log.child({ svc: 'api' }),
          network: this.network,
          metrics: this.metrics,
          ids: { alerts: (q) => this.ids.listAlerts(q), groups: (q) => this.ids.groupAlerts(q), status: () => this.ids.status(), rules: () => this.ids.listRules(), reload: () => this.ids.reload(), update: () => this.ids.update() },
          sync: { status: () => this.sync.status(), enroll: (bundle) => this.sync.enroll(bundle) },
        },
      });
    }
  }

  async start(): Promise<void> {
    this.notifier.start();
    this.notifier.status('starting');
    mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    this.store.open();
    const admin = await this.auth.ensureAdmin(process.env.RAMPART_ADMIN_PASSWORD || undefined);
    // Printed once, on stdout only (never into the log).
    if (admin.created && admin.password) process.stdout.write(`rampart: first-login user admin, password: ${admin.password}\n`);
    await this.blocks.start(this.opts.watchIntervalMs ?? 60_000);
    // The network first: the firewall's ruleset may name addresses that only the network applies. A change left
    // pending by a crash is not applied here: the firewall reverts it next, and the network follows that revert.
    await this.network.start(this.store.pendingVersion() ? undefined : this.runningConfig());
    await this.firewall.start();
    if (this.opts.seed !== undefined && this.store.listVersions(1).length === 0) {
      const v = await this.applyConfig({ document: this.opts.seed, author: 'system', source: 'local', message: 'initial configuration' });
      this.log.info({ version: v.version }, 'seeded the first version');
    }
    this.firewall.watch(this.opts.watchIntervalMs ?? 60_000);
    await this.ids.start();
    this.startTelemetry();
    this.metrics.configure(this.runningConfig()?.telemetry.prometheus);
    await this.snmp.start();
    // Housekeeping: expired sessions, and audit entries past their retention (one year).
    this.housekeeping = setInterval(() => {
      this.auth.purgeSessions();
      this.audit.purge(AUDIT_RETENTION_MS);
    }, 10 * 60_000);
    this.housekeeping.unref();
    await this.control.start();
    try {
      await this.api?.start();
    } catch (err) {
      await this.stop(5000);
      throw err;
    }
    await this.sync.start();
    this.log.info({ dataDir: this.opts.dataDir, netns: this.opts.netns ?? null }, 'rampartd started');
    this.notifier.ready(`running configuration version ${this.store.runningVersionMeta()?.version ?? 'none'}`);
  }

  /** Stop in reverse order; whatever is left after the deadline is abandoned. */
  async stop(deadlineMs = 10_000): Promise<void> {
    this.notifier.stop();
    const work = (async () => {
      if (this.housekeeping) clearInterval(this.housekeeping);
      await this.sync.stop();
      await this.api?.stop(Math.min(3000, deadlineMs));
      await this.control.stop();
      await this.snmp.stop();
      this.telemetry.stop();
      await this.network.stop();
      await this.ids.stop();
      this.firewall.unwatch();
      this.firewall.stop();
      this.blocks.stop();
    })();
    await Promise.race([work, new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    this.store.close();
    this.log.info('rampartd stopped');
  }

  /** The running version's document, parsed (undefined when there is none or it no longer parses). */
  private runningConfig(): Config | undefined {
    // Several services ask after each change; a big document is parsed and validated once per version.
    return runningConfig(this.store);
  }

  /** Which named counter belongs to which rule, for the running version (from the compilation the apply made). */
  private counterRefs(): ReturnType<Firewall['compile']>['counters'] | undefined {
    const config = this.runningConfig();
    return config && this.firewall.countersOf(config);
  }

  /** Apply a document: its network part first, then the firewall; a failure of either leaves the running version. */
  private applyConfig(req: ApplyRequest) {
    if (this.store.pendingVersion()) return this.firewall.apply(req); // refused there: a change awaits confirmation
    return this.network.around(req.document, () => this.runningConfig(), () => this.firewall.apply(req));
  }

  /** Roll back, bringing the network to the target version before the firewall. */
  private rollbackConfig(opts: { version?: number; author: string; source: VersionSource }) {
    const pending = this.store.pendingVersion();
    const running = this.store.runningVersion();
    const base = pending ?? running;
    const target = opts.version !== undefined ? this.store.getVersion(opts.version) : base && this.store.lastGoodVersion(base.version);
    if (!target || (pending && opts.version !== undefined)) return this.firewall.rollback(opts);
    return this.network.around(target.document, () => this.runningConfig(), () => this.firewall.rollback(opts));
  }

  private startTelemetry(): void {
    let cfg: any;
    try {
      const running = this.store.runningVersion();
      cfg = running ? runningConfig(this.store)?.telemetry : undefined;
    } catch (err) {
      this.log.warn({ err: String(err) }, 'telemetry: running configuration unreadable, defaults used');
    }
    const ms = this.opts.telemetryIntervalMs ?? (cfg?.intervalSeconds ?? 10) * 1000;
    this.telemetry.start(ms, { retention: cfg?.retention, anomaly: cfg?.anomaly });
  }

  /**
   * Versions and the health of each subsystem. `live` looks at the kernel now (the CLI); otherwise the firewall's
   * state is the one seen at its last look (after every load and each watchdog round), which keeps the API's
   * /status cheap.
   */
  async status(opts: { live?: boolean } = {}): Promise<Record<string, unknown>> {
    // The API's /status is polled by dashboards and monitoring: serve it from a short-lived copy, dropped on every
    // config or block event so it is never stale about a change.
    if (opts.live === false && this.statusCache && Date.now() - this.statusCache.at < STATUS_CACHE_MS) return this.statusCache.value;
    const value = await this.computeStatus(opts);
    if (opts.live === false) this.statusCache = { at: Date.now(), value };
    return value;
  }

  private async computeStatus(opts: { live?: boolean }): Promise<Record<string, unknown>> {
    const running = this.store.runningVersionMeta();
    const pending = this.store.pendingVersionMeta();
    let firewall: Record<string, unknown>;
    try {
      if (opts.live !== false) await this.firewall.checkKernel();
      firewall = {
        ...this.firewall.health(),
        table: `inet ${TABLE}`,
        ...(this.firewall.startError ? { startError: this.firewall.startError } : {}),
      };
    } catch (err) {
      firewall = { state: 'error', detail: (err as Error).message };
    }
    const notYet = { state: 'not_available', detail: 'not part of this build yet' };
    return {
      version: running?.version ?? null,
      running: running ? { version: running.version, state: running.state, appliedAt: running.appliedAt, hash: running.hash } : null,
      pending: pending ? { version: pending.version, confirmDeadline: pending.confirmDeadline } : null,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      netns: this.opts.netns ?? null,
      firewall,
      blocks: { count: this.store.countBlocks() },
      network: await this.network.status(),
      ids: this.ids.status(),
      sync: this.sync.status(),
      snmp: this.snmp.status(),
      image: imageRelease() ?? null,
    };
  }

  private handlers(): Record<string, Handler> {
    const author = (p: any) => (typeof p.author === 'string' && p.author ? p.author.slice(0, 64) : 'root');
    const source = (p: any): VersionSource => (p.source === 'api' || p.source === 'mssp' ? p.source : 'local');
    const version = (v: unknown, what = 'version') => {
      if (!Number.isInteger(v) || (v as number) < 1) throw RampartError.invalid([{ path: `/${what}`, message: 'must be a version number' }]);
      const rec = this.store.getVersion(v as number);
      if (!rec) throw new RampartError('not_found', `no version ${v}`);
      return rec;
    };
    /** Control-socket mutations go to the audit log too (source 'console': root on the appliance). */
    const audited =
      (action: string, target: (p: any, result?: any) => string, fn: Handler): Handler =>
      async (p, ctx) => {
        const entry = { username: author(p), role: 'root', source: 'console', action };
        try {
          const result = await fn(p, ctx);
          this.audit.record({ ...entry, target: target(p, result), result: 'ok' });
          return result;
        } catch (err) {
          this.audit.record({ ...entry, target: target(p), result: 'failed', detail: RampartError.from(err).message });
          throw err;
        }
      };
    /** "(secret)" in a document keeps the running version's secret (services/core/secrets.ts); none there: refused. */
    const keptSecrets = (doc: unknown) => {
      const r = restoreSecrets(doc, () => this.store.runningVersion()?.document);
      if (r.problems.length) throw RampartError.invalid(r.problems, 'secrets not set');
      return r.document;
    };
    const versionTarget = (p: any, r?: any) => (r?.version ? `version ${r.version}` : p.version !== undefined ? `version ${p.version}` : '');
    const blockTarget = (p: any, r?: any) =>
      Array.isArray(p.blocks) ? `${p.blocks.length} address(es)` : Array.isArray(p.addresses) ? `${p.addresses.length} address(es)` : typeof p.addressText === 'string' ? `${r?.blocked ?? r?.length ?? 'a list of'} address(es)` : String(p.address ?? '');
    const handlers: Record<string, Handler> = {
      status: () => this.status(),
      validate: (p) => validateConfig(p.document),
      apply: audited('config.apply', versionTarget, (p) => {
        if (p.confirmSeconds !== undefined && (!Number.isInteger(p.confirmSeconds) || p.confirmSeconds < 1 || p.confirmSeconds > 86_400)) {
          throw RampartError.invalid([{ path: '/confirmSeconds', message: 'must be an integer from 1 to 86400' }]);
        }
        if (p.message !== undefined && (typeof p.message !== 'string' || p.message.length > 1024)) {
          throw RampartError.invalid([{ path: '/message', message: 'must be a string of at most 1024 characters' }]);
        }
        return this.applyConfig({ document: keptSecrets(documentParam(p)), author: author(p), source: source(p), message: p.message, confirmSeconds: p.confirmSeconds });
      }),
      confirm: audited('config.confirm', versionTarget, () => this.firewall.confirm()),
      rollback: audited('config.rollback', versionTarget, (p) =>
        this.rollbackConfig({ version: p.version === undefined ? undefined : version(p.version).version, author: author(p), source: source(p) }),
      ),
      plan: async (p) => {
        const document = keptSecrets(documentParam(p));
        const plan = await this.firewall.plan(document);
        // The network operations apply would run (and the devices it would miss), beside the ruleset diff.
        const network = await this.network.plan(parseConfigOnce(document)).catch((err) => {
          plan.problems.push(...RampartError.from(err).problems);
          return undefined;
        });
        return { ...plan, network: network && { managed: network.managed, ops: network.ops.map((op) => `ip ${op.argv.join(' ')}`), sysctls: network.sysctls } };
      },
      history: (p) => this.store.listVersions(Number.isInteger(p.limit) ? p.limit : 100),
      show: (p) => {
        if (p.version === undefined) {
          const r = this.store.runningVersion();
          if (!r) throw new RampartError('not_found', 'no configuration has been applied yet');
          return r;
        }
        return version(p.version);
      },
      diff: (p) => {
        const a = version(p.a, 'a');
        const b = version(p.b, 'b');
        const script = (d: unknown) => {
          try {
            return this.firewall.compile(parseConfig(d)).script;
          } catch {
            return '';
          }
        };
        return {
          configChanges: configDiff(a.document, b.document),
          rulesetDiff: createTwoFilesPatch(`version ${a.version}`, `version ${b.version}`, script(a.document), script(b.document), '', '', { context: 2 }),
        };
      },
      counters: async () => {
        const refs = this.counterRefs();
        return refs ? readCounters(this.host, refs) : { rules: {} };
      },
      stats: async (p) => {
        const live = this.telemetry.latest();
        // The per-rule counters list the whole ruleset (slow with big sets): `rules: false` leaves them out.
        // The counters keep their own keys (rules, portForwards, snat, ...), as `stats` printed them before.
        const counters = p.rules === false ? {} : ((await handlers.counters({}, { peer: 'stats' })) as Record<string, unknown>);
        return { ...live, ...counters, ids: this.ids.health() };
      },
      telemetry: (p) => {
        const q = parseTelemetryRequest(p ?? {});
        return this.telemetry.query(q.metric, q.from, q.to, q.stepMs);
      },
      telemetryMetrics: () => this.telemetry.metrics(),
      enroll: audited('sync.enroll', (p, r) => (r ? `${r.tenant}/${r.deviceId}` : ''), (p) => this.sync.enroll(p.bundle)),
      syncJournal: (p) => this.sync.journalEntries(Number.isInteger(p.limit) ? Math.min(1000, Math.max(1, p.limit)) : 100),
      block: audited('block.add', blockTarget, async (p) => {
        // Three forms: {blocks: [{address, ttlSeconds?, reason?}]}, {addresses: [...], ttlSeconds?, reason?}, or one block.
        const source = typeof p.source === 'string' ? p.source.slice(0, 32) : 'local';
        // A list as text (one address a line, # comments): what `rampart block -` sends as an attachment.
        const list = typeof p.addressText === 'string' ? addressLines(p.addressText) : p.addresses;
        const recs = Array.isArray(list)
          ? await this.blocks.blockMany(list, { ttlSeconds: p.ttlSeconds, reason: p.reason }, source)
          : await this.blocks.block(Array.isArray(p.blocks) ? p.blocks : [p], source);
        // A bulk caller can ask for a summary instead of every record back.
        return p.brief === true ? { blocked: recs.length, addresses: recs.slice(0, 5).map((r) => r.address) } : recs;
      }),
      unblock: audited('block.remove', (p) => (p.all === true ? 'all' : String(p.address ?? '')), async (p) => {
        if (p.all === true) return { removed: await this.blocks.unblockAll() };
        const removed = await this.blocks.unblock(p.address);
        if (!removed) throw new RampartError('not_found', `${p.address} is not blocked`);
        return { removed: true };
      }),
      blocks: () => this.blocks.list(),
      leases: () => this.network.leases(),
      alerts: (p) => this.ids.listAlerts(parseAlertQuery(p ?? {})),
      alertGroups: (p) => this.ids.groupAlerts(parseGroupQuery(p ?? {})),
      idsStatus: () => this.ids.status(),
      idsRules: () => this.ids.listRules(),
      idsReload: audited('ids.reload', () => 'rules', async () => {
        const r = await this.ids.reload();
        if (!r.ok) throw reloadError(r);
        return r;
      }),
      idsUpdate: audited('ids.update', (p, r) => (r ? r.sources.map((s: { name: string }) => s.name).join(', ') : 'sources'), () => this.ids.update()),
      trace: (p: TraceRequest) => {
        const running = this.store.runningVersion();
        if (!running) throw new RampartError('not_found', 'no configuration has been applied yet');
        return tracePacket(parseConfig(running.document), p, { blocks: this.blocks.list().map((b) => b.address), apiPort: this.firewall.env.apiPort });
      },
    };
    return handlers;
  }
}
