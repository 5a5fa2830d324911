/**
 * The typed fetch wrapper of the local API (/api/v1): JSON in and out, the session cookie sent same-origin, and the
 * error document `{ error: { code, message, details } }` turned into an ApiError with the problems (JSON pointers).
 */

export interface Problem {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Problem[] = [],
  ) {
    super(message);
  }
}

export const API = '/api/v1';

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever the API answers 401 (the session ended): the app goes back to the login page. */
export function onUnauthorized(fn: Listener): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export async function request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (method !== 'GET') {
    // Every state-changing request carries a JSON body (the API's CSRF defence).
    init.headers = { ...init.headers, 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body ?? {});
  }
  let res: Response;
  try {
    res = await fetch(API + path, init);
  } catch (err) {
    throw new ApiError(0, 'network', `the appliance did not answer (${(err as Error).message})`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; details?: Problem[] } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `${res.status} ${res.statusText}`, e?.details ?? []);
    if (res.status === 401 && path !== '/auth/login') for (const fn of unauthorizedListeners) fn();
    throw err;
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body);
export const del = <T>(path: string, body?: unknown) => request<T>('DELETE', path, body);

/** Query string from defined values. */
export function qs(params: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

// ---- the shapes the UI uses (see docs/openapi.json) ----

export type Role = 'admin' | 'operator' | 'viewer';

export interface Session {
  username: string;
  role: Role;
  mustChange: boolean;
  createdAt: number;
  lastSeen: number;
}

export interface Health {
  state: string;
  detail?: string;
  [k: string]: unknown;
}

export interface Status {
  version: number | null;
  running: { version: number; state: string; appliedAt?: string; hash: string } | null;
  pending: { version: number; confirmDeadline?: string } | null;
  uptimeSeconds: number;
  firewall: Health;
  blocks?: { count: number };
  ids?: Health;
  sync?: Health;
  snmp?: Health;
  [k: string]: unknown;
}

export type VersionState = 'applied' | 'pending_confirm' | 'reverted' | 'failed' | 'superseded' | 'rejected';

export interface VersionMeta {
  version: number;
  createdAt: string;
  author: string;
  source: 'local' | 'api' | 'mssp';
  message: string;
  state: VersionState;
  hash: string;
  appliedAt?: string;
  confirmDeadline?: string;
  error?: string;
}

export interface VersionWithDocument extends VersionMeta {
  document: ConfigDocument;
}

export interface Rule {
  id: string;
  enabled?: boolean;
  from: string;
  to?: string;
  source?: string[];
  destination?: string[];
  services?: (string | { proto: string; ports?: string[] })[];
  action: 'accept' | 'drop' | 'reject';
  log?: boolean;
  limit?: { rate: string; burst?: number };
  comment?: string;
  [k: string]: unknown;
}

export interface ConfigDocument {
  schema: number;
  system?: Record<string, unknown>;
  interfaces?: { name: string; device: string; zone?: string; addresses?: string[]; [k: string]: unknown }[];
  zones?: { name: string; [k: string]: unknown }[];
  objects?: { addresses?: Record<string, string[]>; services?: Record<string, { proto: string; ports?: string[] }[]> };
  firewall: {
    policy?: Record<string, string>;
    antiLockout?: boolean;
    input?: Rule[];
    forward?: Rule[];
    nat?: {
      masquerade?: { zone: string }[];
      portForwards?: { id: string; zone: string; proto: string; port: string; to: string; toPort?: string; [k: string]: unknown }[];
      snat?: Record<string, unknown>[];
    };
    blocklists?: { name: string; entries: string[] }[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface Counter {
  packets: number;
  bytes: number;
  path?: string;
}

export interface Counters {
  rules: Record<string, Counter>;
  portForwards?: Record<string, Counter>;
  blocklists?: Record<string, Counter>;
  antiLockout?: Counter;
  dynamicBlocks?: { packets: number; bytes: number };
}

export interface Block {
  address: string;
  family: 4 | 6;
  expiresAt?: number;
  reason: string;
  source: string;
  createdAt: number;
}

export interface User {
  username: string;
  role: Role;
  mustChange: boolean;
  createdAt: number;
}

// Shapes the daemon defines and sends as they are (types only: nothing of the daemon is bundled).
export type { AuditEntry } from '../../../services/api/audit.ts';
export type { LiveFigures as LiveStats } from '../../../services/telemetry/service.ts';
export type { RuleInfo as IdsRule } from '../../../services/ids/rules.ts';
import type { AlertRecord as Alert } from '../../../services/core/alerts.ts';
export type { Alert };

export interface TelemetryResult {
  metric: string;
  resolution: 'raw' | '1m' | '1h';
  stepMs: number;
  points: { ts: number; min: number; avg: number; max: number }[];
}



let routeList: Promise<Set<string>> | undefined;

/**
 * Whether the daemon serves `METHOD path` (from its OpenAPI document). Pages of subsystems that are not in this
 * build ask first, so they can say so plainly instead of provoking 404s.
 */
export async function hasRoute(method: string, path: string): Promise<boolean> {
  routeList ??= get<{ paths?: Record<string, Record<string, unknown>> }>('/openapi.json')
    .then((doc) => {
      const s = new Set<string>();
      for (const [p, ops] of Object.entries(doc.paths ?? {})) for (const m of Object.keys(ops)) s.add(`${m.toLowerCase()} ${p.replace(/^\/api\/v1/, '')}`);
      return s;
    })
    .catch(() => {
      routeList = undefined;
      return new Set<string>();
    });
  return (await routeList).has(`${method.toLowerCase()} ${path}`);
}

const HINT = 'rampart.session';

/** Whether this browser logged in before (the session cookie itself is HttpOnly): skips a pointless 401 probe. */
export const sessionHint = {
  get: () => {
    try {
      return localStorage.getItem(HINT) === '1';
    } catch {
      return true;
    }
  },
  set: (on: boolean) => {
    try {
      if (on) localStorage.setItem(HINT, '1');
      else localStorage.removeItem(HINT);
    } catch {
      // storage unavailable: probe every time
    }
  },
};

/** GET /alerts answers a list (older drafts: `{ alerts: [...] }`); either way, the list. */
export function alertList(r: unknown): Alert[] {
  if (Array.isArray(r)) return r as Alert[];
  const a = (r as { alerts?: unknown } | undefined)?.alerts;
  return Array.isArray(a) ? (a as Alert[]) : [];
}
