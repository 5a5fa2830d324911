import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store, canonicalJson, documentHash } from '../../services/core/store.ts';
import { waitFor } from '../helpers/daemon.ts';

let dir: string;
let store: Store;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-store-'));
  store = new Store(join(dir, 'rampart.db')).open();
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('opens in WAL mode with migrations applied', () => {
  assert.is(store.sql.pragma('journal_mode', { simple: true }), 'wal');
  assert.is(store.sql.pragma('user_version', { simple: true }), 3);
  store.close();
  store.open(); // re-opening runs no migration twice
  assert.is(store.sql.pragma('user_version', { simple: true }), 3);
});

test('a big journal entry is committed without a checkpoint and copied into the database file from the timer', async () => {
  const file = join(dir, 'rampart.db');
  const before = statSync(file).size;
  const big = { version: 1, blob: 'x'.repeat(5_000_000) };
  store.addVersion({ author: 't', source: 'local', document: big, state: 'applied' });
  assert.ok(statSync(file + '-wal').size > 5_000_000, 'the commit left the entry in the WAL');
  assert.ok(statSync(file).size - before < 1_000_000, 'the commit did not checkpoint');
  await waitFor(() => statSync(file).size - before > 5_000_000, 30_000, 'the timer to checkpoint the WAL');
  assert.is((store.getVersion(1)?.document as any).blob.length, 5_000_000);
});

test('refuses a database from a newer schema', () => {
  store.close();
  const db = new Database(join(dir, 'rampart.db'));
  db.pragma('user_version = 99');
  db.close();
  assert.throws(() => new Store(join(dir, 'rampart.db')).open(), /newer Rampart/);
});

test('versions: journal, running, pending and last good', () => {
  const v1 = store.addVersion({ author: 'a', source: 'local', document: { x: 1 }, state: 'applied', message: 'one' });
  const v2 = store.addVersion({ author: 'b', source: 'api', document: { x: 2 }, state: 'pending_confirm' });
  assert.is(v1.version, 1);
  assert.is(v2.version, 2);
  assert.is(store.runningVersion()!.version, 2);
  assert.is(store.pendingVersion()!.version, 2);
  assert.is(store.lastGoodVersion(2)!.version, 1);
  store.updateVersion(2, { state: 'reverted', error: 'timeout' });
  assert.is(store.runningVersion()!.version, 1);
  assert.is(store.pendingVersion(), undefined);
  assert.equal(store.getVersion(2)!.document, { x: 2 });
  assert.is(store.getVersion(2)!.error, 'timeout');
  const list = store.listVersions();
  assert.equal(list.map((v) => [v.version, v.state]), [[2, 'reverted'], [1, 'applied']]);
  assert.is(list[0].hash, documentHash({ x: 2 }));
});

test('canonical JSON sorts keys at every depth', () => {
  assert.is(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }], e: undefined }), '{"a":[{"c":3,"d":2}],"b":1}');
  assert.is(documentHash({ a: 1, b: 2 }), documentHash({ b: 2, a: 1 }));
});

test('blocks: upsert, expiry and delete', () => {
  const now = Date.now();
  store.upsertBlocks([
    { address: '192.0.2.1', family: 4, reason: 'r', source: 'local', createdAt: now, expiresAt: now + 60_000 },
    { address: '2001:db8::/48', family: 6, reason: '', source: 'ids', createdAt: now },
    { address: '192.0.2.2', family: 4, reason: 'old', source: 'local', createdAt: now, expiresAt: now - 1 },
  ]);
  assert.equal(store.listBlocks(now).map((b) => b.address).sort(), ['192.0.2.1', '2001:db8::/48']);
  store.upsertBlocks([{ address: '192.0.2.1', family: 4, reason: 'again', source: 'local', createdAt: now, expiresAt: now + 120_000 }]);
  assert.is(store.getBlock('192.0.2.1')!.reason, 'again');
  assert.is(store.getBlock('192.0.2.1')!.expiresAt, now + 120_000);
  assert.is(store.purgeExpiredBlocks(now), 1);
  assert.ok(store.deleteBlock('192.0.2.1'));
  assert.not.ok(store.deleteBlock('192.0.2.1'));
  assert.is(store.getBlock('2001:db8::/48')!.expiresAt, undefined);
});

test.run();
