/** Per-rule packet/byte counters, read from the named counters of `table inet rampart` (no rules or sets listed). */
import { countersHelper, run, type Host } from '../host/exec.ts';
import type { CounterRef } from './compile.ts';
import { LISTS_TABLE, LISTS_TABLE_ALT, TABLE } from './compile.ts';
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

export type CounterMap = Map<string, { packets: number; bytes: number }>;

/** `nft -j list counters table`: the fallback (nft first loads the whole table into its cache: slow when big). */
async function listCountersNft(host: Host, table: string): Promise<CounterMap> {
  const res = await host.run('nft', ['-j', 'list', 'counters', 'table', 'inet', table], { allowFailure: true });
  const out: CounterMap = new Map();
  if (res.exitCode !== 0) return out;
  for (const item of JSON.parse(res.stdout).nftables ?? []) {
    if (item.counter) out.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
  }
  return out;
}

/** Lines "TABLE NAME PACKETS BYTES" of rampart-counters, by table. */
export function parseCounterLines(text: string): Map<string, CounterMap> {
  const out = new Map<string, CounterMap>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length !== 4 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    let m = out.get(f[0]);
    if (!m) out.set(f[0], (m = new Map()));
    m.set(f[1], { packets: Number(f[2]), bytes: Number(f[3]) });
  }
  return out;
}

/** The named counters of the given tables of family inet: over netlink when the helper is built, else through nft. */
export async function listCounters(host: Host, tables: string[]): Promise<Map<string, CounterMap>> {
  const helper = countersHelper();
  if (helper) {
    // The helper enters the namespace itself (setns), which costs far less than `ip netns exec`.
    const res = await run(helper, [...(host.netns ? ['-n', host.netns] : []), 'inet', ...tables], { allowFailure: true });
    if (res.exitCode === 0) return parseCounterLines(res.stdout);
  }
  const out = new Map<string, CounterMap>();
  for (const t of tables) out.set(t, await listCountersNft(host, t));
  return out;
}

export async function readCounters(host: Host, refs: Record<string, CounterRef>): Promise<Counters> {
  // The lists table has one of two names (see Firewall.load); the other one is absent or not yet hooked.
  const tables = await listCounters(host, [TABLE, LISTS_TABLE, LISTS_TABLE_ALT, BLOCK_TABLE]);
  const values: CounterMap = new Map(tables.get(TABLE) ?? []);
  for (const t of [LISTS_TABLE, LISTS_TABLE_ALT]) for (const [k, v] of tables.get(t) ?? []) if (k !== 'marker') values.set(k, v);
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
  const blocked = tables.get(BLOCK_TABLE)?.get('blocked');
  if (blocked) out.dynamicBlocks = blocked;
  return out;
}

/** Per-rule counters (by rule id) out of already-read counters of the main table. */
export function ruleCounters(refs: Record<string, CounterRef>, main: CounterMap | undefined): Record<string, { packets: number; bytes: number }> {
  const out: Record<string, { packets: number; bytes: number }> = {};
  if (!main) return out;
  for (const name in refs) {
    const ref = refs[name];
    if (ref.kind !== 'rule') continue;
    const v = main.get(name);
    if (v) out[ref.id] = v;
  }
  return out;
}
