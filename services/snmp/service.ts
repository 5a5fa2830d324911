/**
 * SnmpService: runs the agent on `snmp.listen` while `snmp.enabled`, keeps the served figures current (a refresh
 * on a timer builds the whole MibView from the telemetry service's latest sample, the link attributes, the store,
 * the per-rule counters and the alert counts, and swaps it in), restarts the agent when the applied
 * configuration's SNMP settings change, and sends the notifications. Constructors do no I/O; start() does.
 * Secrets (communities, keys) are never logged.
 */
import { readFile } from 'node:fs/promises';
import { uptime as hostUptime } from 'node:os';
import type { AlertRecord } from '../core/alerts.ts';
import type { EventBus } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Config } from '../core/schema.ts';
import type { Store } from '../core/store.ts';
import { knownRunningConfig, runningConfig } from '../core/config-cache.ts';
import { imageRelease } from '../core/release.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import { newEngineId, parseListenAddress, parseSources, type ListenAddress } from './access.ts';
// The agent and the notifier load net-snmp: imported when the agent starts, not with the daemon.
import type { SnmpAgent, UsmUser } from './agent.ts';
import { LinkReader } from './links.ts';
import { MibView, T, type Instance, type Varbind } from './mib-store.ts';
import { CpuLoad, hostInstances, parsePerCpu, type StorageRow } from './mibs/host-resources.ts';
import { ifMibInstances, linkType, operStatus, type IfRow } from './mibs/if-mib.ts';
import { OIDS, RAMPART, RAMPART_APPLIANCE, rampartInstances, syncStateOf, type RuleRow } from './mibs/rampart.ts';
import { systemInstances } from './mibs/system.ts';
import { ucdInstances } from './mibs/ucd.ts';
import type { Notifier, NotifyTarget } from './notify.ts';

export interface SnmpServiceOptions {
  store: Store;
  events: EventBus;
  telemetry: TelemetryService;
  log: Logger;
  /** Network namespace of the firewall (interfaces are read there; the agent listens here). */
  netns?: string;
  /**
   * The per-rule counters (by rule id) of the latest telemetry sample: the collection cycle reads them anyway, so the
   * agent serves them as it serves the interface counters, without a reading of its own.
   */
  ruleCounters?: () => Record<string, { packets: number; bytes: number }> | undefined;
  /** The sync channel's state and outbox depth (rows waiting), read at each refresh. */
  sync?: () => { state?: string; outbox?: number };
  /** How often the served figures are rebuilt (default 10 s, the default telemetry interval). */
  refreshMs?: number;
  /** Product version for sysDescr (default: the image version of /etc/rampart-release, read at start). */
  productVersion?: string;
}

export interface SnmpStatus {
  state: 'disabled' | 'running' | 'error';
  listen?: { address: string; port: number }[];
  detail?: string;
  objects?: number;
  requests?: { received: number; answered: number; refused: number; malformed: number };
  notifications?: { targets: number; sent: number; dropped: number; failed: number };
}

/** The SNMP settings resolved from a configuration: what the agent and the notifier need. */
export interface SnmpSettings {
  enabled: boolean;
  listen: ListenAddress[];
  communities: { name: string; sources: string[] }[];
  users: UsmUser[];
  targets: NotifyTarget[];
  ratePerMinute: number;
}

const MODULES = [
  { id: '1.3.6.1.6.3.1', descr: 'SNMPv2-MIB: the system group' },
  { id: '1.3.6.1.2.1.31', descr: 'IF-MIB: interfaces, 64-bit counters' },
  { id: '1.3.6.1.2.1.25.7.1', descr: 'HOST-RESOURCES-MIB: uptime, storage, processors' },
  { id: '1.3.6.1.4.1.2021', descr: 'UCD-SNMP-MIB: load averages, memory' },
  { id: RAMPART, descr: 'RAMPART-MIB: configuration, rule counters, IDS, blocks, conntrack, sync' },
  { id: '1.3.6.1.6.3.15', descr: 'SNMP-USER-BASED-SM-MIB: user-based security (v3)' },
];

/** An address-object name → its entries; addresses and CIDRs as they are. */
function resolveSources(refs: string[], objects: Record<string, string[]>): string[] {
  return refs.flatMap((r) => objects[r] ?? [r]);
}

export function snmpSettings(c: Config): SnmpSettings {
  const s = c.snmp;
  const users: UsmUser[] = s.users.map((u) => ({ name: u.name, authProtocol: u.auth.protocol, authKey: u.auth.key, privProtocol: u.priv.protocol, privKey: u.priv.key }));
  const byName = new Map(users.map((u) => [u.name, u]));
  return {
    enabled: s.enabled,
    listen: s.listen.map((l) => parseListenAddress(l)).filter((l): l is ListenAddress => l !== undefined),
    communities: s.communities.map((cm) => ({ name: cm.name, sources: resolveSources(cm.sources, c.objects.addresses) })),
    users,
    targets: s.targets.map((t) => ({ host: t.host, port: t.port, version: t.version, community: t.community, user: t.user ? byName.get(t.user) : undefined, minSeverity: t.minSeverity })),
    ratePerMinute: s.notifyRatePerMinute,
  };
}

const ENGINE_ID_KEY = 'snmp.engineId';
const ENGINE_BOOTS_KEY = 'snmp.engineBoots';

export class SnmpService {
  readonly view = new MibView();
  private agent?: SnmpAgent;
  private notifier?: Notifier;
  private settingsKey?: string;
  private error?: string;
  private timer?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private started = false;
  private startedAt = Date.now();
  private readonly links: LinkReader;
  private readonly cpu = new CpuLoad();
  private cpuNames: string[] = [];
  private lastOper = new Map<string, { status: number; at: number }>();
  private parsed?: { version: number; config: Config };
  private alertCounts = { ids: { 1: 0, 2: 0, 3: 0, 4: 0 } as Record<1 | 2 | 3 | 4, number>, anomalies: 0 };
  private openAnomalies = new Set<string>();
  private syncState?: string;
  private unsubscribe: (() => void)[] = [];
  private reconfiguring: Promise<void> = Promise.resolve();
  /** The figures are rebuilt only while the agent is (about to be) serving them. */
  private active = false;

  /** The appliance image's version, as `rampart status` shows it (empty off an image). */
  private imageVersion = '';

  constructor(private readonly opts: SnmpServiceOptions) {
    this.links = new LinkReader(opts.netns);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startedAt = Date.now();
    // The image changes only with an update, which restarts the daemon: read once.
    this.imageVersion = imageRelease()?.version ?? '';
    this.countStoredAlerts();
    const ev = this.opts.events;
    this.unsubscribe.push(
      ev.on('alert', (list) => this.onAlerts(list)),
      ev.on('anomaly', (a) => {
        const key = `${a.metric}:${a.start}`;
        if (a.type === 'opened') this.openAnomalies.add(key);
        else this.openAnomalies.delete(key);
      }),
      ev.on('config', (c) => {
        // After the agent follows the new settings, so a configuration that adds a target already notifies it.
        void this.reconfigureSoon().then(() => {
          if (c.type === 'applied') {
            this.notify(OIDS.configAppliedNotification, [
              { oid: `${OIDS.notifyVersion}.0`, type: T.Gauge32, value: c.version },
              { oid: OIDS.configState, type: T.Integer, value: c.state === 'pending_confirm' ? 3 : 2 },
            ]);
          } else if (c.type === 'reverted') {
            this.notify(OIDS.configRolledBackNotification, [
              { oid: `${OIDS.notifyVersion}.0`, type: T.Gauge32, value: c.version },
              { oid: OIDS.configVersion, type: T.Gauge32, value: c.back ?? 0 },
              { oid: `${OIDS.notifyDetail}.0`, type: T.OctetString, value: (c.reason ?? '').slice(0, 255) },
            ]);
          }
        });
      }),
      ev.on('sync', (s) => {
        const before = syncStateOf(this.syncState, true);
        this.syncState = s.state;
        const now = syncStateOf(s.state, true);
        if (now === before) return;
        if (now === 'disconnected') {
          this.notify(OIDS.syncLostNotification, [
            { oid: OIDS.syncState, type: T.Integer, value: 3 },
            { oid: `${OIDS.notifyDetail}.0`, type: T.OctetString, value: (s.detail ?? '').slice(0, 255) },
          ]);
        } else if (now === 'connected' && before === 'disconnected') {
          this.notify(OIDS.syncRestoredNotification, [{ oid: OIDS.syncState, type: T.Integer, value: 2 }]);
        }
      }),
    );
    await this.reconfigure();
    const every = Math.max(500, this.opts.refreshMs ?? 10_000);
    this.timer = setInterval(() => void this.refresh(), every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    if (this.retry) clearTimeout(this.retry);
    this.timer = this.retry = undefined;
    this.active = false;
    for (const u of this.unsubscribe.splice(0)) u();
    await this.reconfiguring.catch(() => undefined);
    await this.stopAgent();
  }

  status(): SnmpStatus {
    if (this.error) return { state: 'error', detail: this.error };
    if (!this.agent) return { state: 'disabled' };
    const s = this.agent.stats;
    return {
      state: 'running',
      listen: this.agent.addresses(),
      objects: this.view.size,
      requests: { received: s.received, answered: s.answered, refused: s.refused, malformed: s.malformed },
      notifications: this.notifier ? { targets: this.notifier.targets, ...this.notifier.stats } : undefined,
    };
  }

  /** reconfigure(), once the current event and its I/O are done (an apply's answer is not held up by it). */
  private reconfigureSoon(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve)).then(() => this.reconfigure());
  }

  /** Apply the running configuration's SNMP settings: start, restart or stop the agent when they changed. */
  reconfigure(): Promise<void> {
    this.reconfiguring = this.reconfiguring.then(() => this.reconfigureNow()).catch((err) => this.opts.log.error({ err: String(err) }, 'snmp: reconfiguration failed'));
    return this.reconfiguring;
  }

  private async reconfigureNow(): Promise<void> {
    if (!this.started) return;
    const config = this.runningConfig();
    const settings = config ? snmpSettings(config) : undefined;
    const key = JSON.stringify(settings ?? null);
    if (key === this.settingsKey && (this.agent || !settings?.enabled)) {
      await this.refresh();
      return;
    }
    this.settingsKey = key;
    this.active = false;
    await this.stopAgent();
    this.error = undefined;
    if (!settings?.enabled) {
      this.opts.log.info('snmp: disabled');
      this.view.set([]);
      return;
    }
    if (settings.listen.length === 0) {
      this.error = 'no valid listen address';
      return;
    }
    this.active = true;
    await this.refresh();
    const store = this.opts.store;
    let engineId: Buffer = Buffer.from(store.getMeta(ENGINE_ID_KEY) ?? '', 'hex');
    if (engineId.length < 5) {
      engineId = newEngineId();
      store.setMeta(ENGINE_ID_KEY, engineId.toString('hex'));
    }
    const boots = Math.min(2 ** 31 - 1, Number(store.getMeta(ENGINE_BOOTS_KEY) ?? 0) + 1);
    store.setMeta(ENGINE_BOOTS_KEY, String(boots));
    const [{ SnmpAgent }, { Notifier }] = await Promise.all([import('./agent.ts'), import('./notify.ts')]);
    const agent = new SnmpAgent({
      listen: settings.listen,
      engineId,
      engineBoots: boots,
      communities: settings.communities.map((c) => ({ name: c.name, sources: parseSources(c.sources) })),
      users: settings.users,
      view: this.view,
      log: this.opts.log,
    });
    try {
      await agent.start();
    } catch (err) {
      this.active = false;
      this.error = `cannot listen: ${(err as Error).message}`;
      this.opts.log.error({ err: (err as Error).message, listen: settings.listen }, 'snmp: agent not started');
      return;
    }
    this.agent = agent;
    this.startedAt = Date.now();
    this.notifier = settings.targets.length ? new Notifier(settings.targets, settings.ratePerMinute, () => this.upTime(), this.opts.log) : undefined;
    this.opts.log.info(
      { listen: agent.addresses(), communities: settings.communities.length, users: settings.users.length, targets: settings.targets.length, engineBoots: boots },
      'snmp: agent listening',
    );
  }

  private async stopAgent(): Promise<void> {
    this.notifier?.close();
    this.notifier = undefined;
    const a = this.agent;
    this.agent = undefined;
    await a?.close();
  }

  /** Hundredths of a second since the agent started (sysUpTime). */
  upTime(): number {
    return Math.floor((Date.now() - this.startedAt) / 10);
  }

  /**
   * `snmp.enabled` of a journal version, read by SQLite without loading the document here: a big configuration
   * (10,000 rules, 200,000 list entries) is only parsed when SNMP is on. Unknown → true (parse and see).
   */
  private enabledIn(version: number): boolean {
    try {
      const r = this.opts.store.prepare("SELECT json_extract(document, '$.snmp.enabled') AS e FROM versions WHERE version = ?").get(version) as { e: unknown } | undefined;
      return r?.e === 1 || r?.e === true;
    } catch {
      return true;
    }
  }

  private runningConfig(): Config | undefined {
    const meta = this.opts.store.runningVersionMeta();
    if (!meta) return undefined;
    if (this.parsed?.version === meta.version) return this.parsed.config;
    // Parsed already (just applied, say): nothing to read.
    const known = knownRunningConfig(this.opts.store, meta);
    if (known ? !known.snmp.enabled : !this.enabledIn(meta.version)) return undefined;
    const config = known ?? runningConfig(this.opts.store);
    if (!config) {
      this.opts.log.warn('snmp: running configuration unreadable');
      return undefined;
    }
    this.parsed = { version: meta.version, config };
    return config;
  }

  private ruleCounters(config: Config | undefined): { rules: Record<string, { packets: number; bytes: number }> } | undefined {
    const rules = config ? this.opts.ruleCounters?.() : undefined;
    return rules ? { rules } : undefined;
  }

  private countStoredAlerts(): void {
    try {
      const rows = this.opts.store.prepare('SELECT kind, severity, COUNT(*) AS n FROM alerts GROUP BY kind, severity').all() as { kind: string; severity: number; n: number }[];
      for (const r of rows) {
        if (r.kind === 'ids' && r.severity >= 1 && r.severity <= 4) this.alertCounts.ids[r.severity as 1] += r.n;
        else if (r.kind === 'anomaly') this.alertCounts.anomalies += r.n;
      }
    } catch {
      // no alert table yet: counts start at zero
    }
  }

  private onAlerts(list: AlertRecord[]): void {
    for (const a of list) {
      if (a.kind === 'anomaly') {
        this.alertCounts.anomalies++;
        continue;
      }
      if (a.severity >= 1 && a.severity <= 4) this.alertCounts.ids[a.severity]++;
      this.notify(
        OIDS.idsAlertNotification,
        [
          { oid: `${OIDS.notifySeverity}.0`, type: T.Integer, value: a.severity },
          { oid: `${OIDS.notifySignature}.0`, type: T.OctetString, value: a.signature.slice(0, 255) },
          { oid: `${OIDS.notifySid}.0`, type: T.Gauge32, value: a.sid && a.sid > 0 && a.sid < 2 ** 32 ? a.sid : 0 },
          { oid: `${OIDS.notifySource}.0`, type: T.OctetString, value: (a.src ?? '').slice(0, 64) },
          { oid: `${OIDS.notifyDestination}.0`, type: T.OctetString, value: (a.dst ?? '').slice(0, 64) },
        ],
        a.severity,
      );
    }
  }

  private syncFigures(config: Config | undefined): { state: ReturnType<typeof syncStateOf>; outbox: number } {
    let live: { state?: string; outbox?: number } | undefined;
    try {
      live = this.opts.sync?.();
    } catch {
      live = undefined;
    }
    const enabled = config?.sync.enabled ?? false;
    return { state: syncStateOf(live?.state ?? this.syncState, enabled), outbox: Number.isFinite(live?.outbox) ? live!.outbox! : 0 };
  }

  private notify(oid: string, varbinds: Varbind[], severity?: number): void {
    this.notifier?.send(oid, varbinds, severity);
  }

  /** Rebuild the served figures (one at a time; a call during a refresh waits for it). */
  refresh(): Promise<void> {
    if (!this.active) return Promise.resolve();
    if (!this.refreshing) {
      this.refreshing = this.refreshNow()
        .catch((err) => this.opts.log.warn({ err: String(err) }, 'snmp: refresh failed'))
        .finally(() => (this.refreshing = undefined));
    }
    return this.refreshing;
  }

  private async refreshNow(): Promise<void> {
    const config = this.runningConfig();
    const sample = this.opts.telemetry.latestSample();
    // Telemetry's first sample is still being taken (the daemon starts both together): look again shortly.
    if (!sample && !this.retry) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        void this.refresh();
      }, 1000);
      this.retry.unref();
    }
    const [links, counters, stat] = await Promise.all([
      this.links.read().catch((err) => {
        this.opts.log.debug({ err: String(err) }, 'snmp: links not read');
        return undefined;
      }),
      this.ruleCounters(config),
      readFile('/proc/stat', 'utf8').catch(() => undefined),
    ]);
    if (!this.cpuNames.length) this.cpuNames = await cpuNames();
    if (stat) this.cpu.add(Date.now(), parsePerCpu(stat));
    const instances: Instance[] = [];
    const sys = config?.system;
    instances.push(
      ...systemInstances({
        descr: `Rampart edge firewall${(this.opts.productVersion ?? this.imageVersion) ? ` ${this.opts.productVersion ?? this.imageVersion}` : ''}, Linux`,
        objectId: RAMPART_APPLIANCE,
        upTime: () => this.upTime(),
        contact: config?.snmp.contact ?? sys?.contact ?? '',
        name: sys?.hostname ?? 'rampart',
        location: config?.snmp.location ?? sys?.location ?? '',
        modules: MODULES,
      }),
    );
    // IF-MIB: the links as the kernel lists them now, counters from the latest telemetry sample.
    const aliases = new Map((config?.interfaces ?? []).map((i) => [i.device, i.name]));
    const rows: IfRow[] = [];
    const upNow = this.upTime();
    for (const l of links?.links ?? []) {
      const status = operStatus(l.operstate, l.flags);
      const prev = this.lastOper.get(l.name);
      if (!prev || prev.status !== status) this.lastOper.set(l.name, { status, at: prev ? upNow : 0 });
      const c = sample?.interfaces[l.name];
      rows.push({
        index: l.ifindex,
        name: l.name,
        alias: aliases.get(l.name) ?? l.alias,
        type: linkType(l.linkType, l.name),
        mtu: l.mtu,
        speed: links!.speeds.get(l.name) ?? 0,
        mac: l.mac,
        adminUp: l.flags.includes('UP'),
        operStatus: status,
        promiscuous: l.flags.includes('PROMISC'),
        connector: l.linkType === 'ether',
        lastChange: this.lastOper.get(l.name)!.at,
        counters: c && c.ifindex === l.ifindex ? c : undefined,
      });
    }
    for (const name of this.lastOper.keys()) if (!rows.some((r) => r.name === name)) this.lastOper.delete(name);
    instances.push(...ifMibInstances(rows));
    // HOST-RESOURCES-MIB and UCD-SNMP-MIB from the sample's system figures.
    const mem = sample?.system.memory;
    const disk = sample?.system.disk;
    const storage: StorageRow[] = [];
    if (mem) {
      storage.push({ index: 1, kind: 'ram', descr: 'Physical memory', unit: 1024, sizeBytes: mem.totalBytes, usedBytes: mem.totalBytes - mem.availableBytes });
      storage.push({ index: 3, kind: 'virtual', descr: 'Swap space', unit: 1024, sizeBytes: mem.swapTotalBytes, usedBytes: mem.swapTotalBytes - mem.swapFreeBytes });
    }
    if (disk) storage.push({ index: 31, kind: 'disk', descr: disk.path, unit: 4096, sizeBytes: disk.totalBytes, usedBytes: disk.totalBytes - disk.freeBytes });
    const loads = this.cpu.loads();
    instances.push(
      ...hostInstances({
        uptime: () => hostUptime() * 100,
        memoryBytes: mem?.totalBytes,
        storage,
        cpus: loads.map((load, i) => ({ descr: this.cpuNames[i] ?? this.cpuNames[0] ?? 'processor', load })),
      }),
      ...ucdInstances({ load: sample?.system.load, memory: mem }),
    );
    // RAMPART-MIB.
    const running = this.opts.store.runningVersionMeta();
    const pending = this.opts.store.pendingVersionMeta();
    const ruleRows: RuleRow[] = [];
    for (const chain of ['input', 'forward'] as const) {
      for (const r of config?.firewall[chain] ?? []) {
        ruleRows.push({ id: r.id, chain, action: r.action, enabled: r.enabled !== false, counter: r.enabled !== false ? counters?.rules[r.id] : undefined });
      }
    }
    instances.push(
      ...rampartInstances({
        config: {
          version: running?.version ?? 0,
          state: pending ? 'pendingConfirm' : running ? 'applied' : 'none',
          pendingVersion: pending?.version ?? 0,
          hash: running?.hash ?? '',
        },
        rules: ruleRows,
        idsAlerts: this.alertCounts.ids,
        anomalies: this.alertCounts.anomalies,
        anomaliesActive: this.openAnomalies.size,
        blocked: this.opts.store.countBlocks(),
        conntrack: sample?.conntrack,
        sync: this.syncFigures(config),
        imageVersion: this.imageVersion,
      }),
    );
    this.view.set(instances);
  }
}

async function cpuNames(): Promise<string[]> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return [...text.matchAll(/^model name\s*:\s*(.+)$/gm)].map((m) => m[1].trim().slice(0, 255));
}
