/**
 * HOST-RESOURCES-MIB (RFC 2790): hrSystemUptime, hrMemorySize, hrStorageTable (memory, swap, the data file
 * system), hrDeviceTable rows for the processors and hrProcessorLoad (per CPU, the busy share over the last
 * minute, from /proc/stat).
 */
import { g32, int, oidValue, str, ticks, type Instance } from '../mib-store.ts';

export const HR = '1.3.6.1.2.1.25';
const STORAGE_TYPES = '1.3.6.1.2.1.25.2.1';
const DEVICE_PROCESSOR = '1.3.6.1.2.1.25.3.1.3';
/** hrDeviceIndex of the first processor (as Net-SNMP numbers them). */
export const CPU_INDEX_BASE = 196608;

export interface StorageRow {
  index: number;
  kind: 'ram' | 'virtual' | 'disk';
  descr: string;
  unit: number;
  sizeBytes: number;
  usedBytes: number;
}

export interface HostData {
  /** Hundredths of a second since the host booted. */
  uptime: () => number;
  memoryBytes?: number;
  storage: StorageRow[];
  /** Per CPU: busy percent over the last minute (undefined until two readings exist). */
  cpus: { descr: string; load?: number }[];
}

const KIND_OID = { ram: 2, virtual: 3, disk: 4 } as const;

export function hostInstances(d: HostData): Instance[] {
  const out: Instance[] = [ticks(`${HR}.1.1.0`, d.uptime)];
  if (d.memoryBytes !== undefined) out.push(int(`${HR}.2.2.0`, Math.floor(d.memoryBytes / 1024)));
  for (const s of d.storage) {
    const e = (c: number) => `${HR}.2.3.1.${c}.${s.index}`;
    const units = (b: number) => Math.min(2 ** 31 - 1, Math.floor(b / s.unit));
    out.push(
      int(e(1), s.index),
      oidValue(e(2), `${STORAGE_TYPES}.${KIND_OID[s.kind]}`),
      str(e(3), s.descr),
      int(e(4), s.unit),
      int(e(5), units(s.sizeBytes)),
      int(e(6), units(s.usedBytes)),
    );
  }
  d.cpus.forEach((c, i) => {
    const idx = CPU_INDEX_BASE + i;
    out.push(
      int(`${HR}.3.2.1.1.${idx}`, idx),
      oidValue(`${HR}.3.2.1.2.${idx}`, DEVICE_PROCESSOR),
      str(`${HR}.3.2.1.3.${idx}`, c.descr),
      int(`${HR}.3.2.1.5.${idx}`, 2), // running
      oidValue(`${HR}.3.3.1.1.${idx}`, '0.0'),
    );
    if (c.load !== undefined) out.push(int(`${HR}.3.3.1.2.${idx}`, Math.round(c.load)));
  });
  return out;
}

/** Per-CPU jiffies from /proc/stat: [busy, total] for each `cpuN` line. */
export function parsePerCpu(stat: string): [number, number][] {
  const out: [number, number][] = [];
  for (const line of stat.split('\n')) {
    if (!/^cpu\d+\s/.test(line)) continue;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    out.push([busy, busy + idle + iowait]);
  }
  return out;
}

/** Busy percent per CPU over a sliding window of readings (oldest kept reading within `windowMs`). */
export class CpuLoad {
  private readings: { at: number; cpus: [number, number][] }[] = [];

  constructor(private readonly windowMs = 60_000) {}

  add(at: number, cpus: [number, number][]): void {
    this.readings.push({ at, cpus });
    while (this.readings.length > 2 && at - this.readings[1].at >= this.windowMs) this.readings.shift();
  }

  loads(): (number | undefined)[] {
    const last = this.readings[this.readings.length - 1];
    const first = this.readings[0];
    if (!last) return [];
    return last.cpus.map((c, i) => {
      const p = first.cpus[i];
      if (first === last || !p) return undefined;
      const dt = c[1] - p[1];
      const db = c[0] - p[0];
      return dt > 0 && db >= 0 ? Math.min(100, (100 * db) / dt) : undefined;
    });
  }
}
