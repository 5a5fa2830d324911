/**
 * The only place in Rampart that spawns system commands. Arguments are always argv arrays (never a shell string);
 * when a network namespace is configured, kernel-facing commands run inside it through `ip netns exec`.
 */
import { execa, type ResultPromise } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, lstatSync, openSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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

/** Start `cmd` (inside the namespace when given) with the options every command here runs with. */
function start(cmd: string, args: readonly string[], opts: Omit<RunOptions, 'allowFailure'>): ResultPromise {
  const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', checkNetnsName(opts.netns), cmd, ...args]] : [cmd, [...args]];
  try {
    return execa(file, argv, {
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
}

/** What a started command came to: its output and exit code (an error when it could not run, or failed unasked). */
async function outcome(cmd: string, args: readonly string[], child: ResultPromise, allowFailure?: boolean): Promise<RunResult> {
  let res;
  try {
    res = await child;
  } catch (err) {
    throw new RampartError('system', `cannot run ${cmd}: ${(err as Error).message}`);
  }
  if (res.failed && res.exitCode === undefined) {
    throw new RampartError('system', `cannot run ${cmd}: ${res.shortMessage ?? 'failed to start'}`);
  }
  const out = { stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? ''), exitCode: res.exitCode ?? -1 };
  if (out.exitCode !== 0 && !allowFailure) {
    throw new RampartError('system', `${cmd} ${args.slice(0, 3).join(' ')} failed (exit ${out.exitCode}): ${out.stderr.trim().slice(0, 2000)}`);
  }
  return out;
}

export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return outcome(cmd, args, start(cmd, args, opts), opts.allowFailure);
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

/** An nft transaction whose end is held back (Host.nftHeld). */
export interface HeldNftTransaction {
  /** Hand nft the rest (at once: nft has the whole script when this returns); settles with nft's result. */
  release(): Promise<RunResult>;
  /** Give up: nft is killed before it sees the end of its input, so nothing of it applies. */
  abort(): Promise<void>;
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

  /**
   * Start `nft -f` on `script` with its last `held` characters held back until release(): nft reads and parses the
   * rest now, while the caller does something else, and applies nothing before the end of its input. A caller that
   * holds back a closing line makes a transaction cut short (this process dies) a syntax error, not a partial change.
   * The held part must begin a line.
   *
   * The two parts are files (`scratch`.head, `scratch`.tail) that nft includes from a FIFO (`scratch`.fifo): the
   * head's include line is written now, the tail's on release(), each a write of one short line, so nft parses the
   * head at its own pace and nothing here waits for it. nft is given a link (`scratch`.link) to the FIFO, which
   * points at a copy of what the FIFO carries once nft has opened it (nft opens its input again to quote the line
   * of an error, and a FIFO without a writer would hold it forever). Errors come back with the line numbers of
   * `script`.
   */
  async nftHeld(script: string, held: number, scratch: string): Promise<HeldNftTransaction> {
    const headText = script.slice(0, script.length - held);
    if (headText && !headText.endsWith('\n')) throw new RampartError('internal', 'the held part of an nft script must begin a line');
    const fifo = `${scratch}.fifo`;
    const link = `${scratch}.link`;
    const [head, tail] = [resolve(`${scratch}.head`), resolve(`${scratch}.tail`)];
    // nft takes an include's name as a pattern (*, ? and [ expand) in double quotes.
    if (/["\n*?[]/.test(head)) throw new RampartError('internal', `unusable path for an nft include: ${head}`);
    const [includeHead, includeTail] = [`include "${head}"\n`, `include "${tail}"\n`];
    if (!lstatSync(fifo, { throwIfNoEntry: false })?.isFIFO()) {
      await rm(fifo, { force: true });
      await run('mkfifo', ['-m', '600', '--', fifo]);
    }
    const pointAt = (target: string) => {
      rmSync(`${link}.new`, { force: true });
      symlinkSync(target, `${link}.new`);
      renameSync(`${link}.new`, link);
    };
    const removeFiles = () => Promise.all([link, scratch, head, tail].map((f) => rm(f, { force: true })));
    writeFileSync(head, headText, { mode: 0o600 });
    writeFileSync(tail, script.slice(script.length - held), { mode: 0o600 });
    writeFileSync(scratch, includeHead + includeTail, { mode: 0o600 });
    pointAt(fifo);
    const child = start('nft', ['-f', link], { netns: this.netns });
    const result = outcome('nft', ['-f', link], child, true);
    let gone = false;
    const mark = () => void (gone = true);
    result.then(mark, mark);
    // A non-blocking open for writing succeeds once nft has opened the FIFO for reading (ENXIO before): only then
    // may the link point elsewhere, and this end be closed (nft would wait for a writer forever).
    let fd: number | undefined;
    try {
      while (fd === undefined && !gone) {
        try {
          fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      if (fd !== undefined) {
        pointAt(scratch);
        writeSync(fd, includeHead); // one line, shorter than the pipe's atomic size: never partial
      }
    } catch (err) {
      child.kill('SIGKILL');
      await result.catch(() => undefined);
      if (fd !== undefined) closeSync(fd);
      await removeFiles();
      throw new RampartError('system', `cannot hand nft its input through ${fifo}: ${(err as Error).message}`);
    }
    // nft names the head's lines in the head file and the held part's in the tail file.
    const headLines = countLines(headText);
    const scriptLines = (stderr: string) =>
      stderr
        .replace(/^In file included from .*\n/gm, '')
        .replace(/^([^:\n]*):(\d+):/gm, (all, file: string, line: string) =>
          file === head ? `${link}:${line}:` : file === tail ? `${link}:${Number(line) + headLines}:` : all,
        );
    let open = fd;
    const closeEnd = () => {
      if (open !== undefined) closeSync(open);
      open = undefined;
    };
    // Once nft has exited this end closes (what nft did not read is dropped) and the files go.
    const closed = result.then((r) => ({ ...r, stderr: scriptLines(r.stderr) })).finally(() => (closeEnd(), removeFiles()));
    closed.catch(() => undefined); // awaited by release() or abort(); not unhandled meanwhile
    return {
      release: () => {
        try {
          if (open !== undefined) writeSync(open, includeTail);
        } catch {
          // nft is gone (EPIPE): its exit status says why
        }
        closeEnd();
        return closed;
      },
      abort: async () => {
        child.kill('SIGKILL');
        await closed.catch(() => undefined);
      },
    };
  }
}

/** The number of line ends in `text`. */
function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
