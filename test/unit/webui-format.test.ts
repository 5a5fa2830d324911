/** Pure helpers of the web UI (webui/src/lib/format.ts): the config diff, problems by field, figures. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytes, duration, lineDiff, problemsUnder, rate, services } from '../../webui/src/lib/format.ts';

test('lineDiff: unchanged lines kept, removed and added lines marked, order preserved', () => {
  const a = ['{', '  "a": 1,', '  "b": 2,', '  "c": 3', '}'].join('\n');
  const b = ['{', '  "a": 1,', '  "b": 20,', '  "c": 3,', '  "d": 4', '}'].join('\n');
  const d = lineDiff(a, b);
  assert.equal(
    d.map((l) => l.op + l.text),
    [' {', '   "a": 1,', '-  "b": 2,', '-  "c": 3', '+  "b": 20,', '+  "c": 3,', '+  "d": 4', ' }'],
  );
  // Applying the diff gives back both sides.
  assert.is(d.filter((l) => l.op !== '+').map((l) => l.text).join('\n'), a);
  assert.is(d.filter((l) => l.op !== '-').map((l) => l.text).join('\n'), b);
  assert.equal(lineDiff('x', 'x'), [{ op: ' ', text: 'x' }]);
});

test('lineDiff keeps both sides on random edits', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  for (let round = 0; round < 200; round++) {
    const a = Array.from({ length: rnd(30) }, () => String(rnd(5)));
    const b = a.filter(() => rnd(4) !== 0).flatMap((x) => (rnd(5) === 0 ? [x, String(rnd(5))] : [x]));
    const d = lineDiff(a.join('\n'), b.join('\n'));
    assert.is(d.filter((l) => l.op !== '+').map((l) => l.text).join('\n'), a.join('\n'));
    assert.is(d.filter((l) => l.op !== '-').map((l) => l.text).join('\n'), b.join('\n'));
  }
});

test('problemsUnder: the API problems of one rule, by field', () => {
  const problems = [
    { path: '/firewall/forward/1/destination/0', message: 'not an IP address or object name' },
    { path: '/firewall/forward/1/destination/2', message: 'not an IP address or object name' },
    { path: '/firewall/forward/10/from', message: 'unknown zone' },
    { path: '/firewall/forward/1', message: 'rule shadowed' },
    { path: '/firewall/input/1/from', message: 'unknown zone' },
  ];
  assert.equal(problemsUnder(problems, '/firewall/forward/1'), {
    destination: 'not an IP address or object name; not an IP address or object name',
    '': 'rule shadowed',
  });
  assert.equal(problemsUnder(problems, '/firewall/forward/10'), { from: 'unknown zone' });
  assert.equal(problemsUnder(problems, '/firewall/forward/2'), {});
});

test('figures', () => {
  assert.is(bytes(0), '0 B');
  assert.is(bytes(1500), '1.5 KB');
  assert.is(bytes(25_300_000_000), '25.3 GB');
  assert.is(rate(125_000), '1.0 Mb/s');
  assert.is(duration(59), '59 s');
  assert.is(duration(119), '1 min 59 s');
  assert.is(duration(7260), '2 h 1 min');
  assert.is(services(['web', { proto: 'tcp', ports: ['22', '1000-2000'] }, { proto: 'icmp' }]), 'web, tcp/22,1000-2000, icmp');
  assert.is(services(undefined), 'any');
});

test.run();
