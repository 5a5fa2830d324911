/**
 * Auto-block: IDS alerts at or above a severity block their source through the dynamic blocks (kernel timeouts), for
 * a TTL that doubles for repeat offenders, never for an allowlisted address (the configured allowlist, HOME_NET,
 * the firewall's own and management addresses, the MSSP broker), at a bounded rate. Each block's reason names the
 * alert that caused it; the offender table keeps the link.
 */
import type { AlertRecord } from '../core/alerts.ts';
import type { Logger } from '../core/log.ts';
import { contains, parseAddress, parseInterfaceAddress, parsePrefix, type Prefix } from '../core/net.ts';
import type { Config } from '../core/schema.ts';
import type { Store } from '../core/store.ts';
import type { BlockRequest } from '../firewall/blocks.ts';

export const AUTOBLOCK_MIGRATIONS = [
  `CREATE TABLE ids_offenders (
     address TEXT PRIMARY KEY,
     count INTEGER NOT NULL,
     last_at INTEGER NOT NULL,
     last_alert TEXT NOT NULL,
     ttl_seconds INTEGER NOT NULL
   );`,
];

export interface AutoBlockPolicy {
  enabled: boolean;
  maxSeverity: number;
  ttlSeconds: number;
  /** Never blocked. */
  allow: Prefix[];
  /** Used to pick the outside end of an alert. */
  homeNet: Prefix[];
}

/** Longest TTL an escalation reaches. */
export const MAX_ESCALATED_TTL = 7 * 24 * 3600;
/** A repeat offence counts when it comes within this window of the previous one. */
export const REPEAT_WINDOW_MS = 24 * 3600_000;

/** The policy from the configuration; `homeNet` as the engine uses it. */
export function autoBlockPolicy(cfg: Config, homeNet: string[]): AutoBlockPolicy {
  const ab = cfg.ids.autoBlock;
  const allow: Prefix[] = [];
  const add = (s: string) => {
    const p = parsePrefix(s);
    if (p) allow.push(p);
  };
  for (const ref of ab?.allowlist ?? []) {
    if (Object.hasOwn(cfg.objects.addresses, ref)) cfg.objects.addresses[ref].forEach(add);
    else add(ref);
  }
  const home = homeNet.map((n) => parsePrefix(n)).filter((p): p is Prefix => !!p);
  allow.push(...home);
  // The firewall's own addresses (management ones included) can never be an attacker to block.
  for (const i of cfg.interfaces) {
    for (const a of i.addresses) {
      const ia = parseInterfaceAddress(a);
      if (ia) allow.push(ia.host);
      else add(a);
      if (i.management && ia) allow.push(ia.network);
    }
  }
  // The MSSP broker, when it is given as an address.
  const broker = cfg.sync.broker ? /^mqtts:\/\/\[?([0-9A-Fa-f.:]+?)\]?(?::\d+)?$/.exec(cfg.sync.broker)?.[1] : undefined;
  if (broker) add(broker);
  add('127.0.0.0/8');
  add('::1');
  return {
    enabled: !!ab?.enabled,
    maxSeverity: ab?.maxSeverity ?? 1,
    ttlSeconds: ab?.ttlSeconds ?? 3600,
    allow,
    homeNet: home,
  };
}

/** The outside end of an alert: its source, unless the source is inside and the destination is not. */
export function offender(a: Pick<AlertRecord, 'src' | 'dst'>, homeNet: Prefix[]): string | undefined {
  const src = a.src ? parseAddress(a.src) : undefined;
  const dst = a.dst ? parseAddress(a.dst) : undefined;
  const inside = (p: Prefix) => homeNet.some((n) => contains(n, p));
  if (src && !inside(src)) return src.text;
  if (dst && !inside(dst)) return dst.text;
  return undefined;
}

export function allowed(addr: string, allow: Prefix[]): boolean {
  const p = parseAddress(addr);
  return !p || allow.some((n) => contains(n, p));
}

export interface AutoBlockerOptions {
  store: Store;
  block: (requests: BlockRequest[], source: string) => Promise<unknown>;
  log: Logger;
  /** Blocks per second at most (token bucket; default 20, burst 100). */
  ratePerSecond?: number;
  burst?: number;
}

export interface AutoBlockCounters {
  blocked: number;
  allowlisted: number;
  rateLimited: number;
  failed: number;
}

export class AutoBlocker {
  readonly counters: AutoBlockCounters = { blocked: 0, allowlisted: 0, rateLimited: 0, failed: 0 };
  private policy?: AutoBlockPolicy;
  /** Address → epoch ms until which it is already blocked by us (no need to block again). */
  private recent = new Map<string, number>();
  private tokens: number;
  private lastRefill = Date.now();
  private pending = new Map<string, BlockRequest>();
  private flushing?: Promise<void>;

  constructor(private readonly opts: AutoBlockerOptions) {
    opts.store.migrate('ids-autoblock', AUTOBLOCK_MIGRATIONS);
    this.tokens = opts.burst ?? 100;
  }

  configure(policy: AutoBlockPolicy): void {
    this.policy = policy;
  }

  /** Offender records (for status and tests). */
  offenders(): { address: string; count: number; lastAt: number; lastAlert: string; ttlSeconds: number }[] {
    return (this.opts.store.prepare('SELECT address, count, last_at AS lastAt, last_alert AS lastAlert, ttl_seconds AS ttlSeconds FROM ids_offenders ORDER BY last_at DESC LIMIT 1000').all() as any[]);
  }

  /** Take newly stored alerts; blocks are written together, soon after. */
  onAlerts(records: AlertRecord[]): void {
    const p = this.policy;
    if (!p?.enabled) return;
    const now = Date.now();
    for (const a of records) {
      if (a.kind !== 'ids' || a.severity > p.maxSeverity) continue;
      const addr = offender(a, p.homeNet);
      if (!addr) continue;
      if (allowed(addr, p.allow)) {
        this.counters.allowlisted++;
        continue;
      }
      if ((this.recent.get(addr) ?? 0) > now || this.pending.has(addr)) continue;
      if (!this.take(now)) {
        this.counters.rateLimited++;
        continue;
      }
      const ttl = this.escalate(addr, a, now);
      this.pending.set(addr, {
        address: addr,
        ttlSeconds: ttl,
        reason: `ids alert ${a.id} sid ${a.sid ?? '?'}: ${a.signature}`.slice(0, 512),
      });
    }
    if (this.pending.size && !this.flushing) this.flushing = this.flush();
  }

  /** Resolves when every block asked for so far has been written (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private take(now: number): boolean {
    const rate = this.opts.ratePerSecond ?? 20;
    const burst = this.opts.burst ?? 100;
    this.tokens = Math.min(burst, this.tokens + ((now - this.lastRefill) / 1000) * rate);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** The TTL for this offence: the base TTL doubled for each repeat within the window, capped. */
  private escalate(addr: string, a: AlertRecord, now: number): number {
    const base = this.policy!.ttlSeconds;
    const row = this.opts.store.prepare('SELECT count, last_at FROM ids_offenders WHERE address = ?').get(addr) as { count: number; last_at: number } | undefined;
    const count = row && now - row.last_at < REPEAT_WINDOW_MS ? row.count + 1 : 1;
    const ttl = Math.max(base, Math.min(MAX_ESCALATED_TTL, base * 2 ** Math.min(20, count - 1)));
    this.opts.store
      .prepare(
        `INSERT INTO ids_offenders (address, count, last_at, last_alert, ttl_seconds) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(address) DO UPDATE SET count = excluded.count, last_at = excluded.last_at, last_alert = excluded.last_alert, ttl_seconds = excluded.ttl_seconds`,
      )
      .run(addr, count, now, a.id, ttl);
    return ttl;
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.size) {
        const batch = [...this.pending.values()];
        this.pending.clear();
        try {
          await this.opts.block(batch, 'ids');
          const now = Date.now();
          for (const b of batch) this.recent.set(b.address, now + (b.ttlSeconds ?? 0) * 1000 - 1000);
          this.counters.blocked += batch.length;
          this.opts.log.info({ addresses: batch.map((b) => b.address), ttlSeconds: batch.map((b) => b.ttlSeconds) }, 'auto-blocked IDS offenders');
        } catch (err) {
          this.counters.failed += batch.length;
          this.opts.log.error({ err: String(err) }, 'auto-block failed');
        }
      }
      if (this.recent.size > 10_000) {
        const now = Date.now();
        for (const [k, until] of this.recent) if (until <= now) this.recent.delete(k);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Forget the in-memory "already blocked" marks (after blocks were removed by hand). */
  forget(addresses: string[]): void {
    for (const a of addresses) this.recent.delete(a);
  }
}
