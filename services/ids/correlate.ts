/**
 * Alerts correlated with the firewall: which rule of the running configuration let the alert's flow in (traced the
 * way the kernel runs the compiled ruleset, services/firewall/trace.ts), and alerts grouped by signature and source
 * within a time window (for the API and the UI).
 */
import type { AlertRecord } from '../core/alerts.ts';
import { contains, parseAddress, parseInterfaceAddress } from '../core/net.ts';
import type { Config } from '../core/schema.ts';
import type { Store } from '../core/store.ts';
import { tracePacket } from '../firewall/trace.ts';

export interface FirewallMatch {
  chain: 'input' | 'forward';
  verdict: string;
  decidedBy: string;
  rule?: string;
}

/** The flow's initiator side (EVE `flow` block when present, else the alert's own 5-tuple). */
function flowTuple(a: AlertRecord): { src?: string; dst?: string; dport?: number; iface?: string } {
  const d = a.detail as any;
  const f = d && typeof d === 'object' ? d.flow : undefined;
  const iface = d && typeof d.in_iface === 'string' ? d.in_iface : undefined;
  if (f && typeof f.src_ip === 'string' && typeof f.dest_ip === 'string') return { src: f.src_ip, dst: f.dest_ip, dport: Number.isInteger(f.dest_port) ? f.dest_port : a.dport, iface };
  return { src: a.src, dst: a.dst, dport: a.dport, iface };
}

function zoneOf(cfg: Config, addr: string): string | undefined {
  const p = parseAddress(addr);
  if (!p) return undefined;
  for (const i of cfg.interfaces) {
    for (const a of i.addresses) {
      const n = parseInterfaceAddress(a);
      if (n && i.zone && contains(n.network, p)) return i.zone;
    }
  }
  return undefined;
}

function isLocal(cfg: Config, addr: string): boolean {
  const p = parseAddress(addr);
  return !!p && cfg.interfaces.some((i) => i.addresses.some((a) => parseInterfaceAddress(a)?.host.text === p.text));
}

/** The firewall rule (or policy) that decides the alert's flow under `cfg`; undefined when it cannot be traced. */
export function firewallMatch(cfg: Config, a: AlertRecord): FirewallMatch | undefined {
  if (a.kind !== 'ids' || !a.proto) return undefined;
  const proto = a.proto === 'ipv6-icmp' ? 'icmpv6' : a.proto;
  if (!['tcp', 'udp', 'icmp', 'icmpv6'].includes(proto)) return undefined;
  const t = flowTuple(a);
  if (!t.src || !t.dst) return undefined;
  const byDevice = t.iface ? cfg.interfaces.find((i) => i.device === t.iface)?.zone : undefined;
  const from = zoneOf(cfg, t.src) ?? (byDevice && byDevice !== zoneOf(cfg, t.dst) ? byDevice : undefined) ?? cfg.firewall.nat.masquerade[0]?.zone;
  if (!from) return undefined;
  const to = isLocal(cfg, t.dst) ? undefined : zoneOf(cfg, t.dst) ?? cfg.firewall.nat.masquerade[0]?.zone;
  try {
    const r = tracePacket(cfg, { from, ...(to ? { to } : {}), src: t.src, dst: t.dst, proto: proto as any, ...(proto === 'tcp' || proto === 'udp' ? { dport: t.dport } : {}) });
    return { chain: r.chain, verdict: r.verdict, decidedBy: r.decidedBy, ...(r.rule ? { rule: r.rule } : {}) };
  } catch {
    return undefined;
  }
}

export interface AlertGroup {
  sid: number | null;
  signature: string;
  src: string | null;
  severity: number;
  count: number;
  first: number;
  last: number;
  /** Start of the window (epoch ms). */
  window: number;
}

/** Alerts grouped by signature and source per window of `windowMs`, most recent first. */
export function groupAlerts(store: Store, q: { since?: number; windowMs: number; limit?: number }): AlertGroup[] {
  const w = Math.max(1000, Math.floor(q.windowMs));
  const limit = Math.max(1, Math.min(10_000, Math.floor(q.limit ?? 100)));
  return store
    .prepare(
      `SELECT sid, signature, src, MIN(severity) AS severity, COUNT(*) AS count, MIN(at) AS first, MAX(at) AS last, (at / CAST(@w AS INTEGER)) * CAST(@w AS INTEGER) AS window
       FROM alerts WHERE at >= @since GROUP BY sid, signature, src, at / CAST(@w AS INTEGER) ORDER BY last DESC LIMIT @limit`,
    )
    .all({ w, since: q.since ?? 0, limit }) as AlertGroup[];
}
