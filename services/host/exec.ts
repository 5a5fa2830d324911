/**
 * The only place in Rampart that spawns system commands. Arguments are always argv arrays (never a shell string);
 * when a network namespace is configured, kernel-facing commands run inside it through `ip netns exec`.
 */
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { rm } from 'node:fs/promises';
import { RampartError } from '../core/errors.ts';

export interface RunOptions {
  /** Network namespace to run in (undefined: the current one). */
  netns?: string;
  /** Data written to the command's stdin. */
  input?: string;
  /** Milliseconds before the command is killed. */
  timeoutMs?: number;
  /** Return instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const NETNS_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkNetnsName(name: string): string {
  if (!NETNS_RE.test(name)) throw new RampartError('invalid_input', `invalid network namespace name: ${JSON.stringify(name)}`);
  return name;
}

export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', checkNetnsName(opts.netns), cmd, ...args]] : [cmd, [...args]];
  let res;
  try {
    res = await execa(file, argv, {
      input: opts.input,
      timeout: opts.timeoutMs ?? 120_000,
      reject: false,
      stripFinalNewline: false,
      maxBuffer: 512 * 1024 * 1024,
      env: { LC_ALL: 'C' },
    });
  } catch (err) {
    throw new RampartError('system', `cannot run ${cmd}: ${(err as Error).message}`);
  }
  if (res.failed && res.exitCode === undefined) {
    throw new RampartError('system', `cannot run ${cmd}: ${res.shortMessage ?? 'failed to start'}`);
  }
  const out = { stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? ''), exitCode: res.exitCode ?? -1 };
  if (out.exitCode !== 0 && !opts.allowFailure) {
    throw new RampartError('system', `${cmd} ${args.slice(0, 3).join(' ')} failed (exit ${out.exitCode}): ${out.stderr.trim().slice(0, 2000)}`);
  }
  return out;
}

/**
 * Start a long-running child (a supervised engine such as Suricata), argv only, inside the namespace when given
 * (`ip netns exec` replaces itself with the command, so the PID is the command's). Output is piped to the caller;
 * with `stdin`, so is its input (a helper fed line by line); `env` adds variables to the inherited environment.
 */
export function spawnChild(
  cmd: string,
  args: readonly string[],
  opts: { netns?: string; stdin?: boolean; env?: Record<string, string> } = {},
): ChildProcess {
  const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', checkNetnsName(opts.netns), cmd, ...args]] : [cmd, [...args]];
  return spawn(file, argv, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', ...opts.env } });
}

/** The project's root folder (where package.json is), from the sources or from the build. */
export function projectRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The netlink set-element helper built by scripts/bootstrap, if it is there. */
export function setelemHelper(): string | undefined {
  const path = join(projectRoot(), 'build', 'bin', 'rampart-setelem');
  return existsSync(path) ? path : undefined;
}

/** The netlink counter reader built by scripts/bootstrap (services/host/native/counters.c), if it is there. */
export function countersHelper(): string | undefined {
  const path = join(projectRoot(), 'build', 'bin', 'rampart-counters');
  return existsSync(path) ? path : undefined;
}

/** A command runner bound to one namespace. */
export class Host {
  constructor(readonly netns?: string) {
    if (netns) checkNetnsName(netns);
  }

  run(cmd: string, args: readonly string[], opts: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
    return run(cmd, args, { ...opts, netns: this.netns });
  }

  /**
   * Load an nft script; `check` runs `nft -c` (nothing changes). With `viaFile`, the script is written to that path
   * first and nft reads it there, so the caller's thread is free while nft works (stdin would wait for it).
   */
  async nft(script: string, opts: { check?: boolean; allowFailure?: boolean; viaFile?: string } = {}): Promise<RunResult> {
    const flags = opts.check ? ['-c', '-f'] : ['-f'];
    if (!opts.viaFile) return this.run('nft', [...flags, '-'], { input: script, allowFailure: opts.allowFailure });
    // Written synchronously so that nft is already running when this call returns its promise.
    writeFileSync(opts.viaFile, script, { mode: 0o600 });
    try {
      return await this.run('nft', [...flags, opts.viaFile], { allowFailure: opts.allowFailure });
    } finally {
      await rm(opts.viaFile, { force: true });
    }
  }
}
