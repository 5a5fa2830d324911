/**
 * Notifications to the configured targets: v2c traps, v3 informs (acknowledged, retried by the library). Each
 * target has a token bucket (`snmp.notifyRatePerMinute`, burst of the same size): in a storm the excess is
 * dropped and counted, never queued without bound. Targets are addresses only (no name lookups).
 */
import snmp from 'net-snmp';
import type { Logger } from '../core/log.ts';
import type { UsmUser } from './agent.ts';
import type { Varbind } from './mib-store.ts';

export interface NotifyTarget {
  host: string;
  port: number;
  version: 'v2c' | 'v3';
  community?: string;
  user?: UsmUser;
  minSeverity: number;
}

/** A token bucket: `ratePerMinute` tokens a minute, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerMinute: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerMinute) / 60_000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const PRIV = { aes: 'aes', aes256: 'aes256b' } as const;

export interface NotifyStats {
  sent: number;
  dropped: number;
  failed: number;
}

export class Notifier {
  readonly stats: NotifyStats = { sent: 0, dropped: 0, failed: 0 };
  private readonly sessions: { target: NotifyTarget; session: any; bucket: TokenBucket }[];
  private readonly pending = new Set<any>();

  constructor(
    targets: NotifyTarget[],
    ratePerMinute: number,
    private readonly upTime: () => number,
    private readonly log: Logger,
  ) {
    this.sessions = targets.map((target) => {
      // v3 informs get a session each (the library's v3 session stalls after its first inform); v2c shares one.
      const session = target.version === 'v3' ? undefined : this.openSession(target);
      return { target, session, bucket: new TokenBucket(ratePerMinute, ratePerMinute) };
    });
  }

  private openSession(target: NotifyTarget): any {
    const transport = target.host.includes(':') ? 'udp6' : 'udp4';
    const session =
      target.version === 'v3' && target.user
        ? snmp.createV3Session(
            target.host,
            {
              name: target.user.name,
              level: snmp.SecurityLevel.authPriv,
              authProtocol: snmp.AuthProtocols[target.user.authProtocol],
              authKey: target.user.authKey,
              privProtocol: snmp.PrivProtocols[PRIV[target.user.privProtocol]],
              privKey: target.user.privKey,
            },
            { trapPort: target.port, transport, retries: 2, timeout: 2000 },
          )
        : snmp.createSession(target.host, target.community ?? '', { version: snmp.Version2c, trapPort: target.port, transport });
    // A session's socket error (an unreachable target) must never take the daemon down.
    session.on('error', (err: Error) => this.log.debug({ err: err.message, target: target.host }, 'snmp: notification socket error'));
    return session;
  }

  get targets(): number {
    return this.sessions.length;
  }

  /** Send one notification to every target that wants it (`severity`: only IDS alerts carry one). */
  send(oid: string, varbinds: Varbind[], severity?: number): void {
    for (const s of this.sessions) {
      if (severity !== undefined && severity > s.target.minSeverity) continue;
      if (!s.bucket.take()) {
        this.stats.dropped++;
        continue;
      }
      const done = (err: Error | null) => {
        if (err) {
          this.stats.failed++;
          this.log.debug({ err: err.message, target: s.target.host }, 'snmp: notification not delivered');
        }
      };
      try {
        if (s.target.version === 'v3') {
          const session = this.openSession(s.target);
          this.pending.add(session);
          session.inform(oid, varbinds, { upTime: this.upTime() }, (err: Error | null) => {
            this.pending.delete(session);
            done(err);
            try {
              session.close();
            } catch {
              // already closed
            }
          });
        } else s.session.trap(oid, varbinds, { upTime: this.upTime() }, done);
        this.stats.sent++;
      } catch (err) {
        done(err as Error);
      }
    }
  }

  close(): void {
    for (const session of [...this.sessions.map((s) => s.session), ...this.pending]) {
      if (!session) continue;
      try {
        session.close();
      } catch {
        // already closed
      }
    }
  }
}
