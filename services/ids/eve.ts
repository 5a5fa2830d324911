/**
 * The EVE tailer: reads Suricata's eve.json from a persisted position (inode + byte offset, in SQLite, committed in
 * the same transaction as the alerts it covers), so a restart neither loses nor repeats an alert. Handles rotation
 * (the old file is drained through its open descriptor, or found again by inode after a restart), truncation and
 * partial lines (only complete lines are consumed). Only alert and stats lines are parsed; a malformed line is
 * counted and skipped.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { AlertInput, AlertStore, Severity } from '../core/alerts.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/store.ts';

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
const BULK_CHECKPOINT_PAGES = 16384;
const MAX_LINE = 16 << 20;
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
  const out: AlertInput = {
    // Stable for the event: one packet matches one signature once, at one timestamp, in one flow.
    id: `eve:${rec.timestamp ?? ''}:${rec.flow_id ?? ''}:${a.gid ?? 1}:${sid ?? ''}:${rec.pcap_cnt ?? ''}`,
    kind: 'ids',
    at: Number.isFinite(at) ? at : Date.now(),
    severity: sev as Severity,
    signature: typeof a.signature === 'string' ? a.signature.slice(0, 1024) : `sid ${sid ?? '?'}`,
  };
  if (line !== undefined) out.detailJson = line;
  else out.detail = rec;
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

/**
 * The alert of an EVE line: `undefined` when the line is no alert, `null` when it is malformed. The line must be a
 * complete JSON object (it ends with "}").
 */
export function scanEveAlert(line: string): AlertInput | undefined | null {
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
}

interface Position {
  inode: number;
  offset: number;
}

export class EveTailer {
  readonly counters: EveCounters = { lines: 0, alerts: 0, stored: 0, malformed: 0, stats: 0, rotations: 0, truncations: 0 };
  private fd?: number;
  private pos?: Position;
  private timer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private busy = false;
  private again = false;
  private buf = Buffer.allocUnsafe(CHUNK);

  constructor(private readonly opts: EveTailerOptions) {
    opts.store.migrate('ids', EVE_MIGRATIONS);
  }

  /** The persisted position (what has been stored). */
  position(): Position | undefined {
    const r = this.opts.store.prepare('SELECT inode, offset FROM ids_eve_position WHERE id = 1').get() as Position | undefined;
    return r ? { inode: r.inode, offset: r.offset } : undefined;
  }

  start(): void {
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
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.timer = undefined;
    this.watcher = undefined;
    this.closeFd();
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Read everything there is now (re-entrancy safe: a poll during a poll runs once more afterwards). */
  poll(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        this.catchUp();
      } while (this.again);
    } catch (err) {
      this.opts.log?.error({ err: String(err) }, 'eve tailer failed');
    } finally {
      this.busy = false;
    }
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
    this.opts.store
      .prepare('INSERT INTO ids_eve_position (id, inode, offset, updated_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET inode = excluded.inode, offset = excluded.offset, updated_at = excluded.updated_at')
      .run(pos.inode, pos.offset, Date.now());
  }

  /**
   * Read complete lines from `pos.offset` to the end, one transaction per chunk (alerts and the new position
   * together). With `final`, a trailing partial line is the file's last word (it was rotated): taken as malformed.
   */
  private readFrom(fd: number, pos: Position, final = false): void {
    for (;;) {
      const n = readSync(fd, this.buf, 0, this.buf.length, pos.offset);
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
      const text = this.buf.toString('utf8', 0, end);
      this.ingestText(text, pos, end + 1);
      if (n < this.buf.length && end + 1 === n) return;
    }
  }

  private ingestText(text: string, pos: Position, bytes: number): void {
    const batch: AlertInput[] = [];
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
            batch.push(a);
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
    const store = this.opts.store;
    const next = { inode: pos.inode, offset: pos.offset + bytes };
    store.sql.transaction(() => {
      if (batch.length) c.stored += this.opts.alerts.add(batch).length;
      this.save(next);
    })();
    pos.offset = next.offset;
  }
}
