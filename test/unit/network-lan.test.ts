/**
 * dnsmasq configuration (golden file), lease-file parsing, and the DHCP client's request script and state file:
 * hostile values never reach a config line or a command.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../services/core/validate.ts';
import { dnsmasqConfig, dnsmasqPaths, parseLeases, safePath, wantsLanServices } from '../../services/network/lan.ts';
import { DHCLIENT_SCRIPT, parseClientState } from '../../services/network/dhcp-client.ts';

const dir = join(import.meta.dirname, '../fixtures/network');
const update = process.env.UPDATE_GOLDEN === '1';
const doc = () => JSON.parse(readFileSync(join(dir, 'lan-services.json'), 'utf8'));
const paths = dnsmasqPaths('/var/lib/rampart/network');

test('dnsmasq configuration (golden)', () => {
  const text = dnsmasqConfig(parseConfig(doc()), paths);
  const golden = join(dir, 'lan-services.dnsmasq.conf');
  if (update || !existsSync(golden)) writeFileSync(golden, text);
  assert.fixture(text, readFileSync(golden, 'utf8'));
  assert.is(dnsmasqConfig(parseConfig(doc()), paths), text, 'deterministic');
});

test('DNS off: no DNS port, no host records; no LAN services when nothing asks for them', () => {
  const d = doc();
  d.network.dns.enabled = false;
  const text = dnsmasqConfig(parseConfig(d), paths);
  assert.match(text, /^port=0$/m);
  assert.not.match(text, /host-record/);
  const none = doc();
  none.network = { manage: true };
  assert.not.ok(wantsLanServices(parseConfig(none)));
});

test('the generator refuses values that did not come through validation', () => {
  const c = parseConfig(doc());
  (c.network.dns.hosts[0] as any).name = 'x\nconf-file=/tmp/evil';
  assert.throws(() => dnsmasqConfig(c, paths), /refusing host name/);
  const c2 = parseConfig(doc());
  c2.network.dns.upstream[0] = '1.2.3.4\nserver=6.6.6.6';
  assert.throws(() => dnsmasqConfig(c2, paths), /refusing upstream/);
  assert.throws(() => safePath('/var/lib/x\ndhcp-script=/bin/sh'), /unusable path/);
  assert.throws(() => safePath('relative/dir'), /unusable path/);
});

test('lease file: IPv4 and IPv6 lines, hostile names dropped', () => {
  const text = [
    '1764400000 02:00:00:00:00:0a 192.0.2.10 printer 01:02:00:00:00:00:0a',
    '0 02:00:00:00:00:0b 192.0.2.101 * *',
    '1764400000 02:00:00:00:00:0c 192.0.2.102 <script> *',
    'garbage line',
    'duid 00:01:00:01:2c:00:00:00:02:00:00:00:00:0a',
    '1764400000 1234 2001:db8:1::100 laptop 00:01:00:01',
  ].join('\n');
  assert.equal(parseLeases(text), [
    { expires: '2025-11-29T07:06:40.000Z', mac: '02:00:00:00:00:0a', address: '192.0.2.10', hostname: 'printer' },
    { expires: null, mac: '02:00:00:00:00:0b', address: '192.0.2.101', hostname: null },
    { expires: '2025-11-29T07:06:40.000Z', mac: '02:00:00:00:00:0c', address: '192.0.2.102', hostname: null },
    { expires: '2025-11-29T07:06:40.000Z', mac: null, address: '2001:db8:1::100', hostname: 'laptop' },
  ]);
});

test('DHCP client state file: every value checked again', () => {
  assert.equal(parseClientState('state=bound\naddress=198.51.100.50\nmask=255.255.255.0\nrouter=198.51.100.20\nlease=120\nreason=BOUND\n'), {
    state: 'bound', address: '198.51.100.50', mask: '255.255.255.0', router: '198.51.100.20', leaseSeconds: 120, reason: 'BOUND',
  });
  assert.equal(parseClientState('state=bound\naddress=1.2.3.4; rm -rf /\nlease=forever\nreason=$(x)\n'), { state: 'bound' });
});

test('the request script never evaluates lease values', () => {
  assert.not.match(DHCLIENT_SCRIPT, /\beval\b/);
  assert.not.match(DHCLIENT_SCRIPT, /`/);
  // Every use of a lease variable as an argument is quoted.
  for (const m of DHCLIENT_SCRIPT.matchAll(/\bip [^\n]*/g)) assert.not.match(m[0].replace(/"[^"]*"/g, '""'), /\$\{?(new|old)_/, m[0]);
});

test.run();
