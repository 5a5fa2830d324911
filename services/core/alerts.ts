/**
 * The alert store: IDS alerts and telemetry anomalies in one table, in arrival order (`seq`).
 * Producers (EVE ingest, anomaly detector) call add() with batches; consumers (API, SSE, SNMP counters, sync
 * outbox, syslog) read from here or listen to the bus's `alert` event, which carries only newly stored records.
 *
 * Exactly-once: anomalies (and any other producer that may offer the same record twice) are deduplicated by `id`
 * through a unique index. IDS alerts are not: the EVE ingest stores each line exactly once through its persisted
 * file position, committed in the same transaction as the rows (services/ids/eve.ts), so its rows skip that index
 * (the hot path of a busy sensor); their `id` is still stable and unique per event for the MSSP's dedupe.
 */
import { randomUUID } from 'node:crypto';
import type { EventBus } from './events.ts';
import type { Store } from './store.ts';

export type AlertKind = 'ids' | 'anomaly';

/** Suricata's convention: 1 is the most severe, 4 the least. */
export type Severity = 1 | 2 | 3 | 4;

export interface AlertInput {
  /** Stable identity; a producer that may see the same alert twice (a re-read EVE line) derives it from the alert. */
  id?: string;
  kind: AlertKind;
  /** Epoch milliseconds of the event itself (not of its ingest). */
  at: number;
  severity: Severity;
  signature: string;
  sid?: number;
  category?: string;
  src?: string;
  dst?: string;
  proto?: string;
  sport?: number;
  dport?: number;
  /** What happened to the traffic: allowed (IDS), blocked (IPS drop or auto-block). */
  action?: string;
  /** The original record (EVE alert, anomaly event), kept as JSON. */
  detail?: unknown;
}

export interface AlertRecord extends AlertInput {
  id: string;
  /** Position in the store, increasing; assigned at insert. */
  seq: number;
}

export interface AlertQuery {
  /** Epoch ms: alerts at or after. */
  since?: number;
  until?: number;
  /** Alerts at least this severe (severity number at most this). */
  severity?: number;
  kind?: AlertKind;
  /** Only alerts stored after this seq (for tailing). */
  afterSeq?: number;
  /** Default 100, at most 10,000. Newest first unless `afterSeq` is given (then oldest first). */
  limit?: number;
}

export const ALERT_MIGRATIONS = [
  `CREATE TABLE alerts (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL,
     at INTEGER NOT NULL,
     severity INTEGER NOT NULL,
     signature TEXT NOT NULL,
     sid INTEGER,
     category TEXT,
     src TEXT,
     dst TEXT,
     proto TEXT,
     sport INTEGER,
     dport INTEGER,
     action TEXT,
     detail TEXT
   );
   CREATE INDEX alerts_at ON alerts(at);`,
  // 2: `id` is unique for everything but IDS alerts (see the header); seq stays AUTOINCREMENT (never reused, the
  // sync outbox's cursor depends on it: the sequence is carried over). The table is rebuilt to drop the column
  // constraint.
  `CREATE TABLE alerts_v2 (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL,
     kind TEXT NOT NULL,
     at INTEGER NOT NULL,
     severity INTEGER NOT NULL,
     signature TEXT NOT NULL,
     sid INTEGER,
     category TEXT,
     src TEXT,
     dst TEXT,
     proto TEXT,
     sport INTEGER,
     dport INTEGER,
     action TEXT,
     detail TEXT
   );
   INSERT INTO alerts_v2 SELECT seq, id, kind, at, severity, signature, sid, category, src, dst, proto, sport, dport, action, detail FROM alerts ORDER BY seq;
   DELETE FROM sqlite_sequence WHERE name = 'alerts_v2';
   INSERT INTO sqlite_sequence (name, seq) SELECT 'alerts_v2', seq FROM sqlite_sequence WHERE name = 'alerts';
   DROP TABLE alerts;
   ALTER TABLE alerts_v2 RENAME TO alerts;
   CREATE INDEX alerts_at ON alerts(at);
   CREATE UNIQUE INDEX alerts_id ON alerts(id) WHERE kind <> 'ids';`,
];

/** The insert of one alert row: the values of alertRow() in order (also the EVE ingest's writer thread's). */
export const ALERT_INSERT_SQL = `INSERT OR IGNORE INTO alerts (id, kind, at, severity, signature, sid, category, src, dst, proto, sport, dport, action, detail)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** The values an input is stored as (ALERT_INSERT_SQL's parameters), the id given. */
function alertRow(a: AlertInput, id: string): unknown[] {
  return [
    id,
    a.kind,
    Math.round(a.at),
    a.severity,
    a.signature,
    a.sid ?? null,
    a.category ?? null,
    a.src ?? null,
    a.dst ?? null,
    a.proto ?? null,
    a.sport ?? null,
    a.dport ?? null,
    a.action ?? null,
    a instanceof RawAlert ? a.json : a.detail === undefined ? null : JSON.stringify(a.detail),
  ];
}

interface Row {
  seq: number;
  id: string;
  kind: AlertKind;
  at: number;
  severity: Severity;
  signature: string;
  sid: number | null;
  category: string | null;
  src: string | null;
  dst: string | null;
  proto: string | null;
  sport: number | null;
  dport: number | null;
  action: string | null;
  detail: string | null;
}

function fromRow(r: Row): AlertRecord {
  const rec: AlertRecord = { seq: r.seq, id: r.id, kind: r.kind, at: r.at, severity: r.severity, signature: r.signature };
  if (r.sid !== null) rec.sid = r.sid;
  if (r.category !== null) rec.category = r.category;
  if (r.src !== null) rec.src = r.src;
  if (r.dst !== null) rec.dst = r.dst;
  if (r.proto !== null) rec.proto = r.proto;
  if (r.sport !== null) rec.sport = r.sport;
  if (r.dport !== null) rec.dport = r.dport;
  if (r.action !== null) rec.action = r.action;
  if (r.detail !== null) rec.detail = parseDetail(r.detail);
  return rec;
}

/**
 * The stored raw event as a value. The EVE ingest reads only the head of a line (services/ids/eve.ts), so a line
 * whose tail is broken is stored as it came: it is handed out as its text rather than failing every reader.
 */
function parseDetail(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}

/**
 * An alert whose original record is JSON text already (an EVE line): stored as that text, and parsed only when
 * someone reads `detail`. The same object is the input and, once stored (`seq` set), the record announced: on the
 * ingest's hot path one object per alert instead of an input and a record with a getter of its own.
 */
export class RawAlert implements AlertRecord {
  seq = 0;
  kind: AlertKind = 'ids';
  sid?: number;
  category?: string;
  src?: string;
  dst?: string;
  proto?: string;
  sport?: number;
  dport?: number;
  action?: string;
  readonly #json: string;
  #parsed: unknown;

  constructor(
    public id: string,
    public at: number,
    public severity: Severity,
    public signature: string,
    json: string,
  ) {
    this.#json = json;
  }

  /** The original record as stored (not an own field: a record's own fields are what list() returns). */
  get json(): string {
    return this.#json;
  }

  get detail(): unknown {
    if (this.#parsed === undefined) this.#parsed = parseDetail(this.#json);
    return this.#parsed;
  }

  /** The shape list() returns: the fields that are set, and `detail` parsed. */
  toJSON(): AlertRecord {
    return { ...this, detail: this.detail };
  }
}

/** The record announced for a stored input. */
function newRecord(a: AlertInput, id: string, seq: number): AlertRecord {
  if (a instanceof RawAlert) {
    a.seq = seq;
    return a;
  }
  return { ...a, id, seq };
}

export class AlertStore {
  /** Counts by severity since the store opened plus what was there (for SNMP counters), kept in memory. */
  private counts?: Record<Severity, number>;

  constructor(private readonly store: Store, private readonly events?: EventBus) {
    store.migrate('alerts', ALERT_MIGRATIONS);
  }

  /** Stores a batch in one transaction; returns (and announces) only the alerts that were new. */
  add(inputs: AlertInput[]): AlertRecord[] {
    if (inputs.length === 0) return [];
    const insert = this.store.prepare(ALERT_INSERT_SQL);
    const added: AlertRecord[] = [];
    this.store.sql.transaction(() => {
      for (const a of inputs) {
        const id = a.id ?? randomUUID();
        const info = insert.run(alertRow(a, id));
        if (info.changes === 1) added.push(newRecord(a, id, Number(info.lastInsertRowid)));
      }
    })();
    this.announce(added);
    return added;
  }

  /**
   * For a producer that wrote rows itself (the EVE ingest's writer thread, with ALERT_INSERT_SQL and the inputs'
   * ids): the records of those inputs at the seqs they got, counted and announced like add()'s.
   */
  stored(inputs: AlertInput[], seqs: ArrayLike<number>): AlertRecord[] {
    const added: AlertRecord[] = new Array(inputs.length);
    for (let i = 0; i < inputs.length; i++) added[i] = newRecord(inputs[i], inputs[i].id!, seqs[i]);
    this.announce(added);
    return added;
  }

  private announce(added: AlertRecord[]): void {
    if (this.counts) for (const a of added) this.counts[a.severity] = (this.counts[a.severity] ?? 0) + 1;
    if (added.length) this.events?.emit('alert', added);
  }

  list(q: AlertQuery = {}): AlertRecord[] {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (q.since !== undefined) (where.push('at >= @since'), (args.since = q.since));
    if (q.until !== undefined) (where.push('at <= @until'), (args.until = q.until));
    if (q.severity !== undefined) (where.push('severity <= @severity'), (args.severity = q.severity));
    if (q.kind !== undefined) (where.push('kind = @kind'), (args.kind = q.kind));
    if (q.afterSeq !== undefined) (where.push('seq > @afterSeq'), (args.afterSeq = q.afterSeq));
    args.limit = Math.max(1, Math.min(10_000, Math.floor(q.limit ?? 100)));
    const order = q.afterSeq !== undefined ? 'seq ASC' : 'seq DESC';
    const sql = `SELECT * FROM alerts ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${order} LIMIT @limit`;
    return (this.store.prepare(sql).all(args) as Row[]).map(fromRow);
  }

  /** By id: through the unique index for anomalies; IDS alerts' ids are not indexed (a scan, for rare lookups). */
  get(id: string): AlertRecord | undefined {
    const r = (this.store.prepare("SELECT * FROM alerts WHERE id = ? AND kind <> 'ids'").get(id) ??
      this.store.prepare("SELECT * FROM alerts WHERE id = ? AND kind = 'ids' LIMIT 1").get(id)) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Number of stored alerts by severity (1..4), from memory after the first call. */
  countsBySeverity(): Record<Severity, number> {
    if (!this.counts) {
      const counts: Record<Severity, number> = { 1: 0, 2: 0, 3: 0, 4: 0 };
      for (const r of this.store.prepare('SELECT severity, COUNT(*) AS n FROM alerts GROUP BY severity').all() as { severity: Severity; n: number }[]) {
        counts[r.severity] = r.n;
      }
      this.counts = counts;
    }
    return { ...this.counts };
  }

  /** The highest seq stored (0 when empty). */
  lastSeq(): number {
    return (this.store.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM alerts').get() as { s: number }).s;
  }

  /** Retention: drops alerts older than `maxAgeMs` and the oldest beyond `maxRows`. Returns how many went. */
  purge(maxAgeMs: number, maxRows: number): number {
    let removed = this.store.prepare('DELETE FROM alerts WHERE at < ?').run(Date.now() - maxAgeMs).changes;
    const over = (this.store.prepare('SELECT COUNT(*) AS n FROM alerts').get() as { n: number }).n - maxRows;
    if (over > 0) removed += this.store.prepare('DELETE FROM alerts WHERE seq IN (SELECT seq FROM alerts ORDER BY seq ASC LIMIT ?)').run(over).changes;
    if (removed) this.counts = undefined;
    return removed;
  }
}
