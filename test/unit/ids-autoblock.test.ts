/**
 * Auto-block decisions over a real store: severity threshold, allowlist, one block per offender while it lasts,
 * escalating TTL for repeat offenders (doubling, capped), the token-bucket rate limit, and the alert link in the
 * reason. The kernel side (Blocks) is exercised in ids-lab.test.ts; here the block calls are recorded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { silentLogger } from '../../services/core/log.ts';
import { parsePrefix } from '../../services/core/net.ts';
import { AutoBlocker, MAX_ESCALATED_TTL, type AutoBlockPolicy } from '../../services/ids/autoblock.ts';
import type { AlertRecord } from '../../services/core/alerts.ts';
import type { BlockRequest } from '../../services/firewall/blocks.ts';

let dir: string;
let store: Store;
let calls: BlockRequest[][];

const policy = (over: Partial<AutoBlockPolicy> = {}): AutoBlockPolicy => ({
  enabled: true,
  maxSeverity: 2,
  ttlSeconds: 60,
  allow: ['192.0.2.0/24', '203.0.113.7'].map((p) => parsePrefix(p)!),
  homeNet: [parsePrefix('192.0.2.0/24')!],
  ...over,
});
let seq = 0;
const alert = (src: string, severity = 1): AlertRecord => ({ id: `a${++seq}`, seq, kind: 'ids', at: Date.now(), severity: severity as any, signature: 'sig', sid: 7, src, dst: '192.0.2.10' });

function blocker(opts: { ratePerSecond?: number; burst?: number } = {}): AutoBlocker {
  const b = new AutoBlocker({ store, log: silentLogger(), block: async (reqs) => void calls.push(reqs), ...opts });
  b.configure(policy());
  return b;
}

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-ab-'));
  store = new Store(join(dir, 'rampart.db')).open();
  calls = [];
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('severity threshold and allowlist; the reason names the alert', async () => {
  const b = blocker();
  b.onAlerts([alert('198.51.100.20', 3), alert('203.0.113.7'), alert('192.0.2.55'), alert('198.51.100.21')]);
  await b.settle();
  assert.equal(calls.flat().map((r) => r.address), ['198.51.100.21']);
  assert.match(calls[0][0].reason!, new RegExp(`^ids alert a${seq} sid 7: sig$`));
  assert.is(b.counters.allowlisted, 1, '203.0.113.7 (192.0.2.55 is inside: no outside end)');
});

test('one block per offender while it lasts; repeat offences double the TTL up to the cap', async () => {
  const b = blocker();
  b.onAlerts([alert('198.51.100.30'), alert('198.51.100.30')]);
  await b.settle();
  assert.is(calls.flat().length, 1);
  assert.is(calls[0][0].ttlSeconds, 60);
  for (const expected of [120, 240]) {
    b.forget(['198.51.100.30']); // the block was lifted (expired or removed by hand)
    b.onAlerts([alert('198.51.100.30')]);
    await b.settle();
    assert.is(calls.at(-1)![0].ttlSeconds, expected);
  }
  const off = b.offenders().find((o) => o.address === '198.51.100.30')!;
  assert.is(off.count, 3);
  for (let i = 0; i < 20; i++) {
    b.forget(['198.51.100.30']);
    b.onAlerts([alert('198.51.100.30')]);
    await b.settle();
  }
  assert.is(calls.at(-1)![0].ttlSeconds, MAX_ESCALATED_TTL);
});

test('rate limit: a burst beyond the bucket is counted, not blocked', async () => {
  const b = blocker({ ratePerSecond: 1, burst: 5 });
  b.onAlerts(Array.from({ length: 12 }, (_, i) => alert(`198.51.100.${100 + i}`)));
  await b.settle();
  assert.is(calls.flat().length, 5);
  assert.is(b.counters.rateLimited, 7);
});

test('disabled: nothing is blocked', async () => {
  const b = blocker();
  b.configure(policy({ enabled: false }));
  b.onAlerts([alert('198.51.100.40')]);
  await b.settle();
  assert.equal(calls, []);
});

test.run();
