/**
 * The agent's MIB: a sorted array of instances (OID, type, value or a getter for values that change every moment,
 * such as sysUpTime), swapped whole whenever the collectors' figures change. GET, GETNEXT and GETBULK are answered
 * from it with binary searches, so a bulk walk costs no I/O and no tree walk. The values use the agent library's
 * object types; Counter64 values are minimal big-endian byte strings (the library writes them as they are).
 */
/**
 * The SMI types as their BER tags (RFC 2578, RFC 3416), the numbers the agent library uses for its object types;
 * kept here so the daemon loads the library only when the agent runs (a test holds the two to the same values).
 */
export const T = {
  Integer: 0x02,
  OctetString: 0x04,
  OID: 0x06,
  IpAddress: 0x40,
  Counter32: 0x41,
  Gauge32: 0x42,
  TimeTicks: 0x43,
  Counter64: 0x46,
  NoSuchObject: 0x80,
  NoSuchInstance: 0x81,
  EndOfMibView: 0x82,
};

export interface Instance {
  oid: string;
  type: number;
  value: unknown;
  /** Computed at each request (sysUpTime). */
  get?: () => unknown;
}

export interface Varbind {
  oid: string;
  type: number;
  value: unknown;
}

const U32 = 2 ** 32;

// ---- value helpers ----

export const int = (oid: string, v: number): Instance => ({ oid, type: T.Integer, value: Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.trunc(v))) });
export const str = (oid: string, v: string | Buffer): Instance => ({ oid, type: T.OctetString, value: v });
export const oidValue = (oid: string, v: string): Instance => ({ oid, type: T.OID, value: v });
/** Counter32: the low 32 bits of a wider counter (it wraps, as the MIB says). */
export const c32 = (oid: string, v: number): Instance => ({ oid, type: T.Counter32, value: Math.trunc(Math.max(0, v)) % U32 });
/** Gauge32: latched at its maximum. */
export const g32 = (oid: string, v: number): Instance => ({ oid, type: T.Gauge32, value: Math.min(U32 - 1, Math.max(0, Math.trunc(v))) });
export const ticks = (oid: string, v: number | (() => number)): Instance =>
  typeof v === 'function' ? { oid, type: T.TimeTicks, value: 0, get: () => Math.trunc(v()) % U32 } : { oid, type: T.TimeTicks, value: Math.trunc(v) % U32 };
export const c64 = (oid: string, v: number | bigint): Instance => ({ oid, type: T.Counter64, value: counter64Bytes(v) });

/** The BER content of an unsigned 64-bit integer: minimal, with a leading zero when the top bit is set. */
export function counter64Bytes(v: number | bigint): Buffer {
  if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
    // Fast path (every counter the kernel has given us so far): plain arithmetic, no BigInt.
    let x = Math.trunc(v);
    const bytes: number[] = [];
    do {
      bytes.unshift(x % 256);
      x = Math.floor(x / 256);
    } while (x > 0);
    if (bytes[0] & 0x80) bytes.unshift(0);
    return Buffer.from(bytes);
  }
  let n = typeof v === 'bigint' ? v : BigInt(Math.trunc(Math.max(0, v)));
  n = BigInt.asUintN(64, n);
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  if (bytes[0] & 0x80) bytes.unshift(0);
  return Buffer.from(bytes);
}

/** Counter64 bytes → bigint (tests, and clients of this module). */
export function counter64Value(b: Buffer): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

// ---- OIDs ----

export function parseOid(s: string): number[] | undefined {
  const t = s.charCodeAt(0) === 46 ? s.slice(1) : s;
  const parts = t.split('.');
  const out = new Array<number>(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.length === 0 || p.length > 10) return undefined;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j);
      if (c < 48 || c > 57) return undefined;
    }
    const n = Number(p);
    if (n > 0xffffffff) return undefined;
    out[i] = n;
  }
  return out;
}

export function compareOid(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** An OctetString index: length then the bytes (RFC 2578 §7.7). */
export function stringIndex(s: string): string {
  const b = Buffer.from(s, 'utf8');
  return [b.length, ...b].join('.');
}

// ---- the view ----

export class MibView {
  private keys: number[][] = [];
  private items: Instance[] = [];
  private byOid = new Map<string, Instance>();

  /** Replace every instance (duplicates: the last one wins). */
  set(instances: Instance[]): void {
    const map = new Map<string, Instance>();
    for (const i of instances) map.set(i.oid, i);
    const list: { key: number[]; i: Instance }[] = [];
    for (const i of map.values()) {
      const key = parseOid(i.oid);
      if (key) list.push({ key, i });
    }
    list.sort((a, b) => compareOid(a.key, b.key));
    this.keys = list.map((x) => x.key);
    this.items = list.map((x) => x.i);
    this.byOid = map;
  }

  get size(): number {
    return this.items.length;
  }

  /** Position of the first instance strictly after `key`. */
  private after(key: number[]): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareOid(this.keys[mid], key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private bind(i: Instance): Varbind {
    let value = i.value;
    if (i.get) {
      try {
        value = i.get();
      } catch {
        value = i.value;
      }
    }
    return { oid: i.oid, type: i.type, value };
  }

  get(oid: string): Varbind {
    const norm = oid.startsWith('.') ? oid.slice(1) : oid;
    const hit = this.byOid.get(norm);
    if (hit) return this.bind(hit);
    const key = parseOid(norm);
    if (!key) return { oid: norm, type: T.NoSuchObject, value: null };
    // An object we serve, asked for an instance we do not have: noSuchInstance; otherwise noSuchObject.
    const parent = key.slice(0, -1);
    const j = this.after(parent);
    const k = this.keys[j];
    // (Our objects have one-component instances: .0 for scalars, the index for our tables.)
    const under = k !== undefined && parent.length > 0 && k.length === parent.length + 1 && compareOid(k.slice(0, parent.length), parent) === 0;
    return { oid: norm, type: under ? T.NoSuchInstance : T.NoSuchObject, value: null };
  }

  next(oid: string): Varbind {
    const norm = oid.startsWith('.') ? oid.slice(1) : oid;
    const key = parseOid(norm) ?? [];
    const j = this.after(key);
    if (j >= this.items.length) return { oid: norm, type: T.EndOfMibView, value: null };
    return this.bind(this.items[j]);
  }

  /**
   * GETBULK (RFC 3416 §4.2.3): the non-repeaters once, then up to maxRepetitions rounds over the rest; stops early
   * when every repeater reached the end of the MIB, or when the response would outgrow `maxBytes` (estimated).
   */
  bulk(oids: string[], nonRepeaters: number, maxRepetitions: number, maxBytes = 65_000): Varbind[] {
    const out: Varbind[] = [];
    let bytes = 0;
    const push = (v: Varbind): boolean => {
      const size = v.oid.length + 8 + (Buffer.isBuffer(v.value) ? v.value.length : typeof v.value === 'string' ? Buffer.byteLength(v.value) * 1 : 8);
      if (out.length > 0 && bytes + size > maxBytes) return false;
      bytes += size;
      out.push(v);
      return true;
    };
    const n = Math.max(0, Math.min(nonRepeaters, oids.length));
    for (let i = 0; i < n; i++) if (!push(this.next(oids[i]))) return out;
    const rest = oids.slice(n);
    if (rest.length === 0) return out;
    const m = Math.max(0, Math.min(maxRepetitions, 10_000));
    const cursor = [...rest];
    for (let r = 0; r < m; r++) {
      let allEnd = true;
      for (let i = 0; i < cursor.length; i++) {
        const v = this.next(cursor[i]);
        if (v.type !== T.EndOfMibView) {
          allEnd = false;
          cursor[i] = v.oid;
        }
        if (!push(v)) return out;
      }
      if (allEnd) break;
    }
    return out;
  }
}
