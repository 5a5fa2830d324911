/**
 * Golden-file tests of the nft compiler: each test/fixtures/golden/NAME.json compiles to exactly NAME.nft.
 * After an intended change, regenerate with UPDATE_GOLDEN=1 and review the diff.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../services/core/validate.ts';
import { compileListsStaged, compileRuleset, portSet, aggregate } from '../../services/firewall/compile.ts';
import { parsePrefix } from '../../services/core/net.ts';

const dir = join(import.meta.dirname, '../fixtures/golden');
const update = process.env.UPDATE_GOLDEN === '1';

for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  test(`golden ${name}`, () => {
    const doc = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    const { script } = compileRuleset(parseConfig(doc));
    const golden = join(dir, name.replace(/\.json$/, '.nft'));
    if (update || !existsSync(golden)) writeFileSync(golden, script);
    assert.fixture(script, readFileSync(golden, 'utf8'));
  });
}

test('compile is deterministic and independent of object key order', () => {
  const doc = JSON.parse(readFileSync(join(dir, 'three-zones.json'), 'utf8'));
  const a = compileRuleset(parseConfig(doc)).script;
  const reordered = JSON.parse(JSON.stringify(doc));
  const addrs = reordered.objects.addresses;
  reordered.objects.addresses = Object.fromEntries(Object.entries(addrs).reverse());
  assert.is(compileRuleset(parseConfig(doc)).script, a);
  assert.is(compileRuleset(parseConfig(reordered)).script, a);
});

test('every rule line carries its rule id and named counter; the line map points at the rule', () => {
  const doc = JSON.parse(readFileSync(join(dir, 'three-zones.json'), 'utf8'));
  const { script, lineMap, counters } = compileRuleset(parseConfig(doc));
  const lines = script.split('\n');
  lines.forEach((line, i) => {
    const m = /comment "rule:([a-z0-9_-]+)"/.exec(line);
    if (!m) return;
    assert.ok(line.includes(`counter name "r_${m[1]}"`), line);
    const idx = doc.firewall.input.findIndex((r: any) => r.id === m[1]);
    const path = idx >= 0 ? `/firewall/input/${idx}` : `/firewall/forward/${doc.firewall.forward.findIndex((r: any) => r.id === m[1])}`;
    assert.is(lineMap[i], path);
  });
  assert.equal(counters['r_voip'], { kind: 'rule', id: 'voip', path: '/firewall/forward/4' });
  assert.not.ok(script.includes('rule:off'), 'a disabled rule is not compiled');
});

test('the anti-lockout rule keeps the API port open when the daemon listens elsewhere', () => {
  const doc = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8'));
  assert.match(compileRuleset(parseConfig(doc)).script, /iifname \{ "lan0" \} tcp dport \{ 22, 443 \} counter name "anti_lockout"/);
  assert.match(compileRuleset(parseConfig(doc), { apiPort: 8443 }).script, /iifname \{ "lan0" \} tcp dport \{ 22, 8443 \} counter name "anti_lockout"/);
});

test('comments never reach the script', () => {
  const doc = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8'));
  doc.firewall.forward[0].comment = 'say "hi"; } flush ruleset\n{ evil';
  const { script } = compileRuleset(parseConfig(doc));
  assert.not.ok(script.includes('evil'));
  assert.not.ok(script.includes('flush ruleset'));
});

test('port sets are merged and sorted', () => {
  assert.is(portSet([{ lo: 80, hi: 80 }]), '80');
  assert.is(portSet([{ lo: 443, hi: 443 }, { lo: 80, hi: 80 }, { lo: 81, hi: 90 }, { lo: 85, hi: 100 }]), '{ 80-100, 443 }');
});

test('prefix aggregation drops covered prefixes', () => {
  const ps = ['10.0.0.0/8', '10.1.2.3', '11.0.0.0/16', '10.255.255.255', '11.0.0.0/24', '12.0.0.1'].map((s) => parsePrefix(s)!);
  assert.equal(aggregate(ps).map((p) => p.text), ['10.0.0.0/8', '11.0.0.0/16', '12.0.0.1']);
});

test('a blocklist that repeats addresses loads each once (first occurrences, in order), in both loads', () => {
  const doc = JSON.parse(readFileSync(join(dir, 'three-zones.json'), 'utf8'));
  const entries = ['192.0.2.7', '198.51.100.1', '192.0.2.7', '2001:db8::1', '2001:DB8:0::1', '198.51.100.1', '192.0.2.9'];
  doc.firewall.blocklists = [{ name: 'rep', entries }];
  const config = parseConfig(doc);
  const { script } = compileRuleset(config);
  const line = (set: string) => script.split('\n').findIndex((l) => l.includes(`set ${set} {`));
  const elements = (set: string) => script.split('\n')[line(set) + 3].trim();
  assert.is(elements('bl.rep.4h'), '192.0.2.7, 198.51.100.1, 192.0.2.9');
  assert.is(elements('bl.rep.6h'), '2001:db8::1');
  assert.is(compileListsStaged(config, 'x').elements, 'a bl.rep.4h 192.0.2.7\na bl.rep.4h 198.51.100.1\na bl.rep.4h 192.0.2.9\na bl.rep.6h 2001:db8::1\n');
  // Without repeats, the list is taken as it is.
  doc.firewall.blocklists = [{ name: 'rep', entries: ['192.0.2.9', '192.0.2.7'] }];
  assert.is(compileListsStaged(parseConfig(doc), 'x').elements, 'a bl.rep.4h 192.0.2.9\na bl.rep.4h 192.0.2.7\n');
});

test.run();
