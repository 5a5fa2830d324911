/**
 * SyncService: the appliance's side of the MSSP channel (SPEC §6).
 * - desired state: verified (envelope.ts), newer than the last applied, applied through the firewall with a confirm
 *   window; confirmed once a fresh connection to the broker succeeds after the apply, reverted otherwise;
 * - reported (retained): applied | pending_confirm | rolled_back | rejected | error, with the version, the running
 *   config hash and the reason; every refusal also goes to the sync journal;
 * - commands: verified, not expired, run once per id (the stored result is sent again for a replay);
 * - alerts: from the alert store into the outbox, sent in batches (severe first), deleted only on `alerts/ack`;
 * - telemetry: a periodic summary, QoS 0 with a message expiry.
 * Emits bus `sync` events {state: connected | lost | disabled | not_enrolled | connecting}.
 */
import type { Logger } from '../core/log.ts';
import type { EventBus } from '../core/events.ts';
import { AlertStore } from '../core/alerts.ts';
import { RampartError } from '../core/errors.ts';
import type { Store, VersionRecord, VersionSource } from '../core/store.ts';
import { runningConfig } from '../core/config-cache.ts';
import { imageRelease, type ImageRelease } from '../core/release.ts';
import { SerialQueue } from '../core/serial.ts';
// The channel loads mqtt: imported when sync starts, not with the daemon.
import type { Channel, ChannelOptions } from './channel.ts';
import { Refusal, verifyCommand, verifyDesired, type CommandPayload, type SigningKey } from './envelope.ts';
import { installBundle, loadBundle, signingKeys, type Bundle } from './enroll.ts';
import { Outbox, PRIORITIES, type AckedBatch, type OutboxBatch, type OutboxLimits } from './outbox.ts';

/** What the sync service needs from the firewall (the real Firewall, or a stand-in in the fleet simulator). */
export interface SyncFirewall {
  apply(req: { document: unknown; author: string; source: VersionSource; message?: string; confirmSeconds?: number }): Promise<VersionRecord>;
  confirm(): Promise<VersionRecord>;
  rollback(opts: { version?: number; author: string; source: VersionSource }): Promise<VersionRecord>;
}

export interface SyncBlocks {
  block(requests: { address: unknown; ttlSeconds?: unknown; reason?: unknown }[], source?: string): Promise<unknown[]>;
  unblock(address: string): Promise<boolean>;
}

export interface SyncSettings {
  enabled: boolean;
  broker?: string;
  confirmSeconds: number;
  telemetryIntervalSeconds: number;
  limits: OutboxLimits;
  drainRatePerSecond: number;
}

export interface SyncServiceOptions {
  store: Store;
  dataDir?: string;
  firewall: SyncFirewall;
  blocks?: SyncBlocks;
  events?: EventBus;
  log: Logger;
  alerts?: AlertStore;
  /** Use this bundle instead of DATA/sync/bundle.json (fleet simulator). */
  bundle?: Bundle;
  /** Override the running config's `sync` section (fleet simulator, tests). */
  settings?: Partial<SyncSettings>;
  channel?: ChannelOptions;
  /** Batches: at most this many items / bytes; a partial batch waits at most batchDelayMs for more. */
  batchItems?: number;
  batchBytes?: number;
  batchDelayMs?: number;
  /** Unacknowledged batches in flight at most. */
  window?: number;
  /** No ack for this long with batches in flight: send them again. */
  ackTimeoutMs?: number;
}

export type ReportState = 'applied' | 'pending_confirm' | 'rolled_back' | 'rejected' | 'error';

export interface Report {
  state: ReportState;
  /** The desired version this report is about (null: unknown, e.g. malformed JSON). */
  version: number | null;
  /** The desired version running now (0: none from the MSSP yet), its local journal version and config hash. */
  running: { version: number; configVersion: number | null; hash: string | null };
  /** The appliance image running (/etc/rampart-release, as `rampart status` shows it); null off an image. */
  image: ImageRelease | null;
  hash?: string;
  reason?: string;
  detail?: string;
  at: string;
}

const SEVERITY_NAMES = ['', 'high', 'medium', 'low', 'info'];

/** Acknowledged rows waiting to be deleted at most (a restart before the delete sends them again; the MSSP dedupes). */
const ACK_FLUSH_ROWS = 50_000;

export class SyncService {
  private channel?: Channel;
  private bundle?: Bundle;
  private keys: SigningKey[] = [];
  readonly outbox: Outbox;
  private readonly alerts: AlertStore;
  private readonly queue = new SerialQueue();
  private state = 'stopped';
  private stateDetail?: string;
  private settings!: SyncSettings;
  /** Read at start: the image changes only with an update, which restarts the daemon. */
  private image: ImageRelease | null = null;
  private offs: (() => void)[] = [];
  private timers: NodeJS.Timeout[] = [];
  private pending?: { desiredVersion: number; configVersion: number; hash: string; deadline: number };
  // Drain state.
  /** Batches sent and not acknowledged yet: every row of one drain class from `from` to `to` (seqs may skip). */
  private inflight: (AckedBatch & { sentAt: number })[] = [];
  private ackFlush?: NodeJS.Immediate;
  /** Per drain class: the highest seq sent on this connection. */
  private sentUpTo: Record<number, number> = { 0: 0, 1: 0, 2: 0 };
  private pumping = false;
  private pumpTimer?: NodeJS.Timeout;
  private tokens = 0;
  private tokensAt = Date.now();
  private lastAckAt = Date.now();
  /** Counters for status and benchmarks. */
  readonly counters = { batchesSent: 0, itemsSent: 0, bytesSent: 0, acks: 0, resends: 0, desiredApplied: 0, refusals: 0, commands: 0 };

  constructor(private readonly opts: SyncServiceOptions) {
    this.outbox = new Outbox(opts.store);
    this.alerts = opts.alerts ?? new AlertStore(opts.store);
  }

  private readSettings(): SyncSettings {
    let cfg: any = {};
    try {
      cfg = runningConfig(this.opts.store)?.sync ?? {};
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'sync: running configuration unreadable, defaults used');
    }
    const ob = cfg?.outbox ?? {};
    return {
      enabled: cfg?.enabled ?? false,
      broker: cfg?.broker,
      confirmSeconds: cfg?.confirmSeconds ?? 120,
      telemetryIntervalSeconds: cfg?.telemetryIntervalSeconds ?? 60,
      limits: {
        maxRows: ob.maxRows ?? 1_000_000,
        maxBytes: (ob.maxMegabytes ?? 512) * 1024 * 1024,
        maxAgeMs: (ob.maxAgeDays ?? 30) * 24 * 3600_000,
      },
      drainRatePerSecond: ob.drainRatePerSecond ?? 50_000,
      ...this.opts.settings,
      ...(cfg?.tenant ? { tenant: cfg.tenant } : {}),
      ...(cfg?.deviceId ? { deviceId: cfg.deviceId } : {}),
    } as SyncSettings;
  }

  private setState(state: string, detail?: string): void {
    if (state === this.state && detail === this.stateDetail) return;
    this.state = state;
    this.stateDetail = detail;
    this.opts.events?.emit('sync', { state, ...(detail ? { detail } : {}) });
    this.opts.log.info({ state, detail }, 'sync state');
  }

  /** Start when enrolled and enabled; otherwise stay idle with a state saying why. */
  /** Counts starts and stops, so a start that awaited its module knows whether a stop came in between. */
  private generation = 0;

  async start(): Promise<void> {
    const generation = ++this.generation;
    this.image = imageRelease() ?? null;
    this.settings = this.readSettings();
    this.outbox.setLimits(this.settings.limits);
    if (this.offs.length === 0 && this.opts.events) {
      this.offs.push(this.opts.events.on('alert', (records) => this.onAlerts(records)));
      this.offs.push(this.opts.events.on('config', (e) => this.onConfigEvent(e)));
    }
    try {
      this.bundle = this.opts.bundle ?? (this.opts.dataDir ? loadBundle(this.opts.dataDir) : undefined);
    } catch (err) {
      this.setState('error', `enrollment bundle unreadable: ${RampartError.from(err).message}`);
      return;
    }
    if (!this.bundle) return this.setState('not_enrolled');
    if (!this.settings.enabled) return this.setState('disabled', 'sync.enabled is false in the running configuration');
    const cfg = this.settings as any;
    if ((cfg.tenant && cfg.tenant !== this.bundle.tenant) || (cfg.deviceId && cfg.deviceId !== this.bundle.deviceId)) {
      return this.setState('error', `sync.tenant/deviceId (${cfg.tenant}/${cfg.deviceId}) differ from the enrollment (${this.bundle.tenant}/${this.bundle.deviceId})`);
    }
    this.keys = signingKeys(this.bundle);
    this.activeBroker = this.settings.broker ?? this.bundle.broker;
    this.recoverPending();
    // A big history is taken in chunks (here and then by the 1 s timer), never blocking the start for long.
    this.outbox.catchUp(this.alerts, 50_000);
    const { Channel } = await import('./channel.ts');
    if (generation !== this.generation || this.channel) return; // stopped or started again meanwhile
    this.channel = new Channel(
      { broker: this.activeBroker, tenant: this.bundle.tenant, device: this.bundle.deviceId, ca: this.bundle.ca, cert: this.bundle.cert, key: this.bundle.key },
      { onConnect: (sp) => this.onConnect(sp), onLost: (r) => this.onLost(r), onMessage: (t, p) => this.onMessage(t, p) },
      this.opts.log,
      this.opts.channel,
    );
    this.setState('connecting');
    this.channel.start();
    // Safety net for alerts stored without a bus event (another process, a missed event), and ack timeouts.
    this.timers.push(
      setInterval(() => {
        this.flushAcks();
        try {
          if (this.outbox.catchUp(this.alerts)) this.pump();
        } catch (err) {
          this.opts.log.error({ err: String(err) }, 'sync: outbox catch-up failed');
        }
        const ackTimeout = this.opts.ackTimeoutMs ?? 30_000;
        if (this.inflight.length && Date.now() - this.lastAckAt > ackTimeout) {
          this.counters.resends++;
          this.resendAll();
        }
      }, 1000),
    );
    this.timers.push(setInterval(() => this.publishTelemetry(), this.settings.telemetryIntervalSeconds * 1000));
    for (const t of this.timers) t.unref?.();
  }

  async stop(): Promise<void> {
    this.generation++;
    for (const off of this.offs) off();
    this.offs = [];
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    this.flushAcks();
    const ch = this.channel;
    this.channel = undefined;
    await ch?.stop();
    this.setState('stopped');
  }

  /** Install a bundle (DATA/sync) and restart the channel with it. */
  async enroll(input: unknown): Promise<{ tenant: string; deviceId: string; broker: string; state: string }> {
    if (!this.opts.dataDir) throw new RampartError('unavailable', 'no data directory');
    const b = installBundle(this.opts.dataDir, input);
    await this.stop();
    await this.start();
    return { tenant: b.tenant, deviceId: b.deviceId, broker: b.broker, state: this.state };
  }

  status(): Record<string, unknown> {
    const ob = this.outbox.stats();
    return {
      state: this.state,
      ...(this.stateDetail ? { detail: this.stateDetail } : {}),
      ...(this.bundle ? { tenant: this.bundle.tenant, deviceId: this.bundle.deviceId, broker: this.settings?.broker ?? this.bundle.broker } : {}),
      ...(this.channel?.connectedAt ? { connectedAt: new Date(this.channel.connectedAt).toISOString() } : {}),
      ...(this.channel?.lastError ? { lastError: this.channel.lastError } : {}),
      desiredVersion: this.lastApplied(),
      pending: this.pending ? { version: this.pending.desiredVersion, deadline: new Date(this.pending.deadline).toISOString() } : null,
      outbox: { rows: ob.rows, bytes: ob.bytes, dropped: ob.dropped, inflightBatches: this.inflight.length },
    };
  }

  get connected(): boolean {
    return this.channel?.connected ?? false;
  }

  // ---- connection events ----

  private onConnect(sessionPresent: boolean): void {
    this.setState('connected');
    this.opts.log.info({ sessionPresent }, 'sync: connected');
    // Everything not acked is sent again (consumers dedupe by id).
    this.flushAcks();
    this.inflight = [];
    this.sentUpTo = { 0: 0, 1: 0, 2: 0 };
    this.lastAckAt = Date.now();
    this.publishReported();
    this.pump();
    // What runs (versions, image) at once, not an interval later; also before any desired version was reported.
    this.publishTelemetry();
  }

  private onLost(reason: string): void {
    this.setState('lost', reason);
    this.flushAcks();
    this.inflight = [];
    this.sentUpTo = { 0: 0, 1: 0, 2: 0 };
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic === 'desired') void this.queue.run(() => this.onDesired(payload)).catch((err) => this.opts.log.error({ err: String(err) }, 'sync: desired failed'));
    else if (topic === 'cmd') void this.queue.run(() => this.onCommand(payload)).catch((err) => this.opts.log.error({ err: String(err) }, 'sync: command failed'));
    else if (topic === 'alerts/ack') this.onAck(payload);
  }

  // ---- desired state ----

  private lastApplied(): number {
    return Number(this.outbox.getState('desiredApplied') ?? 0);
  }

  private lastProcessed(): number {
    return Number(this.outbox.getState('desiredProcessed') ?? 0);
  }

  private runningInfo(): Report['running'] {
    const meta = this.opts.store.runningVersionMeta();
    return { version: this.lastApplied(), configVersion: meta?.version ?? null, hash: meta?.hash ?? null };
  }

  private journal(kind: string, version: number | null, state: string, reason?: string, detail?: string): void {
    this.opts.store
      .prepare('INSERT INTO sync_journal (at, kind, version, state, reason, detail) VALUES (?, ?, ?, ?, ?, ?)')
      .run(new Date().toISOString(), kind, version, state, reason ?? null, detail?.slice(0, 2000) ?? null);
  }

  /** The sync journal (refusals, applies, reverts, commands), newest first. */
  journalEntries(limit = 100): { at: string; kind: string; version: number | null; state: string; reason: string | null; detail: string | null }[] {
    return this.opts.store.prepare('SELECT at, kind, version, state, reason, detail FROM sync_journal ORDER BY id DESC LIMIT ?').all(limit) as any;
  }

  private report(r: Omit<Report, 'at' | 'running' | 'image'>): void {
    const full: Report = { ...r, running: this.runningInfo(), image: this.image, at: new Date().toISOString() };
    const text = JSON.stringify(full);
    this.outbox.setState('reported', text);
    this.journal('desired', r.version, r.state, r.reason, r.detail);
    this.channel?.publish('reported', text, { qos: 1, retain: true });
  }

  /**
   * Publish the last report again (retained; on connect and for a `sync` command), with what runs now: the config
   * and the image may have changed since it was made (an image update restarts the appliance).
   */
  private publishReported(): void {
    let last: Report | undefined;
    try {
      const text = this.outbox.getState('reported');
      last = text ? JSON.parse(text) : undefined;
    } catch {
      last = undefined;
    }
    if (!last?.state) return;
    const text = JSON.stringify({ ...last, running: this.runningInfo(), image: this.image });
    this.outbox.setState('reported', text);
    this.channel?.publish('reported', text, { qos: 1, retain: true });
  }

  private async onDesired(payload: Buffer): Promise<void> {
    if (payload.length === 0) return; // retained message cleared
    let desired;
    try {
      desired = verifyDesired(payload, this.keys, { tenant: this.bundle!.tenant, device: this.bundle!.deviceId, lastVersion: 0 });
    } catch (err) {
      return this.refuse(err, payload);
    }
    const v = desired.version;
    if (v === this.lastProcessed() || (this.pending && this.pending.desiredVersion === v)) return; // seen (every reconnect brings it again)
    if (v <= this.lastApplied()) {
      return this.refuse(new Refusal('not_newer', `version ${v} is not newer than the applied version ${this.lastApplied()}`), payload, v);
    }
    if (this.pending) {
      return this.report({ state: 'error', version: v, reason: 'busy', detail: `version ${this.pending.desiredVersion} is still waiting for its confirmation` });
    }
    let rec: VersionRecord;
    try {
      rec = await this.opts.firewall.apply({
        document: desired.config,
        author: `mssp:${this.bundle!.tenant}`,
        source: 'mssp',
        message: `desired version ${v} from the MSSP`,
        confirmSeconds: this.settings.confirmSeconds,
      });
    } catch (err) {
      const e = RampartError.from(err);
      if (e.code === 'conflict') {
        // A local change waits for confirmation: try again on the next connect or `sync` command.
        return this.report({ state: 'error', version: v, reason: 'conflict', detail: e.message });
      }
      this.outbox.setState('desiredProcessed', String(v));
      this.counters.refusals++;
      const detail = [e.message, ...e.problems.slice(0, 20).map((p) => `${p.path || '/'}: ${p.message}`)].join('; ');
      return this.report({ state: 'rejected', version: v, reason: e.code === 'invalid_input' ? 'invalid_config' : e.code, detail });
    }
    this.outbox.setState('desiredProcessed', String(v));
    const deadline = Date.now() + this.settings.confirmSeconds * 1000;
    this.pending = { desiredVersion: v, configVersion: rec.version, hash: rec.hash, deadline };
    this.outbox.setState('pending', JSON.stringify(this.pending));
    this.report({ state: 'pending_confirm', version: v, hash: rec.hash });
    void this.confirmWhenReachable(this.pending);
  }

  /** Probe the broker with fresh connections until one succeeds (then confirm) or the window closes (the firewall reverts). */
  private async confirmWhenReachable(p: NonNullable<SyncService['pending']>): Promise<void> {
    let wait = 250;
    while (this.pending === p && Date.now() < p.deadline - 500 && this.channel) {
      const ok = await this.channel.probe(Math.max(1000, Math.min(15_000, p.deadline - Date.now() - 500)));
      if (this.pending !== p) return;
      if (ok) {
        try {
          await this.queue.run(async () => {
            if (this.pending !== p) return;
            await this.opts.firewall.confirm();
            this.pending = undefined;
            this.outbox.setState('pending', '');
            this.outbox.setState('desiredApplied', String(p.desiredVersion));
            this.counters.desiredApplied++;
            this.report({ state: 'applied', version: p.desiredVersion, hash: p.hash });
          });
        } catch (err) {
          this.opts.log.error({ err: String(err) }, 'sync: confirming the MSSP change failed');
        }
        return;
      }
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 4000);
    }
  }

  private onConfigEvent(e: { type: string; version: number; reason?: string }): void {
    this.scheduleReconsider();
    const p = this.pending;
    if (!p || e.version !== p.configVersion) return;
    if (e.type === 'reverted') {
      this.pending = undefined;
      this.outbox.setState('pending', '');
      this.report({ state: 'rolled_back', version: p.desiredVersion, hash: p.hash, reason: 'broker_unreachable', detail: e.reason ?? 'not confirmed in time' });
    } else if (e.type === 'confirmed' && this.pending === p) {
      // Confirmed locally (operator or a `confirm` command): the MSSP's version runs.
      this.pending = undefined;
      this.outbox.setState('pending', '');
      this.outbox.setState('desiredApplied', String(p.desiredVersion));
      this.report({ state: 'applied', version: p.desiredVersion, hash: p.hash });
    }
  }

  private reconsidering = false;
  private activeBroker?: string;

  /**
   * After a configuration change (never while an MSSP change waits for its confirmation): start the channel when
   * `sync` became enabled, stop it when disabled, reconnect when the broker changed; otherwise take the new limits.
   */
  private scheduleReconsider(): void {
    if (this.reconsidering) return;
    this.reconsidering = true;
    setImmediate(() => {
      this.reconsidering = false;
      void this.queue
        .run(async () => {
          if (this.pending || this.state === 'stopped') return;
          const s = this.readSettings();
          const active = this.channel !== undefined;
          const broker = s.broker ?? this.bundle?.broker;
          if (active === s.enabled && (!active || broker === this.activeBroker)) {
            this.settings = s;
            this.outbox.setLimits(s.limits);
            return;
          }
          this.opts.log.info({ enabled: s.enabled, broker }, 'sync: configuration changed, restarting the channel');
          await this.stop();
          await this.start();
        })
        .catch((err) => this.opts.log.error({ err: String(err) }, 'sync: restart after a configuration change failed'));
    });
  }

  /** After a restart: a pending MSSP change was reverted by the firewall at start. */
  private recoverPending(): void {
    const text = this.outbox.getState('pending');
    if (!text) return;
    const p = JSON.parse(text) as NonNullable<SyncService['pending']>;
    const rec = this.opts.store.getVersionMeta(p.configVersion);
    this.outbox.setState('pending', '');
    if (rec?.state === 'applied' || rec?.state === 'superseded') {
      this.outbox.setState('desiredApplied', String(p.desiredVersion));
      this.report({ state: 'applied', version: p.desiredVersion, hash: p.hash });
    } else {
      this.report({ state: 'rolled_back', version: p.desiredVersion, hash: p.hash, reason: 'restarted', detail: 'the daemon stopped before the change was confirmed' });
    }
  }

  private refuse(err: unknown, payload: Buffer, version?: number): void {
    this.counters.refusals++;
    let v: number | null = version ?? null;
    if (v === null) {
      try {
        const pv = JSON.parse(payload.toString())?.payload?.version;
        if (Number.isSafeInteger(pv)) v = pv;
      } catch {
        /* malformed */
      }
    }
    const reason = err instanceof Refusal ? err.reason : 'error';
    const detail = err instanceof Error ? err.message : String(err);
    this.opts.log.warn({ version: v, reason, detail }, 'sync: desired state refused');
    this.report({ state: 'rejected', version: v, reason, detail });
  }

  // ---- commands ----

  private async onCommand(payload: Buffer): Promise<void> {
    let cmd: CommandPayload;
    const idOf = () => {
      try {
        const id = JSON.parse(payload.toString())?.payload?.id;
        return typeof id === 'string' ? id.slice(0, 128) : null;
      } catch {
        return null;
      }
    };
    try {
      cmd = verifyCommand(payload, this.keys, { tenant: this.bundle!.tenant, device: this.bundle!.deviceId });
    } catch (err) {
      const reason = err instanceof Refusal ? err.reason : 'error';
      this.journal('cmd', null, 'refused', reason, `${idOf() ?? '?'}: ${(err as Error).message}`);
      this.channel?.publish('cmd/result', JSON.stringify({ id: idOf(), ok: false, refused: reason, detail: (err as Error).message }), { qos: 1 });
      return;
    }
    const seen = this.opts.store.prepare('SELECT result FROM sync_commands WHERE id = ?').get(cmd.id) as { result: string } | undefined;
    if (seen) {
      // Replay (or the broker delivering twice): never run again; say what the first run gave.
      this.journal('cmd', null, 'replayed', 'replayed', cmd.id);
      this.channel?.publish('cmd/result', JSON.stringify({ ...JSON.parse(seen.result), duplicate: true }), { qos: 1 });
      return;
    }
    let result: { id: string; ok: boolean; detail: unknown };
    try {
      result = { id: cmd.id, ok: true, detail: await this.runCommand(cmd) };
    } catch (err) {
      const e = RampartError.from(err);
      result = { id: cmd.id, ok: false, detail: e.problems.length ? `${e.message}: ${e.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}` : e.message };
    }
    const text = JSON.stringify(result);
    this.opts.store
      .prepare('INSERT INTO sync_commands (id, at, type, not_after, result) VALUES (?, ?, ?, ?, ?)')
      .run(cmd.id, new Date().toISOString(), cmd.type, Date.parse(cmd.notAfter), text);
    // Ids are kept for a day beyond their expiry (an expired command is refused anyway).
    this.opts.store.prepare('DELETE FROM sync_commands WHERE not_after < ?').run(Date.now() - 24 * 3600_000);
    this.counters.commands++;
    this.journal('cmd', null, result.ok ? 'ok' : 'failed', cmd.type, `${cmd.id}: ${typeof result.detail === 'string' ? result.detail : JSON.stringify(result.detail)}`);
    this.channel?.publish('cmd/result', text, { qos: 1 });
  }

  private async runCommand(cmd: CommandPayload): Promise<unknown> {
    const a = cmd.args;
    switch (cmd.type) {
      case 'block': {
        if (!this.opts.blocks) throw new RampartError('unavailable', 'blocks are not available here');
        const recs = await this.opts.blocks.block([{ address: a.address, ttlSeconds: a.ttlSeconds, reason: a.reason ?? `MSSP command ${cmd.id}` }], 'mssp');
        return { blocked: recs.length };
      }
      case 'unblock': {
        if (!this.opts.blocks) throw new RampartError('unavailable', 'blocks are not available here');
        if (typeof a.address !== 'string') throw RampartError.invalid([{ path: '/args/address', message: 'must be an address' }]);
        const removed = await this.opts.blocks.unblock(a.address);
        if (!removed) throw new RampartError('not_found', `${a.address} is not blocked`);
        return { removed: true };
      }
      case 'confirm': {
        const r = await this.opts.firewall.confirm();
        return { version: r.version, state: r.state };
      }
      case 'rollback': {
        if (a.version !== undefined && (!Number.isInteger(a.version) || (a.version as number) < 1)) {
          throw RampartError.invalid([{ path: '/args/version', message: 'must be a version number' }]);
        }
        const r = await this.opts.firewall.rollback({ version: a.version as number | undefined, author: `mssp:${this.bundle!.tenant}`, source: 'mssp' });
        return { version: r.version, state: r.state };
      }
      case 'sync': {
        this.resendAll();
        this.channel?.refetchDesired();
        this.publishReported();
        return { outbox: this.outbox.stats().rows };
      }
    }
  }

  // ---- alerts ----

  private onAlerts(records: { seq: number }[]): void {
    if (!this.channel) return;
    try {
      // Only what follows the cursor (a catch-up may have taken these already).
      if (records.length && records[records.length - 1].seq > this.outbox.alertCursor()) this.outbox.catchUp(this.alerts);
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'sync: outbox insert failed');
    }
    this.pump();
  }

  private resendAll(): void {
    this.flushAcks();
    this.inflight = [];
    this.sentUpTo = { 0: 0, 1: 0, 2: 0 };
    this.lastAckAt = Date.now();
    this.pump();
  }

  private onAck(payload: Buffer): void {
    let ack: any;
    try {
      ack = JSON.parse(payload.toString());
    } catch {
      return;
    }
    if (!ack || !Number.isSafeInteger(ack.seq) || ack.seq < 0) return;
    if (ack.seqFrom !== undefined && (!Number.isSafeInteger(ack.seqFrom) || ack.seqFrom > ack.seq)) return;
    this.counters.acks++;
    this.lastAckAt = Date.now();
    // Only rows this connection sent in the acknowledged batch(es) go: a batch holds one drain class, so its seq range
    // may include rows of other classes that the MSSP has not seen. An ack of an unknown batch (sent before a
    // reconnect) deletes nothing; those rows are sent again and the MSSP dedupes them.
    const done = this.inflight.filter((b) => (ack.seqFrom !== undefined ? b.from === ack.seqFrom && b.to === ack.seq : b.to <= ack.seq));
    if (done.length) {
      this.inflight = this.inflight.filter((b) => !done.includes(b));
      // Deleted later, together, off the path of a drain in full flow (outbox.markAcked): once nothing is in flight,
      // by the 1 s timer, beyond ACK_FLUSH_ROWS, and before anything may send them again (reset, stop).
      const waiting = this.outbox.markAcked(done.map((b) => ({ prio: b.prio, from: b.from, to: b.to, rows: b.rows, bytes: b.bytes })));
      if (waiting >= ACK_FLUSH_ROWS) this.flushAcks();
    }
    this.pump();
    if (this.inflight.length === 0) this.ackFlush ??= setImmediate(() => this.flushAcks());
  }

  /** Delete the acknowledged batches' rows (before anything may send them again). */
  private flushAcks(): void {
    if (this.ackFlush) clearImmediate(this.ackFlush);
    this.ackFlush = undefined;
    try {
      this.outbox.flushAcked();
    } catch (err) {
      // Not deleted: the rows are sent again after the next reset and the MSSP dedupes them.
      this.opts.log.error({ err: String(err) }, 'sync: deleting acknowledged alerts failed');
    }
  }

  /** Send batches while connected, the window has room and the rate cap allows; partial batches wait a little. */
  pump(): void {
    if (this.pumping || !this.channel?.connected) return;
    this.pumping = true;
    try {
      const window = this.opts.window ?? 16;
      const maxItems = this.opts.batchItems ?? 500;
      const maxBytes = this.opts.batchBytes ?? 256 * 1024;
      const delay = this.opts.batchDelayMs ?? 200;
      const rate = this.settings.drainRatePerSecond;
      // A batch is never more than about a second's worth at the capped rate, so the token bucket can hold it.
      const cap = Math.max(1, Math.min(maxItems, Math.floor(rate)));
      while (this.inflight.length < window && this.channel?.connected) {
        const now = Date.now();
        this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
        this.tokensAt = now;
        // Highest drain class first: severe alerts (and gap records) overtake a backlog of low-severity ones.
        let batch: OutboxBatch | null = null;
        for (const p of PRIORITIES) {
          batch = this.outbox.nextBatch(p, this.sentUpTo[p], cap, maxBytes);
          if (batch) break;
        }
        if (!batch) return;
        if (batch.rows > this.tokens) {
          this.schedulePump(Math.ceil(((batch.rows - this.tokens) / rate) * 1000));
          return;
        }
        if (batch.rows < cap && batch.bytes + 1024 < maxBytes && this.inflight.length > 0) {
          // A partial batch while others are in flight: wait for more (or for the acks).
          this.schedulePump(delay);
          return;
        }
        const { text, ...sent } = batch;
        this.tokens -= batch.rows;
        this.inflight.push({ ...sent, sentAt: now });
        this.sentUpTo[batch.prio] = batch.to;
        this.counters.batchesSent++;
        this.counters.itemsSent += batch.rows;
        this.counters.bytesSent += text.length;
        this.channel.publish('alerts', text, { qos: 1 });
      }
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'sync: sending alerts failed');
    } finally {
      this.pumping = false;
    }
  }

  private schedulePump(ms: number): void {
    if (this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, Math.max(1, ms));
  }

  // ---- telemetry ----

  private publishTelemetry(): void {
    if (!this.channel?.connected) return;
    const counts = this.alerts.countsBySeverity();
    const body = {
      at: new Date().toISOString(),
      runningVersion: this.runningInfo(),
      imageVersion: this.image?.version ?? null,
      alertsBySeverity: Object.fromEntries(Object.entries(counts).map(([k, v]) => [SEVERITY_NAMES[Number(k)] ?? k, v])),
      outbox: this.outbox.stats(),
      uptimeSeconds: Math.round(process.uptime()),
      memoryRssBytes: process.memoryUsage.rss(),
    };
    this.channel.publish('telemetry', JSON.stringify(body), { qos: 0, expirySeconds: this.settings.telemetryIntervalSeconds * 2 });
  }
}
