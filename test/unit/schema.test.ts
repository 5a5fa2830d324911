import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configJsonSchema } from '../../services/core/schema.ts';
import { validateConfig } from '../../services/core/validate.ts';

const root = join(import.meta.dirname, '../..');
const lab = () => JSON.parse(readFileSync(join(root, 'system/examples/lab.json'), 'utf8'));

test('the example lab configuration is valid', () => {
  const r = validateConfig(lab());
  assert.equal(r.problems, []);
  assert.ok(r.ok);
});

test('system/schema/rampart.schema.json is current (regenerate with `npm run schema`)', () => {
  const file = JSON.parse(readFileSync(join(root, 'system/schema/rampart.schema.json'), 'utf8'));
  assert.equal(file, JSON.parse(JSON.stringify(configJsonSchema())));
});

type Case = [string, (d: any) => void, string, RegExp];
const cases: Case[] = [
  ['missing schema', (d) => delete d.schema, '/schema', /./],
  ['wrong schema version', (d) => (d.schema = 2), '/schema', /./],
  ['rule without action', (d) => delete d.firewall.forward[0].action, '/firewall/forward/0/action', /./],
  ['bad action', (d) => (d.firewall.forward[0].action = 'allow'), '/firewall/forward/0/action', /./],
  ['unknown zone in rule', (d) => (d.firewall.forward[0].from = 'dmz'), '/firewall/forward/0/from', /unknown zone "dmz"/],
  ['unknown to-zone', (d) => (d.firewall.forward[0].to = 'dmz'), '/firewall/forward/0/to', /unknown zone/],
  ['input rule with a to-zone', (d) => (d.firewall.input[0].to = 'wan'), '/firewall/input/0/to', /input rules/],
  ['unknown address object', (d) => (d.firewall.forward[2].destination = ['nowhere']), '/firewall/forward/2/destination/0', /unknown address object/],
  ['bad CIDR', (d) => (d.firewall.forward[2].destination = ['203.0.113.0/33']), '/firewall/forward/2/destination/0', /not an IP address or object name/],
  ['bad IPv4', (d) => (d.objects.addresses['web-srv'] = ['192.0.2.256']), '/objects/addresses/web-srv/0', /not an IP/],
  ['unknown service', (d) => (d.firewall.forward[0].services = ['gopher']), '/firewall/forward/0/services/0', /unknown service/],
  ['port out of range', (d) => (d.objects.services.web[0].ports = ['70000']), '/objects/services/web/0/ports/0', /range/],
  ['inverted port range', (d) => (d.objects.services.alt[0].ports = ['9000-8000']), '/objects/services/alt/0/ports/0', /low end/],
  ['ports on icmp', (d) => (d.firewall.forward[0].services = [{ proto: 'icmp', ports: ['1'] }]), '/firewall/forward/0/services/0/ports', /no ports/],
  ['duplicate rule id across chains', (d) => (d.firewall.forward[1].id = 'mgmt'), '/firewall/forward/1/id', /duplicate id "mgmt"/],
  ['duplicate zone', (d) => d.zones.push({ name: 'lan' }), '/zones/2/name', /duplicate zone/],
  ['duplicate device', (d) => (d.interfaces[1].device = 'lan0'), '/interfaces/1/device', /used by another/],
  ['device with injection', (d) => (d.interfaces[0].device = 'lan0"; flush ruleset'), '/interfaces/0/device', /interface name/],
  ['device with newline', (d) => (d.interfaces[0].device = 'lan0\nflush'), '/interfaces/0/device', /interface name/],
  ['device too long', (d) => (d.interfaces[0].device = 'abcdefghijklmnop'), '/interfaces/0/device', /interface name/],
  ['rule id with quote', (d) => (d.firewall.forward[0].id = 'a"b'), '/firewall/forward/0/id', /must be a name/],
  ['unicode zone name', (d) => (d.zones[0].name = 'län'), '/zones/0/name', /must be a name/],
  ['huge number', (d) => (d.telemetry.intervalSeconds = 1e300), '/telemetry/intervalSeconds', /./],
  ['wrong type for rules', (d) => (d.firewall.forward = 'all'), '/firewall/forward', /./],
  ['unknown field', (d) => (d.firewall.forward[0].sources = ['1.2.3.4']), '/firewall/forward/0', /unknown field: "sources"/],
  ['family mismatch', (d) => (d.firewall.forward[2].source = ['2001:db8::/32']), '/firewall/forward/2', /no address family in common/],
  ['icmp to an IPv6 destination', (d) => (d.firewall.forward[0] = { id: 'x', from: 'lan', to: 'wan', destination: ['2001:db8::1'], services: [{ proto: 'icmp' }], action: 'accept' }), '/firewall/forward/0', /no address family/],
  ['overlapping port forwards', (d) => d.firewall.nat.portForwards.push({ id: 'web2', zone: 'wan', proto: 'tcp', port: '8000-8090', to: '192.0.2.11' }), '/firewall/nat/portForwards/1/port', /overlaps port forward/],
  ['port forward to a CIDR', (d) => (d.firewall.nat.portForwards[0].to = '192.0.2.0/24'), '/firewall/nat/portForwards/0/to', /not an IP address/],
  ['port forward port range mismatch', (d) => Object.assign(d.firewall.nat.portForwards[0], { port: '8080-8081', toPort: '80-90' }), '/firewall/nat/portForwards/0/toPort', /same range/],
  ['bad blocklist entry', (d) => d.firewall.blocklists[0].entries.push('example.com'), '/firewall/blocklists/0/entries/2', /not an IP/],
  ['bad limit rate', (d) => (d.firewall.forward[0].limit = { rate: '10/fortnight' }), '/firewall/forward/0/limit/rate', /./],
  ['interface in unknown zone', (d) => (d.interfaces[0].zone = 'dmz'), '/interfaces/0/zone', /unknown zone/],
  ['bad interface address', (d) => (d.interfaces[0].addresses = ['192.0.2.1']), '/interfaces/0/addresses/0', /interface address/],
  ['key with slash is escaped in the pointer', (d) => (d.objects.addresses['a/b'] = ['1.2.3.4']), '/objects/addresses/a~1b', /./],
  ['zone named any', (d) => d.zones.push({ name: 'any' }), '/zones/2/name', /reserved/],
  ['rate limit the kernel cannot hold', (d) => (d.firewall.forward[0].limit = { rate: '1/day', burst: 213504 }), '/firewall/forward/0/limit/burst', /burst too large/],
  ['empty anti-lockout port list', (d) => (d.firewall.antiLockout = { ports: [] }), '/firewall/antiLockout/ports', /./],
  ['sync enabled without broker', (d) => (d.sync = { enabled: true }), '/sync/broker', /required/],
];

for (const [name, mutate, path, msg] of cases) {
  test(`rejects: ${name}`, () => {
    const doc = lab();
    mutate(doc);
    const r = validateConfig(doc);
    assert.not.ok(r.ok, 'should be invalid');
    const hit = r.problems.find((p) => p.path === path);
    assert.ok(hit, `expected a problem at ${path}, got ${JSON.stringify(r.problems)}`);
    assert.match(hit!.message, msg);
  });
}

test('the largest burst the kernel holds is accepted', () => {
  const doc = lab();
  doc.firewall.forward[0].limit = { rate: '1/day', burst: 213503 };
  assert.ok(validateConfig(doc).ok);
});

test('not an object at all', () => {
  for (const doc of [null, 42, 'x', [], true]) {
    const r = validateConfig(doc);
    assert.not.ok(r.ok);
    assert.is(r.problems[0].path, '');
  }
});

test('free-text comments may hold anything', () => {
  const doc = lab();
  doc.firewall.forward[0].comment = 'it\'s "quoted" { braces } ; flush ruleset\n€ ✓';
  assert.ok(validateConfig(doc).ok);
});

test('problems are capped, not unbounded', () => {
  const doc = lab();
  doc.firewall.blocklists[0].entries = Array.from({ length: 5000 }, (_, i) => `bad-${i}`);
  const r = validateConfig(doc);
  assert.ok(r.problems.length <= 201);
  assert.match(r.problems[r.problems.length - 1].message, /too many problems/);
});

test.run();
