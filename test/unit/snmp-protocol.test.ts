/** The agent's pure parts: the BER header reader, the access decision, listen addresses, the token bucket. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseHeader, readTlv } from '../../services/snmp/ber.ts';
import { decide, parseSources, sourcePrefix, type AccessPolicy } from '../../services/snmp/access.ts';
import { newEngineId, parseListenAddress } from '../../services/snmp/agent.ts';
import { TokenBucket } from '../../services/snmp/notify.ts';
import { int, octets, oid, pdu, seq, v2cGet, v3Discovery } from '../fixtures/snmp/ber.ts';

const ENGINE = Buffer.from('80007ed905aabbccddeeff0011', 'hex');
const policy = (over: Partial<AccessPolicy> = {}): AccessPolicy => ({
  communities: [
    { name: 'ro', sources: parseSources(['127.0.0.1/32', '2001:db8::/32']) },
    { name: 'far', sources: parseSources(['203.0.113.0/24']) },
  ],
  users: new Set(['nms']),
  engineId: ENGINE,
  engineBoots: 4,
  engineTime: () => 1000,
  ...over,
});
/** A v3 message with clear-text scoped PDU (flags as given). */
const v3 = (o: { flags: number; engine?: Buffer; user?: string; boots?: number; time?: number; tag?: number }) =>
  seq(
    int(3),
    seq(int(9), int(65507), octets(Buffer.from([o.flags])), int(3)),
    octets(seq(octets(o.engine ?? ENGINE), int(o.boots ?? 4), int(o.time ?? 1000), octets(o.user ?? 'nms'), octets(Buffer.alloc(24)), octets(Buffer.alloc(8)))),
    seq(octets(ENGINE), octets(''), pdu(o.tag ?? 0xa0, 9, [seq(oid('1.3.6.1.2.1.1.5.0'), Buffer.from([5, 0]))])),
  );

test('readTlv: short and long lengths, bounds', () => {
  assert.equal(readTlv(Buffer.from([0x04, 0x02, 0x61, 0x62]), 0), { tag: 4, start: 2, end: 4 });
  const long = Buffer.concat([Buffer.from([0x04, 0x81, 0x80]), Buffer.alloc(128)]);
  assert.equal(readTlv(long, 0), { tag: 4, start: 3, end: 131 });
  assert.is(readTlv(Buffer.from([0x04, 0x05, 0x61]), 0), undefined, 'content past the end');
  assert.is(readTlv(Buffer.from([0x04, 0x85, 1, 1, 1, 1, 1]), 0), undefined, 'length of 5 octets');
  assert.is(readTlv(Buffer.from([0x1f, 0x01, 0x00]), 0), undefined, 'multi-byte tag');
});

test('parseHeader: v2c and v3 messages; any truncation or trailing byte is rejected', () => {
  const g = v2cGet('ro', 77);
  const h = parseHeader(g)!;
  assert.is(h.version, 1);
  assert.is(h.version === 1 && h.community.toString(), 'ro');
  assert.is(h.pdu, 0xa0);
  const d = parseHeader(v3Discovery(5))!;
  assert.ok(d.version === 3 && d.engineId.length === 0 && d.user === '' && d.flags === 4 && d.pdu === 0xa0);
  const m = parseHeader(v3({ flags: 7 }))!;
  assert.ok(m.version === 3 && m.engineBoots === 4 && m.engineTime === 1000 && m.user === 'nms' && m.securityModel === 3);
  for (const msg of [g, v3Discovery(5), v3({ flags: 7 })]) {
    for (let n = 0; n < msg.length; n++) assert.is(parseHeader(msg.subarray(0, n)), undefined, `truncated to ${n}`);
    assert.is(parseHeader(Buffer.concat([msg, Buffer.from([0])])), undefined, 'trailing byte');
  }
  assert.is(parseHeader(seq(int(2), octets('ro'), pdu(0xa0, 1, []))), undefined, 'version 2 does not exist');
});

test('decide: v2c communities with their source networks, read requests only, no v1', () => {
  const p = policy();
  const get = parseHeader(v2cGet('ro', 1))!;
  assert.equal(decide(get, '127.0.0.1', p), { ok: true, kind: 'request' });
  assert.equal(decide(get, '::ffff:127.0.0.1', p), { ok: true, kind: 'request' }, 'IPv4-mapped source');
  assert.equal(decide(get, '2001:db8::5', p), { ok: true, kind: 'request' });
  assert.is(decide(get, '127.0.0.2', p).ok, false, 'outside 127.0.0.1/32');
  assert.is(decide(parseHeader(v2cGet('far', 1))!, '127.0.0.1', p).ok, false, 'community of another network');
  assert.is(decide(parseHeader(v2cGet('RO', 1))!, '127.0.0.1', p).ok, false, 'communities are case-sensitive');
  assert.is(decide(parseHeader(v2cGet('r', 1))!, '127.0.0.1', p).ok, false, 'prefix of a community');
  const set = parseHeader(seq(int(1), octets('ro'), pdu(0xa3, 1, [])))!;
  assert.is(decide(set, '127.0.0.1', p).ok, false, 'SET');
  const v1 = parseHeader(seq(int(0), octets('ro'), pdu(0xa0, 1, [])))!;
  assert.is(decide(v1, '127.0.0.1', p).ok, false, 'v1');
  for (const tag of [0xa1, 0xa5]) assert.ok(decide(parseHeader(seq(int(1), octets('ro'), pdu(tag, 1, [])))!, '127.0.0.1', p).ok);
});

test('decide: v3 discovery, known user at authPriv, this engine, time window', () => {
  const p = policy();
  assert.equal(decide(parseHeader(v3Discovery(1))!, '127.0.0.1', p), { ok: true, kind: 'discovery' });
  assert.ok(decide(parseHeader(v3({ flags: 7 }))!, '192.0.2.9', p).ok, 'v3 is not limited by source');
  assert.ok(decide(parseHeader(v3({ flags: 7, boots: 0, time: 0 }))!, '127.0.0.1', p).ok, 'time synchronisation');
  assert.ok(decide(parseHeader(v3({ flags: 7, time: 1149 }))!, '127.0.0.1', p).ok);
  const refused: [string, Buffer][] = [
    ['unknown user', v3({ flags: 7, user: 'x' })],
    ['authNoPriv', v3({ flags: 5 })],
    ['noAuthNoPriv', v3({ flags: 4 })],
    ['other engine', v3({ flags: 7, engine: Buffer.from('80001f8880aabbccdd', 'hex') })],
    ['old boots', v3({ flags: 7, boots: 3 })],
    ['late', v3({ flags: 7, time: 1200 })],
    ['SET', v3({ flags: 7, tag: 0xa3 })],
    ['discovery with a user', v3({ flags: 4, engine: Buffer.alloc(0) })],
  ];
  for (const [what, msg] of refused) assert.is(decide(parseHeader(msg)!, '127.0.0.1', p).ok, false, what);
});

test('sources, listen addresses, engine ids', () => {
  assert.is(sourcePrefix('::ffff:10.1.2.3')!.text, '10.1.2.3');
  assert.is(parseSources(['nonsense', '10.0.0.0/8']).length, 1);
  assert.equal(parseListenAddress('127.0.0.1:1161'), { address: '127.0.0.1', port: 1161, family: 4 });
  assert.equal(parseListenAddress('0.0.0.0'), { address: '0.0.0.0', port: 161, family: 4 });
  assert.equal(parseListenAddress('[::1]:1161'), { address: '::1', port: 1161, family: 6 });
  assert.equal(parseListenAddress('::'), { address: '::', port: 161, family: 6 });
  for (const bad of ['host:161', '1.2.3.4:0', '1.2.3.4:70000', '256.1.1.1', '1.2.3', '[x]:1']) assert.is(parseListenAddress(bad), undefined, bad);
  const e = newEngineId();
  assert.is(e.length, 13);
  assert.is(e.subarray(0, 5).toString('hex'), '80007ed905');
  assert.is.not(newEngineId().toString('hex'), e.toString('hex'));
});

test('token bucket: a burst, then the rate', () => {
  let now = 0;
  const b = new TokenBucket(6, 3, () => now);
  assert.equal([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  now += 9_999;
  assert.is(b.take(), false, 'a token takes 10 s at 6/min');
  now += 2;
  assert.is(b.take(), true);
  now += 3_600_000;
  assert.equal([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'never more than the burst');
});

test.run();
