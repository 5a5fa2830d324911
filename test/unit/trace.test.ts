import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../services/core/validate.ts';
import { tracePacket } from '../../services/firewall/trace.ts';
import { RampartError } from '../../services/core/errors.ts';

const lab = parseConfig(JSON.parse(readFileSync(join(import.meta.dirname, '../../system/examples/lab.json'), 'utf8')));

test('lan to wan web is accepted by lan-web', () => {
  const r = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '198.51.100.20', proto: 'tcp', dport: 443 });
  assert.is(r.verdict, 'accept');
  assert.is(r.rule, 'lan-web');
  assert.is(r.path, '/firewall/forward/0');
});

test('lan to wan ssh falls to the forward policy', () => {
  const r = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '198.51.100.20', proto: 'tcp', dport: 22 });
  assert.equal([r.verdict, r.decidedBy, r.chain], ['drop', 'policy', 'forward']);
});

test('reject rule and IPv6', () => {
  const r = tracePacket(lab, { from: 'lan', to: 'wan', src: '192.0.2.10', dst: '203.0.113.5', proto: 'udp', dport: 53 });
  assert.equal([r.verdict, r.rule], ['reject', 'no-test3']);
  const r6 = tracePacket(lab, { from: 'lan', src: '2001:db8:1::10', dst: '2001:db8:2::20', proto: 'tcp', dport: 8050 });
  assert.equal([r6.verdict, r6.rule], ['accept', 'lan-web']);
});

test('port forward rewrites the destination and opens the path', () => {
  const r = tracePacket(lab, { from: 'wan', src: '198.51.100.20', dst: '198.51.100.1', proto: 'tcp', dport: 8080 });
  assert.equal([r.verdict, r.decidedBy, r.rule], ['accept', 'port-forward', 'web-in']);
  assert.equal(r.dnat, { to: '192.0.2.10', port: 80 });
  const direct = tracePacket(lab, { from: 'wan', src: '198.51.100.20', dst: '192.0.2.10', proto: 'tcp', dport: 80 });
  assert.is(direct.verdict, 'drop');
});

test('a port forward to the firewall itself is accepted on input', () => {
  const doc = JSON.parse(readFileSync(join(import.meta.dirname, '../../system/examples/lab.json'), 'utf8'));
  doc.firewall.nat.portForwards = [{ id: 'self', zone: 'wan', proto: 'tcp', port: '8080', to: '192.0.2.1', toPort: '80' }];
  const r = tracePacket(parseConfig(doc), { from: 'wan', src: '198.51.100.20', dst: '198.51.100.1', proto: 'tcp', dport: 8080 });
  assert.equal([r.verdict, r.chain, r.decidedBy, r.rule], ['accept', 'input', 'port-forward', 'self']);
});

test('anti-lockout follows the API port of the running daemon', () => {
  const r = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '192.0.2.1', proto: 'tcp', dport: 8443 }, { apiPort: 8443 });
  assert.is(r.decidedBy, 'anti-lockout');
  const without = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '192.0.2.1', proto: 'tcp', dport: 8443 });
  assert.is(without.decidedBy, 'policy');
});

test('a port forward onto the same address and port translates nothing and opens nothing', () => {
  const doc = JSON.parse(readFileSync(join(import.meta.dirname, '../../system/examples/lab.json'), 'utf8'));
  doc.firewall.nat.portForwards = [{ id: 'same', zone: 'wan', proto: 'tcp', port: '8080', to: '192.0.2.1' }];
  const r = tracePacket(parseConfig(doc), { from: 'wan', src: '198.51.100.20', dst: '192.0.2.1', proto: 'tcp', dport: 8080 });
  assert.equal([r.verdict, r.decidedBy, r.dnat], ['drop', 'policy', undefined]);
});

test('blocks match the source only on input', () => {
  const r = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '192.0.2.1', proto: 'tcp', dport: 22 }, { blocks: ['192.0.2.1'] });
  assert.is(r.decidedBy, 'anti-lockout');
  const f = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '198.51.100.20', proto: 'tcp', dport: 80 }, { blocks: ['198.51.100.20'] });
  assert.is(f.decidedBy, 'dynamic-block');
});

test('input chain: mgmt rule, anti-lockout and policy', () => {
  assert.is(tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '192.0.2.1', proto: 'udp', dport: 161 }).rule, 'mgmt');
  assert.is(tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '192.0.2.1', proto: 'tcp', dport: 443 }).decidedBy, 'anti-lockout');
  const wan = tracePacket(lab, { from: 'wan', src: '198.51.100.20', dst: '198.51.100.1', proto: 'tcp', dport: 22 });
  assert.equal([wan.verdict, wan.decidedBy, wan.chain], ['drop', 'policy', 'input']);
  assert.is(tracePacket(lab, { from: 'wan', src: '198.51.100.20', dst: '198.51.100.1', proto: 'icmp' }).rule, 'ping-fw');
});

test('blocklists and dynamic blocks come first', () => {
  const r = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '203.0.113.66', proto: 'tcp', dport: 80 });
  assert.equal([r.verdict, r.decidedBy, r.rule], ['drop', 'blocklist', 'threats']);
  const d = tracePacket(lab, { from: 'lan', src: '192.0.2.10', dst: '198.51.100.20', proto: 'tcp', dport: 80 }, { blocks: ['198.51.100.0/24'] });
  assert.equal([d.verdict, d.decidedBy], ['drop', 'dynamic-block']);
});

test('bad requests are refused with pointers', () => {
  try {
    tracePacket(lab, { from: 'mars', src: 'x', dst: '2001:db8::1', proto: 'tcp' } as any);
    assert.unreachable();
  } catch (e) {
    assert.ok(e instanceof RampartError);
    const paths = (e as RampartError).problems.map((p) => p.path);
    assert.ok(paths.includes('/from') && paths.includes('/src') && paths.includes('/dport'), paths.join());
  }
});

test.run();
