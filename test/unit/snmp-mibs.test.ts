/**
 * The served MIB: the view's GET / GETNEXT / GETBULK semantics, Counter64 encoding, the MIB builders against a
 * golden file (test/fixtures/snmp/golden-mibs.json; UPDATE_GOLDEN=1 rewrites it), link parsing, CPU load, and the
 * `snmp` section of the configuration schema.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MibView, T, c32, c64, counter64Bytes, counter64Value, g32, int, str, ticks, type Instance } from '../../services/snmp/mib-store.ts';
import { ifMibInstances, operStatus } from '../../services/snmp/mibs/if-mib.ts';
import { CpuLoad, hostInstances, parsePerCpu } from '../../services/snmp/mibs/host-resources.ts';
import { rampartInstances, syncStateOf } from '../../services/snmp/mibs/rampart.ts';
import { systemInstances } from '../../services/snmp/mibs/system.ts';
import { ucdInstances } from '../../services/snmp/mibs/ucd.ts';
import { parseLinks, parseSpeeds } from '../../services/snmp/links.ts';
import { snmpSettings } from '../../services/snmp/service.ts';
import { parseConfig, validateConfig } from '../../services/core/validate.ts';
import { labConfig, ROOT } from '../helpers/daemon.ts';
import snmp from 'net-snmp';

test('the SMI type numbers are the agent library\'s', () => {
  const lib = snmp.ObjectType as Record<string, number>;
  for (const [name, value] of Object.entries(T)) assert.is(value, lib[name], name);
});

test('Counter64: minimal big-endian bytes, a leading zero when the top bit is set', () => {
  assert.is(counter64Bytes(0).toString('hex'), '00');
  assert.is(counter64Bytes(255).toString('hex'), '00ff');
  assert.is(counter64Bytes(2 ** 40).toString('hex'), '010000000000');
  assert.is(counter64Bytes(2n ** 64n - 1n).toString('hex'), '00ffffffffffffffff');
  assert.is(counter64Value(counter64Bytes(123456789012345n)), 123456789012345n);
  assert.is(c32('1', 2 ** 32 + 5).value, 5, 'Counter32 wraps');
  assert.is(g32('1', 2 ** 40).value, 2 ** 32 - 1, 'Gauge32 latches');
});

test('view: GET, GETNEXT in OID order (numeric, not textual), noSuchInstance vs noSuchObject, end of MIB', () => {
  const v = new MibView();
  v.set([int('1.3.6.1.2.1.2.2.1.1.10', 10), int('1.3.6.1.2.1.2.2.1.1.9', 9), str('1.3.6.1.2.1.1.5.0', 'fw'), ticks('1.3.6.1.2.1.1.3.0', () => 42)]);
  assert.equal(v.get('1.3.6.1.2.1.1.5.0'), { oid: '1.3.6.1.2.1.1.5.0', type: T.OctetString, value: 'fw' });
  assert.is(v.get('.1.3.6.1.2.1.1.3.0').value, 42, 'a getter is read at each request');
  assert.is(v.get('1.3.6.1.2.1.1.5.1').type, T.NoSuchInstance);
  assert.is(v.get('1.3.6.1.2.1.99.0').type, T.NoSuchObject);
  assert.is(v.get('1.2').type, T.NoSuchObject);
  assert.is(v.next('1.3.6.1.2.1.1').oid, '1.3.6.1.2.1.1.3.0');
  assert.is(v.next('1.3.6.1.2.1.1.5.0').oid, '1.3.6.1.2.1.2.2.1.1.9', '9 before 10');
  assert.is(v.next('1.3.6.1.2.1.2.2.1.1.9').oid, '1.3.6.1.2.1.2.2.1.1.10');
  assert.is(v.next('1.3.6.1.2.1.2.2.1.1.10').type, T.EndOfMibView);
  assert.is(v.next('0').oid, '1.3.6.1.2.1.1.3.0');
});

test('view: GETBULK repeats, stops at the end of the MIB, and keeps under the size limit', () => {
  const v = new MibView();
  const rows: Instance[] = [];
  for (let i = 1; i <= 50; i++) rows.push(int(`1.3.6.1.2.1.2.2.1.1.${i}`, i), str(`1.3.6.1.2.1.2.2.1.2.${i}`, `eth${i}`));
  v.set(rows);
  const b = v.bulk(['1.3.6.1.2.1.1', '1.3.6.1.2.1.2.2.1.1', '1.3.6.1.2.1.2.2.1.2'], 1, 3);
  assert.equal(b.map((x) => x.oid), ['1.3.6.1.2.1.2.2.1.1.1', '1.3.6.1.2.1.2.2.1.1.1', '1.3.6.1.2.1.2.2.1.2.1', '1.3.6.1.2.1.2.2.1.1.2', '1.3.6.1.2.1.2.2.1.2.2', '1.3.6.1.2.1.2.2.1.1.3', '1.3.6.1.2.1.2.2.1.2.3']);
  const end = v.bulk(['1.3.6.1.2.1.2.2.1.2.49'], 0, 10);
  assert.equal(end.map((x) => x.type), [T.OctetString, T.EndOfMibView], 'stops once every repeater reached the end');
  const small = v.bulk(['1.3.6.1.2.1.2.2.1'], 0, 1000, 500);
  assert.ok(small.length > 3 && small.length < 50, `${small.length} varbinds in 500 bytes`);
  assert.is(v.bulk(['1.3.6.1'], 0, 0).length, 0);
});

test('MIB builders: the golden instances', () => {
  const mac = Buffer.from([2, 0, 0, 0, 0, 1]);
  const counters = { rxBytes: 2 ** 33 + 7, rxPackets: 70, rxErrors: 1, rxDropped: 2, txBytes: 900, txPackets: 9, txErrors: 0, txDropped: 0 };
  const instances = [
    ...systemInstances({ descr: 'Rampart', objectId: '1.3.6.1.4.1.32473.1.1', upTime: () => 1234, contact: 'noc', name: 'fw', location: 'rack', modules: [{ id: '1.3.6.1.2.1.31', descr: 'IF-MIB' }] }),
    ...ifMibInstances([
      { index: 1, name: 'lo', alias: '', type: 24, mtu: 65536, speed: 0, mac: Buffer.alloc(6), adminUp: true, operStatus: 1, promiscuous: false, connector: false, lastChange: 0 },
      { index: 7, name: 'lan0', alias: 'lan', type: 6, mtu: 1500, speed: 1e10, mac, adminUp: true, operStatus: 1, promiscuous: false, connector: true, lastChange: 300, counters },
    ]),
    ...hostInstances({ uptime: () => 99, memoryBytes: 2048 * 1024, storage: [{ index: 1, kind: 'ram', descr: 'Physical memory', unit: 1024, sizeBytes: 2048 * 1024, usedBytes: 1024 * 1024 }], cpus: [{ descr: 'cpu', load: 12.4 }, { descr: 'cpu' }] }),
    ...ucdInstances({ load: [0.5, 0.25, 0.125], memory: { totalBytes: 2048 * 1024, availableBytes: 1024 * 1024, freeBytes: 512 * 1024, swapTotalBytes: 0, swapFreeBytes: 0 } }),
    ...rampartInstances({
      config: { version: 3, state: 'applied', pendingVersion: 0, hash: 'sha256:abc' },
      rules: [
        { id: 'mgmt', chain: 'input', action: 'accept', enabled: true, counter: { packets: 5, bytes: 300 } },
        { id: 'old', chain: 'forward', action: 'drop', enabled: false },
      ],
      idsAlerts: { 1: 2, 2: 0, 3: 0, 4: 1 },
      anomalies: 1,
      anomaliesActive: 0,
      blocked: 4,
      conntrack: { count: 10, max: 65536 },
      sync: { state: 'disabled', outbox: 0 },
      imageVersion: '0.1.0+202611290000',
    }),
  ];
  const v = new MibView();
  v.set(instances);
  const walk: string[] = [];
  for (let x = v.next('0'); x.type !== T.EndOfMibView; x = v.next(x.oid)) {
    const value = Buffer.isBuffer(x.value) ? (x.type === T.Counter64 ? `c64:${counter64Value(x.value)}` : `hex:${x.value.toString('hex')}`) : x.value;
    walk.push(`${x.oid} ${x.type} ${value}`);
  }
  const file = join(ROOT, 'test/fixtures/snmp/golden-mibs.json');
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, JSON.stringify(walk, null, 1) + '\n');
  assert.equal(walk, JSON.parse(readFileSync(file, 'utf8')));
  assert.ok(walk.includes(`1.3.6.1.2.1.31.1.1.1.6.7 ${T.Counter64} c64:${2 ** 33 + 7}`));
  assert.ok(walk.includes(`1.3.6.1.2.1.2.2.1.10.7 ${T.Counter32} 7`));
  assert.ok(!walk.some((l) => l.startsWith('1.3.6.1.4.1.32473.2.2.1.1.6.2 ')), 'a disabled rule has no counters');
});

test('links, speeds, operational state, CPU load', () => {
  const links = parseLinks(
    JSON.stringify([
      { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN', link_type: 'loopback', address: '00:00:00:00:00:00' },
      { ifindex: 5, ifname: 'lan0', flags: ['BROADCAST', 'UP'], mtu: 1500, operstate: 'LOWERLAYERDOWN', link_type: 'ether', address: '02:aa:bb:cc:dd:ee', ifalias: 'uplink' },
    ]),
  );
  assert.is(links[1].mac.toString('hex'), '02aabbccddee');
  assert.is(links[1].alias, 'uplink');
  assert.is(operStatus(links[0].operstate, links[0].flags), 1);
  assert.is(operStatus(links[1].operstate, links[1].flags), 7);
  assert.is(operStatus('DOWN', []), 2);
  const speeds = parseSpeeds('/sys/class/net/lan0/speed:10000\n/sys/class/net/wan0/speed:-1\n');
  assert.equal([...speeds], [['lan0', 1e10]]);
  const cpu = new CpuLoad(60_000);
  cpu.add(0, parsePerCpu('cpu  1 1 1 1\ncpu0 10 0 0 90 0 0 0 0\ncpu1 0 0 0 100 0 0 0 0\n'));
  assert.equal(cpu.loads(), [undefined, undefined]);
  cpu.add(5000, parsePerCpu('cpu0 60 0 0 140 0 0 0 0\ncpu1 0 0 0 200 0 0 0 0\n'));
  assert.equal(cpu.loads(), [50, 0]);
  assert.is(syncStateOf('lost', true), 'disconnected');
  assert.is(syncStateOf('connected', false), 'disabled');
});

test('schema: the snmp section, its checks, and the resolved settings', () => {
  const c = labConfig();
  c.objects.addresses.nms = ['192.0.2.50', '2001:db8:1::50'];
  c.snmp = {
    enabled: true,
    listen: ['127.0.0.1:1161', '[::1]:1161'],
    communities: [{ name: 'ro', sources: ['nms', '10.0.0.0/8'] }],
    users: [{ name: 'nms', auth: { key: 'auth-key-1' }, priv: { key: 'priv-key-1' } }],
    targets: [{ host: '192.0.2.50', community: 'trap' }, { host: '2001:db8:1::50', version: 'v3', user: 'nms', minSeverity: 1 }],
  };
  const s = snmpSettings(parseConfig(c));
  assert.equal(s.communities, [{ name: 'ro', sources: ['192.0.2.50', '2001:db8:1::50', '10.0.0.0/8'] }]);
  assert.equal(s.listen.map((l) => l.family), [4, 6]);
  assert.is(s.users[0].authProtocol, 'sha256');
  assert.is(s.users[0].privProtocol, 'aes');
  assert.is(s.targets[0].port, 162);
  assert.is(s.targets[0].minSeverity, 2);
  assert.is(s.targets[1].user?.name, 'nms');
  assert.is(s.ratePerMinute, 30);

  const problems = (snmp: unknown) => {
    const d = labConfig();
    d.snmp = snmp;
    const r = validateConfig(d) as any;
    return (r.problems ?? []).map((p: any) => `${p.path}: ${p.message}`).join('\n');
  };
  assert.match(problems({ users: [{ name: 'old', auth: { protocol: 'sha', key: 'auth-key-1' }, priv: { key: 'priv-key-1' } }] }), /\/snmp\/users\/0\/auth\/protocol: SHA-1 needs snmp.allowSha1/);
  assert.is(problems({ allowSha1: true, users: [{ name: 'old', auth: { protocol: 'sha', key: 'auth-key-1' }, priv: { key: 'priv-key-1' } }] }), '');
  assert.match(problems({ users: [{ name: 'x', auth: { protocol: 'md5', key: 'auth-key-1' }, priv: { key: 'priv-key-1' } }] }), /\/snmp\/users\/0\/auth\/protocol/);
  assert.match(problems({ users: [{ name: 'x', auth: { key: 'auth-key-1' }, priv: { protocol: 'des', key: 'priv-key-1' } }] }), /\/snmp\/users\/0\/priv\/protocol/);
  assert.match(problems({ users: [{ name: 'x', auth: { key: 'short' }, priv: { key: 'priv-key-1' } }] }), /\/snmp\/users\/0\/auth\/key/);
  assert.match(problems({ communities: [{ name: 'ro', sources: [] }] }), /\/snmp\/communities\/0\/sources/);
  assert.match(problems({ communities: [{ name: 'ro', sources: ['no-such-object'] }] }), /\/snmp\/communities\/0\/sources\/0/);
  assert.match(problems({ communities: [{ name: 'has space', sources: ['10.0.0.0/8'] }] }), /\/snmp\/communities\/0\/name/);
  assert.match(problems({ targets: [{ host: '192.0.2.9', version: 'v3', user: 'ghost' }] }), /\/snmp\/targets\/0\/user: not a user/);
  assert.match(problems({ targets: [{ host: '192.0.2.9' }] }), /\/snmp\/targets\/0\/community: a v2c target needs a community/);
  assert.match(problems({ targets: [{ host: 'nms.example.net', community: 'x' }] }), /\/snmp\/targets\/0\/host/);
  assert.match(problems({ listen: ['localhost:161'] }), /\/snmp\/listen\/0/);
});

test.run();
