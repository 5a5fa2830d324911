/**
 * rss-idle: resident memory of an idle rampartd (started with lab.json, sampled once its control socket answers and
 * 2 s of idleness have passed; the max of a few samples) against an idle bare Node process as the baseline.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { labDoc } from './configs.ts';
import { removeTempDir, round, rssMb, sleep, startRampartd, tempDir, trackPid, untrackPid, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';

const IDLE_MS = 2000;
const SAMPLES = 5;
const SAMPLE_EVERY_MS = 200;
const TARGET = { maxValue: 100 };

async function sample(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i) await sleep(SAMPLE_EVERY_MS);
    out.push(rssMb(pid));
  }
  return out;
}

export async function rssBench(ctx: BenchContext): Promise<Result> {
  const dir = tempDir('rss');
  let daemonSamples: number[];
  let startMs: number;
  const t0 = performance.now();
  const daemon = await startRampartd({ netns: ctx.lab.fw, config: labDoc(), dataDir: join(dir, 'data') });
  try {
    startMs = performance.now() - t0;
    await sleep(IDLE_MS);
    daemonSamples = await sample(daemon.pid);
  } finally {
    await daemon.stop();
    removeTempDir(dir);
  }
  ctx.progress(`rampartd: ${daemonSamples.map((x) => x.toFixed(1)).join(', ')} MB`);

  const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  trackPid(bare.pid, 'bare node');
  const exited = new Promise<void>((r) => bare.once('exit', () => r()));
  let bareSamples: number[];
  try {
    await sleep(IDLE_MS);
    bareSamples = await sample(bare.pid!);
  } finally {
    bare.kill('SIGTERM');
    await exited;
    untrackPid(bare.pid);
  }
  ctx.progress(`bare node: ${bareSamples.map((x) => x.toFixed(1)).join(', ')} MB`);

  const value = Math.max(...daemonSamples);
  const baseline = Math.max(...bareSamples);
  return {
    name: 'rss-idle',
    value,
    baseline,
    ratio: value / baseline,
    target: TARGET,
    pass: value <= TARGET.maxValue,
    unit: 'MB',
    details: {
      daemonSamplesMb: daemonSamples.map((x) => round(x, 1)),
      bareNodeSamplesMb: bareSamples.map((x) => round(x, 1)),
      idleSecondsBeforeSampling: IDLE_MS / 1000,
      daemonStartSeconds: round(startMs / 1000),
      config: 'system/examples/lab.json',
      note: 'MB = MiB (VmRSS kB / 1024); max of the samples',
    },
  };
}
