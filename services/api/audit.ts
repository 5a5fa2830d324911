/**
 * The audit log (SPEC §4): every login (success and failure) and every mutation, with who, role, source address,
 * what, target and result. Lives in the `audit` table of the SQLite store, so the CLI reads it offline too.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/store.ts';

export interface AuditEntry {
  id: number;
  /** Epoch milliseconds. */
  at: number;
  username: string | null;
  role: string | null;
  source: string;
  action: string;
  target: string;
  result: 'ok' | 'denied' | 'failed' | 'throttled';
  detail: string;
}

export interface AuditFilter {
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  username?: string;
  action?: string;
  result?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

const RESULTS = new Set<AuditEntry['result']>(['ok', 'denied', 'failed', 'throttled']);

/** Field limits: a flood of long user names or messages must not bloat the store. */
const MAX = { username: 64, role: 16, source: 128, action: 64, target: 256, detail: 1024 } as const;

/** Control characters (terminal escapes, new lines) become "?" so `rampart audit` cannot be spoofed; then truncate. */
function clean(value: unknown, max: number): string {
  let s = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
  if (s.length > max * 2) s = s.slice(0, max * 2);
  // eslint-disable-next-line no-control-regex
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

type AuditRow = Omit<AuditEntry, 'result'> & { result: string };

export class AuditLog {
  private insert?: { db: Database; stmt: Statement };

  /**
   * @param log where a failed write is reported (record never throws); stderr when not given.
   * @param now clock in epoch ms (tests inject one).
   */
  constructor(
    private readonly store: Store,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Append one entry. Long fields are truncated, control characters replaced. Never throws. */
  record(e: {
    username?: string | null;
    role?: string | null;
    source: string;
    action: string;
    target?: string;
    result: AuditEntry['result'];
    detail?: string;
  }): void {
    try {
      const db = this.store.sql;
      if (!this.insert || this.insert.db !== db)
        this.insert = { db, stmt: db.prepare('INSERT INTO audit (at, username, role, source, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)') };
      const result = RESULTS.has(e.result) ? e.result : 'failed';
      this.insert.stmt.run(
        Math.trunc(this.now()),
        e.username == null ? null : clean(e.username, MAX.username),
        e.role == null ? null : clean(e.role, MAX.role),
        clean(e.source, MAX.source),
        clean(e.action, MAX.action) || 'unknown',
        clean(e.target, MAX.target),
        result,
        clean(e.detail, MAX.detail),
      );
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      try {
        if (this.log) this.log.error({ err: msg, action: e?.action }, 'audit: cannot record entry');
        else process.stderr.write(`rampart: audit: cannot record entry: ${msg}\n`);
      } catch {
        // nothing left to do
      }
    }
  }

  /** Entries matching the filter, newest first. */
  list(filter: AuditFilter = {}): AuditEntry[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.since !== undefined && Number.isFinite(filter.since)) (where.push('at >= ?'), args.push(Math.trunc(filter.since)));
    if (filter.until !== undefined && Number.isFinite(filter.until)) (where.push('at < ?'), args.push(Math.trunc(filter.until)));
    if (filter.username !== undefined) (where.push('username = ?'), args.push(filter.username));
    if (filter.action !== undefined) (where.push('action = ?'), args.push(filter.action));
    if (filter.result !== undefined) (where.push('result = ?'), args.push(filter.result));
    let limit = filter.limit === undefined || !Number.isFinite(filter.limit) ? 100 : Math.trunc(filter.limit);
    limit = Math.min(1000, Math.max(1, limit));
    const sql = `SELECT id, at, username, role, source, action, target, result, detail FROM audit${
      where.length ? ' WHERE ' + where.join(' AND ') : ''
    } ORDER BY at DESC, id DESC LIMIT ?`;
    const rows = this.store.prepare(sql).all(...args, limit) as AuditRow[];
    return rows.map((r) => ({ ...r, result: r.result as AuditEntry['result'] }));
  }

  /** Delete entries older than `olderThanMs` milliseconds (an age, not a date); returns how many. */
  purge(olderThanMs: number): number {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) return 0;
    return this.store.prepare('DELETE FROM audit WHERE at < ?').run(Math.trunc(this.now() - olderThanMs)).changes;
  }
}
