/** The address parser against ipaddr.js as an oracle, on generated and hand-picked inputs. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { canonicalV6, contains, overlaps, parseAddress, parseInterfaceAddress, parsePrefix } from '../../services/core/net.ts';

function oracle(s: string): string | undefined {
  try {
    const slash = s.indexOf('/');
    const addr = ipaddr.parse(slash === -1 ? s : s.slice(0, slash));
    if (addr.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(slash === -1 ? s : s.slice(0, slash))) return undefined;
    const max = addr.kind() === 'ipv4' ? 32 : 128;
    const len = slash === -1 ? max : Number(s.slice(slash + 1));
    if (!/^(0|[1-9]\d{0,2})$/.test(slash === -1 ? String(max) : s.slice(slash + 1)) || len > max) return undefined;
    const bytes = addr.toByteArray();
    for (let bit = len; bit < max; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
    const net = ipaddr.fromByteArray(bytes).toString();
    return len === max ? net : `${net}/${len}`;
  } catch {
    return undefined;
  }
}

test('generated IPv4 and IPv6 prefixes match the oracle', () => {
  const v4 = fc.tuple(fc.ipV4(), fc.option(fc.integer({ min: 0, max: 32 }))).map(([a, l]) => (l === null ? a : `${a}/${l}`));
  // ipaddr.js reads "::a.b.c.d" as IPv4-mapped (::ffff:a.b.c.d), which RFC 4291 does not: embedded IPv4 tails are
  // checked by hand below instead.
  const v6 = fc
    .tuple(fc.ipV6().filter((a) => !a.includes('.')), fc.option(fc.integer({ min: 0, max: 128 })))
    .map(([a, l]) => (l === null ? a : `${a}/${l}`));
  fc.assert(
    fc.property(fc.oneof(v4, v6), (s) => {
      assert.is(parsePrefix(s)?.text, oracle(s), s);
    }),
    { numRuns: 3000, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
  );
});

test('hand-picked inputs', () => {
  const cases: [string, string | undefined][] = [
    ['192.0.2.1', '192.0.2.1'],
    ['192.0.2.77/24', '192.0.2.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['010.0.0.1', undefined],
    ['256.0.0.1', undefined],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['1.2.3.4/33', undefined],
    ['1.2.3.4/', undefined],
    ['1.2.3.4/024', undefined],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['2001:db8:1:2:3:4:5:6/48', '2001:db8:1::/48'],
    ['::', '::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['::0.0.0.0', '::'],
    ['64:ff9b::198.51.100.1', '64:ff9b::c633:6401'],
    ['1::2::3', undefined],
    ['fe80::1%eth0', undefined],
    ['2001:db8::/129', undefined],
    ['example.com', undefined],
    ['', undefined],
    [' 1.2.3.4', undefined],
  ];
  for (const [input, want] of cases) assert.is(parsePrefix(input)?.text, want, input);
});

test('arbitrary strings of IPv6 characters: accepted exactly when the oracle accepts them', () => {
  const chars = fc.constantFrom(':', ':', ':', '0', '1', 'a', 'F', 'f', '9', 'g');
  const text = fc.array(chars, { minLength: 0, maxLength: 42 }).map((a) => a.join(''));
  fc.assert(
    fc.property(text, (s) => {
      assert.is(parsePrefix(s)?.text, oracle(s), s);
    }),
    { numRuns: 5000, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
  );
  for (const s of [':1::', '1:', ':1', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', '::1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::', '12345::', ':::', '1:::2', '::1.2.3.4.5', '1.2.3.4::', '::1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4']) {
    assert.is(parsePrefix(s)?.text, s.includes('.') ? parsePrefix(s)?.text : oracle(s), s);
  }
  assert.is(parsePrefix('::1:2:3:4:5:6:1.2.3.4'), undefined, 'nine groups with the IPv4 tail');
  assert.is(parsePrefix('1:2:3:4:5:6:1.2.3.4')?.text, '1:2:3:4:5:6:102:304');
  assert.is(parsePrefix('1:2:3:4:5:6:7:1.2.3.4'), undefined);
  assert.is(parsePrefix('::1.2.3.4.5'), undefined);
});

test('canonicalV6 gives parsePrefix\'s text for every single IPv6 address, and refuses what it refuses', () => {
  const chars = fc.constantFrom(':', ':', '0', '1', 'a', 'F', 'f', '.', '2', 'g');
  const text = fc.oneof(fc.ipV6(), fc.array(chars, { minLength: 0, maxLength: 42 }).map((a) => a.join('')));
  fc.assert(
    fc.property(text, (s) => {
      const p = parsePrefix(s);
      assert.is(canonicalV6(s), p && p.family === 6 ? p.text : undefined, s);
    }),
    { numRuns: 5000, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
  );
});

test('addresses, interface addresses, containment', () => {
  assert.is(parseAddress('192.0.2.0/24'), undefined);
  const itf = parseInterfaceAddress('192.0.2.1/24')!;
  assert.equal([itf.host.text, itf.network.text], ['192.0.2.1', '192.0.2.0/24']);
  assert.ok(contains(parsePrefix('10.0.0.0/8')!, parsePrefix('10.1.2.3')!));
  assert.not.ok(contains(parsePrefix('10.0.0.0/8')!, parsePrefix('11.0.0.1')!));
  assert.ok(overlaps(parsePrefix('2001:db8::/32')!, parsePrefix('2001:db8:1::/48')!));
  assert.not.ok(overlaps(parsePrefix('2001:db8::/32')!, parsePrefix('10.0.0.0/8')!));
});

test.run();
