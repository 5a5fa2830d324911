/**
 * The network planner against iproute2's JSON output (test/fixtures/network/running-state.json, captured from a
 * namespace): each NAME.json plans exactly NAME.ops. Regenerate with UPDATE_GOLDEN=1 and review the diff.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../services/core/validate.ts';
import { desiredState, planNetwork, planSysctls, routerSysctls, ownedAddresses, type RunningState, type IpLink } from '../../services/network/plan.ts';

const dir = join(import.meta.dirname, '../fixtures/network');
const update = process.env.UPDATE_GOLDEN === '1';
const running = (): RunningState => JSON.parse(readFileSync(join(dir, 'running-state.json'), 'utf8'));
const doc = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

for (const name of ['lan-services', 'readdress']) {
  test(`planned operations for ${name}.json`, () => {
    const ops = planNetwork(desiredState(parseConfig(doc(`${name}.json`))), running());
    const text = ops.map((o) => `ip ${o.argv.join(' ')}    # ${o.why}`).join('\n') + '\n';
    const golden = join(dir, `${name}.ops`);
    if (update || !existsSync(golden)) writeFileSync(golden, text);
    assert.fixture(text, readFileSync(golden, 'utf8'));
  });
}

test('only changed addresses move; dynamic and link-local addresses and kernel/dhcp routes are never touched', () => {
  const ops = planNetwork(desiredState(parseConfig(doc('readdress.json'))), running());
  const lines = ops.map((o) => o.argv.join(' '));
  assert.ok(lines.includes('addr add 192.0.2.2/24 dev lan0'));
  assert.ok(lines.includes('addr del 192.0.2.1/24 dev lan0'));
  assert.ok(lines.indexOf('addr add 192.0.2.2/24 dev lan0') < lines.indexOf('addr del 192.0.2.1/24 dev lan0'), 'the new address comes before the old one goes');
  assert.not.ok(lines.some((l) => l.includes('198.51.100.1/24')), 'an unchanged address is not touched');
  assert.not.ok(lines.some((l) => l.includes('192.0.2.99')), 'a dynamic address is not Rampart\'s');
  assert.not.ok(lines.some((l) => l.includes('fe80')), 'link-local addresses are the kernel\'s');
  assert.not.ok(lines.some((l) => l.includes('198.51.100.254')), 'the DHCP default route is the DHCP client\'s');
  assert.not.ok(lines.some((l) => l.includes('203.0.113.0/24')), 'a route already in place is not touched');
  assert.equal(lines[lines.length - 1], 'link set dev wan0 down', 'links go down last');
});

test('a running state that matches the document plans nothing', () => {
  const c = parseConfig(doc('readdress.json'));
  const state: RunningState = {
    links: [
      { ifname: 'lan0', flags: ['UP'], mtu: 1500, addr_info: [
        { family: 'inet', local: '192.0.2.2', prefixlen: 24, scope: 'global' },
        { family: 'inet6', local: '2001:0db8:1:0::1', prefixlen: 64, scope: 'global' },
      ] },
      { ifname: 'wan0', flags: [], mtu: 1500, addr_info: [{ family: 'inet', local: '198.51.100.1', prefixlen: 24, scope: 'global' }] },
    ],
    routes4: [{ dst: '203.0.113.0/24', gateway: '198.51.100.20', dev: 'wan0', protocol: 'static' }],
    routes6: [],
  };
  assert.equal(planNetwork(desiredState(c), state), []);
});

test('a changed prefix length is a new address; a changed metric is a new route', () => {
  const c = parseConfig(doc('readdress.json'));
  c.routes[0].metric = 50;
  const state: RunningState = {
    links: [{ ifname: 'lan0', flags: ['UP'], addr_info: [{ family: 'inet', local: '192.0.2.2', prefixlen: 25, scope: 'global' }] }],
    routes4: [{ dst: '203.0.113.0/24', gateway: '198.51.100.20', dev: 'wan0', protocol: 'static' }],
    routes6: [],
  };
  const lines = planNetwork(desiredState(c), state).map((o) => o.argv.join(' '));
  assert.ok(lines.includes('addr add 192.0.2.2/24 dev lan0'));
  assert.ok(lines.includes('addr del 192.0.2.2/25 dev lan0'));
  assert.ok(lines.includes('-4 route del 203.0.113.0/24 via 198.51.100.20 dev wan0 proto static metric 0'));
  assert.ok(lines.includes('-4 route replace 203.0.113.0/24 via 198.51.100.20 proto static metric 50'));
});

test('owned addresses: permanent global ones only', () => {
  const link = running().links.find((l: IpLink) => l.ifname === 'lan0')!;
  assert.equal(ownedAddresses(link), ['192.0.2.1/24']);
});

test('router sysctls: written only where they differ; RA accepted on SLAAC interfaces', () => {
  const c = parseConfig(doc('lan-services.json'));
  c.interfaces[1].slaac = true;
  const want = routerSysctls(c);
  assert.is(want['net/ipv4/ip_forward'], '1');
  assert.is(want['net/ipv4/conf/all/send_redirects'], '0');
  assert.is(want['net/ipv6/conf/wan0/accept_ra'], '2');
  const current = Object.fromEntries(Object.keys(want).map((k) => [k, want[k]]));
  current['net/ipv4/ip_forward'] = '0';
  assert.equal(planSysctls(want, current), ['net/ipv4/ip_forward=1']);
  assert.equal(Object.keys(routerSysctls(parseConfig(doc('readdress.json')))), ['net/ipv4/conf/all/promote_secondaries'], 'routerSysctls: false sets only what the planner relies on');
});

test.run();
