/** Broken network configurations are refused with JSON pointers (validation is pure; nothing is applied). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../services/core/validate.ts';
import { parseConfig } from '../../services/core/validate.ts';
import { deviceProblems } from '../../services/network/validate.ts';

const dir = join(import.meta.dirname, '../fixtures/network');
const base = () => JSON.parse(readFileSync(join(dir, 'lan-services.json'), 'utf8'));

test('the fixture is valid', () => {
  assert.equal(validateConfig(base()).problems, []);
});

type Case = [string, (d: any) => void, string, RegExp];
const cases: Case[] = [
  ['overlapping subnets', (d) => (d.interfaces[1].addresses[0] = '192.0.2.129/25'), '/interfaces/1/addresses/0', /overlaps 192\.0\.2\.0\/24 of interface "lan"/],
  ['the same address twice', (d) => d.interfaces[0].addresses.push('192.0.2.1/24'), '/interfaces/0/addresses/2', /already at \/interfaces\/0\/addresses\/0/],
  ['gateway outside every connected subnet', (d) => (d.routes[0].gateway = '203.0.113.1'), '/routes/0/gateway', /outside every connected subnet/],
  ['gateway outside its interface', (d) => (d.routes[1].gateway = '2001:db8:1::20'), '/routes/1/gateway', /outside every subnet of interface "wan"/],
  ['link-local gateway without interface', (d) => d.routes.push({ destination: '2001:db8:7::/48', gateway: 'fe80::1' }), '/routes/2/interface', /link-local/],
  ['DHCP range outside its subnet', (d) => (d.network.dhcpServer.ranges[0].end = '192.0.3.10'), '/network/dhcpServer/ranges/0', /outside every subnet of interface "lan"/],
  ['DHCP range backwards', (d) => (d.network.dhcpServer.ranges[0].end = '192.0.2.50'), '/network/dhcpServer/ranges/0/end', /ends before it starts/],
  ['DHCP range with the router inside', (d) => (d.network.dhcpServer.ranges[0].start = '192.0.2.1'), '/network/dhcpServer/ranges/0', /own address/],
  ['DHCP range on an unknown interface', (d) => (d.network.dhcpServer.ranges[0].interface = 'dmz'), '/network/dhcpServer/ranges/0/interface', /unknown interface "dmz"/],
  ['DHCP range not an address', (d) => (d.network.dhcpServer.ranges[0].start = 'x'), '/network/dhcpServer/ranges/0/start', /not an IP/],
  ['static lease outside every range subnet', (d) => (d.network.dhcpServer.staticLeases[0].address = '198.51.100.9'), '/network/dhcpServer/staticLeases/0/address', /not inside/],
  ['duplicate MAC', (d) => d.network.dhcpServer.staticLeases.push({ mac: '02:00:00:00:00:0a', address: '192.0.2.11' }), '/network/dhcpServer/staticLeases/1/mac', /already has a lease/],
  ['bad MAC', (d) => (d.network.dhcpServer.staticLeases[0].mac = '02:00:00:00:00'), '/network/dhcpServer/staticLeases/0/mac', /MAC/],
  ['host name with a newline', (d) => (d.network.dhcpServer.staticLeases[0].hostname = 'a\nserver=6.6.6.6'), '/network/dhcpServer/staticLeases/0/hostname', /host name/],
  ['DNS host name clash', (d) => (d.network.dns.hosts[0].name = 'printer'), '/network/dns/hosts/0/name', /already used/],
  ['upstream not an address', (d) => (d.network.dns.upstream[0] = '8.8.8.8#53'), '/network/dns/upstream/0', /not an IP/],
  ['domain with a comma', (d) => (d.network.dns.domain = 'lab,example'), '/network/dns/domain', /domain/],
  ['RA on an interface without an IPv6 /64', (d) => (d.network.ra.interfaces = ['wan', 'lan']) && (d.interfaces[1].addresses = ['198.51.100.1/24']), '/network/ra/interfaces/0', /no static IPv6 \/64/],
  ['DHCP client and server on one interface', (d) => (d.interfaces[0].dhcp = true), '/interfaces/0/dhcp', /client and serve/],
  ['LAN services without manage', (d) => (d.network.manage = false), '/network/dhcpServer', /network\.manage/],
  ['MTU too small', (d) => (d.interfaces[0].mtu = 100), '/interfaces/0/mtu', /./],
  ['lease time too short for dnsmasq', (d) => (d.network.dhcpServer.ranges[0].leaseSeconds = 30), '/network/dhcpServer/ranges/0/leaseSeconds', /./],
];

for (const [name, mutate, path, message] of cases) {
  test(`refused: ${name}`, () => {
    const d = base();
    mutate(d);
    const r = validateConfig(d);
    assert.not.ok(r.ok, 'must be refused');
    const hit = r.problems.find((p) => p.path === path);
    assert.ok(hit, `expected a problem at ${path}, got ${JSON.stringify(r.problems)}`);
    assert.match(hit!.message, message);
  });
}

test('unmanaged documents keep their old meaning: overlaps and gateways are not checked', () => {
  const d = base();
  d.network = { manage: false };
  d.interfaces[1].addresses[0] = '192.0.2.129/25';
  d.routes[0].gateway = '203.0.113.1';
  assert.equal(validateConfig(d).problems, []);
});

test('a device that does not exist is a problem with a pointer (managed documents only)', () => {
  const c = parseConfig(base());
  assert.equal(deviceProblems(c, new Set(['lan0'])), [{ path: '/interfaces/1/device', message: 'no device "wan0" on this system' }]);
  assert.equal(deviceProblems(c, new Set(['lan0', 'wan0'])), []);
  const off = parseConfig({ ...base(), network: { manage: false } });
  assert.equal(deviceProblems(off, new Set()), []);
});

test.run();
