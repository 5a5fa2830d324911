/**
 * SIEM forwarding: alerts and audit entries as RFC 5424 syslog messages to the `syslog.targets`, over UDP (one
 * datagram per message, RFC 5426), TCP (octet counting, RFC 6587) or TLS (RFC 5425). Each target has a bounded
 * queue (oldest dropped first, counted) and reconnects with backoff; a slow or dead collector never blocks ingest.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, createConnection, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { AlertRecord } from '../core/alerts.ts';
import type { Logger } from '../core/log.ts';
import type { AuditEntry } from '../api/audit.ts';

export interface SyslogTarget {
  host: string;
  port: number;
  proto: 'udp' | 'tcp' | 'tls';
  facility: number;
  /** PEM CA bundle that signs a TLS collector's certificate (default: the system's CAs). */
  ca?: string;
}

export interface SyslogCounters {
  sent: number;
  dropped: number;
  errors: number;
}

const MAX_QUEUE = 10_000;
const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,253})$/;

/** Escape a structured-data parameter value (RFC 5424 §6.3.3). */
function sdValue(v: unknown): string {
  return String(v).replace(/[\\"\]]/g, (c) => '\\' + c);
}

/** Printable US-ASCII without spaces, at most `max` characters (header fields). */
function headerField(v: string, max: number): string {
  const s = v.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return s || '-';
}

/** One RFC 5424 message. `severity` is syslog's (0 emergency .. 7 debug). */
export function formatSyslog(m: {
  facility: number;
  severity: number;
  at: number;
  hostname: string;
  msgid: string;
  sdId: string;
  params: Record<string, unknown>;
  text: string;
  procid?: number;
}): string {
  const pri = m.facility * 8 + m.severity;
  const params = Object.entries(m.params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${headerField(k, 32).replace(/[= \]"]/g, '')}="${sdValue(v)}"`)
    .join(' ');
  const sd = params ? `[${m.sdId} ${params}]` : '-';
  const text = m.text.replace(/[\r\n]+/g, ' ');
  return `<${pri}>1 ${new Date(m.at).toISOString()} ${headerField(m.hostname, 255)} rampart ${m.procid ?? process.pid} ${headerField(m.msgid, 32)} ${sd} ${text}`;
}

/** IDS severity 1 (most severe) .. 4 → syslog critical .. notice. */
export function alertSeverity(sev: number): number {
  return Math.min(5, Math.max(2, sev + 1));
}

export function formatAlert(a: AlertRecord, facility: number, hostname: string): string {
  return formatSyslog({
    facility,
    severity: alertSeverity(a.severity),
    at: a.at,
    hostname,
    msgid: a.kind === 'ids' ? 'IDS' : 'ANOMALY',
    sdId: 'alert@32473',
    params: { id: a.id, seq: a.seq, severity: a.severity, sid: a.sid, category: a.category, src: a.src, sport: a.sport, dst: a.dst, dport: a.dport, proto: a.proto, action: a.action },
    text: a.signature,
  });
}

/** An audit entry as the audit table holds it (the result as stored text). */
export type AuditLike = Omit<AuditEntry, 'result'> & { result: string };

export function formatAudit(e: AuditLike, facility: number, hostname: string): string {
  return formatSyslog({
    facility,
    severity: e.result === 'ok' ? 6 : 4,
    at: e.at,
    hostname,
    msgid: 'AUDIT',
    sdId: 'audit@32473',
    params: { id: e.id, user: e.username, role: e.role, source: e.source, action: e.action, target: e.target, result: e.result },
    text: `${e.username ?? '-'} ${e.action} ${e.target} ${e.result}${e.detail ? `: ${e.detail}` : ''}`,
  });
}

class Connection {
  private queue: string[] = [];
  private sock?: Socket;
  private udp?: UdpSocket;
  private connecting = false;
  private backoffMs = 500;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly target: SyslogTarget,
    private readonly counters: SyslogCounters,
    private readonly log: Logger,
  ) {}

  send(msg: string): void {
    if (this.closed) return;
    if (this.target.proto === 'udp') {
      if (!this.udp) {
        this.udp = createSocket(isIP(this.target.host) === 6 ? 'udp6' : 'udp4');
        this.udp.on('error', () => this.counters.errors++);
      }
      const buf = Buffer.from(msg.slice(0, 8192));
      this.udp.send(buf, this.target.port, this.target.host, (err) => (err ? this.counters.errors++ : this.counters.sent++));
      return;
    }
    this.queue.push(msg);
    if (this.queue.length > MAX_QUEUE) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.pump();
  }

  private pump(): void {
    if (this.closed) return;
    if (!this.sock) return this.connect();
    if (this.connecting) return;
    while (this.queue.length) {
      const m = this.queue.shift()!;
      const b = Buffer.from(m);
      // Octet counting: "LEN SP MSG".
      this.sock.write(`${b.length} `);
      this.sock.write(b);
      this.counters.sent++;
    }
  }

  private connect(): void {
    if (this.connecting || this.timer || this.closed) return;
    this.connecting = true;
    const { host, port } = this.target;
    const sock =
      this.target.proto === 'tls'
        ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ...(this.target.ca ? { ca: this.target.ca } : {}) })
        : createConnection({ host, port });
    this.sock = sock;
    sock.once(this.target.proto === 'tls' ? 'secureConnect' : 'connect', () => {
      this.connecting = false;
      this.backoffMs = 500;
      this.pump();
    });
    sock.on('error', (err) => {
      this.counters.errors++;
      this.log.debug({ err: err.message, host, port }, 'syslog target error');
    });
    sock.on('close', () => {
      if (this.sock === sock) this.sock = undefined;
      this.connecting = false;
      if (this.closed) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.queue.length) this.pump();
      }, this.backoffMs);
      this.timer.unref?.();
      this.backoffMs = Math.min(30_000, this.backoffMs * 2);
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.sock?.end();
    this.sock?.destroy();
    this.udp?.close();
  }
}

export class SyslogForwarder {
  readonly counters: SyslogCounters = { sent: 0, dropped: 0, errors: 0 };
  private conns: Connection[] = [];
  private hostname = 'rampart';
  private key = '';

  constructor(private readonly opts: { log: Logger }) {}

  /** (Re)configure targets; unchanged targets keep their connections. */
  configure(targets: SyslogTarget[], hostname: string): void {
    this.hostname = hostname;
    const valid = targets.filter((t) => HOST_RE.test(t.host) || isIP(t.host));
    const key = JSON.stringify(valid);
    if (key === this.key) return;
    this.key = key;
    for (const c of this.conns) c.close();
    this.conns = valid.map((t) => new Connection(t, this.counters, this.opts.log));
  }

  alerts(recs: AlertRecord[]): void {
    if (!this.conns.length) return;
    for (const c of this.conns) for (const a of recs) c.send(formatAlert(a, c.target.facility, this.hostname));
  }

  audit(entries: AuditLike[]): void {
    if (!this.conns.length) return;
    for (const c of this.conns) for (const e of entries) c.send(formatAudit(e, c.target.facility, this.hostname));
  }

  get active(): boolean {
    return this.conns.length > 0;
  }

  close(): void {
    for (const c of this.conns) c.close();
    this.conns = [];
    this.key = '';
  }
}
