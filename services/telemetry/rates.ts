/**
 * Per-second rates from monotonically increasing counters (pure; no I/O, no clock).
 *
 * A counter that went down is either a wrap (it passed 2^bits - 1 and started again at 0) or a reset (interface
 * recreated, ruleset reloaded, module reloaded). A wrap is accepted only when the wrapped difference is plausible:
 * below `maxRate` × interval when a ceiling is known, else below half the counter's range (a 64-bit counter that
 * "wraps" from a small value is always a reset). A reset, a changed instance (e.g. a new ifindex), a first reading
 * or a non-advancing clock yields no rate: that interval is dropped, never a negative or a giant spike.
 */

export type CounterBits = 32 | 64;

export interface CounterOptions {
  /** Width of the source counter; 64 unless the source is known to be 32-bit (e.g. some SNMP or driver counters). */
  bits?: CounterBits;
  /** Highest plausible rate (units per second), e.g. the link speed in bytes; a wrap implying more is a reset. */
  maxRate?: number;
}

export type DeltaResult = { ok: true; delta: number; wrapped: boolean } | { ok: false; reason: 'reset' | 'invalid' };

const MOD = { 32: 1n << 32n, 64: 1n << 64n } as const;

function toBig(v: number | bigint): bigint | undefined {
  if (typeof v === 'bigint') return v >= 0n ? v : undefined;
  if (!Number.isFinite(v) || v < 0) return undefined;
  return BigInt(Math.round(v));
}

/**
 * The increase of a counter from `prev` to `cur` over `seconds`, with wrap and reset detection. Values may be bigints
 * (exact beyond 2^53) or numbers.
 */
export function counterDelta(prev: number | bigint, cur: number | bigint, seconds: number, opts: CounterOptions = {}): DeltaResult {
  const bits = opts.bits ?? 64;
  // The common case in plain numbers: both readings exact, the counter went up, no wrap possible to consider.
  if (typeof prev === 'number' && typeof cur === 'number' && Number.isSafeInteger(prev) && Number.isSafeInteger(cur) && prev >= 0 && cur >= prev && (bits === 64 || cur < 2 ** 32)) {
    const delta = cur - prev;
    if (opts.maxRate !== undefined && seconds > 0 && delta > opts.maxRate * seconds) return { ok: false, reason: 'reset' };
    return { ok: true, delta, wrapped: false };
  }
  const p = toBig(prev);
  const c = toBig(cur);
  const mod = MOD[bits];
  if (p === undefined || c === undefined || p >= mod || c >= mod) return { ok: false, reason: 'invalid' };
  if (c >= p) {
    const delta = Number(c - p);
    if (opts.maxRate !== undefined && seconds > 0 && delta > opts.maxRate * seconds) return { ok: false, reason: 'reset' };
    return { ok: true, delta, wrapped: false };
  }
  const wrapped = mod - p + c;
  const limit = opts.maxRate !== undefined && seconds > 0 ? BigInt(Math.floor(opts.maxRate * seconds)) : mod / 2n;
  if (wrapped > limit) return { ok: false, reason: 'reset' };
  return { ok: true, delta: Number(wrapped), wrapped: true };
}

export type RateResult =
  | { ok: true; rate: number; delta: number; seconds: number; wrapped: boolean }
  | { ok: false; reason: 'first' | 'reset' | 'instance' | 'clock' | 'invalid' };

/** A counter reading: value, time (epoch ms) and the identity of what is counted (ifindex, ruleset generation). */
export interface CounterReading {
  ts: number;
  value: number | bigint;
  instance?: string | number;
}

/** The per-second rate between two readings of one counter. */
export function counterRate(prev: CounterReading | undefined, cur: CounterReading, opts: CounterOptions = {}): RateResult {
  if (!prev) return { ok: false, reason: 'first' };
  if ((prev.instance ?? null) !== (cur.instance ?? null)) return { ok: false, reason: 'instance' };
  const seconds = (cur.ts - prev.ts) / 1000;
  if (!(seconds > 0) || !Number.isFinite(seconds)) return { ok: false, reason: 'clock' };
  const d = counterDelta(prev.value, cur.value, seconds, opts);
  if (!d.ok) return d;
  return { ok: true, rate: d.delta / seconds, delta: d.delta, seconds, wrapped: d.wrapped };
}

/**
 * Remembers the last reading of many counters (by key, e.g. `if.lan0.rx_bytes`) and turns each new reading into a
 * rate. Keys not seen in a cycle can be dropped with `retain`.
 */
export class RateTracker {
  private readonly last = new Map<string, CounterReading>();
  /** Intervals dropped because of a reset or a changed instance (for diagnostics). */
  resets = 0;

  constructor(private readonly defaults: CounterOptions = {}) {}

  /** The rate since the previous reading of `key`, or undefined when this interval cannot give one. */
  update(key: string, reading: CounterReading, opts?: CounterOptions): number | undefined {
    const r = this.result(key, reading, opts);
    return r.ok ? r.rate : undefined;
  }

  result(key: string, reading: CounterReading, opts?: CounterOptions): RateResult {
    const prev = this.last.get(key);
    const r = counterRate(prev, reading, opts ? { ...this.defaults, ...opts } : this.defaults);
    if (!r.ok && (r.reason === 'reset' || r.reason === 'instance')) this.resets++;
    // A clock that did not advance keeps the older reading, so the next interval still spans real time.
    if (r.ok || r.reason !== 'clock') this.last.set(key, { ...reading });
    return r;
  }

  forget(key: string): void {
    this.last.delete(key);
  }

  /** Keep only the keys in `keys` (counters that disappeared are forgotten). */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const k of this.last.keys()) if (!keep.has(k)) this.last.delete(k);
  }

  get size(): number {
    return this.last.size;
  }
}
