/**
 * ids-ingest: 1,000,000 EVE alert lines (~930 bytes each) from a file into the alert store through the EVE tailer,
 * against the baseline of reading the same file in 1 MiB chunks, splitting lines and `JSON.parse` of every line.
 * Each side runs in a child process of its own (so the RSS figure is the ingest's alone), alternating, medians.
 * Targets: ingest lines/s ÷ baseline lines/s ≥ 0.6; peak RSS of the ingest ≤ 200 MB.
 *
 * Every line is an alert: the worst case for the ingest (each one becomes a row of ~1.2 kB with its raw event),
 * not a typical EVE file, where flow, dns, http and tls events outnumber alerts by far and are only looked at
 * for their event type. The ingest runs with the daemon's durability (WAL, synchronous = NORMAL, the rows and
 * the file position committed together).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { median, removeTempDir, round, tempDir, trackPid, untrackPid, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';

const LINES = Number(process.env.IDS_BENCH_LINES ?? 1_000_000);
const TARGET = { minRatio: 0.6 };
const MAX_RSS_MB = 200;

/** A deterministic EVE alert line of about 930 bytes (the i-th). */
export function eveLine(i: number): string {
  const ts = new Date(Date.UTC(2026, 0, 1) + i * 7).toISOString().replace('Z', '000+0000');
  const a = 1 + (i % 250);
  const rec = {
    timestamp: ts,
    flow_id: 1_000_000_000_000 + i * 13,
    in_iface: 'wan0',
    event_type: 'alert',
    src_ip: `198.51.100.${a}`,
    src_port: 1024 + (i % 60000),
    dest_ip: '192.0.2.10',
    dest_port: 80,
    proto: 'TCP',
    pkt_src: 'wire/pcap',
    tx_id: 0,
    alert: {
      action: 'allowed',
      gid: 1,
      signature_id: 2_000_000 + (i % 500),
      rev: 3,
      signature: `ET WEB_SERVER Possible attack pattern number ${i % 500} in the request URI`,
      category: 'Web Application Attack',
      severity: 1 + (i % 3),
      metadata: { attack_target: ['Web_Server'], created_at: ['2024_01_01'], signature_severity: ['Major'] },
    },
    http: { hostname: 'www.example.net', http_port: 80, url: `/index.php?id=${i}&q=%27%20OR%201%3D1--`, http_user_agent: 'Mozilla/5.0 (X11; Linux x86_64)', http_method: 'GET', protocol: 'HTTP/1.1', status: 200, length: 5120 },
    app_proto: 'http',
    direction: 'to_server',
    flow: { pkts_toserver: 4, pkts_toclient: 3, bytes_toserver: 517, bytes_toclient: 5731, start: ts, src_ip: `198.51.100.${a}`, dest_ip: '192.0.2.10', src_port: 1024 + (i % 60000), dest_port: 80 },
  };
  return JSON.stringify(rec);
}

function writeEve(path: string, lines: number): number {
  const fd = openSync(path, 'w');
  let bytes = 0;
  let chunk: string[] = [];
  for (let i = 0; i < lines; i++) {
    chunk.push(eveLine(i));
    if (chunk.length === 5000 || i === lines - 1) {
      const s = chunk.join('\n') + '\n';
      bytes += writeSync(fd, s);
      chunk = [];
    }
  }
  closeSync(fd);
  return bytes;
}

/** Write back whatever is pending, so that it does not compete with what is measured next. */
function settleDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

/** The baseline: 1 MiB chunks, line split, JSON.parse of each line. */
function baseline(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  let rest = '';
  let n = 0;
  let sink = 0;
  for (;;) {
    const r = readSync(fd, buf, 0, buf.length, pos);
    if (r === 0) break;
    pos += r;
    const parts = (rest + buf.toString('utf8', 0, r)).split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      if (!l) continue;
      const o = JSON.parse(l);
      sink += o.flow_id & 1;
      n++;
    }
  }
  closeSync(fd);
  if (sink < 0) console.log(sink);
  return n;
}

/** The daemon's modules the ingest uses, loaded before the clock starts (the daemon has them loaded at its start). */
async function ingestModules() {
  const [{ Store }, { AlertStore }, { EveTailer }] = await Promise.all([
    import('../../services/core/store.ts'),
    import('../../services/core/alerts.ts'),
    import('../../services/ids/eve.ts'),
  ]);
  return { Store, AlertStore, EveTailer };
}

async function ingest(path: string, dataDir: string, { Store, AlertStore, EveTailer }: Awaited<ReturnType<typeof ingestModules>>): Promise<number> {
  const store = new Store(join(dataDir, 'rampart.db')).open();
  const alerts = new AlertStore(store);
  const tailer = new EveTailer({ store, alerts, path });
  // Slice after slice, as the daemon reads a backlog (there with a turn of the event loop between slices).
  while (tailer.poll());
  tailer.stop();
  const stored = tailer.counters.stored;
  store.close();
  return stored;
}

/** Child side: `node --import tsx ids-ingest.ts SIDE FILE DATADIR` prints {seconds, lines, maxRssMb}. */
async function child(side: string, file: string, dataDir: string): Promise<void> {
  let maxRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss)), 20);
  // Sampling needs the event loop: the work runs in slices only through its own progress, so also sample at the end.
  const modules = side === 'baseline' ? undefined : await ingestModules();
  const t0 = performance.now();
  const lines = modules ? await ingest(file, dataDir, modules) : baseline(file);
  const seconds = (performance.now() - t0) / 1000;
  maxRss = Math.max(maxRss, process.memoryUsage().rss, (process.resourceUsage().maxRSS ?? 0) * 1024);
  clearInterval(sampler);
  process.stdout.write(JSON.stringify({ seconds, lines, maxRssMb: maxRss / 1048576 }) + '\n');
}

function runSide(side: string, file: string, dataDir: string): Promise<{ seconds: number; lines: number; maxRssMb: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, side, file, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    trackPid(p.pid, `ids-ingest ${side}`);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.on('exit', (code) => {
      untrackPid(p.pid);
      if (code !== 0) return reject(new Error(`ids-ingest ${side} exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch (err) {
        reject(err);
      }
    });
  });
}

export async function idsIngestBench(ctx: BenchContext): Promise<Result> {
  const dir = tempDir('ids-ingest');
  try {
    const file = join(dir, 'eve.json');
    const bytes = writeEve(file, LINES);
    ctx.progress(`${LINES} EVE lines, ${round(bytes / LINES, 0)} bytes each on average`);
    // Each run starts on a quiet disk: the file just written, and each run's database (a gigabyte), would otherwise
    // still be written back while the next run measures.
    settleDisk();
    const runs = ctx.runs ?? 3;
    const base: number[] = [];
    const prod: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < runs; i++) {
      const b = await runSide('baseline', file, dir);
      base.push(b.lines / b.seconds);
      const data = join(dir, `data-${i}`);
      const { mkdirSync } = await import('node:fs');
      mkdirSync(data);
      const r = await runSide('ingest', file, data);
      rmSync(data, { recursive: true, force: true });
      settleDisk();
      if (r.lines !== LINES) throw new Error(`ingest stored ${r.lines} of ${LINES} alerts`);
      prod.push(r.lines / r.seconds);
      rss.push(r.maxRssMb);
      ctx.progress(`run ${i + 1}: baseline ${Math.round(b.lines / b.seconds)} lines/s, ingest ${Math.round(r.lines / r.seconds)} alerts/s, ingest RSS ${r.maxRssMb.toFixed(0)} MB`);
    }
    const value = median(prod);
    const baselineRate = median(base);
    const ratio = value / baselineRate;
    const maxRss = Math.max(...rss);
    return {
      name: 'ids-ingest',
      value,
      baseline: baselineRate,
      ratio,
      target: TARGET,
      pass: ratio >= TARGET.minRatio && maxRss <= MAX_RSS_MB,
      unit: 'lines/s',
      details: { lines: LINES, bytesPerLine: round(bytes / LINES, 0), ingestRssMb: round(maxRss, 1), maxRssMb: MAX_RSS_MB, runs },
    };
  } finally {
    removeTempDir(dir);
  }
}

if (process.argv[1] === import.meta.filename && process.argv.length >= 5) {
  child(process.argv[2], process.argv[3], process.argv[4]).catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
}
