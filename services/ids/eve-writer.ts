/**
 * The EVE ingest's writer thread: while the tailer parses the next chunk of a big backlog, a worker thread stores the
 * previous one (its alert rows and the new file position in one transaction, on a connection of its own to the same
 * database), so parsing and SQLite writing overlap on two cores. Batches commit in the order they were posted; after
 * a failed batch the thread refuses the rest until reset, so the persisted position never skips rows.
 *
 * The tailer stays synchronous: a full pipeline and flush() wait on a shared counter (Atomics.wait) and read the
 * replies with receiveMessageOnPort, so when poll() returns everything it read is committed and announced.
 *
 * WAL checkpoints (the WAL's pages copied into the database file, the disk synced, the WAL started over) run on a
 * third thread, the checkpointer, so that their disk writes overlap the inserts instead of holding them up (a
 * quarter of the writer's time before). See CHECKPOINT_PROTOCOL.
 */
import { openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ALERT_INSERT_SQL, type AlertInput } from '../core/alerts.ts';

/** The position row of the tailer (ids_eve_position): inode, offset, updated_at. */
export const SAVE_POSITION_SQL =
  'INSERT INTO ids_eve_position (id, inode, offset, updated_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET inode = excluded.inode, offset = excluded.offset, updated_at = excluded.updated_at';

/**
 * A batch's rows travel in three parts (a structured clone of a value per column cost as much as the insert): the
 * numbers in a Float64Array (NUMS per row: at, severity, sid, sport, dport; NaN for none), the texts one after the
 * other in one string with their lengths in an Int32Array (STRS per row: id, kind, signature, category, src, dst,
 * proto, action; -1 for none), and the raw events as the bytes they were read as.
 */
const NUMS = 5;
const STRS = 8;

/** Rows per INSERT statement in the thread. */
const MULTI_ROWS = 16;
/** The size of a new buffer for a batch's bytes (a batch is about 256 KiB; a longer line makes a bigger one). */
const SPARE_BYTES = 512 << 10;
/** Batches posted and not yet acknowledged before post() waits for the oldest. */
const MAX_IN_FLIGHT = 4;
/** No reply for this long: the thread is taken as stuck (busy_timeout is 5 s per attempt). */
const STALL_MS = 60_000;
/** Rows committed between checkpoint cycles (a backlog is big: fewer cycles, each ending with a disk sync). */
const CHECKPOINT_BYTES = 64 << 20;
/** A cycle's next round is its last, run while the writer waits, once less than this was committed during a round. */
const REST_BYTES = 2 << 20;
/** The writer waits this long at most for the checkpointer's last round (then goes on: the WAL starts over later). */
const LAST_ROUND_MS = 10_000;

/**
 * CHECKPOINT_PROTOCOL. The two threads share an Int32Array: [REQUESTED] rounds asked for, [DONE] rounds done,
 * [CLOSE] 1 when the checkpointer is to end, [DEAD] 1 once it is gone (it could not open the database, failed or
 * ended).
 *
 * Every CHECKPOINT_BYTES of rows the writer starts a cycle: it asks for a round (REQUESTED + 1) and goes on inserting;
 * the checkpointer runs a PASSIVE checkpoint on a connection of its own, which copies the frames that were in the WAL
 * when it began, then syncs the database file's data through a descriptor of its own, so that the cycle's final
 * sync has little left. A checkpoint ends with the WAL wholly copied (and the next commit starts it over) only when no
 * frame was added meanwhile, so each round the writer sees done either asks for another (while the rows committed
 * during the round were REST_BYTES or more) or asks for the last one and waits for it (a few milliseconds).
 * A checkpointer that died is replaced by the writer's own automatic checkpoints; should rounds stop being done while
 * the WAL grows past four intervals, the writer checkpoints itself.
 */
const REQUESTED = 0;
const DONE = 1;
const CLOSE = 2;
const DEAD = 3;

// Plain JavaScript run with `eval` (the same in the TypeScript sources and the compiled build): better-sqlite3 is
// loaded from the path the main thread resolved.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { port, flag, sqlite, path, oneSql, multiSql, saveSql, multi: MULTI, checkpointBytes, restBytes, lastRoundMs, ckState } = workerData;
const counter = new Int32Array(flag);
const ck = new Int32Array(ckState);
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
  db.pragma('wal_autocheckpoint = 0'); // the checkpointer's (CHECKPOINT_PROTOCOL)
  // MULTI rows per statement: SQLite's per-statement work (AUTOINCREMENT's sequence row above all) is paid once per
  // MULTI rows. The rows are IDS alerts, which no unique index covers, so none is ignored and their seqs are
  // consecutive, ending at the last one's; a statement that changed fewer rows fails the batch. The raw event is
  // bound as the bytes it was read as (a view of the batch's buffer) and stored as text by the statement.
  const one = db.prepare(oneSql);
  const multi = db.prepare(multiSql);
  const save = db.prepare(saveSql);
  const args = new Array(${NUMS + STRS + 1});
  const str = new Array(${STRS});
  const margs = new Array(${NUMS + STRS + 1} * MULTI);
  tx = db.transaction((m) => {
    const seqs = new Float64Array(m.n);
    const { nums, strs, lens, spans } = m;
    const bytes = Buffer.from(m.bytes, 0, m.length);
    let sp = 0;
    const num = (v) => (v === v ? v : null);
    // The values of row i into a from index a, in ALERT_INSERT_SQL's order.
    const row = (i, a, out) => {
      const x = ${NUMS} * i, y = ${STRS} * i;
      for (let j = 0; j < ${STRS}; j++) {
        const l = lens[y + j];
        str[j] = l < 0 ? null : strs.slice(sp, (sp += l));
      }
      out[a] = str[0]; out[a + 1] = str[1]; out[a + 2] = nums[x]; out[a + 3] = nums[x + 1]; out[a + 4] = str[2];
      out[a + 5] = num(nums[x + 2]); out[a + 6] = str[3]; out[a + 7] = str[4]; out[a + 8] = str[5]; out[a + 9] = str[6];
      out[a + 10] = num(nums[x + 3]); out[a + 11] = num(nums[x + 4]); out[a + 12] = str[7];
      out[a + 13] = bytes.subarray(spans[2 * i], spans[2 * i + 1]);
    };
    let i = 0;
    for (; i + MULTI <= m.n; i += MULTI) {
      for (let r = 0; r < MULTI; r++) row(i + r, ${NUMS + STRS + 1} * r, margs);
      const info = multi.run(margs);
      if (info.changes !== MULTI) throw new Error('an alert row was not stored');
      const last = Number(info.lastInsertRowid);
      for (let r = 0; r < MULTI; r++) seqs[i + r] = last - MULTI + 1 + r;
    }
    for (; i < m.n; i++) {
      row(i, 0, args);
      const info = one.run(args);
      if (info.changes !== 1) throw new Error('an alert row was not stored');
      seqs[i] = Number(info.lastInsertRowid);
    }
    save.run(m.inode, m.offset, Date.now());
    return seqs;
  });
} catch (err) {
  initError = String((err && err.message) || err);
}
// CHECKPOINT_PROTOCOL, the writer's side: after each commit of that many bytes.
let sinceCycle = 0; // committed since the WAL last started over (or since the last cycle began)
let sinceRound = 0; // committed since the last round was asked for
let cycle = false;
let ownCheckpoints = false;
function ask() {
  sinceRound = 0;
  const n = Atomics.add(ck, ${REQUESTED}, 1) + 1;
  Atomics.notify(ck, ${REQUESTED});
  return n;
}
function checkpointAfter(bytes) {
  if (ownCheckpoints) return;
  if (Atomics.load(ck, ${DEAD})) {
    ownCheckpoints = true;
    db.pragma('wal_autocheckpoint = ' + Math.ceil(checkpointBytes / db.pragma('page_size', { simple: true })));
    return;
  }
  sinceCycle += bytes;
  sinceRound += bytes;
  if (Atomics.load(ck, ${REQUESTED}) !== Atomics.load(ck, ${DONE})) {
    // A round is running; one that does not end while the WAL grows this much is not waited for.
    if (sinceCycle >= 4 * checkpointBytes) {
      db.pragma('wal_checkpoint(PASSIVE)');
      sinceCycle = 0;
    }
    return;
  }
  if (!cycle) {
    if (sinceCycle >= checkpointBytes) {
      cycle = true;
      ask();
    }
    return;
  }
  if (sinceRound >= restBytes) return void ask();
  const last = ask();
  const until = Date.now() + lastRoundMs;
  for (let d; (d = Atomics.load(ck, ${DONE})) !== last && Date.now() < until; ) Atomics.wait(ck, ${DONE}, d, 100);
  cycle = false;
  sinceCycle = 0;
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
    checkpointAfter(m.length);
    // The bytes' buffer goes back for the next batch (else each batch's would wait for a garbage collection here).
    reply({ k: m.k, seqs, bytes: m.bytes }, [seqs.buffer, m.bytes]);
  } catch (err) {
    failed = true;
    reply({ k: m.k, error: String((err && err.message) || err) });
  }
});
`;

// The checkpointer (CHECKPOINT_PROTOCOL): a loop of rounds while not told to close.
const CHECKPOINTER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { fdatasyncSync } = require('node:fs');
const { ckState, sqlite, path, syncFd } = workerData;
const ck = new Int32Array(ckState);
let db;
try {
  db = new (require(sqlite))(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
} catch {
  Atomics.store(ck, ${DEAD}, 1);
}
while (db && !Atomics.load(ck, ${CLOSE})) {
  const asked = Atomics.load(ck, ${REQUESTED});
  if (asked === Atomics.load(ck, ${DONE})) {
    Atomics.wait(ck, ${REQUESTED}, asked, 1000);
    continue;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    fdatasyncSync(syncFd);
  } catch {
    // Busy or failed: the WAL keeps its frames (nothing is lost) and the next round or the writer tries again.
  }
  Atomics.store(ck, ${DONE}, asked);
  Atomics.notify(ck, ${DONE});
}
try { db && db.close(); } catch {}
`;

/**
 * A descriptor of each database file for the checkpointer's data syncs, open for the life of the process: closing
 * any descriptor of a file drops every POSIX lock this process holds on it, SQLite's included.
 */
const syncFds = new Map<string, number>();
function syncFdOf(path: string): number {
  let fd = syncFds.get(path);
  if (fd === undefined) syncFds.set(path, (fd = openSync(path, 'r')));
  return fd;
}

/**
 * ALERT_INSERT_SQL for the thread: `n` rows of values, a plain INSERT (see the thread's use), the raw event (the last
 * value) given as UTF-8 bytes and stored as text.
 */
export function threadInsert(n: number): string {
  const m = /^INSERT OR IGNORE (INTO [^]*VALUES)\s*\(([^)]*), \?\)\s*$/.exec(ALERT_INSERT_SQL);
  if (!m) throw new Error('unexpected alert insert statement');
  return `INSERT ${m[1]} ${new Array(n).fill(`(${m[2]}, CAST(? AS TEXT))`).join(', ')}`;
}

/** The rows of `inputs` in the thread's form (see NUMS and STRS). */
export function encodeRows(inputs: AlertInput[]): { nums: Float64Array; strs: string; lens: Int32Array } {
  const nums = new Float64Array(inputs.length * NUMS);
  const lens = new Int32Array(inputs.length * STRS);
  let strs = '';
  let x = 0;
  let y = 0;
  const text = (v: string | undefined): void => {
    if (v === undefined) lens[y++] = -1;
    else {
      lens[y++] = v.length;
      strs += v;
    }
  };
  for (const a of inputs) {
    nums[x++] = Math.round(a.at);
    nums[x++] = a.severity;
    nums[x++] = a.sid ?? NaN;
    nums[x++] = a.sport ?? NaN;
    nums[x++] = a.dport ?? NaN;
    text(a.id);
    text(a.kind);
    text(a.signature);
    text(a.category);
    text(a.src);
    text(a.dst);
    text(a.proto);
    text(a.action);
  }
  return { nums, strs, lens };
}

export interface WriterBatch {
  /**
   * The UTF-8 bytes the rows' raw events are in: the first `length` of a buffer from buffer() (moved to the thread,
   * and back), and each row's start and end there.
   */
  bytes: ArrayBuffer;
  length: number;
  spans: Int32Array;
  /** What the caller gets back with the seqs once the batch is committed. */
  items: AlertInput[];
  inode: number;
  offset: number;
}

interface Pending {
  k: number;
  items: AlertInput[];
}

/** The writer thread of one database. Not reentrant: one tailer drives it. */
export class EveWriterThread {
  private worker?: Worker;
  private checkpointer?: Worker;
  private ckState?: Int32Array;
  private port?: MessagePort;
  private counter?: Int32Array;
  private acked = 0;
  private posted = 0;
  private readonly pending: Pending[] = [];
  /** Buffers of batches' bytes the thread gave back, for the next batches. */
  private readonly spare: ArrayBuffer[] = [];
  private broken = false;

  /** `onCommitted` runs on the calling thread for each committed batch, in order, with the rows' seqs. */
  constructor(
    private readonly dbPath: string,
    private readonly onCommitted: (items: AlertInput[], seqs: Float64Array) => void,
    private readonly opts: { checkpointBytes?: number } = {},
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
    const ckState = new SharedArrayBuffer(16);
    const ck = (this.ckState = new Int32Array(ckState));
    this.checkpointer = new Worker(CHECKPOINTER_SOURCE, {
      eval: true,
      workerData: { ckState, sqlite, path: this.dbPath, syncFd: syncFdOf(this.dbPath) },
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
    });
    this.checkpointer.unref();
    // Gone (an error, or the end): the writer makes its own checkpoints from its next commit on.
    this.checkpointer.on('error', () => undefined);
    this.checkpointer.on('exit', () => Atomics.store(ck, DEAD, 1));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        port: port2,
        flag,
        sqlite,
        path: this.dbPath,
        oneSql: threadInsert(1),
        multiSql: threadInsert(MULTI_ROWS),
        saveSql: SAVE_POSITION_SQL,
        multi: MULTI_ROWS,
        checkpointBytes: this.opts.checkpointBytes ?? CHECKPOINT_BYTES,
        restBytes: REST_BYTES,
        lastRoundMs: LAST_ROUND_MS,
        ckState,
      },
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

  /** A buffer of at least `size` bytes for a batch's bytes: one the thread gave back, else a new one. */
  buffer(size: number): ArrayBuffer {
    const i = this.spare.findIndex((b) => b.byteLength >= size);
    if (i >= 0) return this.spare.splice(i, 1)[0];
    return new ArrayBuffer(Math.max(size, SPARE_BYTES));
  }

  /** Queue a batch; waits for the oldest when MAX_IN_FLIGHT are queued. Throws when a batch failed. */
  post(batch: WriterBatch): void {
    this.ensure();
    const k = ++this.posted;
    const n = batch.items.length;
    this.pending.push({ k, items: batch.items });
    const { nums, strs, lens } = encodeRows(batch.items);
    const transfer = [batch.bytes, batch.spans.buffer as ArrayBuffer, nums.buffer as ArrayBuffer, lens.buffer as ArrayBuffer];
    this.worker!.postMessage({ k, n, nums, strs, lens, bytes: batch.bytes, length: batch.length, spans: batch.spans, inode: batch.inode, offset: batch.offset }, transfer);
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
    const c = this.checkpointer;
    this.checkpointer = undefined;
    if (this.ckState) {
      Atomics.store(this.ckState, CLOSE, 1);
      Atomics.notify(this.ckState, REQUESTED);
    }
    if (broken) void c?.terminate();
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
    const msg = receiveMessageOnPort(this.port!)?.message as { k: number; seqs?: Float64Array; bytes?: ArrayBuffer; error?: string; fatal?: boolean } | undefined;
    if (msg?.bytes?.byteLength && this.spare.length <= MAX_IN_FLIGHT) this.spare.push(msg.bytes);
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
