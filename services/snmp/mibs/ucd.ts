/** UCD-SNMP-MIB: load averages (laTable) and memory (memory group), in the units Net-SNMP's snmpd uses (kB). */
import { int, str, type Instance } from '../mib-store.ts';

export const UCD = '1.3.6.1.4.1.2021';

export interface UcdData {
  load?: [number, number, number];
  memory?: { totalBytes: number; availableBytes: number; freeBytes: number; swapTotalBytes: number; swapFreeBytes: number };
}

const LOAD_NAMES = ['Load-1', 'Load-5', 'Load-15'];
const kb = (b: number) => Math.min(2 ** 31 - 1, Math.floor(b / 1024));

export function ucdInstances(d: UcdData): Instance[] {
  const out: Instance[] = [];
  if (d.load) {
    d.load.forEach((v, i) => {
      const e = (c: number) => `${UCD}.10.1.${c}.${i + 1}`;
      out.push(int(e(1), i + 1), str(e(2), LOAD_NAMES[i]), str(e(3), v.toFixed(2)), str(e(4), '0.00'), int(e(5), Math.round(v * 100)), int(e(100), 0), str(e(101), ''));
    });
  }
  const m = d.memory;
  if (m) {
    const s = (c: number) => `${UCD}.4.${c}.0`;
    out.push(
      int(s(1), 0),
      str(s(2), 'swap'),
      int(s(3), kb(m.swapTotalBytes)),
      int(s(4), kb(m.swapFreeBytes)),
      int(s(5), kb(m.totalBytes)),
      int(s(6), kb(m.freeBytes)),
      int(s(11), kb(m.freeBytes + m.swapFreeBytes)),
      int(s(12), 16000),
      int(s(100), m.swapTotalBytes > 0 && m.swapFreeBytes < 16000 * 1024 ? 1 : 0),
      str(s(101), ''),
    );
  }
  return out;
}
