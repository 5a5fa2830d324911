/**
 * The control socket (DATA/rampart.sock): newline-delimited JSON requests `{id, method, params}` answered with
 * `{id, result}` or `{id, error: {code, message, details}}`. Only root (the socket is mode 0600) can talk to it.
 *
 * A request may carry one big text parameter as an attachment instead of a JSON string:
 * `{id, method, params, attachment: {param: "documentText", bytes: N}}` followed by exactly N bytes of UTF-8. A
 * configuration file then travels as it is, without being escaped into JSON and unescaped again.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { RampartError } from './core/errors.ts';
import type { Logger } from './core/log.ts';

export type Handler = (params: any, ctx: { peer: string }) => Promise<unknown> | unknown;

const MAX_REQUEST = 256 * 1024 * 1024;
/** Parameters that may travel as an attachment. */
const ATTACHABLE = new Set(['documentText', 'addressText']);

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
    let parts: Buffer[] = [];
    let size = 0;
    // The request whose attachment is being read, and the attachment's parts.
    let waiting: { req: any; param: string; bytes: number; got: number; parts: Buffer[] } | undefined;
    sock.on('data', (chunk: Buffer) => {
      let off = 0;
      while (off < chunk.length) {
        if (waiting) {
          const take = Math.min(waiting.bytes - waiting.got, chunk.length - off);
          waiting.parts.push(chunk.subarray(off, off + take));
          waiting.got += take;
          off += take;
          if (waiting.got === waiting.bytes) {
            const w = waiting;
            waiting = undefined;
            w.req.params[w.param] = Buffer.concat(w.parts).toString('utf8');
            void this.answer(sock, w.req);
          }
          continue;
        }
        // Look for newlines in the new chunk only: requests can be megabytes long.
        const nl = chunk.indexOf(10, off);
        if (nl === -1) {
          parts.push(chunk.subarray(off));
          size += chunk.length - off;
          break;
        }
        parts.push(chunk.subarray(off, nl));
        const line = Buffer.concat(parts).toString('utf8');
        parts = [];
        size = 0;
        off = nl + 1;
        if (!line.trim()) continue;
        let req: any;
        try {
          req = JSON.parse(line);
        } catch {
          this.refuse(sock, null, new RampartError('invalid_input', 'request is not JSON'));
          continue;
        }
        const a = req?.attachment;
        if (a === undefined) {
          void this.answer(sock, req);
          continue;
        }
        if (!ATTACHABLE.has(a?.param) || !Number.isInteger(a?.bytes) || a.bytes < 0 || a.bytes > MAX_REQUEST) {
          // The bytes that follow cannot be framed: answer and hang up.
          const e = new RampartError('invalid_input', `bad attachment: param must be one of ${[...ATTACHABLE].join(', ')} and bytes a size up to ${MAX_REQUEST}`);
          sock.end(JSON.stringify({ id: req?.id ?? null, error: e.toJSON() }) + '\n');
          return;
        }
        if (typeof req.params !== 'object' || req.params === null || Array.isArray(req.params)) req.params = {};
        if (a.bytes === 0) {
          req.params[a.param] = '';
          void this.answer(sock, req);
        } else waiting = { req, param: a.param, bytes: a.bytes, got: 0, parts: [] };
      }
      if (size > MAX_REQUEST) {
        parts = [];
        size = 0;
        sock.end(JSON.stringify({ id: null, error: { code: 'invalid_input', message: 'request too large', details: [] } }) + '\n');
      }
    });
  }

  private async answer(sock: Socket, req: any): Promise<void> {
    const id: unknown = req?.id ?? null;
    try {
      const handler = typeof req?.method === 'string' && Object.hasOwn(this.handlers, req.method) ? this.handlers[req.method] : undefined;
      if (!handler) throw new RampartError('not_found', `unknown method ${JSON.stringify(req?.method)}`);
      const result = await handler(req.params ?? {}, { peer: 'control-socket' });
      sock.write(JSON.stringify({ id, result: result ?? null }) + '\n');
    } catch (err) {
      this.refuse(sock, id, err);
    }
  }

  private refuse(sock: Socket, id: unknown, err: unknown): void {
    const e = RampartError.from(err);
    if (e.code === 'internal') this.log.error({ err: String((err as Error)?.stack ?? err) }, 'control request failed');
    if (!sock.destroyed) sock.write(JSON.stringify({ id, error: e.toJSON() }) + '\n');
  }
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/**
 * Call the daemon; throws RampartError('unavailable') when it is not running. `attachment` sends one big text
 * parameter as raw bytes after the request line (see the top of this file).
 */
export function callDaemon(path: string, method: string, params: unknown = {}, timeoutMs = 600_000, attachment?: { param: string; data: Buffer }): Promise<any> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new RampartError('unavailable', `the daemon did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.once('connect', () => {
      if (!attachment) return void sock.write(JSON.stringify({ id: 1, method, params }) + '\n');
      sock.write(JSON.stringify({ id: 1, method, params, attachment: { param: attachment.param, bytes: attachment.data.length } }) + '\n');
      sock.write(attachment.data);
    });
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
    // Without an answer before the connection closes, the daemon stopped or died meanwhile (once answered, the promise
    // is settled and this changes nothing).
    sock.once('close', () => {
      clearTimeout(timer);
      reject(new RampartError('unavailable', 'the daemon closed the connection without answering (it stopped or crashed; see its log)'));
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
