/**
 * In-process API for the api-*.test.ts files: the real app, Auth, AuditLog, Store, Firewall and Blocks on a temp
 * data directory, managing a scratch network namespace of their own (so nft and the kernel are real too).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../../services/core/events.ts';
import { silentLogger } from '../../services/core/log.ts';
import { Store } from '../../services/core/store.ts';
import { Host, run } from '../../services/host/exec.ts';
import { Firewall } from '../../services/firewall/apply.ts';
import { Blocks } from '../../services/firewall/blocks.ts';
import { Auth, type Role } from '../../services/api/auth.ts';
import { AuditLog } from '../../services/api/audit.ts';
import { TelemetryService } from '../../services/telemetry/service.ts';
import { createApp, serviceBackend, type ApiOptions } from '../../services/api/app.ts';

/** The namespace's whole ruleset as text (to prove that nothing was applied). */
export async function rulesetOf(host: Host): Promise<string> {
  return (await host.run('nft', ['list', 'ruleset'])).stdout;
}

export const PASSWORDS: Record<string, string> = {
  admin: 'admin-password-1',
  operator: 'operator-password-1',
  viewer: 'viewer-password-1',
  fresh: 'fresh-password-1',
};

export interface Fixture {
  dir: string;
  store: Store;
  events: EventBus;
  auth: Auth;
  audit: AuditLog;
  host: Host;
  app: ReturnType<typeof createApp>;
  clock: { now: number };
  /** A request from `source` (default 192.0.2.10) with a JSON body and the session cookie, if given. */
  req(method: string, path: string, opts?: { body?: unknown; raw?: string; cookie?: string; headers?: Record<string, string>; source?: string; signal?: AbortSignal }): Promise<Response>;
  /** Log in and return the cookie value `rampart_session=...`. */
  login(username: string, password?: string, source?: string): Promise<string>;
  close(): void;
}

export const API = '/api/v1';

export async function fixture(options: Partial<ApiOptions> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-api-'));
  const log = silentLogger();
  const store = new Store(join(dir, 'rampart.db')).open();
  const events = new EventBus(log);
  const netns = `ra-${randomBytes(4).toString('hex')}`;
  await run('ip', ['netns', 'add', netns]);
  const host = new Host(netns);
  const blocks = new Blocks(store, host, log, events);
  const firewall = new Firewall(store, host, log, events);
  await blocks.start();
  await firewall.start();
  const clock = { now: Date.now() };
  const audit = new AuditLog(store, log, () => clock.now);
  const auth = new Auth(store, log, { now: () => clock.now, scryptN: 16, audit, idleSeconds: 1800, absoluteSeconds: 43200 });
  await auth.ensureAdmin(PASSWORDS.admin);
  for (const role of ['operator', 'viewer'] as Role[]) await auth.createUser(role, PASSWORDS[role], role);
  await auth.createUser('fresh', PASSWORDS.fresh, 'admin', { mustChange: true });
  const status = async () => {
    const running = store.runningVersionMeta();
    const pending = store.pendingVersion();
    return {
      version: running?.version ?? null,
      running: running ? { version: running.version, state: running.state, appliedAt: running.appliedAt, hash: running.hash } : null,
      pending: pending ? { version: pending.version, confirmDeadline: pending.confirmDeadline } : null,
      uptimeSeconds: 1,
      firewall: { state: running ? 'ok' : 'unconfigured' },
    };
  };
  const app = createApp({
    backend: serviceBackend({ store, firewall, blocks, status, counters: async () => ({ rules: {} }), telemetry: new TelemetryService({ store, netns, dataDir: dir, log, events }) }),
    auth,
    audit,
    events,
    log,
    options: { tls: false, ...options },
  });
  const req: Fixture['req'] = (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.cookie) headers.cookie = opts.cookie;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    return Promise.resolve(
      app.request(
        path.startsWith('/api') ? path : API + path,
        { method, headers, body, signal: opts.signal },
        { incoming: { socket: { remoteAddress: opts.source ?? '192.0.2.10' } } },
      ),
    );
  };
  const login = async (username: string, password = PASSWORDS[username], source?: string) => {
    const res = await req('POST', '/auth/login', { body: { username, password }, source });
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
    return cookieOf(res)!;
  };
  return {
    dir,
    store,
    events,
    auth,
    audit,
    host,
    app,
    clock,
    req,
    login,
    close() {
      firewall.stop();
      blocks.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
      spawnSync('ip', ['netns', 'del', netns]);
    },
  };
}

/** A concrete path for a route pattern (`:v` → 1, `:address` → 192.0.2.1, `:name` → viewer). */
export function concretePath(pattern: string): string {
  return pattern.replace(':v', '1').replace(':address', '192.0.2.1').replace(':name', 'viewer');
}

/** `rampart_session=VALUE` from a Set-Cookie header. */
export function cookieOf(res: Response): string | undefined {
  const set = res.headers.get('set-cookie');
  const m = set && /(?:^|,\s*)(rampart_session=[^;]*)/.exec(set);
  return m ? m[1] : undefined;
}
