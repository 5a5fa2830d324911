/**
 * Runs of exact-match rules are compiled into verdict-map lookups. With real packets, prove they decide exactly as
 * the rule list read top to bottom would (the packet tracer's reading), including a duplicate key that must stay
 * dead, a linear rule after the run, and per-rule counters through the map.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../services/core/validate.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { tracePacket } from '../../services/firewall/trace.ts';
import { readCounters } from '../../services/firewall/counters.ts';
import { Host, run } from '../../services/host/exec.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { probeMany, startServer, type ProbeTarget } from '../helpers/probe.ts';
import { labConfig } from '../helpers/daemon.ts';

let lab: Lab;
const servers: { stop(): Promise<void> }[] = [];
const HOSTS = Array.from({ length: 12 }, (_, k) => `198.51.100.${30 + k}`);
const HOSTS6 = Array.from({ length: 4 }, (_, k) => `2001:db8:2::${30 + k}`);

test.before(async () => {
  lab = await startLab();
  for (const a of HOSTS) await run('ip', ['-n', lab.wan, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
  for (const a of HOSTS6) await run('ip', ['-n', lab.wan, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);
  // One server per protocol on the wan host answers every port: redirect 8000-9999 to it.
  await new Host(lab.wan).nft(
    'table inet labredirect {\n chain pre { type nat hook prerouting priority dstnat; tcp dport 8000-9999 redirect to :7000\n udp dport 8000-9999 redirect to :7000\n }\n}\n',
  );
  servers.push(await startServer(lab.wan, { proto: 'tcp', port: 7000 }));
  servers.push(await startServer(lab.wan, { proto: 'udp', port: 7000 }));
});

test.after(async () => {
  for (const s of servers) await s.stop();
  await lab?.down();
});

function config() {
  const doc = labConfig();
  const actions = ['accept', 'reject', 'drop'] as const;
  const rules: any[] = HOSTS.map((h, k) => ({ id: `h${k}`, from: 'lan', to: 'wan', destination: [h], services: [{ proto: 'tcp', ports: [String(8000 + k)] }], action: actions[k % 3] }));
  rules.push({ id: 'rng-0', from: 'lan', to: 'wan', destination: ['198.51.100.40/31'], services: [{ proto: 'tcp', ports: ['8500-8510'] }], action: 'reject' });
  rules.push({ id: 'rng-1', from: 'lan', to: 'wan', destination: ['198.51.100.38/31'], services: [{ proto: 'udp', ports: ['8600-8610'] }], action: 'accept' });
  rules.push({ id: 'dup', from: 'lan', to: 'wan', destination: [HOSTS[0]], services: [{ proto: 'tcp', ports: ['8000'] }], action: 'reject' });
  rules.push(...HOSTS6.map((h, k) => ({ id: `v6-${k}`, from: 'lan', to: 'wan', destination: [h], services: [{ proto: 'udp', ports: [String(8100 + k)] }], action: k % 2 ? 'reject' : 'accept' })));
  rules.push({ id: 'catch', from: 'lan', to: 'wan', destination: ['198.51.100.32/29', '2001:db8:2::/120'], action: 'reject' });
  doc.firewall.forward = rules;
  return parseConfig(doc);
}

const expectStatus: Record<string, string[]> = { accept: ['open'], drop: ['timeout'], reject: ['refused', 'unreachable'] };

test('verdict maps decide like the ordered rule list', async () => {
  const cfg = config();
  const { script } = compileRuleset(cfg);
  assert.match(script, /ip daddr \. meta l4proto \. th dport vmap @m\.fwd\.lan\.wan\.\d+\.dp\.4/, 'the run is compiled into a map');
  assert.match(script, /flags interval/, 'prefixes and port ranges go into interval maps');
  await new Host(lab.fw).nft(script);
  const targets: (ProbeTarget & { src: string })[] = [];
  HOSTS.forEach((h, k) => {
    targets.push({ proto: 'tcp', host: h, port: 8000 + k, src: '192.0.2.10' });
    targets.push({ proto: 'tcp', host: h, port: 8000 + k + 1, src: '192.0.2.10' });
  });
  for (const [host, proto, port] of [['198.51.100.40', 'tcp', 8505], ['198.51.100.41', 'tcp', 8511], ['198.51.100.38', 'udp', 8605], ['198.51.100.39', 'udp', 8610], ['198.51.100.39', 'udp', 8611]] as const) {
    targets.push({ proto, host, port, src: '192.0.2.10' });
  }
  HOSTS6.forEach((h, k) => {
    targets.push({ proto: 'udp', host: h, port: 8100 + k, src: '2001:db8:1::10' });
    targets.push({ proto: 'udp', host: h, port: 8200 + k, src: '2001:db8:1::10' });
  });
  const results = await probeMany(lab.lan, targets.map(({ src: _s, ...t }) => ({ ...t, timeoutMs: 800 })));
  const mismatches: string[] = [];
  targets.forEach((t, i) => {
    const trace = tracePacket(cfg, { from: 'lan', src: t.src, dst: t.host, proto: t.proto, dport: t.port });
    if (!expectStatus[trace.verdict].includes(results[i].status)) {
      mismatches.push(`${t.proto} ${t.host}:${t.port}: trace ${trace.verdict} (${trace.rule ?? trace.decidedBy}), kernel ${results[i].status}`);
    }
  });
  assert.equal(mismatches, []);
  console.log(`compared ${targets.length} flows`);
  const counters = await readCounters(new Host(lab.fw), compileRuleset(cfg).counters);
  assert.ok(counters.rules.h0.packets >= 1, 'h0 counted through the map');
  assert.is(counters.rules.dup.packets, 0, 'the duplicate key is dead');
  assert.ok(counters.rules.catch.packets >= 1, 'the linear rule after the run still decides');
});

test.run();
