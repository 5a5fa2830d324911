/** Per-rule packet/byte counters, read from the named counters of `table inet rampart` (no rules or sets listed). */
import type { Host } from '../host/exec.ts';
import type { CounterRef } from './compile.ts';
import { LISTS_TABLE, TABLE } from './compile.ts';
import { BLOCK_TABLE } from './blocks.ts';

export interface CounterValue {
  packets: number;
  bytes: number;
  path: string;
}

export interface Counters {
  rules: Record<string, CounterValue>;
  portForwards: Record<string, CounterValue>;
  snat: Record<string, CounterValue>;
  blocklists: Record<string, CounterValue>;
  antiLockout?: CounterValue;
  dynamicBlocks?: { packets: number; bytes: number };
}

async function listCounters(host: Host, table: string): Promise<Map<string, { packets: number; bytes: number }>> {
  const res = await host.run('nft', ['-j', 'list', 'counters', 'table', 'inet', table], { allowFailure: true });
  const out = new Map<string, { packets: number; bytes: number }>();
  if (res.exitCode !== 0) return out;
  for (const item of JSON.parse(res.stdout).nftables ?? []) {
    if (item.counter) out.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
  }
  return out;
}

export async function readCounters(host: Host, refs: Record<string, CounterRef>): Promise<Counters> {
  const values = await listCounters(host, TABLE);
  for (const [k, v] of await listCounters(host, LISTS_TABLE)) values.set(k, v);
  const out: Counters = { rules: {}, portForwards: {}, snat: {}, blocklists: {} };
  for (const [name, ref] of Object.entries(refs)) {
    const v = values.get(name);
    if (!v) continue;
    const value = { ...v, path: ref.path };
    if (ref.kind === 'rule') out.rules[ref.id] = value;
    else if (ref.kind === 'portForward') out.portForwards[ref.id] = value;
    else if (ref.kind === 'snat') out.snat[ref.id] = value;
    else if (ref.kind === 'blocklist') out.blocklists[ref.id] = value;
    else out.antiLockout = value;
  }
  const blocked = (await listCounters(host, BLOCK_TABLE)).get('blocked');
  if (blocked) out.dynamicBlocks = blocked;
  return out;
}
