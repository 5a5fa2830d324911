/**
 * The service manager's notifications (systemd `Type=notify` with a watchdog, see system/systemd/rampartd.service):
 * READY=1 once every service has started, STATUS= lines, WATCHDOG=1 every WATCHDOG_USEC/2 from the event loop (a
 * blocked loop stops the pings and systemd restarts rampartd), STOPPING=1 on the way down.
 *
 * Node.js cannot send unix datagrams, so the messages go line by line to a long-lived native helper,
 * `rampart-notify` (services/host/native/notify.c), which sends each one to $NOTIFY_SOCKET and ends when its stdin
 * closes. Without NOTIFY_SOCKET (npm start, tests, the CLI) everything here does nothing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../core/log.ts';
import { projectRoot, spawnChild } from './exec.ts';

/** The notification helper built by scripts/bootstrap and images/build, if it is there. */
export function notifyHelper(): string | undefined {
  const path = join(projectRoot(), 'build', 'bin', 'rampart-notify');
  return existsSync(path) ? path : undefined;
}

export interface NotifySettings {
  /** $NOTIFY_SOCKET: a path or an @abstract name. */
  socket: string;
  /** Milliseconds between watchdog pings (half of WATCHDOG_USEC), when the watchdog is on for this process. */
  pingMs?: number;
}

/**
 * What the environment asks for: undefined without a usable NOTIFY_SOCKET. The watchdog counts only when
 * WATCHDOG_PID is unset or names this process (as sd_watchdog_enabled does).
 */
export function notifySettings(env: NodeJS.ProcessEnv, pid: number): NotifySettings | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (!socket || !/^[/@]/.test(socket) || socket.length < 2 || socket.length > 107) return undefined;
  const usec = env.WATCHDOG_USEC && /^\d{1,15}$/.test(env.WATCHDOG_USEC) ? Number(env.WATCHDOG_USEC) : 0;
  const forUs = !env.WATCHDOG_PID || env.WATCHDOG_PID === String(pid);
  return usec > 0 && forUs ? { socket, pingMs: Math.max(1, Math.floor(usec / 2000)) } : { socket };
}

/** A STATUS= text on one line: control characters become spaces, at most 200 characters. */
export function statusText(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 200);
}

const RESPAWN_MS = 5000;

export class SystemdNotifier {
  private settings?: NotifySettings;
  private child?: ChildProcess;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private lastSpawn = 0;

  constructor(
    private readonly log: Logger,
    private readonly opts: { env?: NodeJS.ProcessEnv; pid?: number; helper?: () => string | undefined } = {},
  ) {}

  /** Whether a service manager listens (NOTIFY_SOCKET was set). */
  get enabled(): boolean {
    return this.settings !== undefined;
  }

  /** The watchdog ping interval in milliseconds, when systemd's watchdog is on for this process. */
  get pingMs(): number | undefined {
    return this.settings?.pingMs;
  }

  /**
   * Read the environment, start the helper and the watchdog pings. NOTIFY_SOCKET and WATCHDOG_* are taken out of
   * this process's environment (like sd_notify's unset_environment), so the engines rampartd starts (Suricata,
   * dnsmasq) never report to systemd in its name.
   */
  start(): void {
    const env = this.opts.env ?? process.env;
    this.settings = notifySettings(env, this.opts.pid ?? process.pid);
    if (env.NOTIFY_SOCKET && !this.settings) this.log.warn({ socket: env.NOTIFY_SOCKET }, 'NOTIFY_SOCKET is not a path or an abstract name: no notifications');
    for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete env[k];
    if (!this.settings) return;
    this.stopped = false;
    this.spawn();
    if (this.settings.pingMs) {
      this.timer = setInterval(() => this.send('WATCHDOG=1'), this.settings.pingMs);
      this.timer.unref();
      this.send('WATCHDOG=1');
      this.log.info({ pingMs: this.settings.pingMs }, 'systemd watchdog on');
    }
  }

  /** Tell the service manager the daemon is up (with a status line). */
  ready(status?: string): void {
    this.send(status ? `READY=1\nSTATUS=${statusText(status)}` : 'READY=1');
  }

  status(text: string): void {
    this.send(`STATUS=${statusText(text)}`);
  }

  /** STOPPING=1, then the helper ends (its stdin closes); no pings after this. */
  stop(): void {
    if (!this.settings || this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.send('STOPPING=1');
    this.stopped = true;
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private spawn(): void {
    const helper = (this.opts.helper ?? notifyHelper)();
    if (!helper) {
      this.log.error('rampart-notify is missing (build/bin): systemd gets no readiness or watchdog notifications');
      return;
    }
    this.lastSpawn = Date.now();
    const child = spawnChild(helper, [], { stdin: true, env: { NOTIFY_SOCKET: this.settings!.socket } });
    child.stdout?.resume();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => this.log.warn({ detail: d.trim().slice(0, 500) }, 'rampart-notify'));
    child.stdin?.on('error', (err) => this.log.warn({ err: String(err) }, 'rampart-notify input'));
    child.on('error', (err) => this.log.error({ err: String(err) }, 'rampart-notify did not start'));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.stopped) this.log.error({ code, signal }, 'rampart-notify ended; started again with the next message');
    });
    this.child = child;
  }

  /** One message (lines of KEY=VALUE) to the helper; each line goes out as its own datagram. */
  private send(message: string): void {
    if (!this.settings || this.stopped) return;
    if (!this.child && Date.now() - this.lastSpawn >= RESPAWN_MS) this.spawn();
    this.child?.stdin?.write(message + '\n');
  }
}
