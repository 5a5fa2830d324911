/**
 * The control socket (DATA/rampart.sock): newline-delimited JSON requests `{id, method, params}` answered with
 * `{id, result}` or `{id, error: {code, message, details}}`. Only root (the socket is mode 0600) can talk to it.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { RampartError } from './core/errors.ts';
import type { Logger } from './core/log.ts';

export type Handler = (params: any, ctx: { peer: string }) => Promise<unknown> | unknown;

const MAX_REQUEST = 256 * 1024 * 1024;

export class ControlServer {
  private server?: Server;
  private sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handlers: Record<string, Handler>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (existsSync(this.path)) {
      if (await isAlive(this.path)) throw new RampartError('conflict', `another daemon is listening on ${this.path}`);
      unlinkSync(this.path);
    }
    const server = createServer((sock) => this.serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setEncoding('utf8');
    let parts: string[] = [];
    let size = 0;
    sock.on('data', (chunk: string) => {
      // Look for newlines in the new chunk only: requests can be megabytes long.
      let start = 0;
      let nl: number;
      while ((nl = chunk.indexOf('\n', start)) !== -1) {
        parts.push(chunk.slice(start, nl));
        const line = parts.join('');
        parts = [];
        size = 0;
        start = nl + 1;
        if (line.trim()) void this.answer(sock, line);
      }
      if (start < chunk.length) {
        parts.push(chunk.slice(start));
        size += chunk.length - start;
      }
      if (size > MAX_REQUEST) {
        parts = [];
        size = 0;
        sock.end(JSON.stringify({ id: null, error: { code: 'invalid_input', message: 'request too large', details: [] } }) + '\n');
      }
    });
  }

  private async answer(sock: Socket, line: string): Promise<void> {
    let id: unknown = null;
    try {
      let req: any;
      try {
        req = JSON.parse(line);
      } catch {
        throw new RampartError('invalid_input', 'request is not JSON');
      }
      id = req?.id ?? null;
      const handler = typeof req?.method === 'string' && Object.hasOwn(this.handlers, req.method) ? this.handlers[req.method] : undefined;
      if (!handler) throw new RampartError('not_found', `unknown method ${JSON.stringify(req?.method)}`);
      const result = await handler(req.params ?? {}, { peer: 'control-socket' });
      sock.write(JSON.stringify({ id, result: result ?? null }) + '\n');
    } catch (err) {
      const e = RampartError.from(err);
      if (e.code === 'internal') this.log.error({ err: String((err as Error)?.stack ?? err) }, 'control request failed');
      if (!sock.destroyed) sock.write(JSON.stringify({ id, error: e.toJSON() }) + '\n');
    }
  }
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Call the daemon; throws RampartError('unavailable') when it is not running. */
export function callDaemon(path: string, method: string, params: unknown = {}, timeoutMs = 600_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new RampartError('unavailable', `the daemon did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.once('connect', () => sock.write(JSON.stringify({ id: 1, method, params }) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      sock.end();
      try {
        const res = JSON.parse(buf.slice(0, nl));
        if (res.error) reject(new RampartError(res.error.code, res.error.message, res.error.details ?? []));
        else resolve(res.result);
      } catch (err) {
        reject(new RampartError('internal', `bad answer from the daemon: ${(err as Error).message}`));
      }
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new RampartError('unavailable', `the daemon is not running (no answer on ${path}); start it with \`rampart serve\``)
          : new RampartError('unavailable', `cannot reach the daemon: ${err.message}`),
      );
    });
  });
}
