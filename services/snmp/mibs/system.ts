/** SNMPv2-MIB `system` group (RFC 3418): description, object id, uptime, contact, name, location, sysORTable. */
import { int, oidValue, str, ticks, type Instance } from '../mib-store.ts';

export const SYSTEM = '1.3.6.1.2.1.1';

export interface SystemData {
  descr: string;
  objectId: string;
  /** Hundredths of a second since the agent (re)started. */
  upTime: () => number;
  contact: string;
  name: string;
  location: string;
  /** The MODULE-IDENTITY OIDs of the MIBs served, with a description. */
  modules: { id: string; descr: string }[];
}

/** Layers: internet (3), end-to-end (4), applications (7). */
const SERVICES = 4 + 8 + 64;

export function systemInstances(d: SystemData): Instance[] {
  const out: Instance[] = [
    str(`${SYSTEM}.1.0`, d.descr),
    oidValue(`${SYSTEM}.2.0`, d.objectId),
    ticks(`${SYSTEM}.3.0`, d.upTime),
    str(`${SYSTEM}.4.0`, d.contact),
    str(`${SYSTEM}.5.0`, d.name),
    str(`${SYSTEM}.6.0`, d.location),
    int(`${SYSTEM}.7.0`, SERVICES),
    ticks(`${SYSTEM}.8.0`, 0),
  ];
  d.modules.forEach((m, i) => {
    const row = i + 1;
    out.push(oidValue(`${SYSTEM}.9.1.2.${row}`, m.id), str(`${SYSTEM}.9.1.3.${row}`, m.descr), ticks(`${SYSTEM}.9.1.4.${row}`, 0));
  });
  return out;
}
