/**
 * sync-drain: drain a 100,000-alert backlog from the outbox to the consumer (`rampart-mssp consume` code: stores in
 * SQLite, dedupes by id, acks each batch) through a real Mosquitto with TLS. Baseline, side by side on the same
 * broker and consumer: raw MQTT.js publishing of the same batches (same alerts, same JSON fields, same sizes: the
 * outbox's `alertSeq` included) with the same device certificate, QoS 1 and no outbox. Both are timed from the
 * device's first connect to the last alert committed by the consumer (its own count, taken as each batch commits,
 * not by polling the consumer's database). Targets: ratio (outbox alerts/s ÷ raw alerts/s) ≥ 0.7 and ≥ 10,000
 * alerts/s. The outbox drains at the daemon's default rate cap (sync.outbox.drainRatePerSecond, 50,000/s).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { consume } from '../../services/mssp/backend.ts';
import { Outbox } from '../../services/sync/outbox.ts';
import { startAppliance } from '../fleet.ts';
import { broker, freePort, tempHome, waitFor } from '../../test/fixtures/sync/harness.ts';
import type { Result } from './lib.ts';
import type { BenchContext } from './run.ts';

const N = Number(process.env.SYNC_BENCH_ALERTS ?? 100_000);
const BATCH = 500;
const TARGET = { minRatio: 0.7 };
const MIN_RATE = 10_000;

function alertsFor(run: string) {
  return Array.from({ length: N }, (_, i) => ({
    id: `${run}-${i}`,
    kind: 'ids' as const,
    at: Date.now(),
    severity: ((i % 4) + 1) as 1 | 2 | 3 | 4,
    signature: 'ET SCAN Suspicious inbound to MSSQL port 1433',
    sid: 2010935,
    category: 'Potentially Bad Traffic',
    src: '198.51.100.20',
    dst: '192.0.2.10',
    proto: 'TCP',
    sport: 40000 + (i % 20000),
    dport: 1433,
    action: 'allowed',
  }));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function syncDrainBench(ctx: BenchContext): Promise<Result> {
  const runs = ctx.runs ?? 3;
  const port = await freePort();
  const { home, cleanup } = await tempHome(port);
  const b = broker(home, { port });
  const work = mkdtempSync(join(tmpdir(), 'rampart-bench-sync-'));
  const outboxRates: number[] = [];
  const rawRates: number[] = [];
  // CPU time of this process (device, raw client and consumer share it; Mosquitto is apart) while each side drains:
  // less sensitive than wall time to other load on a shared machine.
  const outboxCpu: number[] = [];
  const rawCpu: number[] = [];
  const cpuMs = (since: NodeJS.CpuUsage) => {
    const d = process.cpuUsage(since);
    return Math.round((d.user + d.system) / 1000);
  };
  let bytesPerAlert = 0;
  let rawBytesPerAlert = 0;
  await b.start();
  // Resolved by the consumer itself once `target` new alerts are committed (runs are sequential, so the count since
  // a run began is that run's device's).
  let goal: { target: number; done: () => void } | undefined;
  const consumer = await consume(home, {
    onBatch: () => {
      if (goal && consumer.stats.stored >= goal.target) goal.done();
    },
  });
  const storedAll = (what: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 300_000);
      goal = {
        target: consumer.stats.stored + N,
        done: () => {
          clearTimeout(t);
          goal = undefined;
          resolve();
        },
      };
    });
  try {
    for (let r = 0; r < runs; r++) {
      // Outbox: the backlog is already in the outbox (as after an outage); time connect + drain + acks.
      {
        const device = `ob${r}`;
        const dev = await startAppliance(await home.enroll('bench', device), { dbPath: join(work, `${device}.db`), start: false });
        for (let i = 0; i < N; i += 5000) dev.alerts.add(alertsFor(device).slice(i, i + 5000));
        new Outbox(dev.store).catchUp(dev.alerts, N);
        // The store checkpoints its WAL every 2 s: the backlog's own writes (as during the outage) go to the database
        // file now, not in the middle of the timed drain. The drain's writes (deletes) are checkpointed as they come.
        dev.store.checkpoint();
        const drained = storedAll('the outbox drained');
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await dev.sync.start();
        await drained;
        const s = (performance.now() - t0) / 1000;
        outboxCpu.push(cpuMs(c0));
        outboxRates.push(N / s);
        bytesPerAlert = dev.sync.counters.bytesSent / dev.sync.counters.itemsSent;
        ctx.progress(`outbox: ${N} alerts in ${s.toFixed(2)} s (${Math.round(N / s)} /s), ${dev.sync.counters.batchesSent} batches, ${outboxCpu.at(-1)} ms CPU in this process`);
        await waitFor(() => dev.sync.outbox.stats().rows === 0, 60_000, 'acks');
        await dev.stop();
      }
      // Raw MQTT.js: the same batches, pre-built, published as fast as QoS 1 allows.
      {
        const device = `raw${r}`;
        const bundle: any = await home.enroll('bench', device);
        const items = alertsFor(device);
        const batches: string[] = [];
        let bytes = 0;
        for (let i = 0; i < N; i += BATCH) {
          const slice = items.slice(i, i + BATCH).map((a, j) => ({ seq: i + j + 1, ...a, alertSeq: i + j + 1 }));
          const text = JSON.stringify({ seqFrom: i + 1, seqTo: i + slice.length, count: slice.length, alerts: slice });
          bytes += text.length;
          batches.push(text);
        }
        rawBytesPerAlert = bytes / N;
        const drained = storedAll('raw batches stored');
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        const c = await mqtt.connectAsync(bundle.broker, { ca: bundle.ca, cert: bundle.cert, key: bundle.key, protocolVersion: 5, clientId: `raw-${device}`, reconnectPeriod: 0 });
        await Promise.all(batches.map((text) => c.publishAsync(`rampart/v1/bench/${device}/alerts`, text, { qos: 1 })));
        await drained;
        const s = (performance.now() - t0) / 1000;
        rawCpu.push(cpuMs(c0));
        rawRates.push(N / s);
        ctx.progress(`raw MQTT.js: ${N} alerts in ${s.toFixed(2)} s (${Math.round(N / s)} /s), ${rawCpu.at(-1)} ms CPU in this process`);
        await c.endAsync();
      }
    }
  } finally {
    await consumer.stop();
    await b.stop();
    cleanup();
    rmSync(work, { recursive: true, force: true });
  }
  const value = median(outboxRates);
  const baseline = median(rawRates);
  const ratio = value / baseline;
  return {
    name: 'sync-drain',
    value,
    baseline,
    ratio,
    target: TARGET,
    pass: ratio >= TARGET.minRatio && value >= MIN_RATE,
    unit: 'alerts/s',
    details: {
      alerts: N,
      runs,
      outboxRates: outboxRates.map(Math.round),
      rawRates: rawRates.map(Math.round),
      // Each outbox run against the raw run right after it (the ratio above is of the two medians).
      pairRatios: outboxRates.map((v, i) => Math.round((v / rawRates[i]) * 1000) / 1000),
      outboxCpuMs: outboxCpu,
      rawCpuMs: rawCpu,
      minAlertsPerSecond: MIN_RATE,
      payloadBytesPerAlert: Math.round(bytesPerAlert),
      rawPayloadBytesPerAlert: Math.round(rawBytesPerAlert),
    },
  };
}
