/**
 * The API server: the hono app on @hono/node-server, HTTPS with the self-signed certificate of DATA/tls, plain
 * HTTP only on a loopback address. stop() refuses new connections and ends open ones (event streams included)
 * within a deadline.
 */
import { serve } from '@hono/node-server';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { withFastStatus, type Listener } from './fast-status.ts';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { RampartError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { createApp, type ApiDeps } from './app.ts';
import { certificateInfo, ensureCertificate, installCertificate } from './tls.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `HOST:PORT`, `[IPv6]:PORT`; invalid_input otherwise. */
export function parseListen(text: string): ListenAddress {
  const bad = () => RampartError.invalid([{ path: '/listen', message: 'must be HOST:PORT (IPv6 as [ADDR]:PORT)' }], `invalid listen address ${JSON.stringify(text)}`);
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([A-Za-z0-9.-]{1,253}|\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  if (!m) throw bad();
  const port = Number(m[2]);
  if (port > 65535) throw bad();
  if (text.startsWith('[') && isIP(m[1]) !== 6) throw bad();
  return { host: m[1], port };
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export interface ApiServerOptions {
  listen: string;
  dataDir: string;
  deps: Omit<ApiDeps, 'options'>;
  log: Logger;
  heartbeatMs?: number;
}

export class ApiServer {
  readonly address: ListenAddress;
  readonly tls: boolean;
  private server?: Server;

  constructor(private readonly opts: ApiServerOptions) {
    this.address = parseListen(opts.listen);
    this.tls = !isLoopback(this.address.host);
  }

  /** The port it listens on (the real one when 0 was asked for). */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.address.port;
  }

  get url(): string {
    const h = isIP(this.address.host) === 6 ? `[${this.address.host}]` : this.address.host;
    return `${this.tls ? 'https' : 'http'}://${h}:${this.port}`;
  }

  async start(): Promise<void> {
    const { log, dataDir } = this.opts;
    const tlsDir = join(dataDir, 'tls');
    const certificates = {
      current: () => (this.tls ? certificateInfo(readFileSync(join(tlsDir, 'cert.pem'), 'utf8')) : undefined),
      replace: async (cert: string, key: string) => {
        if (!this.tls || !this.server) throw new RampartError('conflict', 'the API listens on a loopback address without TLS');
        const material = installCertificate(tlsDir, this.address.host, cert, key);
        // New connections get the new certificate at once; open ones keep theirs.
        (this.server as unknown as HttpsServer).setSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
        log.info({ certificate: certificateInfo(cert).fingerprint256 }, 'TLS certificate replaced');
        return certificateInfo(cert);
      },
    };
    const app = createApp({ ...this.opts.deps, certificates, options: { tls: this.tls, heartbeatMs: this.opts.heartbeatMs } });
    const { host, port } = this.address;
    const deps = this.opts.deps;
    const fast = (listener: Listener) => withFastStatus(listener, { auth: deps.auth, status: () => deps.backend.status() as Promise<Record<string, unknown>>, tls: this.tls });
    let server: Server;
    if (this.tls) {
      const { cert, key } = await ensureCertificate(join(dataDir, 'tls'), host, log);
      server = serve({
        fetch: app.fetch,
        hostname: host,
        port,
        createServer: (options: object, listener: Listener) => createHttpsServer(options, fast(listener)),
        serverOptions: { cert, key, minVersion: 'TLSv1.2' },
      } as any) as Server;
    } else {
      server = serve({ fetch: app.fetch, hostname: host, port, createServer: (options: object, listener: Listener) => createHttpServer(options, fast(listener)) } as any) as Server;
    }
    server.headersTimeout = 30_000;
    server.requestTimeout = 300_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new RampartError('system', `cannot listen on ${this.opts.listen}: ${err.code ?? err.message}`));
      if (server.listening) return resolve();
      server.once('error', onError);
      server.once('listening', () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err: String(err) }, 'API server error'));
    this.server = server;
    log.info({ url: this.url, tls: this.tls }, 'API listening');
  }

  async stop(deadlineMs = 3000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), Math.min(deadlineMs, 1000));
    // Event streams never end by themselves: give requests in flight a moment, then cut everything.
    await Promise.race([closed, new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    clearTimeout(timer);
    server.closeAllConnections();
  }
}
