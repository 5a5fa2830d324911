/**
 * Dynamic blocks: addresses and prefixes dropped before the main ruleset, in `table inet rampart_blocks` (hooked at
 * a lower priority than `inet rampart`, never touched by config applies). Single addresses live in hash sets with
 * per-element timeouts, prefixes in interval sets; the kernel expires them even when the daemon is down. Every
 * block is persisted in SQLite and restored at start with its remaining TTL.
 */
import type { Logger } from '../core/log.ts';
import { RampartError, type Problem } from '../core/errors.ts';
import { canonicalV6, parsePrefix, parseV4, overlaps, type Prefix } from '../core/net.ts';
import type { BlockRecord, Store } from '../core/store.ts';
import { setelemHelper, type Host } from '../host/exec.ts';
import type { EventBus } from '../core/events.ts';
import { SerialQueue } from '../core/serial.ts';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const BLOCK_TABLE = 'rampart_blocks';
const CHUNK = 2000;
const MAX_TTL = 365 * 24 * 3600;

export interface BlockRequest {
  address: string;
  ttlSeconds?: number;
  reason?: string;
}

type SetName = 'b4h' | 'b4n' | 'b6h' | 'b6n';

interface BlockedElement {
  address: string;
  set: SetName;
  expiresAt?: number;
}

function setFor(p: Prefix): SetName {
  const host = p.length === (p.family === 4 ? 32 : 128);
  return `b${p.family}${host ? 'h' : 'n'}` as SetName;
}

/** The set an already canonical block address belongs to. */
function setOf(r: { address: string; family: 4 | 6 }): SetName {
  return `b${r.family}${r.address.includes('/') ? 'n' : 'h'}` as SetName;
}

/**
 * The canonical text and family of a block address, or undefined if it is not one. A dotted quad without a prefix
 * length that the strict IPv4 parser accepts is its own canonical text, so the common case allocates nothing.
 */
function canonicalBlock(s: string): { text: string; family: 4 | 6 } | undefined {
  if (s.indexOf('/') === -1) {
    if (s.length <= 15 && s.indexOf(':') === -1) return parseV4(s) >= 0 ? { text: s, family: 4 } : undefined;
    // A single IPv6 address: its canonical text without the 128-bit value parsePrefix also computes.
    if (s.length <= 64 && s.indexOf(':') !== -1) {
      const text = canonicalV6(s);
      return text === undefined ? undefined : { text, family: 6 };
    }
  }
  const p = parsePrefix(s);
  return p && { text: p.text, family: p.family };
}

function checkOptions(ttlSeconds: unknown, reason: unknown): { field: string; message: string } | undefined {
  if (ttlSeconds !== undefined && (!Number.isInteger(ttlSeconds) || (ttlSeconds as number) < 1 || (ttlSeconds as number) > MAX_TTL)) {
    return { field: 'ttlSeconds', message: `must be an integer from 1 to ${MAX_TTL}` };
  }
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 512)) return { field: 'reason', message: 'must be a string of at most 512 characters' };
  return undefined;
}

function record(a: { text: string; family: 4 | 6 }, ttlSeconds: number | undefined, reason: string | undefined, source: string, now: number): BlockRecord {
  const r: BlockRecord = { address: a.text, family: a.family, reason: reason ?? '', source, createdAt: now };
  if (ttlSeconds) r.expiresAt = now + ttlSeconds * 1000;
  return r;
}

/** The helper's timeout field: remaining milliseconds (at least one second), or nothing for a permanent block. */
function ttlMs(r: BlockRecord, now: number): string {
  return r.expiresAt === undefined ? '' : ` ${Math.max(1000, r.expiresAt - now)}`;
}

/**
 * The netlink helper's lines for one address (`ttl` its timeout field). An element's timeout cannot be changed in
 * place: a renewed one is added (so it exists), deleted and added again, in the same transaction.
 */
function helperLines(set: SetName, address: string, ttl: string, renew: boolean): string {
  return renew ? `a ${set} ${address}\nd ${set} ${address}\na ${set} ${address}${ttl}` : `a ${set} ${address}${ttl}`;
}

/** The structure of the blocks table (idempotent), with its chains rewritten. Elements are untouched. */
export function blocksTableScript(): string {
  const t = `inet ${BLOCK_TABLE}`;
  return [
    `add table ${t}`,
    `add set ${t} b4h { type ipv4_addr; flags timeout; }`,
    `add set ${t} b4n { type ipv4_addr; flags interval, timeout; }`,
    `add set ${t} b6h { type ipv6_addr; flags timeout; }`,
    `add set ${t} b6n { type ipv6_addr; flags interval, timeout; }`,
    `add counter ${t} blocked { }`,
    `add counter ${t} marker { }`,
    `add chain ${t} input { type filter hook input priority filter - 10; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter - 10; policy accept; }`,
    `add chain ${t} output { type filter hook output priority filter - 10; policy accept; }`,
    `flush chain ${t} input`,
    `flush chain ${t} forward`,
    `flush chain ${t} output`,
    ...['b4h', 'b4n'].flatMap((s) => [
      `add rule ${t} input ip saddr @${s} counter name "blocked" drop`,
      `add rule ${t} forward ip saddr @${s} counter name "blocked" drop`,
      `add rule ${t} forward ip daddr @${s} counter name "blocked" drop`,
      `add rule ${t} output ip daddr @${s} counter name "blocked" drop`,
    ]),
    ...['b6h', 'b6n'].flatMap((s) => [
      `add rule ${t} input ip6 saddr @${s} counter name "blocked" drop`,
      `add rule ${t} forward ip6 saddr @${s} counter name "blocked" drop`,
      `add rule ${t} forward ip6 daddr @${s} counter name "blocked" drop`,
      `add rule ${t} output ip6 daddr @${s} counter name "blocked" drop`,
    ]),
  ].join('\n') + '\n';
}

function element(b: { address: string; expiresAt?: number }, now: number): string {
  if (b.expiresAt === undefined) return b.address;
  const secs = Math.max(1, Math.ceil((b.expiresAt - now) / 1000));
  return `${b.address} timeout ${secs}s`;
}

/** `add`/`delete element` statements in chunks, one statement per set and chunk. */
export function elementStatements(verb: 'add' | 'delete', blocks: { address: string; expiresAt?: number; set?: SetName }[], now: number): string[] {
  const bySet = new Map<SetName, string[]>();
  for (const b of blocks) {
    const set = b.set ?? setFor(parsePrefix(b.address)!);
    let list = bySet.get(set);
    if (!list) bySet.set(set, (list = []));
    list.push(verb === 'add' ? element(b, now) : b.address);
  }
  const out: string[] = [];
  for (const [set, list] of [...bySet.entries()].sort()) {
    for (let i = 0; i < list.length; i += CHUNK) out.push(`${verb} element inet ${BLOCK_TABLE} ${set} { ${list.slice(i, i + CHUNK).join(', ')} }`);
  }
  return out;
}

export class Blocks {
  private purgeTimer?: NodeJS.Timeout;
  private readonly queue = new SerialQueue();
  /**
   * What the store holds, in memory (address → creation and expiry), so a bulk block learns which addresses are
   * already blocked without a query per chunk. Built from the store on first use; changed only inside the queue,
   * together with the store.
   */
  private index?: Map<string, { readonly createdAt: number; readonly expiresAt?: number }>;

  private known(): Map<string, { readonly createdAt: number; readonly expiresAt?: number }> {
    if (!this.index) {
      this.index = new Map();
      for (const b of this.store.listBlocks(0)) this.index.set(b.address, b);
    }
    return this.index;
  }

  private remember(records: BlockRecord[]): void {
    const index = this.known();
    for (const r of records) index.set(r.address, r);
  }

  constructor(
    private readonly store: Store,
    private readonly host: Host,
    private readonly log: Logger,
    private readonly events?: EventBus,
  ) {}

  /** Create the table if needed and load exactly the unexpired blocks from the store, in one transaction. */
  async start(watchIntervalMs = 60_000): Promise<void> {
    await this.queue.run(() => this.restore());
    let last = 0;
    this.purgeTimer = setInterval(() => {
      const now = Date.now();
      const n = this.store.purgeExpiredBlocks(now);
      if (n) {
        this.log.info({ expired: n }, 'expired blocks purged');
        if (this.index) for (const [a, e] of this.index) if (e.expiresAt !== undefined && e.expiresAt <= now) this.index.delete(a);
      }
      if (Date.now() - last < watchIntervalMs) return;
      last = Date.now();
      // Self-healing: a blocks table that vanished (e.g. `nft flush ruleset`) is rebuilt from the store.
      void this.queue
        .run(async () => {
          const res = await this.host.run('nft', ['list', 'counter', 'inet', BLOCK_TABLE, 'blocked'], { allowFailure: true });
          if (res.exitCode === 0) return;
          this.log.warn('dynamic blocks table missing: restoring it');
          await this.restore();
        })
        .catch((err) => this.log.error({ err: String(err) }, 'blocks watchdog failed'));
    }, Math.min(30_000, watchIntervalMs));
    this.purgeTimer.unref?.();
  }

  stop(): void {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.purgeTimer = undefined;
  }

  /** Restore through the queue (for other services). */
  restoreNow(): Promise<void> {
    return this.queue.run(() => this.restore());
  }

  async restore(): Promise<void> {
    const now = Date.now();
    this.store.purgeExpiredBlocks(now);
    const blocks = this.store.listBlocks(now);
    this.index = undefined;
    const t = `inet ${BLOCK_TABLE}`;
    const script = [blocksTableScript(), ...['b4h', 'b4n', 'b6h', 'b6n'].map((s) => `flush set ${t} ${s}`), ...elementStatements('add', blocks, now)].join('\n') + '\n';
    await this.host.nft(script);
    this.log.info({ blocks: blocks.length }, 'dynamic blocks restored');
  }

  /** Block addresses (one transaction for the whole batch). Existing entries get the new TTL and reason. */
  async block(requests: BlockRequest[], source = 'local'): Promise<BlockRecord[]> {
    const problems: Problem[] = [];
    const now = Date.now();
    const batch = new Map<string, BlockRecord>();
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      const a = r && typeof r.address === 'string' ? canonicalBlock(r.address) : undefined;
      if (!a) {
        problems.push({ path: `/${i}/address`, message: 'not an IP address or CIDR' });
        continue;
      }
      const bad = checkOptions(r.ttlSeconds, r.reason);
      if (bad) {
        problems.push({ path: `/${i}/${bad.field}`, message: bad.message });
        continue;
      }
      batch.set(a.text, record(a, r.ttlSeconds, r.reason, source, now));
    }
    if (problems.length) throw RampartError.invalid(problems, 'invalid block request');
    return this.commit(batch, source, now, (address) => `/${requests.findIndex((r) => canonicalBlock(r.address)?.text === address)}/address`);
  }

  /**
   * Block many addresses with one TTL and reason: the bulk form (`rampart block -`, a blocklist pushed by the MSSP).
   * No request object per address; problems point into the list (`/addresses/N`).
   */
  async blockMany(addresses: unknown[], opts: { ttlSeconds?: number; reason?: string }, source = 'local'): Promise<BlockRecord[]> {
    const bad = checkOptions(opts.ttlSeconds, opts.reason);
    if (bad) throw RampartError.invalid([{ path: `/${bad.field}`, message: bad.message }], 'invalid block request');
    const problems: Problem[] = [];
    // Canonical and distinct (one TTL and reason for all: which of two equal lines counts makes no difference).
    const texts: string[] = [];
    const families: (4 | 6)[] = [];
    const seen = new Set<string>();
    let nets = false;
    for (let i = 0; i < addresses.length; i++) {
      const s = addresses[i];
      const a = typeof s === 'string' ? canonicalBlock(s) : undefined;
      if (!a) {
        const shown = typeof s === 'string' ? `: ${JSON.stringify(s.slice(0, 64))}` : '';
        if (problems.push({ path: `/addresses/${i}`, message: `not an IP address or CIDR${shown}` }) >= 100) break;
        continue;
      }
      if (seen.has(a.text)) continue;
      seen.add(a.text);
      if (a.text.includes('/')) nets = true;
      texts.push(a.text);
      families.push(a.family);
    }
    if (problems.length) throw RampartError.invalid(problems, 'invalid block request');
    const helper = nets ? undefined : setelemHelper();
    if (helper) return this.queue.run(() => this.blockHosts(helper, texts, families, opts, source));
    const now = Date.now();
    const batch = new Map<string, BlockRecord>();
    for (let i = 0; i < texts.length; i++) batch.set(texts[i], record({ text: texts[i], family: families[i] }, opts.ttlSeconds, opts.reason, source, now));
    return this.commit(batch, source, now, (address) => `/addresses/${addresses.findIndex((s) => typeof s === 'string' && canonicalBlock(s)?.text === address)}`);
  }

  /**
   * Single addresses with one TTL and reason, the bulk case: the helper's lines are written and the kernel set to
   * work first; the records are built and stored while it works.
   */
  private async blockHosts(helper: string, texts: string[], families: (4 | 6)[], opts: { ttlSeconds?: number; reason?: string }, source: string): Promise<BlockRecord[]> {
    const now = Date.now();
    const index = this.known();
    const live = (address: string) => {
      const e = index.get(address);
      return e !== undefined && (e.expiresAt === undefined || e.expiresAt > now) ? e : undefined;
    };
    const ttl = opts.ttlSeconds ? ` ${opts.ttlSeconds * 1000}` : '';
    const prior = texts.map(live);
    const lines: string[] = new Array(texts.length);
    for (let i = 0; i < texts.length; i++) lines[i] = helperLines(families[i] === 4 ? 'b4h' : 'b6h', texts[i], ttl, prior[i] !== undefined);
    const records = await this.viaHelper(helper, lines, () => {
      const out: BlockRecord[] = new Array(texts.length);
      const fresh: string[] = [];
      const renewed: string[] = [];
      for (let i = 0; i < texts.length; i++) {
        const r = record({ text: texts[i], family: families[i] }, opts.ttlSeconds, opts.reason, source, now);
        const e = prior[i];
        if (e) {
          // Renewed: keeps its original creation time, gets the new TTL and reason.
          r.createdAt = e.createdAt;
          renewed.push(r.address);
        } else fresh.push(r.address);
        out[i] = r;
      }
      return { records: out, fresh, renewed };
    });
    this.events?.emit('block', { type: 'added', addresses: texts, source });
    return records;
  }

  /** Write a validated batch (address → record, the last request for an address wins) to the kernel and the store. */
  private commit(batch: Map<string, BlockRecord>, source: string, now: number, pointer: (address: string) => string): Promise<BlockRecord[]> {
    return this.queue.run(async () => {
      const problems: Problem[] = [];
      const index = this.known();
      const records = [...batch.values()];
      const fresh: BlockRecord[] = [];
      const renewed: BlockRecord[] = [];
      let nets = false;
      for (const r of records) {
        const e = index.get(r.address);
        if (e !== undefined && (e.expiresAt === undefined || e.expiresAt > now)) {
          // Renewed: keeps its original creation time, gets the new TTL and reason.
          r.createdAt = e.createdAt;
          renewed.push(r);
        } else {
          fresh.push(r);
          if (r.address.includes('/')) nets = true;
        }
      }
      // Prefixes may not overlap in an interval set: refuse a new prefix that overlaps another blocked prefix.
      if (nets) {
        const live: Prefix[] = [];
        for (const [address, e] of index) if (address.includes('/') && (e.expiresAt === undefined || e.expiresAt > now)) live.push(parsePrefix(address)!);
        for (const rec of fresh) {
          if (!rec.address.includes('/')) continue;
          const p = parsePrefix(rec.address)!;
          const clash = live.find((n) => n.text !== rec.address && overlaps(n, p));
          if (clash) problems.push({ path: pointer(rec.address), message: `overlaps the blocked prefix ${clash.text}` });
          live.push(p);
        }
        if (problems.length) throw RampartError.invalid(problems, 'invalid block request');
      }
      const helper = nets || renewed.some((r) => r.address.includes('/')) ? undefined : setelemHelper();
      if (helper) {
        const lines = [...fresh.map((r) => helperLines(setOf(r), r.address, ttlMs(r, now), false)), ...renewed.map((r) => helperLines(setOf(r), r.address, ttlMs(r, now), true))];
        await this.viaHelper(helper, lines, () => ({ records, fresh: fresh.map((r) => r.address), renewed: renewed.map((r) => r.address) }));
      }
      else {
        // An element's timeout cannot be changed in place: add (so it exists), delete, add again, in one transaction.
        const el = (list: BlockRecord[]) => list.map((r) => ({ ...r, set: setOf(r) }));
        const script = [
          ...elementStatements('add', el(fresh), now),
          ...elementStatements('add', renewed.map((r) => ({ address: r.address, set: setOf(r) })), now),
          ...elementStatements('delete', el(renewed), now),
          ...elementStatements('add', el(renewed), now),
        ].join('\n');
        if (script) await this.host.nft(script + '\n');
        this.store.upsertBlocks(records);
        this.remember(records);
      }
      this.events?.emit('block', { type: 'added', addresses: records.map((r) => r.address), source });
      return records;
    });
  }

  /**
   * Single addresses only: one netlink transaction through rampart-setelem with `lines`, and while the
   * kernel works, the records `build` makes go to the store and the index (both put back if the kernel refuses).
   */
  private async viaHelper(helper: string, lines: string[], build: () => { records: BlockRecord[]; fresh: string[]; renewed: string[] }): Promise<BlockRecord[]> {
    if (!lines.length) return build().records;
    // Through a file, not a pipe: the helper then needs nothing more from this process while the store is written
    // below (a pipe would wait for the event loop, putting the kernel's work after the store's instead of beside it).
    const file = join(dirname(this.store.path), 'blocks.elements');
    // Addresses, set names and numbers: ASCII, so written without UTF-8 encoding.
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600, encoding: 'latin1' });
    const kernel = this.host.run(helper, ['inet', BLOCK_TABLE, file], { allowFailure: true }).finally(() => rm(file, { force: true }));
    const { records, fresh, renewed } = build();
    const before = renewed.length ? this.store.getBlocks(renewed) : [];
    this.store.upsertBlocks(records);
    this.remember(records);
    const res = await kernel;
    if (res.exitCode !== 0) {
      this.store.sql.transaction(() => {
        for (const a of fresh) this.store.deleteBlock(a);
        this.store.upsertBlocks(before);
      })();
      for (const a of fresh) this.index?.delete(a);
      this.remember(before);
      throw new RampartError('system', `the kernel refused the blocks: ${res.stderr.trim().slice(0, 500)}`);
    }
    return records;
  }

  async unblock(address: string): Promise<boolean> {
    const p = parsePrefix(address);
    if (!p) throw RampartError.invalid([{ path: '/address', message: 'not an IP address or CIDR' }]);
    return this.queue.run(async () => {
      const rec = this.store.getBlock(p.text);
      if (!rec) return false;
      // Add first so the delete cannot fail on an element the kernel already expired.
      const script = [...elementStatements('add', [{ address: p.text, expiresAt: Date.now() + 1000 }], Date.now()), ...elementStatements('delete', [{ address: p.text }], Date.now())].join('\n');
      await this.host.nft(script + '\n');
      this.store.deleteBlock(p.text);
      this.index?.delete(p.text);
      this.events?.emit('block', { type: 'removed', addresses: [p.text] });
      return true;
    });
  }

  /** Remove every dynamic block. */
  async unblockAll(): Promise<number> {
    return this.queue.run(async () => {
      const all = this.store.blockAddresses();
      const t = `inet ${BLOCK_TABLE}`;
      await this.host.nft(['b4h', 'b4n', 'b6h', 'b6n'].map((s) => `flush set ${t} ${s}`).join('\n') + '\n');
      this.store.sql.prepare('DELETE FROM blocks').run();
      this.index?.clear();
      if (all.length) this.events?.emit('block', { type: 'removed', addresses: all });
      return all.length;
    });
  }

  list(): BlockRecord[] {
    return this.store.listBlocks();
  }
}
