/**
 * Shared pieces of the benchmarks: timed child processes, medians, RSS sampling, and bookkeeping of every process,
 * temporary directory and namespace the run creates, so that an interrupted run leaves nothing behind.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { callDaemon } from '../../services/control.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/rampart');
/** One lab per run (the process id in the prefix), so two runs on one machine never share or tear down each other's lab. */
export const LAB_PREFIX = `bench${process.pid % 1_000_000}`;

export interface Target {
  /** Upper bound of value/baseline. */
  maxRatio?: number;
  /** Lower bound of value/baseline. */
  minRatio?: number;
  /** Upper bound of value, in `unit`. */
  maxValue?: number;
}

export interface Result {
  name: string;
  value: number | null;
  baseline: number | null;
  ratio: number | null;
  target: Target;
  pass: boolean;
  unit: string;
  details: Record<string, unknown>;
  error?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Cleanup bookkeeping.

const children = new Map<number, string>();
const tempDirs = new Set<string>();
const namespaces = new Set<string>();

/** Remember a process this run started, so it can be ended (by its PID) if the run is interrupted. */
export function trackPid(pid: number | undefined, what: string): void {
  if (pid) children.set(pid, what);
}
export function untrackPid(pid: number | undefined): void {
  if (pid) children.delete(pid);
}
export function trackNamespaces(names: string[]): void {
  for (const n of names) namespaces.add(n);
}
export function untrackNamespaces(names: string[]): void {
  for (const n of names) namespaces.delete(n);
}

export function tempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `rampart-bench-${label}-`));
  tempDirs.add(d);
  return d;
}
export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

/** Synchronous last-resort cleanup: our processes by PID, our namespaces, our temp dirs. */
export function emergencyCleanup(): void {
  for (const pid of children.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  namespaces.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

// ---------------------------------------------------------------------------------------------------------------
// Processes.

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run a command and measure its wall time from just before spawn() to its exit. `stdinFile` is opened and handed
 * over as the child's stdin (like `cmd < FILE`), so the parent does no piping inside the measurement.
 */
export function timed(
  cmd: string,
  args: string[],
  opts: { stdinFile?: string; stdoutFile?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Timed> {
  const fd = opts.stdinFile ? openSync(opts.stdinFile, 'r') : undefined;
  const out = opts.stdoutFile ? openSync(opts.stdoutFile, 'w') : undefined;
  const stdio: StdioOptions = [fd ?? 'ignore', out ?? 'pipe', 'pipe'];
  const closeFds = () => {
    if (fd !== undefined) closeSync(fd);
    if (out !== undefined) closeSync(out);
  };
  return new Promise((resolveP, reject) => {
    const t0 = performance.now();
    let t1 = 0;
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio, env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT });
    } catch (err) {
      closeFds();
      return reject(err);
    }
    closeFds();
    trackPid(child.pid, `${cmd} ${args.join(' ')}`.slice(0, 80));
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout.length < 256_000_000 ? (stdout += d) : undefined));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr.length < 1_000_000 ? (stderr += d) : undefined));
    child.once('exit', () => (t1 = performance.now()));
    child.once('error', (err) => {
      untrackPid(child.pid);
      reject(err);
    });
    child.once('close', (code) => {
      untrackPid(child.pid);
      resolveP({ ms: (t1 || performance.now()) - t0, code, stdout, stderr });
    });
  });
}

/** Like timed(), but throws with the command's stderr when it exits non-zero. */
export async function mustRun(cmd: string, args: string[], opts: Parameters<typeof timed>[2] = {}): Promise<Timed> {
  const r = await timed(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 1500)}`);
  return r;
}

/** `rampart` as an operator runs it: bin/rampart with the benchmark's data dir and namespace. */
export function rampartArgs(dataDir: string, netns: string, args: string[]): string[] {
  return ['--data', dataDir, '--netns', netns, ...args];
}
export const CLI_ENV: NodeJS.ProcessEnv = { ...process.env, RAMPART_LOG_LEVEL: 'warn' };

/** nft inside a namespace, as an administrator would run it. */
export function nftIn(netns: string, args: string[], opts: Parameters<typeof timed>[2] = {}): Promise<Timed> {
  return mustRun('ip', ['netns', 'exec', netns, 'nft', ...args], opts);
}

// ---------------------------------------------------------------------------------------------------------------
// Numbers.

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
export const secs = (ms: number) => round(ms / 1000, 3);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Time a synchronous function `runs` times in this process; returns the milliseconds of each run. */
export function timeSync(runs: number, fn: () => unknown): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** VmRSS of a process in MB (MiB), from /proc/PID/status. */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for PID ${pid}`);
  return Number(m[1]) / 1024;
}

/** Whether bin/rampart runs the compiled build (true) or falls back to TypeScript through tsx (false). */
export function buildIsCurrent(): boolean {
  let stamp: number;
  try {
    stamp = statSync(join(ROOT, 'build/.stamp')).mtimeMs;
  } catch {
    return false;
  }
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return newer(p);
      return e.name.endsWith('.ts') && statSync(p).mtimeMs > stamp;
    });
  return !newer(join(ROOT, 'services'));
}

// ---------------------------------------------------------------------------------------------------------------
// The daemon.

export interface Rampartd {
  pid: number;
  dataDir: string;
  sock: string;
  /** Output of the daemon so far (its JSON log lines). */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Start `rampart --data DIR --netns NS serve --config FILE` (bin/rampart, as an operator would) and wait until its
 * control socket answers. Its PID is tracked from the moment it exists; on any failure it is ended.
 */
export async function startRampartd(opts: { dataDir: string; netns: string; config: unknown; timeoutMs?: number }): Promise<Rampartd> {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const seed = join(opts.dataDir, 'seed.json');
  writeFileSync(seed, JSON.stringify(opts.config));
  const sock = join(opts.dataDir, 'rampart.sock');
  const child = spawn(BIN, rampartArgs(opts.dataDir, opts.netns, ['serve', '--config', seed]), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RAMPART_LOG_LEVEL: 'info' },
    cwd: ROOT,
  });
  const pid = child.pid!;
  trackPid(pid, 'rampartd');
  let logs = '';
  const keep = (d: Buffer) => {
    if (logs.length < 10_000_000) logs += d;
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    untrackPid(pid);
  });
  const stop = async () => {
    if (!gone) process.kill(pid, 'SIGTERM');
    const t = setTimeout(() => !gone && process.kill(pid, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (gone) throw new Error(`rampartd exited at start:\n${logs.slice(-3000)}`);
      if (existsSync(sock)) {
        try {
          await callDaemon(sock, 'status', {}, 5000);
          break;
        } catch {
          /* not yet */
        }
      }
      if (Date.now() > deadline) throw new Error(`rampartd did not answer on its control socket within ${opts.timeoutMs ?? 60_000} ms:\n${logs.slice(-3000)}`);
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid, dataDir: opts.dataDir, sock, logs: () => logs, stop };
}

// ---------------------------------------------------------------------------------------------------------------
// Phases of a request inside the daemon, seen from outside.

export interface ChildSpan {
  pid: number;
  cmd: string;
  /** Milliseconds from the start of the traced call to when the child was first / last seen. */
  from: number;
  to: number;
}

function childrenOf(pid: number): number[] {
  let out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out = out.concat(text.split(/\s+/).map(Number));
    }
  } catch {
    /* the process or a thread is gone */
  }
  return out;
}

/**
 * Run `fn` while watching the daemon's child processes every ~2 ms: gives when each child (nft) started and ended
 * relative to the call's start, so a call splits into "before nft", "nft" and "after nft". Used only on extra,
 * unmeasured runs, since the polling costs a little CPU.
 */
export async function traceChildren<T>(daemonPid: number, fn: () => Promise<T>): Promise<{ result: T; ms: number; spans: ChildSpan[] }> {
  const spans = new Map<number, ChildSpan>();
  const t0 = performance.now();
  const poll = () => {
    const now = performance.now() - t0;
    for (const pid of childrenOf(daemonPid)) {
      // Read the command line every time: right after fork it is still the daemon's own, until exec.
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      } catch {
        /* gone */
      }
      const s = spans.get(pid);
      if (!s) spans.set(pid, { pid, cmd, from: now, to: now });
      else {
        s.to = now;
        if (cmd) s.cmd = cmd;
      }
    }
  };
  const timer = setInterval(poll, 2);
  try {
    const result = await fn();
    const ms = performance.now() - t0;
    return { result, ms, spans: [...spans.values()].sort((a, b) => a.from - b.from) };
  } finally {
    clearInterval(timer);
  }
}

/** Split a traced call at its (longest) nft child: before, during, after, in seconds. */
export function nftPhases(trace: { ms: number; spans: ChildSpan[] }): { total: number; beforeNft: number; nft: number; afterNft: number } | undefined {
  // nft, or the netlink helper that writes dynamic blocks instead of it.
  const nft = trace.spans.filter((s) => /(^|[ /])(nft|rampart-setelem) /.test(` ${s.cmd} `)).sort((a, b) => b.to - b.from - (a.to - a.from))[0];
  if (!nft) return undefined;
  return { total: secs(trace.ms), beforeNft: secs(nft.from), nft: secs(nft.to - nft.from), afterNft: secs(trace.ms - nft.to) };
}
