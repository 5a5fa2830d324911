/**
 * ids-block-latency: time from an EVE alert line written to eve.json until its source is in the kernel's dynamic
 * block set, in a rampartd managing the bench lab's firewall namespace with the IDS and auto-block on (Suricata
 * runs on wan0; the alert lines are appended by the benchmark, each from a new source address). The kernel side is
 * watched with `nft monitor` (an event per element added). Baseline, side by side: one `nft add element` of an
 * address into a timeout set by a fresh nft process, as seen by the same monitor.
 * Target: median ≤ 100 ms.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { labDoc } from './configs.ts';
import { median, removeTempDir, round, sleep, startRampartd, tempDir, trackPid, untrackPid, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';

const TARGET = { maxValue: 100 };

function alertLine(i: number, src: string): string {
  return JSON.stringify({
    timestamp: new Date().toISOString().replace('Z', '000+0000'),
    flow_id: 7_000_000 + i,
    in_iface: 'wan0',
    event_type: 'alert',
    src_ip: src,
    src_port: 40000 + i,
    dest_ip: '198.51.100.1',
    dest_port: 8080,
    proto: 'TCP',
    alert: { action: 'allowed', gid: 1, signature_id: 9100000, rev: 1, signature: 'bench alert', category: 'Web Application Attack', severity: 1 },
  });
}

/** `nft monitor` in the namespace; resolves an address's wait when its element shows up. */
function monitor(netns: string) {
  const child = spawn('ip', ['netns', 'exec', netns, 'nft', 'monitor', 'elements'], { stdio: ['ignore', 'pipe', 'ignore'] });
  trackPid(child.pid, 'nft monitor');
  const waiting = new Map<string, (t: number) => void>();
  let buf = '';
  child.stdout!.on('data', (d) => {
    const t = performance.now();
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      if (!l.startsWith('add element')) continue;
      for (const [addr, fn] of waiting) {
        if (l.includes(` ${addr} `) || l.includes(`{ ${addr}`)) {
          waiting.delete(addr);
          fn(t);
        }
      }
    }
  });
  return {
    wait(addr: string, timeoutMs = 10_000): Promise<number> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(addr);
          reject(new Error(`${addr} never reached the kernel`));
        }, timeoutMs);
        waiting.set(addr, (t) => {
          clearTimeout(timer);
          resolve(t);
        });
      });
    },
    stop() {
      child.kill('SIGTERM');
      untrackPid(child.pid);
    },
  };
}

export async function idsBlockLatencyBench(ctx: BenchContext): Promise<Result> {
  const dir = tempDir('ids-latency');
  const runs = ctx.runs ?? 30;
  const doc = labDoc();
  doc.ids = { enabled: true, mode: 'ids', interfaces: ['wan'], localRules: ['alert tcp any any -> any 9 (msg:"bench placeholder"; sid:9100001;)'], autoBlock: { enabled: true, maxSeverity: 2, ttlSeconds: 600 } };
  const dataDir = join(dir, 'data');
  const daemon = await startRampartd({ netns: ctx.lab.fw, config: doc, dataDir });
  const mon = monitor(ctx.lab.fw);
  try {
    const eve = join(dataDir, 'suricata', 'eve.json');
    mkdirSync(join(dataDir, 'suricata'), { recursive: true });
    await sleep(300);
    const value: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < runs; i++) {
      const src = `203.0.113.${(i % 250) + 1}`;
      const seen = mon.wait(src);
      const t0 = performance.now();
      appendFileSync(eve, alertLine(i, src) + '\n');
      value.push((await seen) - t0);

      const addr = `192.0.2.${(i % 250) + 1}`;
      const seenBase = mon.wait(addr);
      const t1 = performance.now();
      const nft = spawn('ip', ['netns', 'exec', ctx.lab.fw, 'nft', 'add', 'element', 'inet', 'rampart_blocks', 'b4h', `{ ${addr} timeout 1s }`], { stdio: 'ignore' });
      // Listen for the exit now: the process may well be gone by the time the monitor has reported the element.
      const exited = new Promise((r) => nft.once('exit', r));
      base.push((await seenBase) - t1);
      await exited;
      await sleep(20);
    }
    const v = median(value);
    const b = median(base);
    ctx.progress(`alert → kernel median ${v.toFixed(1)} ms (p90 ${[...value].sort((x, y) => x - y)[Math.floor(runs * 0.9)].toFixed(1)} ms); nft add element ${b.toFixed(1)} ms`);
    return {
      name: 'ids-block-latency',
      value: v,
      baseline: b,
      ratio: v / b,
      target: TARGET,
      pass: v <= TARGET.maxValue,
      unit: 'ms',
      details: { runs, samplesMs: value.map((x) => round(x, 1)), baselineSamplesMs: base.map((x) => round(x, 1)) },
    };
  } finally {
    mon.stop();
    await daemon.stop();
    removeTempDir(dir);
  }
}
