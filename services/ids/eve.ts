/**
 * The EVE tailer: reads Suricata's eve.json from a persisted position (inode + byte offset, in SQLite, committed in
 * the same transaction as the alerts it covers), so a restart neither loses nor repeats an alert. Handles rotation
 * (the old file is drained through its open descriptor, or found again by inode after a restart), truncation and
 * partial lines (only complete lines are consumed). Only alert and stats lines are parsed; a malformed line is
 * counted and skipped.
 *
 * Exactly once: the position is the only record of what was stored (no unique index on the alerts: see
 * services/core/alerts.ts), so every write of rows carries the position after them in the same transaction.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RawAlert, type AlertInput, type AlertStore, type Severity } from '../core/alerts.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/store.ts';
import { EveWriterThread, SAVE_POSITION_SQL } from './eve-writer.ts';

export const EVE_MIGRATIONS = [
  `CREATE TABLE ids_eve_position (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     inode INTEGER NOT NULL,
     offset INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );`,
];

const CHUNK = 1 << 20;
const BULK_BYTES = 8 << 20;
const SLICE_BYTES = 64 << 20;
const BULK_CHECKPOINT_PAGES = 16384;
const MAX_LINE = 16 << 20;
const PIECE = 64 << 10;
const BATCH = 256 << 10;
const ALERT_MARK = '"event_type":"alert"';
const STATS_MARK = '"event_type":"stats"';

export interface EveCounters {
  lines: number;
  alerts: number;
  stored: number;
  malformed: number;
  stats: number;
  rotations: number;
  truncations: number;
}

/** The alert record of a parsed EVE alert event (undefined when it is not one). */
export function alertFromEve(rec: any, line?: string): AlertInput | undefined {
  const a = rec?.alert;
  if (rec?.event_type !== 'alert' || !a || typeof a !== 'object') return undefined;
  return normalise(rec, a, line);
}

function normalise(rec: any, a: any, line?: string): AlertInput {
  const at = typeof rec.timestamp === 'string' ? Date.parse(rec.timestamp) : NaN;
  const sid = Number.isInteger(a.signature_id) ? a.signature_id : undefined;
  const sev = Number.isInteger(a.severity) ? Math.min(4, Math.max(1, a.severity)) : 3;
  // Stable for the event: one packet matches one signature once, at one timestamp, in one flow.
  const id = `eve:${rec.timestamp ?? ''}:${rec.flow_id ?? ''}:${a.gid ?? 1}:${sid ?? ''}:${rec.pcap_cnt ?? ''}`;
  const when = Number.isFinite(at) ? at : Date.now();
  const signature = typeof a.signature === 'string' ? a.signature.slice(0, 1024) : `sid ${sid ?? '?'}`;
  // The line as it came (stored as is, parsed when read), else the record parsed from it.
  const out: AlertInput = line !== undefined ? new RawAlert(id, when, sev as Severity, signature, line) : { id, kind: 'ids', at: when, severity: sev as Severity, signature, detail: rec };
  if (sid !== undefined) out.sid = sid;
  if (typeof a.category === 'string' && a.category) out.category = a.category;
  if (typeof rec.src_ip === 'string') out.src = rec.src_ip;
  if (typeof rec.dest_ip === 'string') out.dst = rec.dest_ip;
  if (typeof rec.proto === 'string') out.proto = rec.proto.toLowerCase();
  if (Number.isInteger(rec.src_port)) out.sport = rec.src_port;
  if (Number.isInteger(rec.dest_port)) out.dport = rec.dest_port;
  if (typeof a.action === 'string') out.action = a.action;
  return out;
}

// The head of an EVE line: Suricata writes the envelope (timestamp, flow, 5-tuple) first, then the `alert` object
// (action, gid, signature_id, rev, signature, category, severity, then optional parts), then the app-layer objects
// (http, tls, flow, ...). Only the envelope and the alert up to `severity` are parsed (two small JSON.parse calls);
// the rest of the line is stored as it is. Anything that does not have this shape goes through the full parser.

const ALERT_KEY = ',"alert":{';
const SEVERITY_KEY = '"severity":';

/** The alert from the head of the line, or undefined when the line is not of the expected shape. */
function headAlert(line: string): AlertInput | undefined {
  const k = line.indexOf(ALERT_KEY);
  if (k < 1) return undefined;
  const sv = line.indexOf(SEVERITY_KEY, k);
  if (sv < 0) return undefined;
  let e = sv + SEVERITY_KEY.length;
  for (let c = line.charCodeAt(e); (c >= 48 && c <= 57) || c === 45; c = line.charCodeAt(++e));
  let env: any;
  let a: any;
  try {
    env = JSON.parse(line.slice(0, k) + '}');
    a = JSON.parse(line.slice(k + ALERT_KEY.length - 1, e) + '}');
  } catch {
    return undefined;
  }
  if (env.event_type !== 'alert' || typeof a.signature !== 'string' || a.signature_id === undefined || env.alert !== undefined) return undefined;
  return normalise(env, a, line);
}

// Faster still, the same head read member by member without JSON.parse: scalar members (strings, numbers,
// true/false/null) until the first object or array value, the values of the members normalise() needs picked out by
// their names where they stand. A backslash or a control character anywhere in what was read, an odd number or a nested value before
// the alert leave the line to headAlert().

const NOT_PLAIN = /[\u0000-\u001f\\]/;
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

interface EnvelopeFields {
  timestamp: unknown;
  flow_id: unknown;
  event_type: unknown;
  src_ip: unknown;
  src_port: unknown;
  dest_ip: unknown;
  dest_port: unknown;
  proto: unknown;
  pcap_cnt: unknown;
  alert: unknown;
}

interface AlertFields {
  action: unknown;
  gid: unknown;
  signature_id: unknown;
  signature: unknown;
  category: unknown;
  severity: unknown;
}

/** The members read, in the order of the values scanMembers() fills. */
const ENVELOPE_KEYS = ['timestamp', 'flow_id', 'event_type', 'src_ip', 'src_port', 'dest_ip', 'dest_port', 'proto', 'pcap_cnt', 'alert'] as const;
const ALERT_KEYS = ['action', 'gid', 'signature_id', 'signature', 'category', 'severity'] as const;
const ALERT_MEMBER = ENVELOPE_KEYS.indexOf('alert');

function skipWs(s: string, i: number): number {
  for (let c = s.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = s.charCodeAt(++i));
  return i;
}

/** Which of `keys` the text s[from, to) is (-1: none), compared where it stands (no string is made for it). */
function keyAt(s: string, from: number, to: number, keys: readonly string[]): number {
  const n = to - from;
  for (let k = 0; k < keys.length; k++) if (keys[k].length === n && s.startsWith(keys[k], from)) return k;
  return -1;
}

/**
 * Where scanMembers() stopped: at the closing "}" (`nested` undefined) or at the first object/array value (`nested`:
 * the index of its member in the keys, -1 for another member).
 */
interface Stop {
  nested?: number;
  at: number;
}

/**
 * Reads the scalar members of the object whose "{" is at `i`: the value of a member named `keys[k]` goes to
 * `values[k]`, other members are passed over. Strings are taken as they stand (the caller rejects text with escapes);
 * undefined when the text is not plainly valid JSON.
 */
function scanMembers(s: string, i: number, keys: readonly string[], values: unknown[]): Stop | undefined {
  i = skipWs(s, i + 1);
  if (s.charCodeAt(i) === 125) return { at: i };
  for (;;) {
    if (s.charCodeAt(i) !== 34) return undefined;
    const ke = s.indexOf('"', i + 1);
    if (ke < 0) return undefined;
    const k = keyAt(s, i + 1, ke, keys);
    i = skipWs(s, ke + 1);
    if (s.charCodeAt(i) !== 58) return undefined;
    i = skipWs(s, i + 1);
    const c = s.charCodeAt(i);
    let v: unknown;
    if (c === 34) {
      const ve = s.indexOf('"', i + 1);
      if (ve < 0) return undefined;
      v = k < 0 ? undefined : s.slice(i + 1, ve);
      i = ve + 1;
    } else if (c === 123 || c === 91) {
      return { nested: k, at: i };
    } else if (c === 116 && s.startsWith('true', i)) (v = true), (i += 4);
    else if (c === 102 && s.startsWith('false', i)) (v = false), (i += 5);
    else if (c === 110 && s.startsWith('null', i)) (v = null), (i += 4);
    else {
      let j = i;
      for (let d = s.charCodeAt(j); (d >= 48 && d <= 57) || d === 45 || d === 43 || d === 46 || d === 69 || d === 101; d = s.charCodeAt(++j));
      const num = s.slice(i, j);
      if (!JSON_NUMBER.test(num)) return undefined;
      v = Number(num);
      i = j;
    }
    if (k >= 0) values[k] = v;
    i = skipWs(s, i);
    const d = s.charCodeAt(i);
    if (d === 125) return { at: i };
    if (d !== 44) return undefined;
    i = skipWs(s, i + 1);
  }
}

/** The alert from the head of the line read by scanMembers(), or undefined when it cannot say. */
function scanHead(line: string): AlertInput | undefined {
  const e: unknown[] = new Array(ENVELOPE_KEYS.length).fill(undefined);
  const stop = scanMembers(line, 0, ENVELOPE_KEYS, e);
  const env: EnvelopeFields = { timestamp: e[0], flow_id: e[1], event_type: e[2], src_ip: e[3], src_port: e[4], dest_ip: e[5], dest_port: e[6], proto: e[7], pcap_cnt: e[8], alert: e[9] };
  if (!stop || stop.nested !== ALERT_MEMBER || env.event_type !== 'alert' || env.alert !== undefined || line.charCodeAt(stop.at) !== 123) return undefined;
  const v: unknown[] = new Array(ALERT_KEYS.length).fill(undefined);
  const end = scanMembers(line, stop.at, ALERT_KEYS, v);
  const a: AlertFields = { action: v[0], gid: v[1], signature_id: v[2], signature: v[3], category: v[4], severity: v[5] };
  if (!end || typeof a.signature !== 'string' || a.signature_id === undefined) return undefined;
  // Stopped at a nested member: the fields after it are unseen, so all of them must have come before.
  if (end.nested !== undefined && (a.action === undefined || a.gid === undefined || a.category === undefined || a.severity === undefined)) return undefined;
  // Strings were taken as they stand: nothing read may hold an escape or a raw control character.
  if (NOT_PLAIN.test(line.slice(0, end.at))) return undefined;
  return normalise(env, a, line);
}

/**
 * The alert of an EVE line: `undefined` when the line is no alert, `null` when it is malformed. The line must be a
 * complete JSON object (it ends with "}").
 */
export function scanEveAlert(line: string): AlertInput | undefined | null {
  if (line.charCodeAt(line.length - 1) !== 125 || line.charCodeAt(0) !== 123) return scanEveAlertSlow(line);
  return scanHead(line) ?? scanEveAlertSlow(line);
}

function scanEveAlertSlow(line: string): AlertInput | undefined | null {
  if (line.charCodeAt(line.length - 1) !== 125) return null;
  const fast = headAlert(line);
  if (fast) return fast;
  let parsed: any;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (parsed?.event_type !== 'alert') return undefined;
  return alertFromEve(parsed, line) ?? null;
}

export interface EveTailerOptions {
  store: Store;
  alerts: AlertStore;
  /** eve.json */
  path: string;
  log?: Logger;
  /** Fallback poll interval (a directory watch wakes the tailer sooner). Default 250 ms. */
  pollMs?: number;
  /** Stats events (engine counters) for telemetry, with the event's time (epoch ms). */
  onStats?: (stats: any, at: number) => void;
  /** A backlog of at least this many bytes is stored through the writer thread. Default 8 MiB. */
  writerThreadBytes?: number;
  /**
   * At most about this many bytes are read per poll; a bigger backlog goes on in the next turn of the event loop, so a
   * long catch-up never blocks the daemon (its API, the systemd watchdog) for long. Default 64 MiB (well under a
   * second); Infinity reads everything at once.
   */
  sliceBytes?: number;
  /** The writer thread's WAL checkpoint interval (see eve-writer.ts). Default 64 MiB. */
  checkpointBytes?: number;
}

interface Position {
  inode: number;
  offset: number;
}

/** The alerts of one batch and each one's start and end in the batch's bytes. */
interface Batch {
  inputs: AlertInput[];
  spans: number[];
}

export class EveTailer {
  readonly counters: EveCounters = { lines: 0, alerts: 0, stored: 0, malformed: 0, stats: 0, rotations: 0, truncations: 0 };
  private fd?: number;
  private pos?: Position;
  private timer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private busy = false;
  private again = false;
  /** Bytes read in the current poll, and whether it stopped at the slice with more to read. */
  private sliceRead = 0;
  private more = false;
  private stopped = false;
  private buf = Buffer.allocUnsafe(CHUNK);
  /** The writer thread while a backlog is being read (else rows are stored on this thread). */
  private pipe?: EveWriterThread;
  private thread?: EveWriterThread;

  constructor(private readonly opts: EveTailerOptions) {
    opts.store.migrate('ids', EVE_MIGRATIONS);
  }

  /** The persisted position (what has been stored). */
  position(): Position | undefined {
    const r = this.opts.store.prepare('SELECT inode, offset FROM ids_eve_position WHERE id = 1').get() as Position | undefined;
    return r ? { inode: r.inode, offset: r.offset } : undefined;
  }

  start(): void {
    this.stopped = false;
    this.poll();
    const dir = dirname(this.opts.path);
    try {
      this.watcher = watch(dir, { persistent: false }, () => this.poll());
      this.watcher.on('error', () => undefined);
    } catch {
      /* the poll timer covers it */
    }
    this.timer = setInterval(() => this.poll(), this.opts.pollMs ?? 250);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.timer = undefined;
    this.watcher = undefined;
    this.closeFd();
    this.thread?.close();
    this.thread = undefined;
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Read what there is now, up to a slice (re-entrancy safe: a poll during a poll runs once more afterwards). Returns
   * whether more is left; the rest is read in the next turn of the event loop.
   */
  poll(): boolean {
    if (this.busy) {
      this.again = true;
      return true;
    }
    this.busy = true;
    this.sliceRead = 0;
    this.more = false;
    try {
      do {
        this.again = false;
        this.catchUp();
      } while (this.again && !this.more);
    } catch (err) {
      this.opts.log?.error({ err: String(err) }, 'eve tailer failed');
    } finally {
      this.busy = false;
    }
    if (this.more && !this.stopped) setImmediate(() => !this.stopped && this.poll());
    return this.more;
  }

  private catchUp(): void {
    const path = this.opts.path;
    if (this.fd === undefined) {
      let st;
      try {
        st = statSync(path);
      } catch {
        return; // no EVE file yet
      }
      const saved = this.position();
      if (saved && saved.inode !== st.ino) {
        // Rotated while the daemon was not reading: finish the old file if it is still around.
        const old = this.findByInode(saved.inode);
        if (old) this.drain(old, saved);
        this.counters.rotations++;
        this.pos = { inode: st.ino, offset: 0 };
      } else this.pos = saved ?? { inode: st.ino, offset: 0 };
      this.fd = openSync(path, 'r');
      if (fstatSync(this.fd).ino !== this.pos.inode) {
        // Replaced between stat and open: take it from the start.
        this.pos = { inode: fstatSync(this.fd).ino, offset: 0 };
      }
    }
    for (;;) {
      const fd = this.fd!;
      const size = fstatSync(fd).size;
      if (size < this.pos!.offset) {
        this.opts.log?.warn({ size, offset: this.pos!.offset }, 'eve.json was truncated: reading it from the start');
        this.counters.truncations++;
        this.pos!.offset = 0;
      }
      this.bulk(size - this.pos!.offset, () => this.readFrom(fd, this.pos!));
      if (this.more) return; // the slice is full: the next poll goes on from here
      // Rotated (renamed and a new file made)? The old descriptor is fully read now: switch.
      let st;
      try {
        st = statSync(path);
      } catch {
        return; // renamed away, not yet recreated: keep the old descriptor, it may still grow
      }
      if (st.ino === this.pos!.inode) return;
      this.readFrom(fd, this.pos!, true);
      this.closeFd();
      this.counters.rotations++;
      this.fd = openSync(path, 'r');
      this.pos = { inode: fstatSync(this.fd).ino, offset: 0 };
      this.save(this.pos);
    }
  }

  /**
   * A big backlog (catching up after downtime) is read with a larger WAL checkpoint interval: fewer checkpoints,
   * each of which syncs the disk, while the same transactions commit; the interval is restored afterwards.
   */
  private bulk(backlog: number, fn: () => void): void {
    if (backlog < (this.opts.writerThreadBytes ?? BULK_BYTES)) return fn();
    if (this.opts.store.path !== ':memory:') {
      this.thread ??= new EveWriterThread(this.opts.store.path, (items, seqs) => {
        this.counters.stored += this.opts.alerts.stored(items, seqs).length;
      }, { checkpointBytes: this.opts.checkpointBytes });
    }
    if (this.thread?.usable) {
      this.pipe = this.thread;
      try {
        fn();
        this.pipe.flush();
      } catch (err) {
        // Whatever was not committed is read again from the saved position.
        this.thread.reset();
        this.closeFd();
        this.pos = undefined;
        throw err;
      } finally {
        this.pipe = undefined;
      }
      return;
    }
    if (backlog < BULK_BYTES) return fn();
    const db = this.opts.store.sql;
    const prev = Number(db.pragma('wal_autocheckpoint', { simple: true }));
    db.pragma(`wal_autocheckpoint = ${BULK_CHECKPOINT_PAGES}`);
    try {
      fn();
    } finally {
      db.pragma(`wal_autocheckpoint = ${Number.isInteger(prev) && prev >= 0 ? prev : 1000}`);
    }
  }

  private findByInode(inode: number): string | undefined {
    const dir = dirname(this.opts.path);
    const base = basename(this.opts.path);
    try {
      for (const name of readdirSync(dir)) {
        if (!name.startsWith(base)) continue;
        const p = join(dir, name);
        try {
          if (statSync(p).ino === inode) return p;
        } catch {
          /* vanished */
        }
      }
    } catch {
      /* no dir */
    }
    return undefined;
  }

  private drain(file: string, pos: Position): void {
    const fd = openSync(file, 'r');
    try {
      const p = { ...pos };
      this.readFrom(fd, p, true);
    } finally {
      closeSync(fd);
    }
  }

  private save(pos: Position): void {
    if (this.pipe) return this.pipe.post({ bytes: new ArrayBuffer(0), length: 0, spans: new Int32Array(0), items: [], inode: pos.inode, offset: pos.offset });
    this.opts.store.prepare(SAVE_POSITION_SQL).run(pos.inode, pos.offset, Date.now());
  }

  /**
   * Read complete lines from `pos.offset` to the end, one transaction per chunk (alerts and the new position
   * together). With `final`, a trailing partial line is the file's last word (it was rotated): taken as malformed.
   */
  private readFrom(fd: number, pos: Position, final = false): void {
    for (;;) {
      if (!final && this.sliceRead >= (this.opts.sliceBytes ?? SLICE_BYTES)) {
        this.more = true;
        return;
      }
      const n = readSync(fd, this.buf, 0, this.buf.length, pos.offset);
      this.sliceRead += n;
      if (n === 0) return;
      let end = this.buf.lastIndexOf(10, n - 1);
      if (end === -1) {
        if (n < this.buf.length) {
          if (final) {
            this.counters.malformed++;
            pos.offset += n;
            this.save(pos);
          }
          return; // a partial line: wait for the rest
        }
        if (this.buf.length >= MAX_LINE) {
          // A line longer than any EVE record: skip up to its end.
          this.counters.malformed++;
          pos.offset += n;
          this.save(pos);
          continue;
        }
        this.buf = Buffer.allocUnsafe(this.buf.length * 2);
        continue;
      }
      // Decoded in pieces of at most PIECE bytes (ending at a line end): strings that small are young objects, where
      // a megabyte string would sit in the large-object space until a full GC (with batches in flight to the writer
      // thread, that adds up). A transaction per BATCH bytes, so that several are in flight at once.
      let batch: Batch = { inputs: [], spans: [] };
      let from = 0;
      for (let p = 0; p < end; ) {
        let q = p + PIECE < end ? this.buf.lastIndexOf(10, p + PIECE - 1) : end;
        if (q < p) q = this.buf.indexOf(10, p + PIECE); // one line longer than a piece
        this.scanText(this.buf.toString('utf8', p, q), batch, p - from, q - p);
        p = q + 1;
        if (p - from >= BATCH || p > end) {
          this.commit(batch, pos, from, p - from);
          batch = { inputs: [], spans: [] };
          from = p;
        }
      }
      if (n < this.buf.length && end + 1 === n) return;
    }
  }

  /**
   * Classifies the lines of `text` (decoded from `byteLength` bytes at `byteStart` of the batch): alerts into the
   * batch, stats to their consumer, the rest counted.
   */
  private scanText(text: string, batch: Batch, byteStart: number, byteLength: number): void {
    // Plain ASCII (the usual EVE line): a character's index is its byte's. Else each line's bytes are counted.
    const ascii = text.length === byteLength;
    let bytesBefore = byteStart;
    let counted = 0;
    let start = 0;
    const c = this.counters;
    while (start < text.length) {
      let nl = text.indexOf('\n', start);
      if (nl === -1) nl = text.length;
      if (nl > start) {
        const line = text.slice(start, nl);
        c.lines++;
        if (line.includes(ALERT_MARK)) {
          const a = scanEveAlert(line);
          if (a) {
            batch.inputs.push(a);
            if (ascii) batch.spans.push(byteStart + start, byteStart + nl);
            else {
              bytesBefore += Buffer.byteLength(text.slice(counted, start));
              const lineBytes = Buffer.byteLength(line);
              batch.spans.push(bytesBefore, bytesBefore + lineBytes);
              bytesBefore += lineBytes;
              counted = nl;
            }
            c.alerts++;
          } else if (a === null) c.malformed++;
        } else if (line.includes(STATS_MARK)) {
          let rec: any;
          try {
            rec = JSON.parse(line);
          } catch {
            c.malformed++;
            rec = undefined;
          }
          if (rec && rec.event_type === 'stats') {
            c.stats++;
            try {
              const at = typeof rec.timestamp === 'string' ? Date.parse(rec.timestamp) : NaN;
              this.opts.onStats?.(rec.stats, Number.isFinite(at) ? at : Date.now());
            } catch {
              /* a consumer's problem */
            }
          }
        } else if (line.charCodeAt(0) !== 123 || line.charCodeAt(line.length - 1) !== 125) c.malformed++;
      }
      start = nl + 1;
    }
  }

  /**
   * Stores a batch (read from `bytes` bytes at `from` in the buffer) and the position after it in one transaction, or
   * queues both for the writer thread.
   */
  private commit({ inputs: batch, spans }: Batch, pos: Position, from: number, bytes: number): void {
    const c = this.counters;
    const store = this.opts.store;
    const next = { inode: pos.inode, offset: pos.offset + bytes };
    if (this.pipe) {
      // The thread gets its own copy of the bytes (the read buffer is reused), moved rather than copied again.
      const copy = this.pipe.buffer(bytes);
      new Uint8Array(copy).set(this.buf.subarray(from, from + bytes));
      this.pipe.post({ bytes: copy, length: bytes, spans: Int32Array.from(spans), items: batch, inode: next.inode, offset: next.offset });
      pos.offset = next.offset;
      return;
    }
    store.sql.transaction(() => {
      if (batch.length) c.stored += this.opts.alerts.add(batch).length;
      this.save(next);
    })();
    pos.offset = next.offset;
  }
}
