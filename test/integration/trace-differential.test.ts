/**
 * Differential test of the packet tracer against the kernel (root). In one lab (SPEC §7), for generated small
 * configurations over the lab's interfaces (test/helpers/arbitraries.ts `labConfigArb`), the compiled ruleset is
 * loaded into the firewall namespace and real connection attempts are made from the lan and wan hosts — to the
 * other host (forward), to the firewall's near and far addresses (input, port forwards) — over IPv4 and IPv6,
 * TCP and UDP, on every lab port. Every attempt is compared with `tracePacket` for the same packet:
 *   accept ↔ open,  drop ↔ timeout,  reject ↔ refused / unreachable.
 * Listeners (TCP and UDP) run on every lab port in all three namespaces, so an accepted flow always finds one.
 * Connection tracking in the firewall is flushed between configurations, so that no flow of a previous configuration
 * passes as established; ICMP error rate limiting is off in the firewall, so that concurrent rejects all get their
 * ICMP error. Limits (rate) are not generated: the tracer does not model them.
 *
 * Every disagreement is reported with the configuration, the packet, the trace and the kernel's result. Disagreeing
 * packets are probed again (a stable disagreement repeats, noise would not), grouped by kind, and the first example
 * of a few kinds is minimised.
 * Knobs: TRACE_DIFF_CONFIGS (default 30), TRACE_DIFF_SEED, TRACE_DIFF_SHRINK (kinds to minimise, default 2).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { Config } from '../../services/core/schema.ts';
import { validateConfig } from '../../services/core/validate.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { tracePacket, type TraceResult } from '../../services/firewall/trace.ts';
import { Host, run } from '../../services/host/exec.ts';
import { LAB, LAB_PORTS, labConfigArb, labZones, shrinkDocument, type Doc } from '../helpers/arbitraries.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { probeMany, startServer, type ProbeResult, type ProbeStatus, type Server } from '../helpers/probe.ts';

const CONFIGS = Number(process.env.TRACE_DIFF_CONFIGS ?? 30);
const SEED = process.env.TRACE_DIFF_SEED ? Number(process.env.TRACE_DIFF_SEED) : randomBytes(4).readInt32LE(0);
const SHRINK = Number(process.env.TRACE_DIFF_SHRINK ?? 2);
/** A probe that gets no answer within this is "dropped" (below the 1 s TCP SYN retransmission). */
const DROP_MS = 800;

type Fam = 4 | 6;
type Side = 'lan' | 'wan';

interface Packet {
  side: Side;
  kind: 'forward' | 'fw-near' | 'fw-far';
  fam: Fam;
  proto: 'tcp' | 'udp';
  port: number;
  src: string;
  dst: string;
}

interface Disagreement {
  config: number;
  doc: Doc;
  packet: Packet;
  request: ReturnType<typeof traceRequest>;
  trace: Pick<TraceResult, 'verdict' | 'chain' | 'decidedBy' | 'rule' | 'dnat'>;
  kernel: ProbeResult;
  again?: ProbeStatus;
}

const labInterfaces = (lanZone = 'lan', wanZone = 'wan') => [
  { name: 'lan', device: 'lan0', zone: lanZone, addresses: ['192.0.2.1/24', '2001:db8:1::1/64'] },
  { name: 'wan', device: 'wan0', zone: wanZone, addresses: ['198.51.100.1/24', '2001:db8:2::1/64'] },
];

/**
 * Configurations checked every run before the generated ones: the lab example of the repository; zone names that
 * collide with an underscore-joined chain-name scheme (lan0 in zone "from": the chain of the pair from→wan and the
 * dispatch chain of zone wan would both be fwd_from_wan, and wan→lan tcp/80 would meet the lan→wan rule); and the
 * minimised cases of disagreements this test found (a blocklist covering a firewall address; a port forward to an
 * address of the firewall itself; one onto the same address and port).
 */
const FIXED: Doc[] = [
  JSON.parse(readFileSync(new URL('../../system/examples/lab.json', import.meta.url), 'utf8')) as Doc,
  {
    schema: 1,
    interfaces: labInterfaces(),
    zones: [{ name: 'lan' }, { name: 'wan' }],
    firewall: { policy: { input: 'accept' }, blocklists: [{ name: 'threats', entries: ['192.0.2.1'] }] },
  },
  {
    schema: 1,
    interfaces: labInterfaces(),
    zones: [{ name: 'lan' }, { name: 'wan' }],
    firewall: { nat: { portForwards: [{ id: 'pf1', zone: 'wan', proto: 'tcp', port: '8080', to: '192.0.2.1', toPort: '80' }] } },
  },
  {
    // A port forward onto the very address and port the packet already has: no translation, so no `ct status dnat`.
    schema: 1,
    interfaces: labInterfaces(),
    zones: [{ name: 'lan' }, { name: 'wan' }],
    firewall: { nat: { portForwards: [{ id: 'pf1', zone: 'wan', proto: 'tcp', port: '8080', to: '192.0.2.1', toPort: '8080', source: ['198.51.100.0/24'] }] } },
  },
  {
    schema: 1,
    interfaces: labInterfaces('from', 'wan'),
    zones: [{ name: 'from' }, { name: 'wan' }],
    firewall: {
      policy: { input: 'drop', forward: 'drop', output: 'accept' },
      forward: [
        { id: 'out-web', from: 'from', to: 'wan', services: [{ proto: 'tcp', ports: ['80'] }], action: 'accept' },
        { id: 'in-ssh', from: 'wan', to: 'from', services: [{ proto: 'tcp', ports: ['22'] }], action: 'accept' },
      ],
    },
  },
];

let lab: Lab;
let fw: Host;
const servers: Server[] = [];

/** All packets of one configuration: from each host to the other host and to both firewall addresses. */
function packets(): Packet[] {
  const out: Packet[] = [];
  for (const side of ['lan', 'wan'] as const) {
    const self = side === 'lan' ? LAB.lanHost : LAB.wanHost;
    const dests = side === 'lan'
      ? { forward: LAB.wanHost, 'fw-near': LAB.fwLan, 'fw-far': LAB.fwWan }
      : { forward: LAB.lanHost, 'fw-near': LAB.fwWan, 'fw-far': LAB.fwLan };
    for (const kind of ['forward', 'fw-near', 'fw-far'] as const) {
      for (const fam of [4, 6] as const) {
        for (const proto of ['tcp', 'udp'] as const) {
          for (const port of LAB_PORTS) out.push({ side, kind, fam, proto, port, src: self[fam], dst: dests[kind][fam] });
        }
      }
    }
  }
  return out;
}

/** The trace request for a packet; forward packets name their `to` zone for IPv4 and leave it to the tracer for IPv6. */
function traceRequest(doc: Doc, p: Packet) {
  const zones = labZones(doc);
  const from = p.side === 'lan' ? zones.lan : zones.wan;
  const to = p.kind === 'forward' && p.fam === 4 ? (p.side === 'lan' ? zones.wan : zones.lan) : undefined;
  return { from, ...(to ? { to } : {}), src: p.src, dst: p.dst, proto: p.proto, dport: p.port };
}

function agrees(verdict: TraceResult['verdict'], status: ProbeStatus): boolean {
  if (verdict === 'accept') return status === 'open';
  if (verdict === 'drop') return status === 'timeout';
  return status === 'refused' || status === 'unreachable';
}

/** Load a configuration into the firewall and forget every tracked flow. */
async function load(config: Config): Promise<void> {
  await fw.nft(compileRuleset(config).script);
  await run('conntrack', ['-F'], { netns: lab.fw });
}

/** Probe packets as the kernel treats them, both hosts at once; results in the order of `list`. */
async function kernel(list: Packet[]): Promise<ProbeResult[]> {
  const bySide = (side: Side) => list.map((p, i) => [p, i] as const).filter(([p]) => p.side === side);
  const out: ProbeResult[] = new Array(list.length);
  await Promise.all(
    (['lan', 'wan'] as const).map(async (side) => {
      const mine = bySide(side);
      const res = await probeMany(side === 'lan' ? lab.lan : lab.wan, mine.map(([p]) => ({ proto: p.proto, host: p.dst, port: p.port, timeoutMs: DROP_MS })));
      res.forEach((r, k) => (out[mine[k][1]] = r));
    }),
  );
  return out;
}

const show = (p: Packet) => `${p.side}→${p.kind} ${p.proto} [${p.src}] → [${p.dst}]:${p.port}`;

/** Set when the lab could not be set up; reported by the test (uvu does not show errors thrown by hooks). */
let setupError: unknown;

async function setUp(): Promise<void> {
  lab = await startLab();
  fw = new Host(lab.fw);
  // Many concurrent rejects: exempt ICMP errors from the global and per-peer rate limits in the firewall.
  await run('sysctl', ['-q', '-w', 'net.ipv4.icmp_ratemask=0', 'net.ipv6.icmp.ratemask=', 'net.ipv4.icmp_msgs_burst=10000'], { netns: lab.fw });
  // Dual-stack listeners everywhere, except UDP on the firewall: a UDP socket bound to '::' answers from the address
  // of the interface towards the client, not from the address the datagram was sent to, and the probe's connected
  // socket ignores such a reply. One UDP listener per firewall address answers from the right one.
  const wanted: [string, { proto: 'tcp' | 'udp'; port: number; host?: string }][] = [];
  for (const port of LAB_PORTS) {
    for (const ns of [lab.lan, lab.wan, lab.fw]) wanted.push([ns, { proto: 'tcp', port }]);
    for (const ns of [lab.lan, lab.wan]) wanted.push([ns, { proto: 'udp', port }]);
    for (const host of [LAB.fwLan[4], LAB.fwLan[6], LAB.fwWan[4], LAB.fwWan[6]]) wanted.push([lab.fw, { proto: 'udp', port, host }]);
  }
  // A few at a time: dozens of Node processes starting at once on a busy machine miss the helper's readiness timeout.
  let next = 0;
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      while (next < wanted.length) {
        const [ns, opts] = wanted[next++];
        servers.push(await startServer(ns, opts));
      }
    }),
  );
}

test.before(async () => {
  try {
    await setUp();
  } catch (err) {
    setupError = err;
  }
});

test.after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await lab?.down();
});

test(`tracePacket agrees with the kernel on ${FIXED.length} fixed and ${CONFIGS} generated configurations`, async () => {
  if (setupError) throw setupError;
  const started = Date.now();
  const docs = [...FIXED, ...fc.sample(labConfigArb(), { numRuns: CONFIGS, seed: SEED })];
  const list = packets();
  const disagreements: Disagreement[] = [];
  const loadFailures: string[] = [];
  let compared = 0;

  for (const [index, doc] of docs.entries()) {
    const v = validateConfig(doc);
    assert.ok(v.ok, `generated lab config #${index} is invalid: ${JSON.stringify(v.problems)}`);
    const config = v.config!;
    try {
      await load(config);
    } catch (err) {
      loadFailures.push(`#${index}: ${(err as Error).message}\n    ${JSON.stringify(doc)}`);
      continue;
    }
    const results = await kernel(list);
    const found: Disagreement[] = [];
    list.forEach((p, i) => {
      const request = traceRequest(doc, p);
      const t = tracePacket(config, request);
      compared++;
      if (!agrees(t.verdict, results[i].status)) {
        found.push({
          config: index,
          doc,
          packet: p,
          request,
          trace: { verdict: t.verdict, chain: t.chain, decidedBy: t.decidedBy, rule: t.rule, ...(t.dnat ? { dnat: t.dnat } : {}) },
          kernel: results[i],
        });
      }
    });
    if (found.length) {
      // Same ruleset, fresh conntrack, the disagreeing packets again: a stable disagreement repeats.
      await run('conntrack', ['-F'], { netns: lab.fw });
      const again = await kernel(found.map((f) => f.packet));
      found.forEach((f, k) => (f.again = again[k].status));
      disagreements.push(...found);
    }
  }
  const elapsed = Date.now() - started;
  console.log(
    `trace differential: compared ${compared} (config, packet) pairs over ${docs.length} configurations (${FIXED.length} fixed, then generated from seed ${SEED}; config #k is generated #k-${FIXED.length}) in ${elapsed} ms; ` +
      `${disagreements.length} disagreements in ${new Set(disagreements.map((d) => d.config)).size} configurations, ${loadFailures.length} rulesets not loaded`,
  );

  const byConfig = new Map<number, Disagreement[]>();
  for (const d of disagreements) byConfig.set(d.config, [...(byConfig.get(d.config) ?? []), d]);
  for (const [index, ds] of byConfig) {
    console.log(`--- config #${index}: ${JSON.stringify(ds[0].doc)}`);
    for (const d of ds) {
      console.log(
        `    ${show(d.packet)}  trace(${JSON.stringify(d.request)}) = ${d.trace.verdict} by ${d.trace.decidedBy}${d.trace.rule ? ` ${d.trace.rule}` : ''} in ${d.trace.chain}` +
          `${d.trace.dnat ? ` dnat ${JSON.stringify(d.trace.dnat)}` : ''}; kernel: ${d.kernel.status}${d.kernel.error ? ` (${d.kernel.error})` : ''}` +
          `${d.again !== d.kernel.status ? `, then ${d.again} on a retry (unstable)` : ''}`,
      );
    }
  }
  for (const f of loadFailures) console.log(`--- ruleset rejected by nft: ${f}`);

  // Kinds of disagreement (what decided in the trace, what the kernel did, to where), each with its first example.
  const kinds = new Map<string, Disagreement[]>();
  for (const d of disagreements) {
    const kind = `trace ${d.trace.verdict} by ${d.trace.decidedBy} in ${d.trace.chain}, kernel ${d.kernel.status} (${d.packet.side}→${d.packet.kind})`;
    kinds.set(kind, [...(kinds.get(kind) ?? []), d]);
  }
  for (const [kind, ds] of kinds) console.log(`=== ${ds.length} × ${kind}, in configs ${[...new Set(ds.map((d) => d.config))].join(', ')}`);

  // Minimise the first example of a few kinds (one packet each), for the report.
  for (const [, ds] of [...kinds].slice(0, SHRINK)) {
    const d = ds[0];
    const index = d.config;
    const stillDisagrees = async (candidate: Doc): Promise<boolean> => {
      // The interfaces must keep describing the lab (the tracer knows the firewall's addresses only from them).
      if (JSON.stringify(candidate.interfaces) !== JSON.stringify(d.doc.interfaces)) return false;
      const r = validateConfig(candidate);
      if (!r.ok) return false;
      let t: TraceResult;
      try {
        t = tracePacket(r.config!, traceRequest(candidate, d.packet));
      } catch {
        return false; // the shrunk document lost what the packet needs (an interface, a zone)
      }
      try {
        await load(r.config!);
      } catch {
        return false;
      }
      const [k] = await kernel([d.packet]);
      return !agrees(t.verdict, k.status) && t.verdict === d.trace.verdict && t.decidedBy === d.trace.decidedBy && k.status === d.kernel.status;
    };
    const minimal = await shrinkDocument(d.doc, stillDisagrees, 15_000);
    console.log(`--- minimised config #${index} for ${show(d.packet)} (trace ${d.trace.verdict}, kernel ${d.kernel.status}): ${JSON.stringify(minimal)}`);
  }

  assert.equal(loadFailures, [], 'rulesets that nft refused to load');
  assert.ok(compared >= 15 * list.length, `only ${compared} pairs compared`);
  assert.is(disagreements.length, 0, `${disagreements.length} (config, packet) pairs where trace and kernel disagree (seed ${SEED}; see above)`);
});

test.run();
