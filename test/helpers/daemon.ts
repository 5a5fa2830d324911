/**
 * Run rampartd for a test: a fresh data directory, the daemon managing a lab's firewall namespace, started through
 * the real CLI (`bin/rampart serve`) and stopped by its PID. `cli()` runs `bin/rampart` against it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { callDaemon } from '../../services/control.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/rampart');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestDaemon {
  dataDir: string;
  netns?: string;
  pid: number;
  /** Run `rampart --data DIR [--netns NS] ...args`. */
  cli(args: string[], input?: string): Promise<CliResult>;
  call(method: string, params?: unknown): Promise<any>;
  /** Write a config document to a temp file and return its path. */
  file(doc: unknown, name?: string): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Kill -9 and wait for exit (the data dir is kept). */
  crash(): Promise<void>;
  /** Start again on the same data dir. */
  restart(extra?: string[]): Promise<void>;
  cleanup(): Promise<void>;
}

export async function runCli(args: string[], input?: string): Promise<CliResult> {
  const r = await execa(BIN, args, { reject: false, input, env: { RAMPART_LOG_LEVEL: 'warn' } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
export { waitFor };

export async function startDaemon(opts: { netns?: string; config?: unknown; dataDir?: string; extra?: string[] } = {}): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'rampart-test-'));
  const files: string[] = [];
  const base = ['--data', dataDir, ...(opts.netns ? ['--netns', opts.netns] : [])];
  let child: ChildProcess | undefined;
  let logs = '';

  const launch = async (extra: string[]) => {
    child = spawn(BIN, [...base, 'serve', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RAMPART_LOG_LEVEL: 'info' } });
    child.stdout!.on('data', (d) => (logs += d));
    child.stderr!.on('data', (d) => (logs += d));
    const c = child;
    let exited = false;
    c.once('exit', () => (exited = true));
    try {
      await waitFor(
        async () => {
          if (exited) throw new Error(`rampartd exited at start:\n${logs}`);
          if (!existsSync(join(dataDir, 'rampart.sock'))) return false;
          try {
            await callDaemon(join(dataDir, 'rampart.sock'), 'status', {}, 2000);
            return true;
          } catch {
            return false;
          }
        },
        60_000,
        'rampartd to answer on its control socket',
      );
    } catch (err) {
      // A daemon that did not come up is ended here (by its PID), so the test fails instead of hanging on it.
      if (!exited) {
        const gone = new Promise<void>((r) => c.once('exit', () => r()));
        process.kill(c.pid!, 'SIGKILL');
        await gone;
      }
      throw new Error(`${(err as Error).message}\n--- rampartd log (tail) ---\n${logs.slice(-4000)}`);
    }
  };
  const seedArgs: string[] = [];
  if (opts.config !== undefined) {
    const f = join(dataDir, 'seed.json');
    writeFileSync(f, JSON.stringify(opts.config));
    seedArgs.push('--config', f);
  }
  await launch([...seedArgs, ...(opts.extra ?? [])]);

  const waitExit = (c: ChildProcess) =>
    new Promise<void>((res) => {
      if (c.exitCode !== null || c.signalCode !== null) return res();
      c.once('exit', () => res());
    });

  const d: TestDaemon = {
    dataDir,
    netns: opts.netns,
    get pid() {
      return child!.pid!;
    },
    cli: (args, input) => runCli([...base, ...args], input),
    call: (method, params = {}) => callDaemon(join(dataDir, 'rampart.sock'), method, params),
    file(doc, name) {
      const f = join(dataDir, name ?? `cfg-${files.length}.json`);
      writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
      files.push(f);
      return f;
    },
    async stop(signal = 'SIGTERM') {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const c = child;
      process.kill(c.pid!, signal);
      await waitExit(c);
    },
    async crash() {
      if (!child) return;
      const c = child;
      process.kill(c.pid!, 'SIGKILL');
      await waitExit(c);
    },
    async restart(extra = []) {
      await d.stop();
      await launch(extra);
    },
    async cleanup() {
      await d.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return d;
}

/**
 * A daemon managing a scratch network namespace of its own (for tests that need a kernel but no lab hosts).
 * `close()` stops it and removes the namespace.
 */
export async function startScratchDaemon(label: string): Promise<{ ns: string; d: TestDaemon; close(): Promise<void> }> {
  const ns = `${label}-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  let d: TestDaemon | undefined;
  const close = async () => {
    await d?.cleanup();
    await execa('ip', ['netns', 'del', ns], { reject: false });
  };
  try {
    d = await startDaemon({ netns: ns, config: labConfig() });
  } catch (err) {
    await close();
    throw err;
  }
  return { ns, d, close };
}

/** The whole ruleset of a namespace, as text (to prove nothing changed). */
export async function rulesetText(netns: string): Promise<string> {
  const r = await execa('ip', ['netns', 'exec', netns, 'nft', 'list', 'ruleset'], { reject: false });
  return String(r.stdout);
}

/** A deep copy of the lab example configuration. */
export function labConfig(): any {
  return JSON.parse(JSON.stringify(LAB));
}
import LAB from '../../system/examples/lab.json' with { type: 'json' };
