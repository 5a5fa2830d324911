/**
 * sync-drain: drain a 100,000-alert backlog from the outbox to the consumer (`rampart-mssp consume` code: stores in
 * SQLite, dedupes by id, acks each batch) through a real Mosquitto with TLS. Baseline, side by side on the same
 * broker and consumer: raw MQTT.js publishing of the same batches (same JSON, same sizes) with the same device
 * certificate and no outbox. Both are timed from the device's first connect to the last alert stored at the
 * consumer. Targets: ratio (outbox alerts/s ÷ raw alerts/s) ≥ 0.7 and ≥ 10,000 alerts/s.
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
  const runs = ctx.runs ?? 2;
  const port = await freePort();
  const { home, cleanup } = await tempHome(port);
  const b = broker(home, { port });
  const work = mkdtempSync(join(tmpdir(), 'rampart-bench-sync-'));
  const outboxRates: number[] = [];
  const rawRates: number[] = [];
  let bytesPerAlert = 0;
  let rawBytesPerAlert = 0;
  await b.start();
  const consumer = await consume(home);
  const stored = (device: string) => (home.sql.prepare('SELECT COUNT(*) AS n FROM alerts WHERE device = ?').get(device) as { n: number }).n;
  try {
    for (let r = 0; r < runs; r++) {
      // Outbox: the backlog is already in the outbox (as after an outage); time connect + drain + acks.
      {
        const device = `ob${r}`;
        const dev = await startAppliance(await home.enroll('bench', device), { dbPath: join(work, `${device}.db`), start: false });
        for (let i = 0; i < N; i += 5000) dev.alerts.add(alertsFor(device).slice(i, i + 5000));
        new Outbox(dev.store).catchUp(dev.alerts, N);
        const t0 = performance.now();
        await dev.sync.start();
        await waitFor(() => stored(device) >= N, 300_000, 'outbox drained');
        const s = (performance.now() - t0) / 1000;
        outboxRates.push(N / s);
        bytesPerAlert = dev.sync.counters.bytesSent / dev.sync.counters.itemsSent;
        ctx.progress(`outbox: ${N} alerts in ${s.toFixed(2)} s (${Math.round(N / s)} /s), ${dev.sync.counters.batchesSent} batches`);
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
          const slice = items.slice(i, i + BATCH).map((a, j) => ({ seq: i + j + 1, ...a }));
          const text = JSON.stringify({ seqFrom: i + 1, seqTo: i + slice.length, count: slice.length, alerts: slice });
          bytes += text.length;
          batches.push(text);
        }
        rawBytesPerAlert = bytes / N;
        const t0 = performance.now();
        const c = await mqtt.connectAsync(bundle.broker, { ca: bundle.ca, cert: bundle.cert, key: bundle.key, protocolVersion: 5, clientId: `raw-${device}`, reconnectPeriod: 0 });
        await Promise.all(batches.map((text) => c.publishAsync(`rampart/v1/bench/${device}/alerts`, text, { qos: 1 })));
        await waitFor(() => stored(device) >= N, 300_000, 'raw batches stored');
        const s = (performance.now() - t0) / 1000;
        rawRates.push(N / s);
        ctx.progress(`raw MQTT.js: ${N} alerts in ${s.toFixed(2)} s (${Math.round(N / s)} /s)`);
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
      minAlertsPerSecond: MIN_RATE,
      payloadBytesPerAlert: Math.round(bytesPerAlert),
      rawPayloadBytesPerAlert: Math.round(rawBytesPerAlert),
    },
  };
}
