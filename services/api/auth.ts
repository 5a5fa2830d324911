/**
 * Local users, password hashing, server-side sessions and login throttling (SPEC §4).
 *
 * - Users live in the `users` table; passwords are hashed with scrypt and stored as `scrypt$N$r$p$saltB64$hashB64`.
 * - First start: `admin` with the password from RAMPART_ADMIN_PASSWORD, or a random one (printed once by the caller)
 *   that must be changed at first login. There is never a shared default password.
 * - Sessions: 256-bit random ids; only their SHA-256 is stored. Idle and absolute expiry; a new id at every login
 *   (the caller's previous session, if passed, is deleted), all sessions dropped when an administrator sets a password,
 *   the other sessions dropped when users change their own.
 * - Roles: admin (everything), operator (all but user management), viewer (read only) — see `can`.
 *
 * Login throttling (in memory; a daemon restart forgets it, which is acceptable: it only ever delays):
 * - Two counters per attempt: one per source (the address; IPv6 aggregated to its /64, IPv4-mapped IPv6 unwrapped)
 *   and one per user name. Each failure counts; the first 4 failures of a key are free, from the 5th on the key is
 *   blocked for 1 s, doubling with every further failure (1, 2, 4, … s). Attempts made while blocked are refused with
 *   429 and Retry-After without checking the password, and do not count (they cannot prolong the block).
 * - Per source the block grows up to 15 min and the failures are forgotten 1 h after the last one: a single address
 *   gets a handful of guesses per hour at most.
 * - Per user name the block is capped at 30 s and forgotten 15 min after the last failure, and it applies only to
 *   sources that have failed themselves within the last hour. So an address that has not failed (the real admin
 *   at another address) is never slowed down by someone else's guessing, while a distributed attack (many
 *   addresses, one user) still gets at most one free guess per new address and is then held to the per-user pace.
 *   The per-user block can never lock anybody out for more than 30 s.
 * - A successful login resets the counters of its source and of its user name.
 * - At most 3 password checks run at once per source (more: 429, retry after 1 s), so parallel requests cannot slip
 *   past the counters while scrypt runs; at most 64 in total, bounding scrypt's memory (32 MiB each).
 * - Login outcomes are written to the audit log here (action `auth.login`: ok / denied / throttled). While a key is
 *   blocked, only the first refused attempt of each block period is recorded (the next entry says how many were left
 *   unrecorded), so a flood cannot fill the store. Pass `auditLogins: false` to leave recording to the caller.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/store.ts';
import { RampartError, type Problem } from '../core/errors.ts';
import { parseAddress, parsePrefix } from '../core/net.ts';
import { AuditLog } from './audit.ts';

export type Role = 'admin' | 'operator' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

export interface User {
  username: string;
  role: Role;
  mustChange: boolean;
  createdAt: number;
}

export interface Session {
  /** The raw id: set only in the session returned by `login` (it is never stored); '' from `session()`. */
  id: string;
  username: string;
  role: Role;
  mustChange: boolean;
  createdAt: number;
  lastSeen: number;
  /** The address the session logged in from. */
  source?: string;
}

export interface AuthOptions {
  /** Default 1800. */
  idleSeconds?: number;
  /** Default 43200. */
  absoluteSeconds?: number;
  /** Clock in epoch ms, for tests. */
  now?: () => number;
  /** scrypt cost N for new hashes (a power of two; default 2^15). Tests lower it; verification reads N from the hash. */
  scryptN?: number;
  /** Record login outcomes in the audit log (default true). */
  auditLogins?: boolean;
  /** Audit log to record into (default: one on the same store). */
  audit?: AuditLog;
}

export const USERNAME_RE = /^[a-z][a-z0-9_.-]{0,31}$/;
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 256;
const MAX_SESSIONS_PER_USER = 20;
const SESSION_ID_RE = /^[A-Za-z0-9_-]{43}$/;
const SESSION_CACHE_MS = 1000;
const SESSION_CACHE_MAX = 1000;

// ---- password hashing ----

const SCRYPT_N = 1 << 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_LEN = 32;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** scrypt needs 128·N·r bytes; allow twice that. */
const maxmem = (N: number, r: number, p: number) => 256 * N * r + 128 * r * p + (1 << 20);

/** Hash a password: `scrypt$N$r$p$saltB64$hashB64`. */
export async function hashPassword(password: string, N = SCRYPT_N): Promise<string> {
  if (!Number.isInteger(N) || N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0) throw new RampartError('internal', 'scrypt N must be a power of two');
  const salt = randomBytes(16);
  const key = await scrypt(password.normalize('NFC'), salt, KEY_LEN, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: maxmem(N, SCRYPT_R, SCRYPT_P) });
  return `scrypt$${N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Check a password against a stored hash in constant time; false for a malformed hash. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = typeof encoded === 'string' ? encoded.split('$') : [];
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^\d{1,8}$/.test(x) ? Number(x) : NaN));
  if (!(N >= 2 && N <= 1 << 20 && (N & (N - 1)) === 0 && r >= 1 && r <= 32 && p >= 1 && p <= 16)) return false;
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (salt.length < 8 || expected.length < 16 || expected.length > 128) return false;
  const actual = await scrypt(String(password).normalize('NFC'), salt, expected.length, { N, r, p, maxmem: maxmem(N, r, p) });
  return timingSafeEqual(actual, expected);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

// ---- roles ----

const ROLE_RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };
const NEED_RANK = { read: 1, operate: 2, admin: 3 } as const;

/** viewer: read; operator: read + operate; admin: everything. */
export function can(role: Role, need: 'read' | 'operate' | 'admin'): boolean {
  const have = Object.prototype.hasOwnProperty.call(ROLE_RANK, role) ? ROLE_RANK[role] : 0;
  const want = Object.prototype.hasOwnProperty.call(NEED_RANK, need) ? NEED_RANK[need] : Infinity;
  return have >= want;
}

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

// ---- throttling ----

interface ThrottleEntry {
  failures: number;
  lastFailure: number;
  blockedUntil: number;
  /** blockedUntil of the block period whose first refusal was audited. */
  auditedBlock: number;
  /** Refusals not written to the audit log. */
  unrecorded: number;
}

interface ThrottlePolicy {
  /** Failures before the first block. */
  free: number;
  baseMs: number;
  capMs: number;
  /** Failures are forgotten this long after the last one (once no block is running). */
  forgetMs: number;
  maxEntries: number;
}

const SOURCE_POLICY: ThrottlePolicy = { free: 5, baseMs: 1000, capMs: 15 * 60_000, forgetMs: 60 * 60_000, maxEntries: 50_000 };
const USER_POLICY: ThrottlePolicy = { free: 5, baseMs: 1000, capMs: 30_000, forgetMs: 15 * 60_000, maxEntries: 50_000 };
const MAX_INFLIGHT_PER_SOURCE = 3;
const MAX_INFLIGHT_TOTAL = 64;

class Throttle {
  readonly entries = new Map<string, ThrottleEntry>();
  constructor(readonly policy: ThrottlePolicy) {}

  private stale(e: ThrottleEntry, now: number): boolean {
    return e.blockedUntil <= now && now - e.lastFailure > this.policy.forgetMs;
  }

  get(key: string, now: number): ThrottleEntry | undefined {
    const e = this.entries.get(key);
    if (e && this.stale(e, now)) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Milliseconds until the key may try again; 0 if not blocked. */
  waitMs(key: string, now: number): number {
    const e = this.get(key, now);
    return e && e.blockedUntil > now ? e.blockedUntil - now : 0;
  }

  fail(key: string, now: number): ThrottleEntry {
    const e = this.get(key, now) ?? { failures: 0, lastFailure: now, blockedUntil: 0, auditedBlock: 0, unrecorded: 0 };
    e.failures++;
    e.lastFailure = now;
    const over = e.failures - this.policy.free;
    if (over >= 0) e.blockedUntil = Math.max(e.blockedUntil, now + Math.min(this.policy.capMs, this.policy.baseMs * 2 ** Math.min(over, 40)));
    this.entries.delete(key); // re-insert: the map stays ordered by last failure, oldest first
    this.entries.set(key, e);
    if (this.entries.size > this.policy.maxEntries) this.prune(now);
    return e;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  private prune(now: number): void {
    for (const [k, e] of this.entries) if (this.stale(e, now)) this.entries.delete(k);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.policy.maxEntries * 0.9) break;
      this.entries.delete(k);
    }
  }

  snapshot(now: number): Record<string, { failures: number; retryAfterSeconds: number }> {
    const out: Record<string, { failures: number; retryAfterSeconds: number }> = {};
    for (const [k, e] of this.entries) {
      if (this.stale(e, now)) continue;
      out[k] = { failures: e.failures, retryAfterSeconds: e.blockedUntil > now ? Math.ceil((e.blockedUntil - now) / 1000) : 0 };
    }
    return out;
  }
}

/** The throttling key of a source address: IPv4-mapped IPv6 unwrapped, zone dropped, IPv6 aggregated to its /64. */
export function sourceKey(source: string): string {
  let s = String(source ?? '').trim().slice(0, 128);
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  if (/^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(s)) s = s.slice(7);
  const a = parseAddress(s);
  if (!a) return s || 'unknown';
  return a.family === 6 ? parsePrefix(`${a.address}/64`)!.text : a.text;
}

function throttled(ms: number, message = 'too many failed logins; try again later'): RampartError {
  const err = new RampartError('throttled', message);
  err.retryAfterSeconds = Math.max(1, Math.ceil(ms / 1000));
  return err;
}

// ---- users and sessions ----

interface UserRow {
  username: string;
  role: Role;
  password_hash: string;
  must_change: number;
  created_at: number;
  updated_at: number;
}

interface SessionRow {
  id_hash: string;
  username: string;
  created_at: number;
  last_seen: number;
  source: string;
  role: Role;
  must_change: number;
}

const toUser = (r: UserRow): User => ({ username: r.username, role: r.role, mustChange: !!r.must_change, createdAt: r.created_at });

function validateUsername(username: unknown, problems: Problem[]): void {
  if (typeof username !== 'string' || !USERNAME_RE.test(username))
    problems.push({ path: '/username', message: 'must start with a lower-case letter and have at most 32 of a-z 0-9 _ . -' });
}

function validatePassword(password: unknown, problems: Problem[], path = '/password'): void {
  if (typeof password !== 'string') problems.push({ path, message: 'must be a string' });
  else if (password.length < PASSWORD_MIN) problems.push({ path, message: `must have at least ${PASSWORD_MIN} characters` });
  else if (password.length > PASSWORD_MAX) problems.push({ path, message: `must have at most ${PASSWORD_MAX} characters` });
}

function validateRole(role: unknown, problems: Problem[]): void {
  if (!isRole(role)) problems.push({ path: '/role', message: `must be one of ${ROLES.join(', ')}` });
}

function check(problems: Problem[]): void {
  if (problems.length) throw RampartError.invalid(problems);
}

const UNAUTHORIZED = 'invalid username or password';

export class Auth {
  readonly idleMs: number;
  readonly absoluteMs: number;
  readonly audit: AuditLog;
  private readonly now: () => number;
  private readonly scryptN: number;
  private readonly auditLogins: boolean;
  private readonly bySource = new Throttle(SOURCE_POLICY);
  private readonly byUser = new Throttle(USER_POLICY);
  private readonly inflight = new Map<string, number>();
  private inflightTotal = 0;
  private dummyHash?: Promise<string>;
  /**
   * Sessions looked up in the last second, by raw id: the API's hot path (every request) skips SQLite and hashing.
   * Every change to users or sessions made here empties it, and so does any write by another connection to the
   * database (the offline CLI's `rampart user passwd|del`), which SQLite's data_version reveals at once.
   */
  private readonly sessionCache = new Map<string, { at: number; session: Session }>();
  private cacheDataVersion = -1;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    opts: AuthOptions = {},
  ) {
    this.idleMs = (opts.idleSeconds ?? 1800) * 1000;
    this.absoluteMs = (opts.absoluteSeconds ?? 43200) * 1000;
    this.now = opts.now ?? Date.now;
    this.scryptN = opts.scryptN ?? SCRYPT_N;
    this.auditLogins = opts.auditLogins ?? true;
    this.audit = opts.audit ?? new AuditLog(store, log, this.now);
  }

  private get sql() {
    return this.store.sql;
  }

  private row(username: string): UserRow | undefined {
    return this.store.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
  }

  /**
   * First start: create `admin` when no administrator exists (a fresh store, or one where only non-admin users were
   * added from the console). Returns the generated password when one was generated (print it once; mustChange
   * true); with `envPassword` (RAMPART_ADMIN_PASSWORD, at least 10 characters) mustChange is false.
   */
  async ensureAdmin(envPassword?: string): Promise<{ created: boolean; password?: string; mustChange: boolean }> {
    const needed = () =>
      (this.store.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin'").get() as { n: number }).n === 0 && !this.row('admin');
    if (!needed()) {
      if ((this.store.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin'").get() as { n: number }).n === 0)
        this.log.warn('no administrator exists and the name "admin" is taken by a non-admin user; use `rampart user` to fix it');
      return { created: false, mustChange: false };
    }
    const fromEnv = typeof envPassword === 'string' && envPassword !== '';
    if (fromEnv) {
      const problems: Problem[] = [];
      validatePassword(envPassword, problems, '/RAMPART_ADMIN_PASSWORD');
      check(problems);
    }
    const password = fromEnv ? envPassword! : randomBytes(18).toString('base64url');
    const mustChange = !fromEnv;
    const hash = await hashPassword(password, this.scryptN);
    const now = this.now();
    const created = this.sql
      .transaction(() => {
        if (!needed()) return false;
        this.store
          .prepare('INSERT INTO users (username, role, password_hash, must_change, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run('admin', 'admin', hash, mustChange ? 1 : 0, now, now);
        return true;
      })
      .immediate();
    if (!created) return { created: false, mustChange: false };
    this.audit.record({ username: null, role: null, source: 'system', action: 'user.add', target: 'admin', result: 'ok', detail: fromEnv ? 'first start, password from RAMPART_ADMIN_PASSWORD' : 'first start, generated password' });
    this.log.info({ mustChange }, 'created the first administrator "admin"');
    return fromEnv ? { created: true, mustChange } : { created: true, password, mustChange };
  }

  /** Create a user; invalid_input for a bad name, password (10–256 characters) or role; conflict if it exists. */
  async createUser(username: string, password: string, role: Role, opts: { mustChange?: boolean } = {}): Promise<User> {
    const problems: Problem[] = [];
    validateUsername(username, problems);
    validatePassword(password, problems);
    validateRole(role, problems);
    check(problems);
    if (this.row(username)) throw new RampartError('conflict', `user "${username}" exists`);
    const hash = await hashPassword(password, this.scryptN);
    const now = this.now();
    try {
      this.store
        .prepare('INSERT INTO users (username, role, password_hash, must_change, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(username, role, hash, opts.mustChange ? 1 : 0, now, now);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw new RampartError('conflict', `user "${username}" exists`);
      throw err;
    }
    return toUser(this.row(username)!);
  }

  /** Set a user's password (administrator or console); ends all of that user's sessions. */
  async setPassword(username: string, password: string, opts: { mustChange?: boolean } = {}): Promise<void> {
    const problems: Problem[] = [];
    validatePassword(password, problems);
    check(problems);
    if (typeof username !== 'string' || !this.row(username)) throw new RampartError('not_found', `no user "${username}"`);
    const hash = await hashPassword(password, this.scryptN);
    const now = this.now();
    const changed = this.sql.transaction(() => {
      const n = this.store.prepare('UPDATE users SET password_hash = ?, must_change = ?, updated_at = ? WHERE username = ?').run(hash, opts.mustChange ? 1 : 0, now, username).changes;
      this.store.prepare('DELETE FROM sessions WHERE username = ?').run(username);
      this.sessionCache.clear();
      return n;
    })();
    if (!changed) throw new RampartError('not_found', `no user "${username}"`);
    this.byUser.reset(username);
  }

  /** Delete a user and its sessions; not_found if unknown; conflict for the last administrator. */
  deleteUser(username: string): void {
    this.sql
      .transaction(() => {
        const r = typeof username === 'string' ? this.row(username) : undefined;
        if (!r) throw new RampartError('not_found', `no user "${username}"`);
        if (r.role === 'admin') {
          const admins = (this.store.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin'").get() as { n: number }).n;
          if (admins <= 1) throw new RampartError('conflict', `"${username}" is the last administrator and cannot be deleted`);
        }
        this.store.prepare('DELETE FROM sessions WHERE username = ?').run(username);
        this.store.prepare('DELETE FROM users WHERE username = ?').run(username);
        this.sessionCache.clear();
      })
      .immediate();
  }

  listUsers(): User[] {
    return (this.store.prepare('SELECT * FROM users ORDER BY username').all() as UserRow[]).map(toUser);
  }

  getUser(username: string): User | undefined {
    if (typeof username !== 'string') return undefined;
    const r = this.row(username);
    return r && toUser(r);
  }

  /**
   * Verify credentials with throttling; on success create a session (the caller's old session `replaceSession`, if
   * given, is deleted: rotation). Throws unauthorized (one message for unknown user and wrong password) or throttled
   * (with retryAfterSeconds).
   */
  async login(username: string, password: string, source: string, replaceSession?: string): Promise<Session> {
    const src = sourceKey(source);
    const name = typeof username === 'string' ? username.slice(0, 64) : '';
    const userKey = name.toLowerCase();
    const sourceText = String(source ?? '').slice(0, 128);
    let now = this.now();

    // 1. throttles: the source's own block; the user's block only for sources that have failed recently.
    const srcWait = this.bySource.waitMs(src, now);
    const userWait = srcWait === 0 && this.bySource.get(src, now) ? this.byUser.waitMs(userKey, now) : 0;
    if (srcWait > 0 || userWait > 0) {
      if (srcWait > 0) this.recordThrottled(this.bySource, src, now, srcWait, 'source', name, sourceText);
      else this.recordThrottled(this.byUser, userKey, now, userWait, 'user name', name, sourceText);
      throw throttled(srcWait || userWait);
    }
    const inflightHere = this.inflight.get(src) ?? 0;
    if (inflightHere >= MAX_INFLIGHT_PER_SOURCE || this.inflightTotal >= MAX_INFLIGHT_TOTAL) {
      this.log.warn({ source: src }, 'login: too many concurrent attempts');
      throw throttled(1000, 'too many concurrent logins; try again later');
    }

    // 2. the password check (always one scrypt, also for unknown users: no enumeration by timing).
    this.inflight.set(src, inflightHere + 1);
    this.inflightTotal++;
    let row: UserRow | undefined;
    let ok = false;
    try {
      row = USERNAME_RE.test(name) ? this.row(name) : undefined;
      const pw = typeof password === 'string' && password.length <= PASSWORD_MAX * 4 ? password : undefined;
      if (pw !== undefined) {
        const encoded = row?.password_hash ?? (await this.dummy());
        ok = (await verifyPassword(pw, encoded)) && !!row;
      }
    } finally {
      const n = (this.inflight.get(src) ?? 1) - 1;
      if (n > 0) this.inflight.set(src, n);
      else this.inflight.delete(src);
      this.inflightTotal--;
    }
    now = this.now();

    if (!ok || !row) {
      const s = this.bySource.fail(src, now);
      const u = this.byUser.fail(userKey, now);
      const blocked = [s.blockedUntil > now ? `source blocked for ${Math.ceil((s.blockedUntil - now) / 1000)} s` : '', u.blockedUntil > now ? `user name slowed for ${Math.ceil((u.blockedUntil - now) / 1000)} s` : '']
        .filter(Boolean)
        .join(', ');
      if (this.auditLogins)
        this.audit.record({ username: name || null, role: row?.role ?? null, source: sourceText, action: 'auth.login', target: name, result: 'denied', detail: `${row ? 'wrong password' : 'unknown user'}; ${s.failures} failure(s) from this source${blocked ? '; ' + blocked : ''}` });
      throw new RampartError('unauthorized', UNAUTHORIZED);
    }

    // 3. success: reset the counters, rotate, create the session.
    this.bySource.reset(src);
    this.byUser.reset(userKey);
    const id = randomBytes(32).toString('base64url');
    const stillThere = this.sql.transaction(() => {
      if (!this.row(row!.username)) return false; // deleted while the password was being checked
      if (typeof replaceSession === 'string' && SESSION_ID_RE.test(replaceSession)) this.store.prepare('DELETE FROM sessions WHERE id_hash = ?').run(sha256(replaceSession));
      this.deleteExpired(now);
      // keep at most MAX_SESSIONS_PER_USER per user: drop the least recently used beyond that
      this.store
        .prepare('DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE username = ? ORDER BY last_seen DESC, created_at DESC LIMIT -1 OFFSET ?)')
        .run(row!.username, MAX_SESSIONS_PER_USER - 1);
      this.store.prepare('INSERT INTO sessions (id_hash, username, created_at, last_seen, source) VALUES (?, ?, ?, ?, ?)').run(sha256(id), row!.username, now, now, sourceText);
      return true;
    })();
    if (!stillThere) throw new RampartError('unauthorized', UNAUTHORIZED);
    if (this.auditLogins)
      this.audit.record({ username: row.username, role: row.role, source: sourceText, action: 'auth.login', target: row.username, result: 'ok', detail: row.must_change ? 'password must be changed' : '' });
    return { id, username: row.username, role: row.role, mustChange: !!row.must_change, createdAt: now, lastSeen: now, source: sourceText };
  }

  private recordThrottled(throttle: Throttle, key: string, now: number, waitMs: number, what: string, name: string, source: string): void {
    const e = throttle.get(key, now);
    if (!e) return;
    if (e.auditedBlock === e.blockedUntil) {
      e.unrecorded++;
      return;
    }
    e.auditedBlock = e.blockedUntil;
    const earlier = e.unrecorded ? `; ${e.unrecorded} earlier refused attempt(s) not recorded` : '';
    e.unrecorded = 0;
    if (this.auditLogins)
      this.audit.record({ username: name || null, role: null, source, action: 'auth.login', target: name, result: 'throttled', detail: `${what} throttled after ${e.failures} failure(s); retry after ${Math.ceil(waitMs / 1000)} s${earlier}` });
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= hashPassword(randomBytes(16).toString('base64'), this.scryptN);
    return this.dummyHash;
  }

  private deleteExpired(now: number): number {
    this.sessionCache.clear();
    return this.store.prepare('DELETE FROM sessions WHERE last_seen <= ? OR created_at <= ?').run(now - this.idleMs, now - this.absoluteMs).changes;
  }

  /** Delete expired sessions (for a periodic job); returns how many. */
  purgeSessions(): number {
    return this.deleteExpired(this.now());
  }

  logout(sessionId: string): void {
    if (typeof sessionId !== 'string' || !SESSION_ID_RE.test(sessionId)) return;
    this.sessionCache.clear();
    this.store.prepare('DELETE FROM sessions WHERE id_hash = ?').run(sha256(sessionId));
  }

  /** The session for a raw id, or undefined if unknown or expired (idle or absolute); touches lastSeen. */
  session(sessionId: string | undefined, opts: { touch?: boolean } = {}): Session | undefined {
    if (typeof sessionId !== 'string') return undefined;
    const now0 = this.now();
    const dataVersion = (this.store.prepare('PRAGMA data_version').get() as { data_version: number }).data_version;
    if (dataVersion !== this.cacheDataVersion) {
      this.sessionCache.clear();
      this.cacheDataVersion = dataVersion;
    }
    const hit = this.sessionCache.get(sessionId);
    if (hit && now0 - hit.at < SESSION_CACHE_MS && now0 - hit.at >= 0) {
      const s = hit.session;
      if (now0 - s.lastSeen < this.idleMs && now0 - s.createdAt < this.absoluteMs) return { ...s };
    }
    if (!SESSION_ID_RE.test(sessionId)) return undefined;
    const idHash = sha256(sessionId);
    const r = this.store
      .prepare('SELECT s.*, u.role AS role, u.must_change AS must_change FROM sessions s JOIN users u ON u.username = s.username WHERE s.id_hash = ?')
      .get(idHash) as SessionRow | undefined;
    if (!r) return undefined;
    const now = this.now();
    if (now - r.last_seen >= this.idleMs || now - r.created_at >= this.absoluteMs) {
      this.store.prepare('DELETE FROM sessions WHERE id_hash = ?').run(idHash);
      return undefined;
    }
    let lastSeen = r.last_seen;
    if (opts.touch !== false && now - lastSeen >= 1000) {
      // at most one write a second per session
      this.store.prepare('UPDATE sessions SET last_seen = ? WHERE id_hash = ?').run(now, idHash);
      lastSeen = now;
    }
    const session: Session = { id: '', username: r.username, role: r.role, mustChange: !!r.must_change, createdAt: r.created_at, lastSeen, source: r.source };
    if (opts.touch !== false) {
      if (this.sessionCache.size >= SESSION_CACHE_MAX) this.sessionCache.clear();
      this.sessionCache.set(sessionId, { at: now, session: { ...session } });
    }
    return session;
  }

  /**
   * Change one's own password (the current one is required): clears mustChange and ends the user's other sessions.
   * `keepSession` (the caller's raw session id) survives; without it every session of the user ends.
   * Wrong current password: invalid_input at /current (it counts against the user name's throttle).
   */
  async changePassword(username: string, current: string, next: string, keepSession?: string): Promise<void> {
    const problems: Problem[] = [];
    validatePassword(next, problems, '/next');
    if (typeof current !== 'string') problems.push({ path: '/current', message: 'must be a string' });
    else if (current === next) problems.push({ path: '/next', message: 'must differ from the current password' });
    check(problems);
    const row = typeof username === 'string' ? this.row(username) : undefined;
    if (!row) throw new RampartError('not_found', `no user "${username}"`);
    const key = username.toLowerCase();
    const wait = this.byUser.waitMs(key, this.now());
    if (wait > 0) throw throttled(wait);
    if (!(current.length <= PASSWORD_MAX * 4 && (await verifyPassword(current, row.password_hash)))) {
      this.byUser.fail(key, this.now());
      throw RampartError.invalid([{ path: '/current', message: 'wrong password' }], 'the current password is wrong');
    }
    this.byUser.reset(key);
    const hash = await hashPassword(next, this.scryptN);
    const now = this.now();
    const keep = typeof keepSession === 'string' && SESSION_ID_RE.test(keepSession) ? sha256(keepSession) : '';
    this.sql.transaction(() => {
      this.store.prepare('UPDATE users SET password_hash = ?, must_change = 0, updated_at = ? WHERE username = ?').run(hash, now, username);
      this.store.prepare('DELETE FROM sessions WHERE username = ? AND id_hash != ?').run(username, keep);
      this.sessionCache.clear();
    })();
  }

  /** Throttle counters, for tests and diagnostics: failures and seconds until retry, per source key and user name. */
  throttleState(): { sources: Record<string, { failures: number; retryAfterSeconds: number }>; users: Record<string, { failures: number; retryAfterSeconds: number }> } {
    const now = this.now();
    return { sources: this.bySource.snapshot(now), users: this.byUser.snapshot(now) };
  }
}
