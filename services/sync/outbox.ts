/**
 * The sync outbox: alerts, anomalies and telemetry waiting for the MSSP, in SQLite, each with the device's own
 * sequence number (`seq`, increasing, never reused) and a drain class (severe first, telemetry last). Rows leave
 * only when the MSSP acknowledges their batch end to end (`alerts/ack`), never on the broker's PUBACK. Bounded by rows, bytes and age: when over, telemetry goes first,
 * then the oldest low-severity alerts, and a `gap` record (itself delivered like an alert) says what was dropped.
 */
import type { AlertRecord, AlertStore } from '../core/alerts.ts';
import type { Store } from '../core/store.ts';

export const SYNC_MIGRATIONS = [
  `CREATE TABLE sync_outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     kind TEXT NOT NULL,
     rank INTEGER NOT NULL,
     at INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     body TEXT NOT NULL
   );
   CREATE INDEX sync_outbox_evict ON sync_outbox(rank, seq);
   CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE sync_journal (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     kind TEXT NOT NULL,
     version INTEGER,
     state TEXT NOT NULL,
     reason TEXT,
     detail TEXT
   );
   CREATE TABLE sync_commands (
     id TEXT PRIMARY KEY,
     at TEXT NOT NULL,
     type TEXT NOT NULL,
     not_after INTEGER NOT NULL,
     result TEXT NOT NULL
   );`,
  // Drain priority: 2 high (severity 1-2 and gap records), 1 low (severity 3-4), 0 telemetry.
  `ALTER TABLE sync_outbox ADD COLUMN prio INTEGER NOT NULL DEFAULT 1;
   UPDATE sync_outbox SET prio = CASE WHEN rank = 0 THEN 0 WHEN rank >= 3 THEN 2 ELSE 1 END;
   CREATE INDEX sync_outbox_prio ON sync_outbox(prio, seq);`,
];

/** Drain classes, highest first. */
export const PRIORITIES = [2, 1, 0] as const;

export interface OutboxLimits {
  maxRows: number;
  maxBytes: number;
  /** Rows older than this are dropped (with a gap record); 0: no age limit. */
  maxAgeMs: number;
}

export const DEFAULT_LIMITS: OutboxLimits = { maxRows: 1_000_000, maxBytes: 512 * 1024 * 1024, maxAgeMs: 30 * 24 * 3600_000 };

export type OutboxKind = 'alert' | 'anomaly' | 'telemetry' | 'gap';

export interface OutboxItem {
  kind: OutboxKind;
  /** 1 (most severe) .. 4; telemetry and gap records have none. */
  severity?: number;
  /** Epoch ms of the event. */
  at: number;
  /** What the MSSP receives (an `id` is required: consumers dedupe by it). */
  body: { id: string } & Record<string, unknown>;
}

export interface OutboxRow {
  seq: number;
  kind: OutboxKind;
  bytes: number;
  body: string;
}

/** Drain priority: high (severity 1-2, gap records), low (severity 3-4), telemetry. */
function prioOf(kind: OutboxKind, severity?: number): number {
  if (kind === 'telemetry') return 0;
  if (kind === 'gap') return 2;
  return (severity ?? 4) <= 2 ? 2 : 1;
}

/** Eviction order: lower rank goes first. */
function rankOf(kind: OutboxKind, severity?: number): number {
  if (kind === 'telemetry') return 0;
  if (kind === 'gap') return 9;
  return 5 - Math.min(4, Math.max(1, severity ?? 4)); // severity 4 → 1 ... severity 1 → 4
}

/** One batch the MSSP acknowledged: every row of drain class `prio` from `from` to `to`, as sent. */
export interface AckedBatch {
  prio: number;
  from: number;
  to: number;
  rows: number;
  bytes: number;
}

/** A batch ready to send: its rows (as an AckedBatch names them) and the payload. */
export interface OutboxBatch extends AckedBatch {
  text: string;
}

export interface OutboxStats {
  rows: number;
  bytes: number;
  firstSeq: number | null;
  lastSeq: number | null;
  dropped: number;
}

export class Outbox {
  private rows = 0;
  private bytes = 0;
  private loaded = false;
  /** Acknowledged batches not deleted yet (see markAcked). */
  private acked: AckedBatch[] = [];
  private ackedRows = 0;
  private ackedBytes = 0;

  constructor(
    private readonly store: Store,
    private limits: OutboxLimits = DEFAULT_LIMITS,
  ) {
    store.migrate('sync', SYNC_MIGRATIONS);
  }

  setLimits(limits: OutboxLimits): void {
    this.limits = limits;
  }

  private load(): void {
    if (this.loaded) return;
    const r = this.store.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM sync_outbox').get() as { n: number; b: number };
    this.rows = r.n;
    this.bytes = r.b;
    this.loaded = true;
  }

  /** Store items in one transaction (each gets the next seq), then enforce the bounds. Returns the seqs given. */
  enqueue(items: OutboxItem[], extra?: () => void): number[] {
    this.load();
    const insert = this.store.prepare('INSERT INTO sync_outbox (kind, rank, prio, at, bytes, body) VALUES (?, ?, ?, ?, ?, ?)');
    const seqs: number[] = [];
    this.store.sql.transaction(() => {
      // Acknowledged rows go before the bounds are enforced: eviction and gap records concern undelivered rows only.
      this.flushAcked();
      for (const it of items) {
        const body = JSON.stringify(it.body);
        const bytes = Buffer.byteLength(body);
        seqs.push(Number(insert.run(it.kind, rankOf(it.kind, it.severity), prioOf(it.kind, it.severity), Math.round(it.at), bytes, body).lastInsertRowid));
        this.rows++;
        this.bytes += bytes;
      }
      extra?.();
      this.enforceLocked();
    })();
    return seqs;
  }

  /** Alerts and anomalies from the alert store; the cursor (last alert seq taken) moves in the same transaction. */
  enqueueAlerts(records: AlertRecord[]): void {
    if (!records.length) return;
    const last = records[records.length - 1].seq;
    this.enqueue(
      records.map((a) => ({ kind: a.kind === 'anomaly' ? 'anomaly' : 'alert', severity: a.severity, at: a.at, body: { ...(a as any), alertSeq: a.seq, seq: undefined } })),
      () => this.setState('alertCursor', String(Math.max(last, this.alertCursor()))),
    );
  }

  alertCursor(): number {
    return Number(this.getState('alertCursor') ?? 0);
  }

  /** Take what the alert store holds beyond the cursor (at start, and as a safety net for missed bus events). */
  catchUp(alerts: AlertStore, max = 10_000): number {
    let taken = 0;
    for (;;) {
      const cursor = this.alertCursor();
      if (alerts.lastSeq() <= cursor) break;
      const batch = alerts.list({ afterSeq: cursor, limit: Math.min(5000, max - taken) });
      if (!batch.length) break;
      this.enqueueAlerts(batch);
      taken += batch.length;
      if (taken >= max) break;
    }
    return taken;
  }

  /** Rows after `afterSeq`, in seq order, at most `maxItems` and about `maxBytes` (always at least one row). */
  peek(afterSeq: number, maxItems: number, maxBytes: number): OutboxRow[] {
    const rows = this.store.prepare('SELECT seq, kind, bytes, body FROM sync_outbox WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, maxItems) as OutboxRow[];
    let total = 0;
    for (let i = 0; i < rows.length; i++) {
      total += rows[i].bytes;
      if (total > maxBytes && i > 0) return rows.slice(0, i);
    }
    return rows;
  }

  /** Rows of one drain class after `afterSeq`, in seq order, like peek(). */
  peekClass(prio: number, afterSeq: number, maxItems: number, maxBytes: number): OutboxRow[] {
    const rows = this.store.prepare('SELECT seq, kind, bytes, body FROM sync_outbox WHERE prio = ? AND seq > ? ORDER BY seq LIMIT ?').all(prio, afterSeq, maxItems) as OutboxRow[];
    let total = 0;
    for (let i = 0; i < rows.length; i++) {
      total += rows[i].bytes;
      if (total > maxBytes && i > 0) return rows.slice(0, i);
    }
    return rows;
  }

  /** The MSSP stored exactly these rows (one batch): delete them. Returns how many went. */
  ackSeqs(seqs: number[]): number {
    this.load();
    return this.store.sql.transaction(() => {
      let n = 0;
      for (let i = 0; i < seqs.length; i += 500) {
        const chunk = seqs.slice(i, i + 500);
        const marks = chunk.map(() => '?').join(',');
        const r = this.store.prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM sync_outbox WHERE seq IN (${marks})`).get(...chunk) as { n: number; b: number };
        if (!r.n) continue;
        this.store.prepare(`DELETE FROM sync_outbox WHERE seq IN (${marks})`).run(...chunk);
        this.rows -= r.n;
        this.bytes -= r.b;
        n += r.n;
      }
      return n;
    })();
  }

  /**
   * The next batch of one drain class after `afterSeq`, as the text sent on `alerts`: at most `maxItems` rows and
   * about `maxBytes` (always at least one row). Bodies are stored serialised, so only each row's seq is spliced in.
   */
  nextBatch(prio: number, afterSeq: number, maxItems: number, maxBytes: number): OutboxBatch | null {
    // Rows as arrays [seq, bytes, body]: its own statement text, as the store shares prepared statements by text.
    const rows = this.store.prepare('SELECT seq, bytes, body FROM sync_outbox WHERE prio = ? AND seq > ? ORDER BY seq LIMIT ?').raw(true).all(prio, afterSeq, maxItems) as [number, number, string][];
    if (!rows.length) return null;
    let n = 0;
    let bytes = 0;
    let items = '';
    for (; n < rows.length; n++) {
      const [seq, size, body] = rows[n];
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      items += (n ? ',{"seq":' : '{"seq":') + seq + ',' + body.slice(1);
    }
    const from = rows[0][0];
    const to = rows[n - 1][0];
    return { prio, from, to, rows: n, bytes, text: `{"seqFrom":${from},"seqTo":${to},"count":${n},"alerts":[${items}]}` };
  }

  /**
   * The MSSP stored these batches: they are deleted with the next flushAcked() (the drain calls it when no batch is
   * in flight, at least every second and on every reset) or enqueue(), so deleting is off the path of a drain in
   * full flow. Meanwhile they are not counted in stats() and not sent again by a drain that goes on after them; a
   * restart before the flush sends them again, and the MSSP dedupes them by id. Returns the rows waiting for the flush.
   */
  markAcked(batches: readonly AckedBatch[]): number {
    for (const b of batches) {
      this.acked.push(b);
      this.ackedRows += b.rows;
      this.ackedBytes += b.bytes;
    }
    return this.ackedRows;
  }

  /** Delete the batches markAcked() took. Returns how many rows went. */
  flushAcked(): number {
    if (!this.acked.length) return 0;
    const batches = this.acked;
    this.acked = [];
    this.ackedRows = 0;
    this.ackedBytes = 0;
    return this.ackBatches(batches);
  }

  /**
   * The MSSP stored these batches: delete them now, all in one transaction, one statement per batch. A batch is every row
   * of one drain class from `from` to `to` as peekClass() returned it; rows of that class in that range cannot have
   * appeared since (seqs only grow), so the range holds exactly the batch's rows, less any evicted meanwhile.
   * `rows`/`bytes` are what the batch held: when fewer rows went (evicted, or acked before), the totals are counted
   * again. Returns how many rows went.
   */
  ackBatches(batches: readonly AckedBatch[]): number {
    if (!batches.length) return 0;
    this.load();
    const del = this.store.prepare('DELETE FROM sync_outbox WHERE prio = ? AND seq BETWEEN ? AND ?');
    return this.store.sql.transaction(() => {
      let n = 0;
      let exact = true;
      for (const b of batches) {
        const gone = del.run(b.prio, b.from, b.to).changes;
        n += gone;
        if (gone === b.rows) {
          this.rows -= b.rows;
          this.bytes -= b.bytes;
        } else exact = false;
      }
      if (!exact) this.loaded = false; // counted again on next use
      return n;
    })();
  }

  /** The MSSP stored every row from `from` to `to` (inclusive): delete them. Returns how many went. */
  ackRange(from: number, to: number): number {
    this.load();
    return this.store.sql.transaction(() => {
      const r = this.store.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM sync_outbox WHERE seq BETWEEN ? AND ?').get(from, to) as { n: number; b: number };
      if (!r.n) return 0;
      this.store.prepare('DELETE FROM sync_outbox WHERE seq BETWEEN ? AND ?').run(from, to);
      this.rows -= r.n;
      this.bytes -= r.b;
      return r.n;
    })();
  }

  /** Cumulative ack: everything up to `seq`. */
  ackUpTo(seq: number): number {
    return this.ackRange(0, seq);
  }

  stats(): OutboxStats {
    this.load();
    const r = this.store.prepare('SELECT MIN(seq) AS a, MAX(seq) AS b FROM sync_outbox').get() as { a: number | null; b: number | null };
    return {
      rows: Math.max(0, this.rows - this.ackedRows),
      bytes: Math.max(0, this.bytes - this.ackedBytes),
      firstSeq: r.a,
      lastSeq: r.b,
      dropped: Number(this.getState('dropped') ?? 0),
    };
  }

  /** Drop by age, then by rows/bytes in eviction order; one gap record per enforcement that dropped anything. */
  private enforceLocked(): void {
    const victims: { seq: number; bytes: number; rank: number }[] = [];
    if (this.limits.maxAgeMs > 0) {
      victims.push(
        ...(this.store.prepare("SELECT seq, bytes, rank FROM sync_outbox WHERE at < ? AND kind != 'gap' ORDER BY seq LIMIT 100000").all(Date.now() - this.limits.maxAgeMs) as typeof victims),
      );
    }
    let rows = this.rows - victims.length;
    let bytes = this.bytes - victims.reduce((s, v) => s + v.bytes, 0);
    // Room for the gap record itself.
    const overRows = rows + 1 - this.limits.maxRows;
    const overBytes = bytes + 300 - this.limits.maxBytes;
    if (overRows > 0 || overBytes > 0) {
      const taken = new Set(victims.map((v) => v.seq));
      const stmt = this.store.prepare("SELECT seq, bytes, rank FROM sync_outbox WHERE kind != 'gap' ORDER BY rank, seq LIMIT ? OFFSET ?");
      let offset = 0;
      while (rows + 1 > this.limits.maxRows || bytes + 300 > this.limits.maxBytes) {
        const chunk = stmt.all(Math.max(overRows, 256), offset) as typeof victims;
        if (!chunk.length) break;
        offset += chunk.length;
        for (const v of chunk) {
          if (taken.has(v.seq)) continue;
          if (!(rows + 1 > this.limits.maxRows || bytes + 300 > this.limits.maxBytes)) break;
          victims.push(v);
          taken.add(v.seq);
          rows--;
          bytes -= v.bytes;
        }
      }
    }
    if (!victims.length) return;
    const del = this.store.prepare('DELETE FROM sync_outbox WHERE seq = ?');
    const byRank: Record<string, number> = {};
    let freed = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of victims) {
      del.run(v.seq);
      freed += v.bytes;
      lo = Math.min(lo, v.seq);
      hi = Math.max(hi, v.seq);
      const label = v.rank === 0 ? 'telemetry' : `severity${5 - v.rank}`;
      byRank[label] = (byRank[label] ?? 0) + 1;
    }
    this.rows -= victims.length;
    this.bytes -= freed;
    this.setState('dropped', String(Number(this.getState('dropped') ?? 0) + victims.length));
    const body = JSON.stringify({
      id: `gap-${Date.now()}-${lo}-${hi}`,
      kind: 'gap',
      at: Date.now(),
      dropped: victims.length,
      droppedSeqFrom: lo,
      droppedSeqTo: hi,
      byClass: byRank,
      reason: 'outbox bounds (rows, bytes or age) exceeded while the MSSP was unreachable',
    });
    this.store.prepare('INSERT INTO sync_outbox (kind, rank, prio, at, bytes, body) VALUES (?, ?, ?, ?, ?, ?)').run('gap', 9, 2, Date.now(), Buffer.byteLength(body), body);
    this.rows++;
    this.bytes += Buffer.byteLength(body);
  }

  // ---- small key/value state of the sync service (same database) ----

  getState(key: string): string | undefined {
    return (this.store.prepare('SELECT value FROM sync_state WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setState(key: string, value: string): void {
    this.store.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
