/**
 * The EVE ingest's writer thread: while the tailer parses the next chunk of a big backlog, a worker thread stores the
 * previous one (its alert rows and the new file position in one transaction, on a connection of its own to the same
 * database), so parsing and SQLite writing overlap on two cores. Batches commit in the order they were posted; after
 * a failed batch the thread refuses the rest until reset, so the persisted position never skips rows.
 *
 * The tailer stays synchronous: a full pipeline and flush() wait on a shared counter (Atomics.wait) and read the
 * replies with receiveMessageOnPort, so when poll() returns everything it read is committed and announced.
 */
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ALERT_INSERT_SQL } from '../core/alerts.ts';

/** The position row of the tailer (ids_eve_position): inode, offset, updated_at. */
export const SAVE_POSITION_SQL =
  'INSERT INTO ids_eve_position (id, inode, offset, updated_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET inode = excluded.inode, offset = excluded.offset, updated_at = excluded.updated_at';

/** Values per row in a batch's flat `rows` array: ALERT_INSERT_SQL's parameters but the last (the raw event). */
export const ROW_WIDTH = 13;

/** Batches posted and not yet acknowledged before post() waits for the oldest. */
const MAX_IN_FLIGHT = 4;
/** No reply for this long: the thread is taken as stuck (busy_timeout is 5 s per attempt). */
const STALL_MS = 60_000;
/** The writer's WAL checkpoint interval in pages (a backlog is big: fewer checkpoints, each a disk sync). */
const CHECKPOINT_PAGES = 16384;

// Plain JavaScript run with `eval` (the same in the TypeScript sources and the compiled build): better-sqlite3 is
// loaded from the path the main thread resolved.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { port, flag, sqlite, path, insertSql, saveSql, width, checkpoint } = workerData;
const counter = new Int32Array(flag);
function reply(m, transfer) {
  port.postMessage(m, transfer);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
}
let db, tx, initError, failed = false;
try {
  const Database = require(sqlite);
  db = new Database(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = ' + checkpoint);
  const insert = db.prepare(insertSql);
  const save = db.prepare(saveSql);
  const args = new Array(width + 1);
  tx = db.transaction((m) => {
    const seqs = new Float64Array(m.n);
    const { rows, texts, spans } = m;
    for (let i = 0, o = 0; i < m.n; i++) {
      for (let j = 0; j < width; j++) args[j] = rows[o++];
      args[width] = texts[spans[3 * i]].slice(spans[3 * i + 1], spans[3 * i + 2]);
      seqs[i] = Number(insert.run(args).lastInsertRowid);
    }
    save.run(m.inode, m.offset, Date.now());
    return seqs;
  });
} catch (err) {
  initError = String((err && err.message) || err);
}
parentPort.on('message', (m) => {
  if (m.close) {
    try { db && db.close(); } catch {}
    parentPort.close();
    return;
  }
  if (m.reset) { failed = false; return; }
  if (initError) return reply({ k: m.k, error: initError, fatal: true });
  if (failed) return reply({ k: m.k, error: 'an earlier batch failed' });
  try {
    const seqs = tx(m);
    reply({ k: m.k, seqs }, [seqs.buffer]);
  } catch (err) {
    failed = true;
    reply({ k: m.k, error: String((err && err.message) || err) });
  }
});
`;

export interface WriterBatch<T> {
  /** Flat row values, ROW_WIDTH per row. */
  rows: unknown[];
  /** The texts the rows' raw events are in, and each one's text index, start and end there. */
  texts: string[];
  spans: Int32Array;
  /** What the caller gets back with the seqs once the batch is committed. */
  items: T[];
  inode: number;
  offset: number;
}

interface Pending<T> {
  k: number;
  items: T[];
}

/** The writer thread of one database. Not reentrant: one tailer drives it. */
export class EveWriterThread<T> {
  private worker?: Worker;
  private port?: MessagePort;
  private counter?: Int32Array;
  private acked = 0;
  private posted = 0;
  private readonly pending: Pending<T>[] = [];
  private broken = false;

  /** `onCommitted` runs on the calling thread for each committed batch, in order, with the rows' seqs. */
  constructor(
    private readonly dbPath: string,
    private readonly onCommitted: (items: T[], seqs: Float64Array) => void,
  ) {}

  /** Whether a thread can be used (a file database; a thread that failed is not used again). */
  get usable(): boolean {
    return !this.broken && this.dbPath !== ':memory:' && this.dbPath !== '';
  }

  private ensure(): void {
    if (this.worker) return;
    const { port1, port2 } = new MessageChannel();
    const flag = new SharedArrayBuffer(4);
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { port: port2, flag, sqlite, path: this.dbPath, insertSql: ALERT_INSERT_SQL, saveSql: SAVE_POSITION_SQL, width: ROW_WIDTH, checkpoint: CHECKPOINT_PAGES },
      transferList: [port2],
      // Plain JavaScript: none of the parent's loaders or flags.
      execArgv: [],
      // Only the tailer's backlog passes through it: a small heap is plenty.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.worker.unref();
    this.worker.on('error', () => undefined);
    this.port = port1;
    this.port.unref();
    this.counter = new Int32Array(flag);
    this.acked = Atomics.load(this.counter, 0);
  }

  /** Queue a batch; waits for the oldest when MAX_IN_FLIGHT are queued. Throws when a batch failed. */
  post(batch: WriterBatch<T>): void {
    this.ensure();
    const k = ++this.posted;
    const n = batch.items.length;
    this.pending.push({ k, items: batch.items });
    this.worker!.postMessage({ k, n, rows: batch.rows, texts: batch.texts, spans: batch.spans, inode: batch.inode, offset: batch.offset });
    while (this.pending.length >= MAX_IN_FLIGHT) this.settleOne();
  }

  /** Wait until everything posted is committed (and handed to onCommitted). Throws when a batch failed. */
  flush(): void {
    while (this.pending.length) this.settleOne();
  }

  /** After a failure: forget what was queued (not committed) and let the thread take batches again. */
  reset(): void {
    // Replies of batches that were refused may still come: wait for them so the counter matches.
    const deadline = Date.now() + STALL_MS;
    while (this.pending.length && Date.now() < deadline) {
      if (!this.waitReply()) continue;
      receiveMessageOnPort(this.port!);
      this.pending.shift();
    }
    if (this.pending.length) return this.close(true);
    this.worker?.postMessage({ reset: true });
  }

  /** End the thread (its connection closes; nothing is in flight after flush()). */
  close(broken = false): void {
    if (broken) this.broken = true;
    this.pending.length = 0;
    const w = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    if (!w) return;
    if (broken) void w.terminate();
    else w.postMessage({ close: true });
  }

  /** Wait (bounded) for one more reply than acknowledged; false on timeout. */
  private waitReply(): boolean {
    const c = this.counter!;
    if (Atomics.load(c, 0) !== this.acked) {
      this.acked++;
      return true;
    }
    Atomics.wait(c, 0, this.acked, 1000);
    if (Atomics.load(c, 0) === this.acked) return false;
    this.acked++;
    return true;
  }

  private settleOne(): void {
    const started = Date.now();
    while (!this.waitReply()) {
      if (Date.now() - started > STALL_MS) {
        this.close(true);
        throw new Error('the EVE writer thread stopped answering');
      }
    }
    const msg = receiveMessageOnPort(this.port!)?.message as { k: number; seqs?: Float64Array; error?: string; fatal?: boolean } | undefined;
    const p = this.pending.shift()!;
    if (!msg || msg.k !== p.k) {
      this.close(true);
      throw new Error('the EVE writer thread answered out of order');
    }
    if (msg.error !== undefined) {
      // A thread that could not open the database is not used again (the tailer stores on its own thread).
      if (msg.fatal) this.close(true);
      // Not committed, and the thread refuses the batches after it until reset().
      throw new Error(`storing EVE alerts failed: ${msg.error}`);
    }
    this.onCommitted(p.items, msg.seqs!);
  }
}
