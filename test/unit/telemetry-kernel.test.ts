/** Parsing the netlink reader's output: links, conntrack and counters; malformed lines are skipped, not guessed. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseKernelLines } from '../../services/telemetry/kernel.ts';

test('links, conntrack and named counters come apart by line kind', () => {
  const text = [
    'link 1 lo 1 0 10 1 0 0 10 1 0 0',
    'link 2 lan0 1 6 18446744073709 20 1 2 1236 12 3 4',
    'link 3 wan0 1 2 5 5 0 0 5 5 0 0', // admin up, operationally down
    'link 4 dummy0 0 0 0 0 0 0 0 0 0 0', // admin down
    'conntrack 17 262144',
    'rampart r_lan-web 5 300',
    'rampart_blocks blocked 2 120',
    'link 5 bad x 6 1 1 1 1 1 1 1 1', // malformed: skipped
    'link 6 short 1 6 1',
    'rampart r_odd 1', // malformed counter line
    '',
  ].join('\n');
  const r = parseKernelLines(text);
  assert.equal(r.links.map((l) => [l.name, l.up]), [['lo', true], ['lan0', true], ['wan0', false], ['dummy0', false]]);
  const lan = r.links[1];
  assert.equal(lan, { ifindex: 2, name: 'lan0', up: true, rxBytes: 18446744073709, rxPackets: 20, rxErrors: 1, rxDropped: 2, txBytes: 1236, txPackets: 12, txErrors: 3, txDropped: 4 });
  assert.equal(r.conntrack, { count: 17, max: 262144 });
  assert.equal([...r.counters.get('rampart')!.entries()], [['r_lan-web', { packets: 5, bytes: 300 }]]);
  assert.equal(r.counters.get('rampart_blocks')!.get('blocked'), { packets: 2, bytes: 120 });
  assert.not.ok(r.counters.has('link') || r.counters.has('conntrack'));
});

test('no conntrack line: no conntrack figures', () => {
  assert.is(parseKernelLines('link 1 lo 1 0 0 0 0 0 0 0 0 0\n').conntrack, undefined);
});

test.run();
