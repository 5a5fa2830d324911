/**
 * The network service: brings the managed namespace to a document's network part (links, addresses, routes,
 * router sysctls, DHCP clients on WAN interfaces, dnsmasq for the LAN), as a diff against the running state.
 * Nothing happens unless the document says `network.manage: true`. The daemon applies the candidate document here
 * before the firewall, and follows the running version on every config event (confirm, revert, rollback).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../core/schema.ts';
import { RampartError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Host } from '../host/exec.ts';
import { SerialQueue } from '../core/serial.ts';
import { parseConfigOnce } from '../core/config-cache.ts';
import { desiredState, planNetwork, planSysctls, routerSysctls, type NetOp, type RunningState } from './plan.ts';
import { readRunningState, readSysctls, runOps, writeSysctls } from './apply.ts';
import { deviceProblems } from './validate.ts';
import { Dnsmasq, dnsmasqConfig, wantsLanServices, type Lease } from './lan.ts';
import { DhcpClient, type DhcpClientState } from './dhcp-client.ts';

export interface NetworkPlan {
  managed: boolean;
  ops: NetOp[];
  sysctls: string[];
  /** DHCP clients to run: the device for DHCPv4, "device/6" for DHCPv6. */
  dhcpClients: string[];
  lanServices: boolean;
}

export interface NetworkApplyResult extends NetworkPlan {
  dnsmasq?: 'unchanged' | 'started' | 'restarted' | 'stopped';
}

const SUPERVISE_MS = 2000;

export class NetworkService {
  private readonly queue = new SerialQueue();
  private readonly dir: string;
  readonly dnsmasq: Dnsmasq;
  private readonly clients = new Map<string, DhcpClient>();
  private current?: Config;
  private timer?: NodeJS.Timeout;
  lastError?: string;
  lastAppliedAt?: string;

  constructor(
    private readonly host: Host,
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.dir = join(dataDir, 'network');
    this.dnsmasq = new Dnsmasq(host, this.dir, log.child({ part: 'dnsmasq' }));
  }

  /** Bring the namespace to the running document (at daemon start) and watch the child processes. */
  async start(running: Config | undefined): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (running) {
      await this.apply(running).catch((err) => {
        this.lastError = RampartError.from(err).message;
        this.log.error({ err: this.lastError }, 'network: could not bring the namespace to the running version');
      });
    }
    this.timer = setInterval(() => void this.supervise(), SUPERVISE_MS);
    this.timer.unref?.();
  }

  /** Stop the child processes (a DHCP lease stays until its lifetime ends; addresses and routes stay). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue.run(async () => {
      await this.dnsmasq.stop();
      for (const c of this.clients.values()) await c.stop();
    });
  }

  /** Restart dnsmasq or a DHCP client that died. */
  private async supervise(): Promise<void> {
    await this.queue
      .run(async () => {
        const c = this.current;
        if (!c || !c.network.manage) return;
        if (wantsLanServices(c) && !this.dnsmasq.pid()) {
          this.log.warn('dnsmasq is not running: starting it again');
          await this.dnsmasq.start();
        }
        for (const client of this.clients.values()) {
          if (!client.pid()) {
            this.log.warn({ device: client.device }, 'DHCP client is not running: starting it again');
            await client.ensure();
          }
        }
      })
      .catch((err) => this.log.error({ err: String(err) }, 'network supervision failed'));
  }

  /** The client for a key of `plan.dhcpClients` ("wan0" for DHCPv4, "wan0/6" for DHCPv6). */
  private client(key: string): DhcpClient {
    let c = this.clients.get(key);
    if (!c) {
      const [device, v6] = key.split('/');
      c = new DhcpClient(this.host, this.dir, device, this.log.child({ part: v6 ? 'dhclient6' : 'dhclient', device }), v6 ? 6 : 4);
      this.clients.set(key, c);
    }
    return c;
  }

  /** DHCP clients left running by an earlier daemon (killed, not stopped) are tracked again, so unwanted ones stop. */
  private adoptStrayClients(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^dhclient(6?)-([A-Za-z0-9][A-Za-z0-9_.-]{0,14})\.pid$/.exec(name);
      if (m) this.client(m[1] ? `${m[2]}/6` : m[2]);
    }
  }

  /** What apply would do, computed against the kernel now. Throws invalid_input for devices that do not exist. */
  async plan(c: Config, state?: RunningState): Promise<NetworkPlan> {
    if (!c.network.manage) return { managed: false, ops: [], sysctls: [], dhcpClients: [], lanServices: false };
    const running = state ?? (await readRunningState(this.host));
    const problems = deviceProblems(c, new Set(running.links.map((l) => l.ifname)));
    if (problems.length) throw RampartError.invalid(problems, `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`);
    const want = routerSysctls(c);
    const sysctls = planSysctls(want, await readSysctls(this.host, Object.keys(want)));
    return {
      managed: true,
      ops: planNetwork(desiredState(c), running),
      sysctls,
      dhcpClients: c.interfaces
        .filter((i) => i.enabled !== false)
        .flatMap((i) => [...(i.dhcp ? [i.device] : []), ...(i.dhcpv6 ? [`${i.device}/6`] : [])]),
      lanServices: wantsLanServices(c),
    };
  }

  /** Apply a validated document's network part. */
  apply(c: Config): Promise<NetworkApplyResult> {
    return this.queue.run(() => this.applyLocked(c));
  }

  private async applyLocked(c: Config): Promise<NetworkApplyResult> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!c.network.manage) {
      // Not (or no longer) managed: the processes Rampart started go; addresses and routes are left as they are.
      const wasManaged = this.current?.network.manage ?? false;
      this.current = c;
      let dnsmasq: NetworkApplyResult['dnsmasq'];
      if (this.dnsmasq.pid()) {
        await this.dnsmasq.stop();
        dnsmasq = 'stopped';
      }
      this.adoptStrayClients();
      for (const [dev, client] of this.clients) {
        await client.stop({ release: wasManaged });
        this.clients.delete(dev);
      }
      return { managed: false, ops: [], sysctls: [], dhcpClients: [], lanServices: false, ...(dnsmasq ? { dnsmasq } : {}) };
    }
    const plan = await this.plan(c);
    // dnsmasq's file is generated (and checked by dnsmasq itself) before the kernel is touched.
    const conf = plan.lanServices ? dnsmasqConfig(c, this.dnsmasq.paths) : undefined;
    if (conf) await this.dnsmasq.check(conf);
    await writeSysctls(this.host, plan.sysctls, this.log);
    await runOps(this.host, plan.ops, this.log);
    // DHCP clients: stopped (lease released) where no longer wanted, started where wanted.
    const wanted = new Set(plan.dhcpClients);
    this.adoptStrayClients();
    for (const [dev, client] of this.clients) {
      if (!wanted.has(dev)) {
        await client.stop({ release: true });
        this.clients.delete(dev);
      }
    }
    for (const dev of wanted) await this.client(dev).ensure();
    let dnsmasq: NetworkApplyResult['dnsmasq'];
    if (conf) dnsmasq = await this.dnsmasq.ensure(conf);
    else if (this.dnsmasq.pid()) {
      await this.dnsmasq.stop();
      dnsmasq = 'stopped';
    }
    this.current = c;
    this.lastError = undefined;
    this.lastAppliedAt = new Date().toISOString();
    if (plan.ops.length || plan.sysctls.length) this.log.info({ ops: plan.ops.length, sysctls: plan.sysctls.length }, 'network applied');
    return { ...plan, ...(dnsmasq ? { dnsmasq } : {}) };
  }

  /**
   * Apply the network part of a candidate document, then `next` (the firewall's apply); when either fails, the
   * network goes back to `fallback` (the running document) and the error is passed on. A document that does not
   * parse goes straight to `next`, which reports its problems.
   */
  async around<T>(document: unknown, fallback: () => Config | undefined, next: () => Promise<T>): Promise<T> {
    let config: Config;
    try {
      config = parseConfigOnce(document);
    } catch {
      return next();
    }
    if (!config.network.manage && !(this.current?.network.manage ?? false)) return next();
    const restore = async () => {
      const back = fallback();
      if (!back) return;
      await this.apply(back).catch((err) => this.log.error({ err: String(err) }, 'network: could not return to the running version'));
    };
    try {
      await this.apply(config);
    } catch (err) {
      const e = RampartError.from(err);
      if (e.code === 'invalid_input') throw e; // refused before anything changed
      await restore();
      throw new RampartError('apply_failed', `network apply failed, the running version is back: ${e.message}`, e.problems);
    }
    try {
      return await next();
    } catch (err) {
      await restore();
      throw err;
    }
  }

  /** Follow the running version (after a confirm, revert or rollback); errors are logged and shown in status. */
  follow(running: Config | undefined): void {
    if (!running) return;
    if (!running.network.manage && !(this.current?.network.manage ?? false)) return;
    void this.apply(running).catch((err) => {
      this.lastError = RampartError.from(err).message;
      this.log.error({ err: this.lastError }, 'network: could not follow the running version');
    });
  }

  async leases(): Promise<Lease[]> {
    return this.dnsmasq.leases();
  }

  /** The DHCP clients' state by device, DHCPv4 and DHCPv6 apart. */
  dhcpClients(family: 4 | 6 = 4): Record<string, DhcpClientState> {
    return Object.fromEntries([...this.clients.values()].filter((c) => c.family === family).map((c) => [c.device, c.state()]));
  }

  /** The status entry: managed or not, child processes, lease count. */
  async status(): Promise<Record<string, unknown>> {
    const c = this.current;
    const managed = c?.network.manage ?? false;
    const leases = await this.leases();
    return {
      state: this.lastError ? 'error' : managed ? 'ok' : 'unmanaged',
      managed,
      ...(this.lastError ? { detail: this.lastError } : {}),
      ...(this.lastAppliedAt ? { appliedAt: this.lastAppliedAt } : {}),
      leases: leases.length,
      dnsmasq: c && wantsLanServices(c) ? { running: this.dnsmasq.pid() !== undefined } : { running: false },
      dhcpClients: this.dhcpClients(),
      dhcpv6Clients: this.dhcpClients(6),
    };
  }

  /** Links, addresses and routes of the managed namespace as the kernel reports them, with the DHCP clients' state. */
  async state(): Promise<Record<string, unknown>> {
    const s = await readRunningState(this.host);
    return {
      managed: this.current?.network.manage ?? false,
      links: s.links.map((l) => ({
        device: l.ifname,
        up: (l.flags ?? []).includes('UP'),
        operstate: l.operstate ?? null,
        mtu: l.mtu ?? null,
        mac: typeof l.address === 'string' ? l.address : null,
        addresses: (l.addr_info ?? []).map((a) => ({ address: `${a.local}/${a.prefixlen}`, scope: a.scope ?? null, dynamic: a.dynamic === true })),
      })),
      routes: [...s.routes4, ...s.routes6].map((r) => ({ destination: r.dst, gateway: r.gateway ?? null, device: r.dev ?? null, protocol: r.protocol ?? null, metric: r.metric ?? null })),
      dhcpClients: this.dhcpClients(),
      dhcpv6Clients: this.dhcpClients(6),
    };
  }
}
