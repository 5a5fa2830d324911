/**
 * The MQTT 5 connection to the MSSP broker: mutual TLS with the device certificate, a persistent session
 * (clean: false, session expiry), the last will `offline` on `status`, reconnect with jittered exponential backoff
 * after a random start delay, and on every connect: subscribe first, then announce `online` (the retained `desired`
 * arrives after the subscription). `probe()` opens a second, short-lived connection to prove the broker is reachable
 * now (a new TCP/TLS handshake, which the firewall's established-connection rule cannot fake).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../core/log.ts';

export interface ChannelIdentity {
  broker: string;
  tenant: string;
  device: string;
  ca: string;
  cert: string;
  key: string;
}

export interface ChannelOptions {
  /** Random delay before the first connect, up to this many ms (spreads a fleet booting together). */
  startDelayMaxMs?: number;
  /** Backoff: first retry after about this many ms, doubling up to maxBackoffMs, each jittered (full jitter). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  sessionExpirySeconds?: number;
  keepaliveSeconds?: number;
  connectTimeoutMs?: number;
}

export interface ChannelHandlers {
  onConnect(sessionPresent: boolean): void;
  onLost(reason: string): void;
  onMessage(topic: string, payload: Buffer): void;
}

export const SUBSCRIPTIONS = ['desired', 'cmd', 'alerts/ack'] as const;

export function topicRoot(tenant: string, device: string): string {
  return `rampart/v1/${tenant}/${device}/`;
}

export class Channel {
  readonly root: string;
  private client?: MqttClient;
  private timer?: NodeJS.Timeout;
  private attempt = 0;
  private stopped = true;
  connected = false;
  /** Time of the last successful CONNACK (epoch ms). */
  connectedAt?: number;
  lastError?: string;

  constructor(
    private readonly id: ChannelIdentity,
    private readonly handlers: ChannelHandlers,
    private readonly log: Logger,
    private readonly opts: ChannelOptions = {},
  ) {
    this.root = topicRoot(id.tenant, id.device);
  }

  get clientId(): string {
    return `rampart-${this.id.tenant}-${this.id.device}`;
  }

  private tls(): Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
    return { ca: this.id.ca, cert: this.id.cert, key: this.id.key, rejectUnauthorized: true };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const delay = Math.floor(Math.random() * (this.opts.startDelayMaxMs ?? 0));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  private connect(): void {
    if (this.stopped) return;
    if (this.client) {
      this.client.reconnect();
      return;
    }
    const client = mqtt.connect(this.id.broker, {
      ...this.tls(),
      protocolVersion: 5,
      clientId: this.clientId,
      clean: false,
      properties: { sessionExpiryInterval: this.opts.sessionExpirySeconds ?? 7 * 24 * 3600 },
      keepalive: this.opts.keepaliveSeconds ?? 30,
      connectTimeout: this.opts.connectTimeoutMs ?? 10_000,
      reconnectPeriod: 0,
      resubscribe: false,
      will: { topic: this.root + 'status', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', (connack) => {
      this.attempt = 0;
      this.lastError = undefined;
      // Subscribe first; only then say we are online and let the service publish.
      client.subscribe(
        SUBSCRIPTIONS.map((t) => this.root + t),
        { qos: 1 },
        (err, granted) => {
          const refused = granted?.find((g) => g.qos > 2);
          if (err || refused) {
            this.lastError = `subscribe failed: ${err?.message ?? `refused ${refused?.topic}`}`;
            this.log.error({ err: this.lastError }, 'sync: subscribe failed');
            client.end(true);
            return;
          }
          this.connected = true;
          this.connectedAt = Date.now();
          client.publish(this.root + 'status', 'online', { qos: 1, retain: true });
          this.handlers.onConnect(Boolean(connack.sessionPresent));
        },
      );
    });
    client.on('message', (topic, payload) => this.handlers.onMessage(topic.slice(this.root.length), payload));
    client.on('error', (err) => {
      this.lastError = err.message;
      this.log.debug({ err: err.message }, 'sync: connection error');
    });
    client.on('close', () => {
      const was = this.connected;
      this.connected = false;
      if (was) this.handlers.onLost(this.lastError ?? 'connection closed');
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const min = this.opts.minBackoffMs ?? 1000;
    const max = this.opts.maxBackoffMs ?? 60_000;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    // Full jitter: anywhere from a tenth of the ceiling to the ceiling.
    const delay = Math.round(ceiling * (0.1 + 0.9 * Math.random()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
    this.timer.unref?.();
  }

  /** Drop the connection now and reconnect after the backoff (used by a `sync` command). */
  bounce(): void {
    this.client?.stream?.destroy();
  }

  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean; expirySeconds?: number }, cb?: (err?: Error) => void): boolean {
    const c = this.client;
    if (!c || !this.connected) {
      cb?.(new Error('not connected'));
      return false;
    }
    c.publish(
      this.root + topic,
      payload,
      { qos: opts.qos, retain: opts.retain ?? false, ...(opts.expirySeconds ? { properties: { messageExpiryInterval: opts.expirySeconds } } : {}) },
      (err) => cb?.(err ?? undefined),
    );
    return true;
  }

  /** Publish and wait for PUBACK. */
  publishAsync(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean; expirySeconds?: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Re-subscribe to `desired` (the broker sends the retained message again). */
  refetchDesired(): void {
    if (!this.client || !this.connected) return;
    this.client.unsubscribe(this.root + 'desired', () => this.client?.subscribe(this.root + 'desired', { qos: 1 }));
  }

  /** A fresh connection (own client id, clean session) that connects and leaves: is the broker reachable now? */
  probe(timeoutMs = 5000): Promise<boolean> {
    return new Promise((resolve) => {
      const c = mqtt.connect(this.id.broker, {
        ...this.tls(),
        protocolVersion: 5,
        clientId: `${this.clientId}-probe`,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: timeoutMs,
      });
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(t);
        c.end(true);
        resolve(ok);
      };
      const t = setTimeout(() => finish(false), timeoutMs + 500);
      c.on('connect', () => finish(true));
      c.on('error', () => finish(false));
      c.on('close', () => finish(false));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    const was = this.connected;
    this.connected = false;
    if (!c) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (c.end(true), resolve()), 2000);
      t.unref?.();
      // A clean stop says offline itself (the will is for crashes).
      if (was) {
        c.publish(this.root + 'status', 'offline', { qos: 1, retain: true }, () => {
          clearTimeout(t);
          c.end(false, {}, () => resolve());
        });
      } else {
        clearTimeout(t);
        c.end(true, {}, () => resolve());
      }
    });
  }
}
