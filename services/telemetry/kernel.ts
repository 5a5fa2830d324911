/**
 * One reading of what the kernel counts, through one process: the netlink reader (services/host/native/counters.c,
 * `rampart-counters -l -c`) enters the namespace itself and prints every interface's 64-bit counters, the
 * conntrack figures and the named nftables counters of the tables asked for. One spawn per collection cycle instead
 * of three, and no `ip netns exec` (which makes a mount namespace and remounts /sys each time).
 */
import { parseCounterLines, type CounterMap } from '../firewall/counters.ts';
import { countersHelper, run } from '../host/exec.ts';
import type { ConntrackFigures, InterfaceCounters } from './collectors.ts';

export interface KernelReading {
  links: InterfaceCounters[];
  conntrack?: ConntrackFigures;
  /** Named counters by table. */
  counters: Map<string, CounterMap>;
}

/** RFC 2863 operational states as rtnetlink numbers them: unknown (0) and up (6) count as up, as `ip` shows them. */
const OPER_UNKNOWN = 0;
const OPER_UP = 6;

/** The reader's output, parsed (pure). */
export function parseKernelLines(text: string): KernelReading {
  const links: InterfaceCounters[] = [];
  let conntrack: ConntrackFigures | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('link ')) {
      const f = line.split(' ');
      if (f.length !== 13 || !/^\d+$/.test(f[1]) || !/^[01]$/.test(f[3]) || !f.slice(4).every((x) => /^\d+$/.test(x))) continue;
      const n = f.map(Number);
      links.push({
        ifindex: n[1],
        name: f[2],
        up: f[3] === '1' && (n[4] === OPER_UP || n[4] === OPER_UNKNOWN),
        rxBytes: n[5],
        rxPackets: n[6],
        rxErrors: n[7],
        rxDropped: n[8],
        txBytes: n[9],
        txPackets: n[10],
        txErrors: n[11],
        txDropped: n[12],
      });
    } else {
      const m = /^conntrack (\d+) (\d+)$/.exec(line);
      if (m) conntrack = { count: Number(m[1]), max: Number(m[2]) };
    }
  }
  return { links, ...(conntrack ? { conntrack } : {}), counters: parseCounterLines(text) };
}

/** Read interfaces, conntrack and the named counters of `tables` (family inet); undefined without the reader. */
export async function readKernel(netns: string | undefined, tables: readonly string[]): Promise<KernelReading | undefined> {
  const helper = countersHelper();
  if (!helper) return undefined;
  const r = await run(helper, [...(netns ? ['-n', netns] : []), '-l', '-c', 'inet', ...tables], { timeoutMs: 10_000 });
  return parseKernelLines(r.stdout);
}
