/**
 * The local HTTP API (SPEC §4) as a hono app: routes under /api/v1, security headers on every response, errors
 * mapped to `{ "error": { code, message, details } }` in one place (`errorResponse`). No I/O here: the ApiServer
 * (server.ts) serves it, tests call `app.request()` in process.
 */
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { RampartError, httpStatus, type Problem } from '../core/errors.ts';
import type { EventBus } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { BlockRecord, Store, VersionRecord } from '../core/store.ts';
import { validateConfig } from '../core/validate.ts';
import type { Blocks } from '../firewall/blocks.ts';
import type { Firewall } from '../firewall/apply.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import type { QueryResult } from '../telemetry/series.ts';
import type { Auth } from './auth.ts';
import type { AuditLog } from './audit.ts';
import { API_PREFIX, openApiDocument } from './openapi.ts';
import { authRoutes } from './routes/auth.ts';
import { configRoutes } from './routes/config.ts';
import { Router, type AnyRoute } from './routes/define.ts';
import { eventRoutes } from './routes/events.ts';
import { firewallRoutes } from './routes/firewall.ts';
import { telemetryRoutes } from './routes/telemetry.ts';
import { networkRoutes, type NetworkSource } from './routes/network.ts';
import { userRoutes } from './routes/users.ts';
import { tlsRoutes } from './routes/tls.ts';
import { traceRoutes } from './routes/trace.ts';
import { idsRoutes, type IdsApi } from './routes/ids.ts';
import { syncRoutes, type SyncApi } from './routes/sync.ts';
import { defaultUiDir, staticHandler } from './static.ts';
import type { CertificateInfo } from './tls.ts';

/** What the API needs from the daemon (the firewall, its journal and the dynamic blocks). */
export interface ApiBackend {
  status(): Promise<Record<string, unknown>>;
  validate(document: unknown): { ok: boolean; problems: Problem[] };
  /** Throws invalid_input (problems pointing into the document) before anything is applied. */
  apply(req: { document: unknown; author: string; message?: string; confirmSeconds?: number }): Promise<VersionRecord>;
  confirm(): Promise<VersionRecord>;
  rollback(req: { version?: number; author: string }): Promise<VersionRecord>;
  running(): VersionRecord | undefined;
  versions(limit: number): VersionRecord[];
  version(v: number): VersionRecord | undefined;
  counters(): Promise<unknown>;
  blocks(): BlockRecord[];
  block(req: { address: string; ttlSeconds?: number; reason?: string }, source: string): Promise<BlockRecord>;
  unblock(address: string): Promise<boolean>;
  /** Points of a metric (epoch ms, step in ms). */
  telemetry(q: { metric: string; from: number; to: number; stepMs?: number }): QueryResult;
  telemetryMetrics(): string[];
  /** The live figures of the last telemetry sample, with the per-rule counters. */
  stats(): Promise<unknown>;
}

/** The backend over the daemon's services. */
export function serviceBackend(s: {
  store: Store;
  firewall: Firewall;
  /** Apply and rollback through the daemon (network first, then the firewall); default: the firewall's own. */
  apply?: (req: { document: unknown; author: string; source: 'api'; message?: string; confirmSeconds?: number }) => Promise<VersionRecord>;
  rollback?: (req: { version?: number; author: string; source: 'api' }) => Promise<VersionRecord>;
  blocks: Blocks;
  status: () => Promise<Record<string, unknown>>;
  counters: () => Promise<unknown>;
  telemetry: TelemetryService;
  /** The live figures (default: the telemetry's latest, with `counters`). */
  stats?: () => Promise<unknown>;
}): ApiBackend {
  return {
    status: s.status,
    validate: (document) => {
      const r = validateConfig(document);
      return { ok: r.ok, problems: r.problems };
    },
    apply: (r) => (s.apply ?? ((q) => s.firewall.apply(q)))({ document: r.document, author: r.author, source: 'api', message: r.message, confirmSeconds: r.confirmSeconds }),
    confirm: () => s.firewall.confirm(),
    rollback: async (r) => {
      if (r.version !== undefined && !s.store.getVersionMeta(r.version)) throw new RampartError('not_found', `no version ${r.version}`);
      return (s.rollback ?? ((q) => s.firewall.rollback(q)))({ version: r.version, author: r.author, source: 'api' });
    },
    running: () => s.store.runningVersion(),
    versions: (limit) => s.store.listVersions(limit),
    version: (v) => s.store.getVersion(v),
    counters: s.counters,
    blocks: () => s.blocks.list(),
    block: async (req, source) => {
      try {
        const [rec] = await s.blocks.block([req], source);
        return rec;
      } catch (err) {
        // Blocks reports problems of a batch (`/0/address`); this was a single request.
        const e = RampartError.from(err);
        if (e.problems.length) throw new RampartError(e.code, e.message, e.problems.map((p) => ({ ...p, path: p.path.replace(/^\/0(?=\/|$)/, '') })));
        throw e;
      }
    },
    unblock: (address) => s.blocks.unblock(address),
    telemetry: (q) => s.telemetry.query(q.metric, q.from, q.to, q.stepMs),
    telemetryMetrics: () => s.telemetry.metrics(),
    stats: s.stats ?? (async () => ({ ...s.telemetry.latest(), ...((await s.counters()) as Record<string, unknown>) })),
  };
}

export interface ApiOptions {
  /** Served over TLS: Secure cookies, HSTS, Origin must be https. */
  tls: boolean;
  /** Body limit for everything but configuration documents (default 64 KiB). */
  bodyLimit?: number;
  /** Keep-alive interval of /events (default 15 s). */
  heartbeatMs?: number;
}

export interface ApiDeps {
  backend: ApiBackend;
  /** GET /metrics: Prometheus exposition behind a bearer token (absent: no such path). */
  metrics?: { handle(authorization: string | undefined): Promise<{ status: number; body: string; headers: Record<string, string> }> };
  /** Records login outcomes in the audit log itself (its default); the API records every other mutation. */
  auth: Auth;
  audit: AuditLog;
  events: EventBus;
  log: Logger;
  options: ApiOptions;
  /** Leases and the network state (GET /network/*; 503 without it). */
  network?: NetworkSource;
  /** Alerts and the IDS (GET /alerts, /ids/...); the routes answer 503 without it. */
  ids?: IdsApi;
  /** The MSSP channel (GET /sync, POST /sync/enroll); the routes answer 503 without it. */
  sync?: SyncApi;
  /** The served certificate: what it is, and replacing it with an uploaded one (absent without TLS). */
  certificates?: {
    current(): CertificateInfo | undefined;
    replace(cert: string, key: string): Promise<CertificateInfo>;
  };
}

export const DEFAULT_BODY_LIMIT = 64 * 1024;

export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The headers every response carries (and `Cache-Control: no-store` unless the route says otherwise). */
export function securityHeaders(tls: boolean): [string, string][] {
  return [
    ['Content-Security-Policy', CSP],
    ['X-Content-Type-Options', 'nosniff'],
    ['Referrer-Policy', 'no-referrer'],
    ['X-Frame-Options', 'DENY'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ...(tls ? ([['Strict-Transport-Security', 'max-age=31536000']] as [string, string][]) : []),
  ];
}

/** The error document for any error; the one place where errors become HTTP. */
export function errorResponse(c: Context, err: unknown, log?: Logger): Response {
  let status: number;
  let code: string;
  let message: string;
  let details: Problem[] = [];
  const headers: Record<string, string> = {};
  if (err instanceof HTTPException) {
    status = err.status;
    code = status === 413 ? 'too_large' : status >= 500 ? 'internal' : 'invalid_input';
    message = err.message || 'bad request';
  } else {
    const e = RampartError.from(err);
    status = httpStatus[e.code] ?? 500;
    code = e.code;
    message = e.message;
    details = e.problems;
    if (e.code === 'throttled' && e.retryAfterSeconds !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil(e.retryAfterSeconds)));
  }
  if (code === 'internal') {
    log?.error({ err: err instanceof Error ? err.stack : String(err), method: c.req.method, path: c.req.path }, 'API request failed');
    message = 'internal error (see the daemon log)';
  }
  return c.json({ error: { code, message, details } }, status as any, headers);
}

/** The hono app, with the list of its routes (for the OpenAPI document and its coverage test). */
export function createApp(deps: ApiDeps): Hono & { apiRoutes: readonly AnyRoute[] } {
  const { backend, auth, audit, events, log, options } = deps;
  const tls = options.tls;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = new Hono();

  const security = securityHeaders(tls);
  app.use('*', async (c, next) => {
    await next();
    const h = c.res.headers;
    for (const [k, v] of security) h.set(k, v);
    if (!h.has('Cache-Control')) h.set('Cache-Control', 'no-store');
  });
  app.onError((err, c) => errorResponse(c, err, log));
  app.notFound((c) => errorResponse(c, new RampartError('not_found', `no route ${c.req.method} ${c.req.path.slice(0, 200)}`)));

  const api = new Hono();
  const router = new Router(api, { auth, audit, log: log.child({ svc: 'api' }), tls, bodyLimit });
  authRoutes(router, { auth, tls });
  configRoutes(router, backend);
  firewallRoutes(router, backend);
  telemetryRoutes(router, backend);
  idsRoutes(router, deps.ids);
  syncRoutes(router, deps.sync);
  networkRoutes(router, deps.network);
  userRoutes(router, { auth, audit });
  tlsRoutes(router, deps.certificates);
  traceRoutes(router, backend);
  eventRoutes(router, { auth, events, heartbeatMs: options.heartbeatMs });
  let doc: Record<string, unknown> | undefined;
  router.add({
    method: 'get',
    path: '/openapi.json',
    tag: 'meta',
    summary: 'This OpenAPI 3.1 document',
    need: 'public',
    response: z.record(z.string(), z.unknown()),
    handler: () => (doc ??= openApiDocument(router.routes, { version: '1.0.0', bodyLimit })),
  });
  app.route(API_PREFIX, api);
  // The web UI (webui/dist) for every other GET/HEAD: its files, and index.html for the app's own routes.
  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', async (c) => {
      const r = await metrics.handle(c.req.header('authorization'));
      return c.body(r.body, r.status as 200, { 'Content-Type': 'text/plain; charset=utf-8', ...r.headers });
    });
  }
  app.on(['GET', 'HEAD'], '*', staticHandler(defaultUiDir()));
  return Object.assign(app, { apiRoutes: router.routes });
}
