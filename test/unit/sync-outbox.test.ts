import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { AlertStore } from '../../services/core/alerts.ts';
import { Outbox, DEFAULT_LIMITS } from '../../services/sync/outbox.ts';

let dir: string;
let store: Store;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-outbox-'));
  store = new Store(join(dir, 'rampart.db'));
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const alert = (i: number, severity = 2) => ({ kind: 'alert' as const, severity, at: Date.now(), body: { id: `a${i}`, signature: `sig ${i}` } });

test('seqs increase and survive acks and reopening; rows leave only when acked', () => {
  const ob = new Outbox(store);
  store.open();
  const seqs = ob.enqueue([alert(1), alert(2), alert(3)]);
  assert.equal(seqs, [1, 2, 3]);
  assert.equal(ob.peek(0, 10, 1e9).map((r) => r.seq), [1, 2, 3]);
  assert.equal(ob.peek(1, 10, 1e9).map((r) => r.seq), [2, 3]);
  assert.is(ob.ackRange(2, 2), 1);
  assert.equal(ob.peek(0, 10, 1e9).map((r) => r.seq), [1, 3]);
  assert.is(ob.ackUpTo(3), 2);
  assert.is(ob.stats().rows, 0);
  store.close();
  const again = new Outbox(store);
  store.open();
  assert.equal(again.enqueue([alert(4)]), [4], 'seq is never reused');
  assert.is(again.stats().rows, 1);
});

test('peek respects item and byte limits but always returns one row', () => {
  const ob = new Outbox(store);
  store.open();
  ob.enqueue(Array.from({ length: 10 }, (_, i) => alert(i)));
  assert.is(ob.peek(0, 4, 1e9).length, 4);
  const one = ob.peek(0, 10, 1).length;
  assert.is(one, 1);
  const b = ob.peek(0, 10, 1e9)[0].bytes;
  assert.is(ob.peek(0, 10, b * 3).length, 3);
});

test('bounds: telemetry goes first, then the oldest low-severity alerts; a gap record tells what went', () => {
  const ob = new Outbox(store, { ...DEFAULT_LIMITS, maxRows: 6 });
  store.open();
  ob.enqueue([alert(1, 1), { kind: 'telemetry', at: Date.now(), body: { id: 't1' } }, alert(2, 4), alert(3, 3), alert(4, 4)]);
  assert.is(ob.stats().rows, 5);
  ob.enqueue([alert(5, 1), alert(6, 2)]); // 7 rows + gap > 6: drop telemetry, then a2 (sev 4, oldest)
  const rows = ob.peek(0, 100, 1e9);
  const ids = rows.map((r) => JSON.parse(r.body).id);
  assert.not.ok(ids.includes('t1'));
  assert.not.ok(ids.includes('a2'));
  assert.ok(ids.includes('a1') && ids.includes('a4') && ids.includes('a5'));
  const gap = rows.map((r) => JSON.parse(r.body)).find((b) => b.kind === 'gap');
  assert.ok(gap, 'a gap record is queued');
  assert.is(gap.dropped, 2);
  assert.equal(gap.byClass, { telemetry: 1, severity4: 1 });
  assert.ok(rows.length <= 6);
  assert.is(ob.stats().dropped, 2);
});

test('bounds by bytes and by age', () => {
  const ob = new Outbox(store, { maxRows: 1e6, maxBytes: 2000, maxAgeMs: 60_000 });
  store.open();
  ob.enqueue(Array.from({ length: 50 }, (_, i) => alert(i, 3)));
  assert.ok(ob.stats().bytes <= 2000, `bytes ${ob.stats().bytes}`);
  const old = new Outbox(store, { maxRows: 1e6, maxBytes: 1e9, maxAgeMs: 60_000 });
  old.ackUpTo(1e9);
  old.enqueue([{ ...alert(100), at: Date.now() - 120_000 }, alert(101)]);
  const ids = old.peek(0, 100, 1e9).map((r) => JSON.parse(r.body));
  assert.equal(ids.filter((b) => b.kind !== 'gap').map((b) => b.id), ['a101']);
  assert.ok(ids.some((b) => b.kind === 'gap' && b.dropped === 1));
});

test('drain classes: severe alerts and gap records before low severity, telemetry last; exact-row acks', () => {
  const ob = new Outbox(store);
  store.open();
  ob.enqueue([alert(1, 4), { kind: 'telemetry', at: Date.now(), body: { id: 't1' } }, alert(2, 1), alert(3, 3), alert(4, 2), { kind: 'gap', at: Date.now(), body: { id: 'g' } }]);
  assert.equal(ob.peekClass(2, 0, 10, 1e9).map((r) => r.seq), [3, 5, 6]);
  assert.equal(ob.peekClass(1, 0, 10, 1e9).map((r) => r.seq), [1, 4]);
  assert.equal(ob.peekClass(0, 0, 10, 1e9).map((r) => r.seq), [2]);
  assert.equal(ob.peekClass(2, 3, 10, 1e9).map((r) => r.seq), [5, 6]);
  // Acking the high batch (3..6) removes exactly its rows, not the low ones inside its range.
  assert.is(ob.ackSeqs([3, 5, 6]), 3);
  assert.equal(ob.peek(0, 10, 1e9).map((r) => r.seq), [1, 2, 4]);
  assert.is(ob.stats().rows, 3);
  assert.is(ob.ackSeqs([3, 5]), 0, 'acking twice deletes nothing more');
});

test('nextBatch: one drain class, the payload with each seq spliced in, item and byte limits, at least one row', () => {
  const ob = new Outbox(store);
  store.open();
  ob.enqueue([alert(1, 4), alert(2, 1), alert(3, 3), alert(4, 2), { kind: 'gap', at: 1, body: { id: 'g' } }]);
  const high = ob.nextBatch(2, 0, 10, 1e9)!;
  assert.equal({ prio: high.prio, from: high.from, to: high.to, rows: high.rows }, { prio: 2, from: 2, to: 5, rows: 3 });
  const parsed = JSON.parse(high.text);
  assert.equal({ seqFrom: parsed.seqFrom, seqTo: parsed.seqTo, count: parsed.count }, { seqFrom: 2, seqTo: 5, count: 3 });
  assert.equal(parsed.alerts.map((a: any) => [a.seq, a.id]), [[2, 'a2'], [4, 'a4'], [5, 'g']]);
  const rows = ob.peekClass(2, 0, 10, 1e9);
  assert.is(high.bytes, rows.reduce((n, r) => n + r.bytes, 0));
  assert.equal(parsed.alerts[0], { seq: 2, ...JSON.parse(rows[0].body) }, 'the stored body, unchanged, after its seq');
  assert.is(ob.nextBatch(2, 0, 2, 1e9)!.to, 4, 'item limit');
  assert.is(ob.nextBatch(2, 0, 10, 1)!.rows, 1, 'byte limit, but never empty');
  assert.is(ob.nextBatch(2, 0, 10, rows[0].bytes + rows[1].bytes)!.rows, 2);
  assert.is(ob.nextBatch(2, 5, 10, 1e9), null);
  assert.equal(JSON.parse(ob.nextBatch(1, 0, 10, 1e9)!.text).alerts.map((a: any) => a.seq), [1, 3]);
});

test('acked batches: exactly their rows go, not those of other classes inside their range; later, together', () => {
  const ob = new Outbox(store);
  store.open();
  ob.enqueue([alert(1, 4), alert(2, 1), alert(3, 3), alert(4, 2), alert(5, 1)]);
  const high = ob.nextBatch(2, 0, 10, 1e9)!; // 2, 4, 5
  assert.is(ob.stats().rows, 5);
  assert.is(ob.markAcked([high]), 3);
  assert.is(ob.stats().rows, 2, 'acked rows no longer count as waiting');
  assert.is(ob.peek(0, 10, 1e9).length, 5, 'still stored until the flush');
  assert.is(ob.flushAcked(), 3);
  assert.equal(ob.peek(0, 10, 1e9).map((r) => r.seq), [1, 3]);
  assert.equal(ob.stats(), { ...ob.stats(), rows: 2, bytes: ob.peek(0, 10, 1e9).reduce((n, r) => n + r.bytes, 0) });
  assert.is(ob.flushAcked(), 0);
  assert.is(ob.ackBatches([high]), 0, 'acking twice deletes nothing more');
  assert.is(ob.stats().rows, 2, 'totals stay right after an ack that found nothing');
});

test('bounds count only undelivered rows: acked rows are deleted before eviction, so no gap record for them', () => {
  const ob = new Outbox(store, { ...DEFAULT_LIMITS, maxRows: 4 });
  store.open();
  ob.enqueue([alert(1, 4), alert(2, 4), alert(3, 4)]);
  ob.markAcked([ob.nextBatch(1, 0, 2, 1e9)!]); // rows 1, 2 delivered
  ob.enqueue([alert(4, 4), alert(5, 4)]); // 3 undelivered rows: within the bound
  assert.is(ob.stats().dropped, 0);
  const ids = ob.peek(0, 10, 1e9).map((r) => JSON.parse(r.body).id);
  assert.equal(ids, ['a3', 'a4', 'a5']);
});

test('catchUp takes what the alert store holds beyond the cursor, once', () => {
  const alerts = new AlertStore(store);
  const ob = new Outbox(store);
  store.open();
  alerts.add(Array.from({ length: 12 }, (_, i) => ({ id: `x${i}`, kind: 'ids' as const, at: Date.now(), severity: 2 as const, signature: 's' })));
  assert.is(ob.catchUp(alerts), 12);
  assert.is(ob.catchUp(alerts), 0);
  alerts.add([{ id: 'y', kind: 'anomaly', at: Date.now(), severity: 3, signature: 'cpu' }]);
  assert.is(ob.catchUp(alerts), 1);
  const bodies = ob.peek(0, 100, 1e9).map((r) => JSON.parse(r.body));
  assert.is(bodies.length, 13);
  assert.is(bodies[12].id, 'y');
  assert.is(bodies[0].alertSeq, 1);
  assert.is(ob.peek(0, 100, 1e9)[12].kind, 'anomaly');
});

test.run();
