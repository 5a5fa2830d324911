/** RAMPART-MIB (system/mibs/RAMPART-MIB.txt): the appliance's own figures. OIDs here mirror that file. */
import { c64, g32, int, str, type Instance } from '../mib-store.ts';

/** The documentation enterprise number (RFC 5612) until a registered one replaces it. */
export const RAMPART = '1.3.6.1.4.1.32473';
export const RAMPART_APPLIANCE = `${RAMPART}.1.1`;
export const OBJ = `${RAMPART}.2`;
export const NOTIFY = `${RAMPART}.0`;

export const OIDS = {
  configVersion: `${OBJ}.1.1.0`,
  configState: `${OBJ}.1.2.0`,
  configPendingVersion: `${OBJ}.1.3.0`,
  configHash: `${OBJ}.1.4.0`,
  ruleEntry: `${OBJ}.2.1.1`,
  idsAlertEntry: `${OBJ}.3.1.1`,
  anomalies: `${OBJ}.3.2.0`,
  anomaliesActive: `${OBJ}.3.3.0`,
  blockedAddresses: `${OBJ}.4.1.0`,
  conntrackCount: `${OBJ}.4.2.0`,
  conntrackMax: `${OBJ}.4.3.0`,
  syncState: `${OBJ}.4.4.0`,
  syncOutboxDepth: `${OBJ}.4.5.0`,
  imageVersion: `${OBJ}.4.6.0`,
  notifySeverity: `${OBJ}.5.1`,
  notifySignature: `${OBJ}.5.2`,
  notifySid: `${OBJ}.5.3`,
  notifySource: `${OBJ}.5.4`,
  notifyDestination: `${OBJ}.5.5`,
  notifyVersion: `${OBJ}.5.6`,
  notifyDetail: `${OBJ}.5.7`,
  idsAlertNotification: `${NOTIFY}.1`,
  configAppliedNotification: `${NOTIFY}.2`,
  configRolledBackNotification: `${NOTIFY}.3`,
  syncLostNotification: `${NOTIFY}.4`,
  syncRestoredNotification: `${NOTIFY}.5`,
};

export const CONFIG_STATE = { none: 1, applied: 2, pendingConfirm: 3 } as const;
export const SYNC_STATE = { disabled: 1, connected: 2, disconnected: 3, unknown: 4 } as const;
const CHAIN = { input: 1, forward: 2 } as const;
const ACTION = { accept: 1, drop: 2, reject: 3 } as const;

export interface RuleRow {
  id: string;
  chain: 'input' | 'forward';
  action: 'accept' | 'drop' | 'reject';
  enabled: boolean;
  counter?: { packets: number; bytes: number };
}

export interface RampartData {
  config: { version: number; state: keyof typeof CONFIG_STATE; pendingVersion: number; hash: string };
  rules: RuleRow[];
  /** IDS alerts by severity 1..4. */
  idsAlerts: Record<1 | 2 | 3 | 4, number>;
  anomalies: number;
  anomaliesActive: number;
  blocked: number;
  conntrack?: { count: number; max: number };
  sync: { state: keyof typeof SYNC_STATE; outbox: number };
  /** The appliance image's version (/etc/rampart-release); empty when Rampart does not run from an image. */
  imageVersion: string;
}

/** A sync channel state as the bus reports it → the MIB's enumeration. */
export function syncStateOf(state: string | undefined, enabled: boolean): keyof typeof SYNC_STATE {
  if (!enabled || state === 'disabled') return 'disabled';
  if (!state) return 'unknown';
  if (/^(connected|online|up|restored)$/i.test(state)) return 'connected';
  if (/^(lost|disconnected|offline|down|error|connecting|reconnecting)$/i.test(state)) return 'disconnected';
  return 'unknown';
}

export function rampartInstances(d: RampartData): Instance[] {
  const out: Instance[] = [
    g32(OIDS.configVersion, d.config.version),
    int(OIDS.configState, CONFIG_STATE[d.config.state]),
    g32(OIDS.configPendingVersion, d.config.pendingVersion),
    str(OIDS.configHash, d.config.hash.slice(0, 64)),
  ];
  d.rules.forEach((r, i) => {
    const idx = i + 1;
    if (idx > 65535) return;
    const e = (c: number) => `${OIDS.ruleEntry}.${c}.${idx}`;
    out.push(str(e(2), r.id), int(e(3), CHAIN[r.chain]), int(e(4), ACTION[r.action]), int(e(5), r.enabled ? 1 : 2));
    if (r.counter) out.push(c64(e(6), r.counter.packets), c64(e(7), r.counter.bytes));
  });
  for (const sev of [1, 2, 3, 4] as const) out.push(c64(`${OIDS.idsAlertEntry}.2.${sev}`, d.idsAlerts[sev] ?? 0));
  out.push(c64(OIDS.anomalies, d.anomalies), g32(OIDS.anomaliesActive, d.anomaliesActive), g32(OIDS.blockedAddresses, d.blocked));
  if (d.conntrack) out.push(g32(OIDS.conntrackCount, d.conntrack.count), g32(OIDS.conntrackMax, d.conntrack.max));
  out.push(int(OIDS.syncState, SYNC_STATE[d.sync.state]), g32(OIDS.syncOutboxDepth, d.sync.outbox), str(OIDS.imageVersion, d.imageVersion.slice(0, 128)));
  return out;
}
