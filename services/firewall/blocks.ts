/**
 * Dynamic blocks: addresses and prefixes dropped before the main ruleset, in `table inet rampart_blocks` (hooked at
 * a lower priority than `inet rampart`, never touched by config applies). Single addresses live in hash sets with
 * per-element timeouts, prefixes in interval sets; the kernel expires them even when the daemon is down. Every
 * block is persisted in SQLite and restored at start with its remaining TTL.
 */
import type { Logger } from '../core/log.ts';
import { RampartError, type Problem } from '../core/errors.ts';
import { parsePrefix, overlaps, type Prefix } from '../core/net.ts';
import type { BlockRecord, Store } from '../core/store.ts';
import { setelemHelper, type Host } from '../host/exec.ts';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EventBus } from '../core/events.ts';
import { SerialQueue } from '../core/serial.ts';

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

/** `add element` statements in chunks, one statement per set and chunk. */
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
  private index?: Map<string, { createdAt: number; expiresAt?: number }>;

  private known(): Map<string, { createdAt: number; expiresAt?: number }> {
    if (!this.index) {
      this.index = new Map();
      for (const b of this.store.listBlocks(0)) this.index.set(b.address, { createdAt: b.createdAt, expiresAt: b.expiresAt });
    }
    return this.index;
  }

  private remember(records: BlockRecord[]): void {
    const index = this.known();
    for (const r of records) index.set(r.address, { createdAt: r.createdAt, expiresAt: r.expiresAt });
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
    const records: (BlockRecord & { set: SetName; prefix: Prefix })[] = [];
    const seen = new Map<string, number>();
    requests.forEach((r, i) => {
      const p = r && typeof r.address === 'string' ? parsePrefix(r.address) : undefined;
      if (!p) return problems.push({ path: `/${i}/address`, message: 'not an IP address or CIDR' });
      if (r.ttlSeconds !== undefined && (!Number.isInteger(r.ttlSeconds) || r.ttlSeconds < 1 || r.ttlSeconds > MAX_TTL)) {
        return problems.push({ path: `/${i}/ttlSeconds`, message: `must be an integer from 1 to ${MAX_TTL}` });
      }
      if (r.reason !== undefined && (typeof r.reason !== 'string' || r.reason.length > 512)) {
        return problems.push({ path: `/${i}/reason`, message: 'must be a string of at most 512 characters' });
      }
      const rec = {
        address: p.text,
        family: p.family,
        ...(r.ttlSeconds ? { expiresAt: now + r.ttlSeconds * 1000 } : {}),
        reason: r.reason ?? '',
        source,
        createdAt: now,
        set: setFor(p),
        prefix: p,
      };
      const dup = seen.get(rec.address);
      if (dup !== undefined) records[dup] = rec;
      else {
        seen.set(rec.address, records.length);
        records.push(rec);
      }
    });
    if (problems.length) throw RampartError.invalid(problems, 'invalid block request');
    return this.queue.run(async () => {
      const existing = new Map<string, number>();
      const index = this.known();
      const live = (e: { expiresAt?: number } | undefined) => e !== undefined && (e.expiresAt === undefined || e.expiresAt > now);
      for (const r of records) {
        const e = index.get(r.address);
        if (live(e)) existing.set(r.address, e!.createdAt);
      }
      // Prefixes may not overlap in an interval set: refuse a new prefix that overlaps another blocked prefix.
      const newNets = records.filter((r) => r.set.endsWith('n') && !existing.has(r.address));
      if (newNets.length) {
        const nets: Prefix[] = [];
        for (const [address, e] of index) if (address.includes('/') && live(e)) nets.push(parsePrefix(address)!);
        records.forEach((rec, i) => {
          if (!rec.set.endsWith('n') || existing.has(rec.address)) return;
          const clash = nets.find((n) => n.text !== rec.address && overlaps(n, rec.prefix));
          if (clash) problems.push({ path: `/${i}/address`, message: `overlaps the blocked prefix ${clash.text}` });
          nets.push(rec.prefix);
        });
        if (problems.length) throw RampartError.invalid(problems, 'invalid block request');
      }
      const fresh = records.filter((r) => !existing.has(r.address));
      const renewed = records.filter((r) => existing.has(r.address));
      const out: BlockRecord[] = records.map(({ set: _s, prefix: _p, ...r }) => (existing.has(r.address) ? { ...r, createdAt: existing.get(r.address)! } : r));
      const helper = records.every((r) => r.set.endsWith('h')) ? setelemHelper() : undefined;
      if (helper) await this.writeThroughHelper(helper, fresh, renewed, out, now);
      else {
        // An element's timeout cannot be changed in place: add (so it exists), delete, add again, in one transaction.
        const script = [
          ...elementStatements('add', fresh, now),
          ...elementStatements('add', renewed.map((r) => ({ address: r.address, set: r.set })), now),
          ...elementStatements('delete', renewed, now),
          ...elementStatements('add', renewed, now),
        ].join('\n');
        if (script) await this.host.nft(script + '\n');
        this.store.upsertBlocks(out);
      }
      this.remember(out);
      this.events?.emit('block', { type: 'added', addresses: out.map((r) => r.address), source });
      return out;
    });
  }

  /**
   * Single addresses only: one netlink transaction through rampart-setelem, with the store written while the kernel
   * works (and put back if the kernel refuses).
   */
  private async writeThroughHelper(helper: string, fresh: BlockedElement[], renewed: BlockedElement[], out: BlockRecord[], now: number): Promise<void> {
    const ttl = (r: BlockedElement) => (r.expiresAt === undefined ? '' : ` ${Math.max(1000, r.expiresAt - now)}`);
    const lines: string[] = [];
    for (const r of fresh) lines.push(`a ${r.set} ${r.address}${ttl(r)}`);
    for (const r of renewed) lines.push(`a ${r.set} ${r.address}`, `d ${r.set} ${r.address}`, `a ${r.set} ${r.address}${ttl(r)}`);
    if (!lines.length) return;
    const file = join(dirname(this.store.path), 'blocks.elements');
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    const kernel = this.host.run(helper, ['inet', BLOCK_TABLE, file], { allowFailure: true });
    const before = this.store.getBlocks(renewed.map((r) => r.address));
    this.store.upsertBlocks(out);
    const res = await kernel.finally(() => rm(file, { force: true }));
    if (res.exitCode !== 0) {
      this.store.sql.transaction(() => {
        for (const r of fresh) this.store.deleteBlock(r.address);
        this.store.upsertBlocks(before);
      })();
      throw new RampartError('system', `the kernel refused the blocks: ${res.stderr.trim().slice(0, 500)}`);
    }
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
      const all = this.store.listBlocks(0);
      const t = `inet ${BLOCK_TABLE}`;
      await this.host.nft(['b4h', 'b4n', 'b6h', 'b6n'].map((s) => `flush set ${t} ${s}`).join('\n') + '\n');
      this.store.sql.prepare('DELETE FROM blocks').run();
      this.index?.clear();
      if (all.length) this.events?.emit('block', { type: 'removed', addresses: all.map((b) => b.address) });
      return all.length;
    });
  }

  list(): BlockRecord[] {
    return this.store.listBlocks();
  }
}
