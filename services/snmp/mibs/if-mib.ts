/**
 * IF-MIB (RFC 2863): ifNumber, ifTable and ifXTable with 64-bit counters, ifName and ifAlias. Counters come from
 * the telemetry service's latest sample (the kernel's 64-bit `stats64`); the 32-bit columns are their low 32 bits.
 * Linux counts no unicast/multicast split per direction in the figures sampled, so the unicast columns carry all
 * packets and the multicast/broadcast columns are not served.
 */
import { c32, c64, g32, int, str, ticks, type Instance } from '../mib-store.ts';
import type { InterfaceCounters } from '../../telemetry/collectors.ts';

export const IF_NUMBER = '1.3.6.1.2.1.2.1.0';
export const IF_ENTRY = '1.3.6.1.2.1.2.2.1';
export const IFX_ENTRY = '1.3.6.1.2.1.31.1.1.1';

export interface IfRow {
  index: number;
  name: string;
  /** ifAlias: the configuration's name for the interface (e.g. "lan"), else the kernel's alias. */
  alias: string;
  /** IANAifType: 6 ethernetCsmacd, 24 softwareLoopback, 1 other... */
  type: number;
  mtu: number;
  /** Bits per second; 0 when unknown. */
  speed: number;
  mac: Buffer;
  adminUp: boolean;
  /** IF-MIB ifOperStatus: 1 up, 2 down, 3 testing, 4 unknown, 5 dormant, 6 notPresent, 7 lowerLayerDown. */
  operStatus: number;
  promiscuous: boolean;
  connector: boolean;
  /** sysUpTime (hundredths) when the operational state last changed. */
  lastChange: number;
  counters?: Omit<InterfaceCounters, 'ifindex' | 'name' | 'up'>;
}

export function linkType(kernel: string | undefined, name: string): number {
  if (name === 'lo' || kernel === 'loopback') return 24;
  if (kernel === 'ether') return 6;
  if (kernel === 'none') return 131; // tunnel
  return 1;
}

export function operStatus(state: string | undefined, flags: string[]): number {
  switch (state) {
    case 'UP':
      return 1;
    case 'DOWN':
      return 2;
    case 'TESTING':
      return 3;
    case 'DORMANT':
      return 5;
    case 'NOTPRESENT':
      return 6;
    case 'LOWERLAYERDOWN':
      return 7;
    default:
      // UNKNOWN (loopback, tunnels): up when the link is.
      return flags.includes('LOWER_UP') || (flags.includes('UP') && flags.includes('LOOPBACK')) ? 1 : 4;
  }
}

export function ifMibInstances(rows: IfRow[]): Instance[] {
  const out: Instance[] = [int(IF_NUMBER, rows.length)];
  for (const r of rows) {
    const i = r.index;
    const e = (col: number) => `${IF_ENTRY}.${col}.${i}`;
    const x = (col: number) => `${IFX_ENTRY}.${col}.${i}`;
    out.push(
      int(e(1), i),
      str(e(2), r.name),
      int(e(3), r.type),
      int(e(4), r.mtu),
      g32(e(5), r.speed),
      str(e(6), r.mac),
      int(e(7), r.adminUp ? 1 : 2),
      int(e(8), r.operStatus),
      ticks(e(9), r.lastChange),
      str(x(1), r.name),
      int(x(14), 2),
      g32(x(15), Math.round(r.speed / 1e6)),
      int(x(16), r.promiscuous ? 1 : 2),
      int(x(17), r.connector ? 1 : 2),
      str(x(18), r.alias),
      ticks(x(19), 0),
    );
    const c = r.counters;
    if (c) {
      out.push(
        c32(e(10), c.rxBytes),
        c32(e(11), c.rxPackets),
        c32(e(13), c.rxDropped),
        c32(e(14), c.rxErrors),
        c32(e(16), c.txBytes),
        c32(e(17), c.txPackets),
        c32(e(19), c.txDropped),
        c32(e(20), c.txErrors),
        c64(x(6), c.rxBytes),
        c64(x(7), c.rxPackets),
        c64(x(10), c.txBytes),
        c64(x(11), c.txPackets),
      );
    }
  }
  return out;
}
