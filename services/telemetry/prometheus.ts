/**
 * Prometheus text exposition (format 0.0.4) of the current figures: what most monitoring stacks scrape beside SNMP.
 * `prometheusText` is pure (golden-tested); `MetricsEndpoint` decides who may read it: a bearer token from
 * `telemetry.prometheus.token`, compared in constant time. Without a configured token the endpoint does not exist.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Sample } from './collectors.ts';

export interface ExpositionInput {
  sample?: Sample;
  /** Running configuration version (null: none yet). */
  configVersion: number | null;
  /** Unexpired dynamic blocks. */
  blocks: number;
  /** Stored alerts by kind and severity. */
  alerts?: { kind: string; severity: number; count: number }[];
  /** Per-rule counters by rule id (firewall counters). */
  rules?: Record<string, { packets: number; bytes: number }>;
  uptimeSeconds: number;
}

/** A label value as the format wants it: backslash, double quote and newline escaped. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

class Writer {
  private readonly out: string[] = [];
  private readonly declared = new Set<string>();

  metric(name: string, type: 'counter' | 'gauge', help: string, value: number | undefined, labels: Record<string, string> = {}): void {
    if (value === undefined || !Number.isFinite(value)) return;
    if (!this.declared.has(name)) {
      this.declared.add(name);
      this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    }
    const keys = Object.keys(labels);
    const l = keys.length ? `{${keys.map((k) => `${k}="${label(labels[k])}"`).join(',')}}` : '';
    this.out.push(`${name}${l} ${value}`);
  }

  text(): string {
    return this.out.join('\n') + '\n';
  }
}

/** The exposition text; metrics of one name are grouped, in a fixed order. */
export function prometheusText(input: ExpositionInput): string {
  const w = new Writer();
  w.metric('rampart_up', 'gauge', 'The daemon answers (always 1).', 1);
  w.metric('rampart_uptime_seconds', 'gauge', 'Seconds since the daemon started.', input.uptimeSeconds);
  w.metric('rampart_config_version', 'gauge', 'Running configuration version (0: none).', input.configVersion ?? 0);
  w.metric('rampart_blocked_addresses', 'gauge', 'Unexpired dynamic blocks.', input.blocks);
  for (const a of [...(input.alerts ?? [])].sort((x, y) => x.kind.localeCompare(y.kind) || x.severity - y.severity)) {
    w.metric('rampart_alerts_stored', 'gauge', 'Alerts in the store by kind and severity (1 most severe).', a.count, { kind: a.kind, severity: String(a.severity) });
  }
  const s = input.sample;
  if (s) {
    const ifs = Object.values(s.interfaces)
      .filter((i) => i.name !== 'lo')
      .sort((a, b) => a.name.localeCompare(b.name));
    const per = (name: string, help: string, type: 'counter' | 'gauge', pick: (i: (typeof ifs)[number]) => number) => {
      for (const i of ifs) w.metric(name, type, help, pick(i), { device: i.name });
    };
    per('rampart_interface_up', 'Interface is administratively and operationally up.', 'gauge', (i) => (i.up ? 1 : 0));
    per('rampart_interface_receive_bytes_total', 'Bytes received (64-bit kernel counter).', 'counter', (i) => i.rxBytes);
    per('rampart_interface_transmit_bytes_total', 'Bytes sent (64-bit kernel counter).', 'counter', (i) => i.txBytes);
    per('rampart_interface_receive_packets_total', 'Packets received.', 'counter', (i) => i.rxPackets);
    per('rampart_interface_transmit_packets_total', 'Packets sent.', 'counter', (i) => i.txPackets);
    per('rampart_interface_receive_errors_total', 'Receive errors.', 'counter', (i) => i.rxErrors);
    per('rampart_interface_transmit_errors_total', 'Transmit errors.', 'counter', (i) => i.txErrors);
    per('rampart_interface_receive_drops_total', 'Received packets dropped.', 'counter', (i) => i.rxDropped);
    per('rampart_interface_transmit_drops_total', 'Packets dropped on sending.', 'counter', (i) => i.txDropped);
    const sys = s.system;
    if (sys.load) ['1', '5', '15'].forEach((m, k) => w.metric('rampart_load_average', 'gauge', 'Load average.', sys.load![k], { minutes: m }));
    w.metric('rampart_memory_total_bytes', 'gauge', 'Physical memory.', sys.memory?.totalBytes);
    w.metric('rampart_memory_available_bytes', 'gauge', 'Memory available for new work.', sys.memory?.availableBytes);
    w.metric('rampart_disk_total_bytes', 'gauge', 'Size of the data directory file system.', sys.disk?.totalBytes);
    w.metric('rampart_disk_available_bytes', 'gauge', 'Space available in the data directory file system.', sys.disk?.availableBytes);
    w.metric('rampart_system_uptime_seconds', 'gauge', 'Seconds since the system booted.', sys.uptimeSeconds);
    w.metric('rampart_conntrack_entries', 'gauge', 'Connection tracking entries.', s.conntrack?.count);
    w.metric('rampart_conntrack_limit', 'gauge', 'Connection tracking table size.', s.conntrack?.max);
    w.metric('rampart_daemon_resident_bytes', 'gauge', 'Resident memory of the daemon.', s.process.rssBytes);
    w.metric('rampart_daemon_event_loop_lag_p99_seconds', 'gauge', 'Event-loop delay (99th percentile) since the previous sample.', s.process.loopLagMs && s.process.loopLagMs.p99 / 1000);
  }
  const rules = input.rules ?? s?.rules?.counters;
  if (rules) {
    const ids = Object.keys(rules).sort();
    for (const id of ids) w.metric('rampart_rule_packets_total', 'counter', 'Packets matched by the rule (by rule id).', rules[id].packets, { rule: id });
    for (const id of ids) w.metric('rampart_rule_bytes_total', 'counter', 'Bytes matched by the rule (by rule id).', rules[id].bytes, { rule: id });
  }
  return w.text();
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Who may scrape: a bearer token, compared as digests in constant time. */
export class MetricsEndpoint {
  private token?: Buffer;

  constructor(private readonly render: () => Promise<string>) {}

  /** The `telemetry.prometheus` section of the running config (undefined or no token: the endpoint is off). */
  configure(cfg: { token?: string } | undefined): void {
    this.token = cfg?.token ? digest(cfg.token) : undefined;
  }

  get enabled(): boolean {
    return this.token !== undefined;
  }

  /** `authorization` header in, status and body out. */
  async handle(authorization: string | undefined): Promise<{ status: 200 | 401 | 404; body: string; headers: Record<string, string> }> {
    if (!this.token) return { status: 404, body: 'metrics exposition is not enabled (telemetry.prometheus.token)\n', headers: {} };
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization ?? '');
    if (!m || !timingSafeEqual(digest(m[1]), this.token)) {
      return { status: 401, body: 'a bearer token is required\n', headers: { 'WWW-Authenticate': 'Bearer realm="rampart metrics"' } };
    }
    return { status: 200, body: await this.render(), headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' } };
  }
}
