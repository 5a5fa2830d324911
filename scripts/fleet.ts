/**
 * Fleet simulator: N virtual appliances, each running the real sync module (SyncService: channel, envelopes,
 * outbox, commands) with its own certificate and MQTT connection, against one broker. No kernel: the firewall is a
 * stand-in that validates the document with the real validator and keeps the real version journal (in memory).
 *
 *   node --import tsx scripts/fleet.ts [--devices N] [--json]
 *
 * Starts its own Mosquitto (loopback, free port, config from `rampart-mssp broker-config`), enrolls N devices,
 * connects them (random start delay), pushes one signed config to all and times the `applied` reports, then
 * restarts the broker and records the reconnect storm (connects per 250 ms), spread by the jittered backoff.
 */
import { EventEmitter } from 'node:events';
import { cpus } from 'node:os';
import pino from 'pino';
import { AlertStore } from '../services/core/alerts.ts';
import { EventBus } from '../services/core/events.ts';
import { RampartError } from '../services/core/errors.ts';
import { Store, type VersionRecord, type VersionSource } from '../services/core/store.ts';
import { parseConfig } from '../services/core/validate.ts';
import { connectBackend, push } from '../services/mssp/backend.ts';
import type { MsspHome } from '../services/mssp/home.ts';
import { parseBundle, type Bundle } from '../services/sync/enroll.ts';
import { SyncService, type SyncFirewall } from '../services/sync/service.ts';
import { broker, freePort, tempHome, waitFor } from '../test/fixtures/sync/harness.ts';

/** The firewall's journal semantics without a kernel: apply (with confirm window), confirm, rollback, revert. */
export class SimFirewall implements SyncFirewall {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
  ) {}

  async apply(req: { document: unknown; author: string; source: VersionSource; message?: string; confirmSeconds?: number }): Promise<VersionRecord> {
    if (this.store.pendingVersion()) throw new RampartError('conflict', 'a change is waiting for confirmation');
    parseConfig(req.document);
    const previous = this.store.runningVersionMeta();
    const confirm = req.confirmSeconds;
    const v = this.store.addVersion({ ...req, state: confirm ? 'pending_confirm' : 'applied' });
    const now = new Date();
    this.store.updateVersion(v.version, { appliedAt: now.toISOString(), confirmDeadline: confirm ? new Date(now.getTime() + confirm * 1000).toISOString() : null });
    if (previous && !confirm) this.store.updateVersion(previous.version, { state: 'superseded' });
    if (confirm) {
      this.timer = setTimeout(() => this.revert(v.version, 'not confirmed in time'), confirm * 1000);
      this.timer.unref();
    }
    this.events.emit('config', { type: 'applied', version: v.version, state: confirm ? 'pending_confirm' : 'applied' });
    return this.store.getVersionMeta(v.version)!;
  }

  private revert(version: number, reason: string): void {
    const pending = this.store.pendingVersion();
    if (pending?.version !== version) return;
    const good = this.store.lastGoodVersion(version);
    this.store.updateVersion(version, { state: 'reverted', error: reason, confirmDeadline: null });
    if (good) this.store.updateVersion(good.version, { state: 'applied' });
    this.events.emit('config', { type: 'reverted', version, back: good?.version, reason });
  }

  async confirm(): Promise<VersionRecord> {
    const pending = this.store.pendingVersion();
    if (!pending) throw new RampartError('conflict', 'no change is waiting for confirmation');
    clearTimeout(this.timer);
    const prev = this.store.lastGoodVersion(pending.version);
    this.store.updateVersion(pending.version, { state: 'applied', confirmDeadline: null });
    if (prev && prev.state === 'applied') this.store.updateVersion(prev.version, { state: 'superseded' });
    this.events.emit('config', { type: 'confirmed', version: pending.version, state: 'applied' });
    return this.store.getVersion(pending.version)!;
  }

  async rollback(opts: { version?: number; author: string; source: VersionSource }): Promise<VersionRecord> {
    const pending = this.store.pendingVersion();
    if (pending && opts.version === undefined) {
      this.revert(pending.version, `rolled back by ${opts.author}`);
      return this.store.getVersion(pending.version)!;
    }
    const running = this.store.runningVersion();
    const target = opts.version !== undefined ? this.store.getVersion(opts.version) : running && this.store.lastGoodVersion(running.version);
    if (!target) throw new RampartError('not_found', 'no earlier version to roll back to');
    return this.apply({ document: target.document, author: opts.author, source: opts.source, message: `rollback to version ${target.version}` });
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

export interface SimAppliance {
  bundle: Bundle;
  store: Store;
  events: EventBus;
  alerts: AlertStore;
  sync: SyncService;
  stop(): Promise<void>;
}

const quiet = pino({ level: process.env.RAMPART_LOG_LEVEL ?? 'silent' });

/** One virtual appliance: in-memory SQLite, the real SyncService, a simulated firewall. */
export async function startAppliance(bundle: unknown, opts: { startDelayMaxMs?: number; confirmSeconds?: number; telemetryIntervalSeconds?: number; minBackoffMs?: number; maxBackoffMs?: number; dbPath?: string; start?: boolean } = {}): Promise<SimAppliance> {
  const b = parseBundle(bundle);
  const store = new Store(opts.dbPath ?? ':memory:');
  const events = new EventBus(quiet);
  const alerts = new AlertStore(store, events);
  const firewall = new SimFirewall(store, events);
  const sync = new SyncService({
    store,
    firewall,
    events,
    alerts,
    bundle: b,
    log: quiet,
    settings: { enabled: true, confirmSeconds: opts.confirmSeconds ?? 30, telemetryIntervalSeconds: opts.telemetryIntervalSeconds ?? 60 },
    channel: { startDelayMaxMs: opts.startDelayMaxMs ?? 0, minBackoffMs: opts.minBackoffMs ?? 500, maxBackoffMs: opts.maxBackoffMs ?? 30_000 },
  });
  store.open();
  if (opts.start !== false) await sync.start();
  return {
    bundle: b,
    store,
    events,
    alerts,
    sync,
    async stop() {
      await sync.stop();
      firewall.stop();
      store.close();
    },
  };
}

/** Enroll N devices with bounded parallelism (openssl makes each certificate). */
export async function enrollMany(home: MsspHome, tenant: string, names: string[], parallel = Math.max(2, cpus().length * 2)): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = new Array(names.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < names.length) {
        const i = next++;
        out[i] = await home.enroll(tenant, names[i]);
      }
    }),
  );
  return out;
}

export interface FleetResult {
  devices: number;
  enrollSeconds: number;
  connectSeconds: number;
  pushToAllAppliedSeconds: number | null;
  applied: number;
  reportStates: Record<string, number>;
  reconnect: { seconds: number | null; reconnected: number; curve: { tMs: number; connects: number }[]; peakPer250ms: number };
  rssMb: number;
}

/** The fleet run: enroll, connect, push to all, broker restart. */
export async function runFleet(n: number, progress: (m: string) => void = () => {}): Promise<FleetResult> {
  const port = await freePort();
  const { home, cleanup } = await tempHome(port);
  const b = broker(home, { port });
  const fleet: SimAppliance[] = [];
  let be: Awaited<ReturnType<typeof connectBackend>> | undefined;
  try {
    await b.start();
    const names = Array.from({ length: n }, (_, i) => `d${String(i).padStart(5, '0')}`);
    let t0 = performance.now();
    const bundles = await enrollMany(home, 'fleet', names);
    const enrollSeconds = (performance.now() - t0) / 1000;
    progress(`enrolled ${n} devices in ${enrollSeconds.toFixed(1)} s`);
    t0 = performance.now();
    // A long confirm window: on a loaded machine the 1,000 fresh connections that prove reachability take a while.
    for (const bundle of bundles) fleet.push(await startAppliance(bundle, { startDelayMaxMs: Math.min(10_000, n * 5), confirmSeconds: 120 }));
    await waitFor(() => fleet.every((a) => a.sync.connected), 120_000, `${n} devices connected`);
    const connectSeconds = (performance.now() - t0) / 1000;
    progress(`connected in ${connectSeconds.toFixed(1)} s`);

    be = await connectBackend(home);
    const applied = new Set<string>();
    const lastState = new Map<string, string>();
    const reports = new EventEmitter();
    be.on('message', (topic, payload) => {
      const m = /^rampart\/v1\/fleet\/([^/]+)\/reported$/.exec(topic);
      if (!m) return;
      try {
        const r = JSON.parse(payload.toString());
        if (r.version === 1) lastState.set(m[1], r.state);
        if (r.state === 'applied' && r.version === 1) applied.add(m[1]);
        reports.emit('r');
      } catch {
        /* ignore */
      }
    });
    await be.subscribeAsync('rampart/v1/fleet/+/reported', { qos: 1 });
    const doc = { schema: 1, system: { hostname: 'fleet' }, zones: [{ name: 'lan' }], interfaces: [{ name: 'lan', device: 'lan0', zone: 'lan', addresses: ['192.0.2.1/24'] }] };
    t0 = performance.now();
    await Promise.all(names.map((d) => push(home, be!, { tenant: 'fleet', device: d, config: doc, version: 1 })));
    let pushSeconds: number | null = null;
    try {
      await waitFor(() => applied.size === n, 150_000, 'all applied');
      pushSeconds = (performance.now() - t0) / 1000;
    } catch {
      /* reported below as partial */
    }
    const states: Record<string, number> = {};
    for (const st of lastState.values()) states[st] = (states[st] ?? 0) + 1;
    progress(`push to all: ${applied.size}/${n} applied${pushSeconds !== null ? ` in ${pushSeconds.toFixed(2)} s` : ''} (last reports: ${JSON.stringify(states)})`);

    // Reconnect storm: restart the broker and count connects over time.
    const connectTimes: number[] = [];
    for (const a of fleet) a.events.on('sync', (e) => e.state === 'connected' && connectTimes.push(performance.now()));
    await b.stop();
    await waitFor(() => fleet.every((a) => !a.sync.connected), 60_000, 'all devices see the broker gone');
    const restart = performance.now();
    await b.start();
    let reconnectSeconds: number | null = null;
    try {
      await waitFor(() => fleet.every((a) => a.sync.connected), 180_000, 'all reconnected');
      reconnectSeconds = (performance.now() - restart) / 1000;
    } catch {
      /* partial */
    }
    const buckets = new Map<number, number>();
    for (const t of connectTimes) {
      const k = Math.max(0, Math.floor((t - restart) / 250));
      buckets.set(k, (buckets.get(k) ?? 0) + 1);
    }
    const last = Math.max(0, ...buckets.keys());
    const curve = Array.from({ length: last + 1 }, (_, k) => ({ tMs: k * 250, connects: buckets.get(k) ?? 0 }));
    progress(`reconnect storm: ${connectTimes.length} connects, all back in ${reconnectSeconds?.toFixed(1) ?? 'n/a'} s`);
    return {
      devices: n,
      enrollSeconds,
      connectSeconds,
      pushToAllAppliedSeconds: pushSeconds,
      applied: applied.size,
      reportStates: states,
      reconnect: { seconds: reconnectSeconds, reconnected: connectTimes.length, curve, peakPer250ms: Math.max(0, ...curve.map((c) => c.connects)) },
      rssMb: process.memoryUsage.rss() / 1e6,
    };
  } finally {
    await be?.endAsync().catch(() => {});
    await Promise.all(fleet.map((a) => a.stop().catch(() => {})));
    await b.stop();
    cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--devices');
  const n = i >= 0 ? Number(args[i + 1]) : 100;
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    process.stderr.write('usage: fleet.ts [--devices N (1-10000)] [--json]\n');
    process.exit(2);
  }
  runFleet(n, (m) => process.stderr.write(`fleet: ${m}\n`)).then(
    (r) => {
      if (args.includes('--json')) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        process.stdout.write(
          `fleet: ${r.devices} devices; push to all → ${r.applied} applied in ${r.pushToAllAppliedSeconds?.toFixed(2) ?? 'n/a'} s; ` +
            `broker restart → all back in ${r.reconnect.seconds?.toFixed(1) ?? 'n/a'} s, peak ${r.reconnect.peakPer250ms} connects/250 ms\n`,
        );
        process.stdout.write(`connect-rate curve (per 250 ms): ${r.reconnect.curve.map((c) => c.connects).join(' ')}\n`);
      }
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`fleet: ${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
