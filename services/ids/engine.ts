/**
 * Suricata as a supervised child of rampartd: started inside the configured namespace (services/host/exec.ts),
 * restarted with exponential backoff when it dies, stopped with SIGTERM (SIGKILL after a grace period). Talks to the
 * engine over its unix command socket: `{"version":"0.2"}` handshake, then newline-framed JSON commands.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { RampartError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { spawnChild, type Host } from '../host/exec.ts';
import type { SuricataLayout } from './suricata-config.ts';

export type EngineState = 'stopped' | 'starting' | 'running' | 'restarting' | 'failed';

export interface EngineHealth {
  state: EngineState;
  pid?: number;
  startedAt?: number;
  restarts: number;
  lastExit?: { at: number; code: number | null; signal: string | null };
  detail?: string;
}

export interface SocketReply {
  return: string;
  message?: unknown;
}

const MAX_BACKOFF_MS = 60_000;
const HEALTHY_AFTER_MS = 60_000;

/** One command over the unix socket: connect, handshake, command, one reply. */
export function socketCommand(path: string, command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<SocketReply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    let stage = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new RampartError('unavailable', `suricata did not answer "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | undefined, reply?: SocketReply) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    sock.on('error', (err) => done(new RampartError('unavailable', `suricata command socket: ${err.message}`)));
    sock.on('connect', () => sock.write(JSON.stringify({ version: '0.2' }) + '\n'));
    sock.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: SocketReply;
        try {
          msg = JSON.parse(line);
        } catch {
          return done(new RampartError('system', `suricata sent a malformed reply: ${line.slice(0, 200)}`));
        }
        if (stage === 0) {
          if (msg.return !== 'OK') return done(new RampartError('system', `suricata refused the handshake: ${JSON.stringify(msg).slice(0, 200)}`));
          stage = 1;
          sock.write(JSON.stringify(args ? { command, arguments: args } : { command }) + '\n');
        } else return done(undefined, msg);
      }
    });
  });
}

export interface EngineOptions {
  host: Host;
  layout: SuricataLayout;
  log: Logger;
  /** The suricata binary (default `suricata` from PATH). */
  binary?: string;
  /** Called after each (re)start once the engine is up. */
  onStarted?: () => void;
  /** Called when the engine exits unexpectedly. */
  onCrash?: (health: EngineHealth) => void;
}

export class SuricataEngine {
  private child?: ChildProcess;
  private health: EngineHealth = { state: 'stopped', restarts: 0 };
  private args: string[] = [];
  private stopping = false;
  private backoffMs = 1000;
  private restartTimer?: NodeJS.Timeout;
  private output = '';

  constructor(private readonly opts: EngineOptions) {}

  get binary(): string {
    return this.opts.binary ?? 'suricata';
  }

  status(): EngineHealth {
    return { ...this.health };
  }

  /** `suricata -T`: does this configuration (and its rules) load? Returns the engine's messages when not. */
  async test(yamlPath: string, logDir: string): Promise<{ ok: boolean; output: string }> {
    const res = await this.opts.host.run(this.binary, ['-T', '-c', yamlPath, '-l', logDir], { allowFailure: true, timeoutMs: 120_000 });
    return { ok: res.exitCode === 0, output: res.stdout + res.stderr };
  }

  /** Start with these capture arguments (`--af-packet` or `-q N`); resolves once the engine has started. */
  async start(captureArgs: string[]): Promise<void> {
    this.stopping = false;
    this.args = captureArgs;
    await this.killStale();
    await this.launch();
  }

  /** An engine left over by a daemon that died (kill -9) still holds the pid file and the socket: end it. */
  private async killStale(): Promise<void> {
    const { pidFile, socket } = this.opts.layout;
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 1 && isSuricata(pid)) {
        this.opts.log.warn({ pid }, 'ending a Suricata left over from an earlier run');
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        const end = Date.now() + 10_000;
        while (isAlive(pid) && Date.now() < end) await sleep(50);
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        while (isAlive(pid)) await sleep(20);
      }
      rmSync(pidFile, { force: true });
    }
    rmSync(socket, { force: true });
  }

  private launch(): Promise<void> {
    const { layout, log } = this.opts;
    this.health = { ...this.health, state: this.health.restarts ? 'restarting' : 'starting', detail: undefined };
    this.output = '';
    const child = spawnChild(this.binary, ['-c', layout.yaml, '-l', layout.dir, '--pidfile', layout.pidFile, ...this.args], { netns: this.opts.host.netns });
    this.child = child;
    const pid = child.pid;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const onOut = (d: Buffer) => {
        const text = String(d);
        if (this.output.length < 64 * 1024) this.output += text;
        for (const line of text.split('\n')) {
          const l = line.trim();
          if (!l) continue;
          if (/^E:|error/i.test(l)) log.warn({ suricata: l.slice(0, 500) }, 'suricata');
          else log.debug({ suricata: l.slice(0, 500) }, 'suricata');
        }
        if (!started && /Engine started/.test(this.output)) {
          started = true;
          this.health = { ...this.health, state: 'running', pid, startedAt: Date.now(), detail: undefined };
          log.info({ pid }, 'suricata started');
          this.opts.onStarted?.();
          resolve();
        }
      };
      child.stdout!.on('data', onOut);
      child.stderr!.on('data', onOut);
      child.on('error', (err) => {
        this.health = { ...this.health, state: 'failed', detail: err.message };
        if (!started) reject(new RampartError('system', `cannot start suricata: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        const ranMs = this.health.startedAt ? Date.now() - this.health.startedAt : 0;
        this.health = { ...this.health, pid: undefined, lastExit: { at: Date.now(), code, signal } };
        if (this.stopping) {
          this.health.state = 'stopped';
          if (!started) reject(new RampartError('unavailable', 'suricata was stopped while starting'));
          return;
        }
        const tail = this.output.split('\n').filter((l) => /^E:|rror/.test(l)).slice(-3).join(' | ').slice(0, 1000);
        log.error({ code, signal, detail: tail }, 'suricata exited');
        if (!started) {
          this.health = { ...this.health, state: 'failed', detail: tail || `exited with ${signal ?? code}` };
          reject(new RampartError('system', `suricata did not start: ${tail || `exit ${signal ?? code}`}`));
        }
        if (ranMs > HEALTHY_AFTER_MS) this.backoffMs = 1000;
        this.health = { ...this.health, state: 'restarting', detail: tail || `exited with ${signal ?? code}` };
        this.opts.onCrash?.(this.status());
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.health.restarts++;
      void this.killStale()
        .then(() => this.launch())
        .catch((err) => this.opts.log.error({ err: String(err) }, 'suricata restart failed'));
    }, delay);
    this.restartTimer.unref?.();
  }

  /** Stop the engine (SIGTERM, SIGKILL after `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.health.state = 'stopped';
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.health.state = 'stopped';
  }

  async command(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<SocketReply> {
    if (this.health.state !== 'running') throw new RampartError('unavailable', `suricata is ${this.health.state}`);
    return socketCommand(this.opts.layout.socket, command, args, timeoutMs);
  }

  /** The PID of the running engine (for tests and status). */
  get pid(): number | undefined {
    return this.child?.pid;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function isSuricata(pid: number): boolean {
  try {
    return /^Suricata/i.test(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()) || /suricata/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
