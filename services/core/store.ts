/**
 * The SQLite store (DATA/rampart.db): WAL, busy_timeout, numbered migrations, prepared statements.
 * Holds the version journal, dynamic blocks and small key/value state.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { RampartError } from './errors.ts';

export type VersionState = 'applied' | 'pending_confirm' | 'reverted' | 'failed' | 'superseded' | 'rejected';
export type VersionSource = 'local' | 'api' | 'mssp';

export interface VersionRecord {
  version: number;
  createdAt: string;
  author: string;
  source: VersionSource;
  message: string;
  state: VersionState;
  hash: string;
  document: unknown;
  appliedAt?: string;
  confirmDeadline?: string;
  error?: string;
}

export interface BlockRecord {
  address: string;
  family: 4 | 6;
  /** Epoch milliseconds; undefined: permanent. */
  expiresAt?: number;
  reason: string;
  source: string;
  createdAt: number;
}

const MIGRATIONS: string[] = [
  `CREATE TABLE versions (
     version INTEGER PRIMARY KEY,
     created_at TEXT NOT NULL,
     author TEXT NOT NULL,
     source TEXT NOT NULL,
     message TEXT NOT NULL DEFAULT '',
     state TEXT NOT NULL,
     hash TEXT NOT NULL,
     document TEXT NOT NULL,
     applied_at TEXT,
     confirm_deadline TEXT,
     error TEXT
   );
   CREATE INDEX versions_state ON versions(state);
   CREATE TABLE blocks (
     address TEXT PRIMARY KEY,
     family INTEGER NOT NULL,
     expires_at INTEGER,
     reason TEXT NOT NULL DEFAULT '',
     source TEXT NOT NULL DEFAULT 'local',
     created_at INTEGER NOT NULL
   );
   CREATE INDEX blocks_expiry ON blocks(expires_at);
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 2: local users, server-side sessions, the audit log.
  `CREATE TABLE users (
     username TEXT PRIMARY KEY,
     role TEXT NOT NULL,
     password_hash TEXT NOT NULL,
     must_change INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE sessions (
     id_hash TEXT PRIMARY KEY,
     username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     created_at INTEGER NOT NULL,
     last_seen INTEGER NOT NULL,
     source TEXT NOT NULL DEFAULT ''
   );
   CREATE INDEX sessions_user ON sessions(username);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY,
     at INTEGER NOT NULL,
     username TEXT,
     role TEXT,
     source TEXT NOT NULL DEFAULT '',
     action TEXT NOT NULL,
     target TEXT NOT NULL DEFAULT '',
     result TEXT NOT NULL,
     detail TEXT NOT NULL DEFAULT ''
   );
   CREATE INDEX audit_at ON audit(at);`,
  // 3: telemetry series (services/telemetry/series.ts): raw points, 1-minute and 1-hour rollups; ts in epoch ms.
  `CREATE TABLE series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL UNIQUE);
   CREATE TABLE points_raw (
     series INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     value REAL NOT NULL,
     PRIMARY KEY (series, ts)
   ) WITHOUT ROWID;
   CREATE INDEX points_raw_ts ON points_raw(ts);
   CREATE TABLE points_1m (
     series INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     min REAL NOT NULL,
     avg REAL NOT NULL,
     max REAL NOT NULL,
     count INTEGER NOT NULL,
     PRIMARY KEY (series, ts)
   ) WITHOUT ROWID;
   CREATE INDEX points_1m_ts ON points_1m(ts);
   CREATE TABLE points_1h (
     series INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     min REAL NOT NULL,
     avg REAL NOT NULL,
     max REAL NOT NULL,
     count INTEGER NOT NULL,
     PRIMARY KEY (series, ts)
   ) WITHOUT ROWID;
   CREATE INDEX points_1h_ts ON points_1h(ts);`,
];

/** Canonical JSON (object keys sorted at every depth, undefined members dropped) for hashing documents. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    // Fast path for the big lists (blocklists, address objects): arrays of strings or numbers.
    if (value.every((v) => typeof v === 'string' || typeof v === 'number')) return JSON.stringify(value);
    return '[' + value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',') + ']';
  }
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    if (obj[k] === undefined) continue;
    parts.push(JSON.stringify(k) + ':' + canonicalJson(obj[k]));
  }
  return '{' + parts.join(',') + '}';
}

export interface PreparedDocument {
  text: string;
  hash: string;
}

export function prepareDocument(doc: unknown): PreparedDocument {
  return { text: JSON.stringify(doc), hash: documentHash(doc) };
}

export function documentHash(doc: unknown): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson(doc)).digest('hex');
}

interface VersionRow {
  version: number;
  created_at: string;
  author: string;
  source: VersionSource;
  message: string;
  state: VersionState;
  hash: string;
  document: string;
  applied_at: string | null;
  confirm_deadline: string | null;
  error: string | null;
}

function toVersion(r: VersionRow, withDocument = true): VersionRecord {
  return {
    version: r.version,
    createdAt: r.created_at,
    author: r.author,
    source: r.source,
    message: r.message,
    state: r.state,
    hash: r.hash,
    document: withDocument ? JSON.parse(r.document) : undefined,
    ...(r.applied_at ? { appliedAt: r.applied_at } : {}),
    ...(r.confirm_deadline ? { confirmDeadline: r.confirm_deadline } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

/** How often the WAL is checkpointed (see open()). */
const CHECKPOINT_EVERY_MS = 10_000;

export class Store {
  private db?: Database.Database;
  private checkpointTimer?: NodeJS.Timeout;

  constructor(readonly path: string) {}

  open(): this {
    if (this.db) return this;
    const db = new Database(this.path);
    // A new database gets 16 KiB pages (an existing one keeps its size: in WAL mode the pragma changes nothing): the
    // big tables hold rows of a kilobyte and more (alerts with their raw event, versions, the sync outbox), which
    // then cost fewer pages and WAL frames per row.
    db.pragma('page_size = 16384');
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // Checkpoints run from a timer, not inside the commit that happens to cross the WAL's bound: a big journal entry
    // or a bulk block no longer copies megabytes into the database file before its caller gets the answer. The
    // automatic checkpoint stays as a backstop at 64 MB of WAL.
    db.pragma('wal_autocheckpoint = 16384');
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      db.close();
      throw new RampartError('system', `database ${this.path} is from a newer Rampart (schema ${current})`);
    }
    for (let i = current; i < MIGRATIONS.length; i++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[i]);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
    this.db = db;
    this.checkpointTimer = setInterval(() => this.checkpoint(), CHECKPOINT_EVERY_MS);
    this.checkpointTimer.unref?.();
    for (const [component, steps] of this.componentMigrations) this.runComponentMigrations(component, steps);
    return this;
  }

  private componentMigrations = new Map<string, string[]>();

  /**
   * Numbered migrations owned by one service (ids, sync, snmp, network...), kept apart from the core's so each
   * service evolves its own tables. Idempotent; runs now when the store is open, else at open().
   */
  migrate(component: string, steps: string[]): this {
    this.componentMigrations.set(component, steps);
    if (this.db) this.runComponentMigrations(component, steps);
    return this;
  }

  private runComponentMigrations(component: string, steps: string[]): void {
    const db = this.db!;
    db.exec('CREATE TABLE IF NOT EXISTS component_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    const row = db.prepare('SELECT version FROM component_schema WHERE component = ?').get(component) as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > steps.length) throw new RampartError('system', `database ${this.path}: ${component} tables are from a newer Rampart (schema ${current})`);
    for (let i = current; i < steps.length; i++) {
      db.transaction(() => {
        db.exec(steps[i]);
        db.prepare('INSERT INTO component_schema (component, version) VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version').run(component, i + 1);
      })();
    }
  }

  /** Copy what the WAL holds into the database file, as far as readers allow (cheap when there is nothing to do). */
  checkpoint(): void {
    try {
      this.db?.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // busy: the next tick tries again
    }
  }

  close(): void {
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    this.checkpointTimer = undefined;
    this.statements.clear();
    this.db?.close();
    this.db = undefined;
  }

  get sql(): Database.Database {
    if (!this.db) throw new RampartError('internal', 'store is not open');
    return this.db;
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, prepared once per SQL text (hot paths such as sessions and status run it often). */
  prepare(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      if (this.statements.size >= 1000) this.statements.clear();
      stmt = this.sql.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  // ---- versions ----

  /**
   * Journal a version. `prepared` (from prepareDocument) lets a caller serialise and hash a big document earlier,
   * e.g. while nft loads the ruleset.
   */
  addVersion(
    v: { author: string; source: VersionSource; message?: string; document: unknown; state: VersionState },
    prepared: PreparedDocument = prepareDocument(v.document),
  ): VersionRecord {
    const now = new Date().toISOString();
    const info = this
      .prepare('INSERT INTO versions (created_at, author, source, message, state, hash, document) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(now, v.author, v.source, v.message ?? '', v.state, prepared.hash, prepared.text);
    return this.getVersionMeta(Number(info.lastInsertRowid))!;
  }

  /** A version without its document (cheap for big documents). */
  getVersionMeta(version: number): VersionRecord | undefined {
    const r = this
      .prepare("SELECT version, created_at, author, source, message, state, hash, 'null' AS document, applied_at, confirm_deadline, error FROM versions WHERE version = ?")
      .get(version) as VersionRow | undefined;
    return r && toVersion(r, false);
  }

  updateVersion(version: number, patch: { state?: VersionState; appliedAt?: string | null; confirmDeadline?: string | null; error?: string | null }): void {
    const sets: string[] = [];
    const args: unknown[] = [];
    if (patch.state !== undefined) (sets.push('state = ?'), args.push(patch.state));
    if (patch.appliedAt !== undefined) (sets.push('applied_at = ?'), args.push(patch.appliedAt));
    if (patch.confirmDeadline !== undefined) (sets.push('confirm_deadline = ?'), args.push(patch.confirmDeadline));
    if (patch.error !== undefined) (sets.push('error = ?'), args.push(patch.error));
    if (!sets.length) return;
    this.prepare(`UPDATE versions SET ${sets.join(', ')} WHERE version = ?`).run(...args, version);
  }

  getVersion(version: number): VersionRecord | undefined {
    const r = this.prepare('SELECT * FROM versions WHERE version = ?').get(version) as VersionRow | undefined;
    return r && toVersion(r);
  }

  listVersions(limit = 100): VersionRecord[] {
    const rows = this
      .prepare("SELECT version, created_at, author, source, message, state, hash, '{}' AS document, applied_at, confirm_deadline, error FROM versions ORDER BY version DESC LIMIT ?")
      .all(limit) as VersionRow[];
    return rows.map((r) => toVersion(r, false));
  }

  /** The version the firewall runs: the newest applied or pending one. */
  runningVersion(): VersionRecord | undefined {
    const r = this
      .prepare("SELECT * FROM versions WHERE state IN ('applied', 'pending_confirm') ORDER BY version DESC LIMIT 1")
      .get() as VersionRow | undefined;
    return r && toVersion(r);
  }

  /** The running version without its document (cheap). */
  runningVersionMeta(): VersionRecord | undefined {
    const r = this
      .prepare("SELECT version, created_at, author, source, message, state, hash, 'null' AS document, applied_at, confirm_deadline, error FROM versions WHERE state IN ('applied', 'pending_confirm') ORDER BY version DESC LIMIT 1")
      .get() as VersionRow | undefined;
    return r && toVersion(r, false);
  }

  pendingVersionMeta(): VersionRecord | undefined {
    const r = this
      .prepare("SELECT version, created_at, author, source, message, state, hash, 'null' AS document, applied_at, confirm_deadline, error FROM versions WHERE state = 'pending_confirm' ORDER BY version DESC LIMIT 1")
      .get() as VersionRow | undefined;
    return r && toVersion(r, false);
  }

  pendingVersion(): VersionRecord | undefined {
    const r = this.prepare("SELECT * FROM versions WHERE state = 'pending_confirm' ORDER BY version DESC LIMIT 1").get() as VersionRow | undefined;
    return r && toVersion(r);
  }

  /** The newest version that was confirmed good (applied or later superseded), below `before` if given. */
  lastGoodVersion(before?: number): VersionRecord | undefined {
    const r = this
      .prepare("SELECT * FROM versions WHERE state IN ('applied', 'superseded') AND version < ? ORDER BY version DESC LIMIT 1")
      .get(before ?? Number.MAX_SAFE_INTEGER) as VersionRow | undefined;
    return r && toVersion(r);
  }

  // ---- dynamic blocks ----

  upsertBlocks(blocks: BlockRecord[]): void {
    // REPLACE keeps one row per address; the caller passes the original creation time of a renewed block.
    // Blocks that share everything but the address (a bulk block) go in as one statement over a JSON array, which
    // spares SQLite one call from JavaScript per row.
    const groups = new Map<string, { b: BlockRecord; addresses: string[] }>();
    let last: { b: BlockRecord; addresses: string[] } | undefined;
    for (const b of blocks) {
      const l = last?.b;
      // Runs of alike records (the usual bulk) skip the key.
      if (l && l.family === b.family && l.expiresAt === b.expiresAt && l.createdAt === b.createdAt && l.source === b.source && l.reason === b.reason) {
        last!.addresses.push(b.address);
        continue;
      }
      const key = `${b.family}\u0000${b.expiresAt ?? ''}\u0000${b.createdAt}\u0000${b.source}\u0000${b.reason}`;
      last = groups.get(key);
      if (last) last.addresses.push(b.address);
      else groups.set(key, (last = { b, addresses: [b.address] }));
    }
    const bulk = this.prepare(
      `INSERT OR REPLACE INTO blocks (address, family, expires_at, reason, source, created_at)
       SELECT j.value, ?, ?, ?, ?, ? FROM json_each(?) AS j`,
    );
    this.sql.transaction(() => {
      for (const { b, addresses } of groups.values()) bulk.run(b.family, b.expiresAt ?? null, b.reason, b.source, b.createdAt, JSON.stringify(addresses));
    })();
  }

  /** The stored rows of those of `addresses` that have one (expired or not). */
  getBlocks(addresses: string[]): BlockRecord[] {
    if (!addresses.length) return [];
    return (this.prepare('SELECT b.* FROM json_each(?) AS j JOIN blocks AS b ON b.address = j.value').all(JSON.stringify(addresses)) as any[]).map(toBlock);
  }

  deleteBlock(address: string): boolean {
    return this.prepare('DELETE FROM blocks WHERE address = ?').run(address).changes > 0;
  }

  getBlock(address: string): BlockRecord | undefined {
    const r = this.prepare('SELECT * FROM blocks WHERE address = ?').get(address) as any;
    return r && toBlock(r);
  }

  /** Unexpired blocks at `now` (epoch ms). */
  listBlocks(now = Date.now()): BlockRecord[] {
    return (this.prepare('SELECT * FROM blocks WHERE expires_at IS NULL OR expires_at > ? ORDER BY created_at, address').all(now) as any[]).map(toBlock);
  }

  /** The addresses of all blocks, expired ones included, in no particular order (no records made). */
  blockAddresses(): string[] {
    return this.prepare('SELECT address FROM blocks').pluck().all() as string[];
  }

  countBlocks(now = Date.now()): number {
    return (this.prepare('SELECT count(*) AS n FROM blocks WHERE expires_at IS NULL OR expires_at > ?').get(now) as { n: number }).n;
  }

  purgeExpiredBlocks(now = Date.now()): number {
    return this.prepare('DELETE FROM blocks WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now).changes;
  }

  // ---- meta ----

  getMeta(key: string): string | undefined {
    const r = this.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value;
  }

  setMeta(key: string, value: string): void {
    this.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}

function toBlock(r: any): BlockRecord {
  return {
    address: r.address,
    family: r.family,
    ...(r.expires_at != null ? { expiresAt: r.expires_at } : {}),
    reason: r.reason,
    source: r.source,
    createdAt: r.created_at,
  };
}
