/**
 * How a route of the API is declared and run. Every route is one RouteSpec: method, path, the role it needs, zod
 * schemas of its body / query / path parameters and of its response, and an audit action when it changes state.
 * The Router registers the spec with hono (so the OpenAPI document can be generated from the very same list) and
 * runs each request through the same steps, in this order:
 *
 *   CSRF defence (state-changing methods) → session → role → path/query → body (size, JSON, schema)
 *   → handler → response schema → audit (state-changing routes, whatever the outcome)
 *
 * Errors are thrown as RampartError and turned into the error document in one place (app.ts, `errorResponse`).
 */
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { RampartError, pointer, type Problem } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { can, type Auth, type Session } from '../auth.ts';
import type { AuditEntry, AuditLog } from '../audit.ts';

export const SESSION_COOKIE = 'rampart_session';

/** Who may call a route: anyone, any session (even one that must change its password first), or a role level. */
export type Need = 'public' | 'session' | 'read' | 'operate' | 'admin';

/** What a handler may add to its audit entry (who, when nobody is logged in yet; the target; a detail). */
export interface AuditNote {
  username?: string | null;
  role?: string | null;
  target?: string;
  detail?: string;
  /** The entry was written elsewhere (Auth records login outcomes itself). */
  recorded?: boolean;
}

export interface HandlerInput<B, Q, P> {
  c: Context;
  body: B;
  query: Q;
  params: P;
  /** The caller's session (undefined only on public routes). */
  session: Session | undefined;
  /** The raw session id from the cookie (Auth never hands it back). */
  sessionId: string | undefined;
  /** The peer's address. */
  source: string;
  audit: AuditNote;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteSpec<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, P extends z.ZodType | undefined = undefined> {
  method: 'get' | 'post' | 'delete';
  /** hono path below /api/v1, e.g. `/config/versions/:v`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  need: Need;
  body?: B;
  query?: Q;
  params?: P;
  /** The response body (for a stream: a description of it). */
  response: z.ZodType;
  /** Success status (default 200). */
  status?: 200 | 201;
  /** The response is a Server-Sent Events stream; the handler returns the Response itself. */
  stream?: boolean;
  /** Body size limit in bytes (default: the router's). */
  bodyLimit?: number;
  /** Audit action; every route that changes state has one. */
  action?: string;
  /** Extra error statuses worth documenting for this route. */
  errors?: number[];
  /**
   * The handler returns the very same object for as long as its content holds and never changes it afterwards (a
   * cached status): its checked JSON text is kept with it and reused.
   */
  immutableResult?: boolean;
  handler: (input: HandlerInput<Out<B>, Out<Q>, Out<P>>) => unknown;
}

export type AnyRoute = RouteSpec<any, any, any>;

export interface RouterOptions {
  auth: Auth;
  audit: AuditLog;
  log: Logger;
  /** Served over TLS (cookies Secure; the Origin must be https). */
  tls: boolean;
  /** Default body limit in bytes. */
  bodyLimit: number;
}

/** Problems of a failed zod parse, each with a JSON pointer into the input. */
export function zodProblems(error: z.ZodError): Problem[] {
  return error.issues.slice(0, 200).map((i) => ({ path: pointer(i.path as (string | number)[]), message: i.message }));
}

function parseWith<S extends z.ZodType | undefined>(schema: S, value: unknown, what: string): Out<S> {
  if (!schema) return undefined as Out<S>;
  const r = schema.safeParse(value);
  if (!r.success) throw RampartError.invalid(zodProblems(r.error), `invalid ${what}`);
  return r.data as Out<S>;
}

/** The peer address of the connection (never a header a client can forge). */
export function sourceAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  const a = env?.incoming?.socket?.remoteAddress;
  if (!a) return 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * CSRF defence for state-changing requests: a browser cannot send `Content-Type: application/json` across sites
 * without a CORS preflight (which this API never grants), and when it says where the request comes from (Origin,
 * Sec-Fetch-Site), that must be this very site.
 */
export function checkCsrf(c: Context, tls: boolean): void {
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    const host = c.req.header('host') ?? new URL(c.req.url).host;
    let same = false;
    try {
      const u = new URL(origin);
      same = u.host.toLowerCase() === host.toLowerCase() && u.protocol === (tls ? 'https:' : 'http:');
    } catch {
      same = false;
    }
    if (!same) throw new RampartError('forbidden', 'cross-site request refused: Origin does not match Host');
  }
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new RampartError('forbidden', `cross-site request refused: Sec-Fetch-Site is ${JSON.stringify(site.slice(0, 32))}`);
  }
  const type = c.req.header('content-type')?.split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new RampartError('unsupported_media_type', 'requests that change state need Content-Type: application/json');
}

/** The body as JSON: at most `limit` bytes (413), valid UTF-8 and JSON (400); an empty body is `{}`. */
export async function readJsonBody(c: Context, limit: number): Promise<unknown> {
  const tooLarge = () => new RampartError('too_large', `request body larger than ${limit} bytes`);
  const declared = c.req.header('content-length');
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) throw tooLarge();
  const stream = c.req.raw.body;
  if (!stream) return {};
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new RampartError('bad_request', 'request body is not valid UTF-8');
  }
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RampartError('bad_request', `request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

function auditResult(err: unknown): AuditEntry['result'] {
  if (err === undefined) return 'ok';
  const code = err instanceof RampartError ? err.code : 'internal';
  if (code === 'unauthorized' || code === 'forbidden') return 'denied';
  if (code === 'throttled') return 'throttled';
  return 'failed';
}

/**
 * The session id from a Cookie header: the value of the first `rampart_session` cookie. Only this one cookie is
 * read, on every request, so it is found directly rather than by parsing the whole header; the id's own format is
 * checked by Auth.
 */
export function sessionCookie(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const name = SESSION_COOKIE + '=';
  let from = 0;
  for (;;) {
    const i = header.indexOf(name, from);
    if (i < 0) return undefined;
    const before = i === 0 ? ';' : header[i - 1];
    if (before === ';' || before === ' ' || before === '\t') {
      const end = header.indexOf(';', i + name.length);
      const value = header.slice(i + name.length, end < 0 ? undefined : end).trim();
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    }
    from = i + name.length;
  }
}

/** Checked JSON text of immutable handler results (see RouteSpec.immutableResult). */
const checkedJson = new WeakMap<object, string>();

/** The JSON text of an immutable result, checked against its schema once and kept with the object. */
export function immutableJson(schema: z.ZodType, result: object, onMismatch?: (problems: Problem[]) => void): string {
  let text = checkedJson.get(result);
  if (text === undefined) {
    const ok = schema.safeParse(result);
    if (!ok.success) {
      onMismatch?.(zodProblems(ok.error));
      throw new RampartError('internal', 'response does not match its schema');
    }
    text = JSON.stringify(ok.data);
    checkedJson.set(result, text);
  }
  return text;
}

export class Router {
  readonly routes: AnyRoute[] = [];

  constructor(
    private readonly app: Hono<any>,
    private readonly opts: RouterOptions,
  ) {}

  add<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, P extends z.ZodType | undefined = undefined>(
    spec: RouteSpec<B, Q, P>,
  ): void {
    this.routes.push(spec as AnyRoute);
    this.app.on(spec.method.toUpperCase(), spec.path, (c) => this.run(spec as AnyRoute, c));
  }

  private async run(spec: AnyRoute, c: Context): Promise<Response> {
    const { auth, audit, log, tls } = this.opts;
    const source = sourceAddress(c);
    const note: AuditNote = {};
    let session: Session | undefined;
    let failure: unknown;
    const sessionId = sessionCookie(c.req.raw.headers.get('cookie'));
    try {
      if (spec.method !== 'get') checkCsrf(c, tls);
      if (spec.need !== 'public') {
        session = auth.session(sessionId);
        if (!session) throw new RampartError('unauthorized', 'not logged in, or the session has expired');
        if (session.mustChange && spec.need !== 'session') {
          throw new RampartError('forbidden', 'the password must be changed first (POST /api/v1/auth/password)');
        }
        if (spec.need !== 'session' && !can(session.role, spec.need)) {
          throw new RampartError('forbidden', `the role ${session.role} may not ${spec.method === 'get' ? 'read this' : 'do this'}`);
        }
      }
      const params = parseWith(spec.params, c.req.param(), 'path parameter');
      const query = parseWith(spec.query, c.req.query(), 'query');
      const body = spec.method === 'get' ? undefined : parseWith(spec.body, await readJsonBody(c, spec.bodyLimit ?? this.opts.bodyLimit), 'request body');
      const result = await spec.handler({ c, body, query, params, session, sessionId, source, audit: note });
      if (result instanceof Response) return result;
      if (spec.immutableResult && result !== null && typeof result === 'object') {
        const text = immutableJson(spec.response, result, (problems) =>
          log.error({ route: `${spec.method.toUpperCase()} ${spec.path}`, problems: problems.slice(0, 5) }, 'response does not match its schema'),
        );
        return c.body(text, spec.status ?? 200, { 'Content-Type': 'application/json' });
      }
      const checked = spec.response.safeParse(result);
      if (!checked.success) {
        log.error({ route: `${spec.method.toUpperCase()} ${spec.path}`, problems: zodProblems(checked.error).slice(0, 5) }, 'response does not match its schema');
        throw new RampartError('internal', 'response does not match its schema');
      }
      return c.json(checked.data as any, spec.status ?? 200);
    } catch (err) {
      failure = err ?? new Error('unknown error');
      throw err;
    } finally {
      if (spec.action && !note.recorded) {
        const result = auditResult(failure);
        const paramTarget = Object.values(c.req.param() as Record<string, string>).join(' ');
        audit.record({
          username: note.username !== undefined ? note.username : (session?.username ?? null),
          role: note.role !== undefined ? note.role : (session?.role ?? null),
          source,
          action: spec.action,
          target: note.target ?? paramTarget,
          result,
          detail: note.detail ?? (failure === undefined ? '' : RampartError.from(failure).code === 'internal' ? 'internal error' : RampartError.from(failure).message),
        });
      }
    }
  }
}
