/**
 * The alert store against a real SQLite file: the schema-2 migration keeps every row and the seq sequence (the
 * sync outbox's cursor), anomalies stay deduplicated by id while IDS alerts rely on the EVE position, lookups by
 * id work for both, and a stored event whose tail is not JSON is handed out as text instead of breaking readers.
 * Also the EVE head scanner on the shapes it must leave to JSON.parse.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { ALERT_MIGRATIONS, AlertStore, RawAlert, type AlertRecord } from '../../services/core/alerts.ts';
import { EventBus } from '../../services/core/events.ts';
import { EveTailer, alertFromEve, scanEveAlert } from '../../services/ids/eve.ts';
import { eveLine } from '../../scripts/benchmarks/ids-ingest.ts';

let dir: string;
let store: Store;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-alerts-'));
  store = new Store(join(dir, 'rampart.db')).open();
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('migration 2 keeps the rows, their seqs and the sequence past deleted ones', () => {
  store.migrate('alerts', ALERT_MIGRATIONS.slice(0, 1));
  const ins = store.sql.prepare('INSERT INTO alerts (id, kind, at, severity, signature, detail) VALUES (?, ?, ?, ?, ?, ?)');
  for (let i = 1; i <= 5; i++) ins.run(`old-${i}`, i % 2 ? 'ids' : 'anomaly', 1000 + i, 2, `sig ${i}`, JSON.stringify({ n: i }));
  store.sql.prepare('DELETE FROM alerts WHERE seq >= 4').run(); // the newest went (retention): seqs 4 and 5 are used up
  const alerts = new AlertStore(store);
  const before = alerts.list({ afterSeq: 0 });
  assert.equal(before.map((a) => [a.seq, a.id, a.detail]), [
    [1, 'old-1', { n: 1 }],
    [2, 'old-2', { n: 2 }],
    [3, 'old-3', { n: 3 }],
  ]);
  const [next] = alerts.add([{ id: 'new-1', kind: 'ids', at: 2000, severity: 1, signature: 'new' }]);
  assert.is(next.seq, 6, 'a seq is never handed out twice');
  const indexes = (store.sql.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  assert.equal(indexes, ['alerts_at', 'alerts_id']);
});

test('anomalies are deduplicated by id; get() finds both kinds', () => {
  const bus = new EventBus();
  const seen: AlertRecord[] = [];
  bus.on('alert', (recs) => seen.push(...recs));
  const alerts = new AlertStore(store, bus);
  const anomaly = { id: 'anomaly:cpu:1', kind: 'anomaly' as const, at: 1, severity: 2 as const, signature: 'cpu above its baseline', detail: { peak: 9 } };
  assert.is(alerts.add([anomaly]).length, 1);
  assert.is(alerts.add([anomaly]).length, 0, 'the same anomaly again is not stored');
  assert.is(seen.length, 1, 'nor announced');
  alerts.add([new RawAlert('eve:x:1', 2, 1, 'sig', '{"a":1}')]);
  assert.equal(alerts.get('anomaly:cpu:1')?.detail, { peak: 9 });
  assert.equal(alerts.get('eve:x:1')?.detail, { a: 1 });
  assert.is(alerts.get('nope'), undefined);
  assert.equal(alerts.countsBySeverity(), { 1: 1, 2: 1, 3: 0, 4: 0 });
});

test('an EVE alert whose tail is broken is stored and handed out as text, not thrown at readers', () => {
  const alerts = new AlertStore(store);
  const good = eveLine(0);
  const cut = good.slice(0, good.indexOf('"metadata"')) + '"metadata":{"x":[1,}}'; // head intact, tail invalid
  writeFileSync(join(dir, 'eve.json'), cut + '\n' + good + '\n');
  const t = new EveTailer({ store, alerts, path: join(dir, 'eve.json') });
  t.poll();
  t.stop();
  const list = alerts.list({ afterSeq: 0 });
  assert.is(list.length, 2);
  assert.is(list[0].detail, cut);
  assert.is(list[0].sid, 2_000_000);
  assert.equal(list[1].detail, JSON.parse(good));
});

test('the head scanner leaves escapes, nested members before the alert and odd numbers to JSON.parse', () => {
  const base = JSON.parse(eveLine(7));
  const variants: Record<string, unknown>[] = [
    { ...base, src_ip: 'a\\"b' },
    { vlan: [10, 20], ...base },
    { ...base, alert: { ...base.alert, signature: 'tab\there "quoted"', category: 'c\u00e9' } },
    { ...base, alert: { metadata: { a: [1] }, ...base.alert } },
    { ...base, flow_id: 12345678901234567890 },
    { ...base, src_port: -0, dest_port: 1e3 },
  ];
  for (const rec of variants) {
    const line = JSON.stringify(rec);
    assert.equal(scanEveAlert(line), alertFromEve(JSON.parse(line), line), line.slice(0, 120));
  }
  // Hand-made text JSON.stringify never writes.
  for (const line of [
    eveLine(1).replace('"dest_port":80', '"dest_port":080'),
    eveLine(1).replace('"proto":"TCP"', '"proto":"T\u0001CP"'),
    eveLine(1).replace('"src_port":1025', '"src_port" : 1025 '),
  ]) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    const scanned = scanEveAlert(line);
    if (parsed === undefined) assert.is(scanned, null, `not JSON, so malformed: ${line.slice(0, 80)}`);
    else assert.equal(scanned, alertFromEve(parsed, line));
  }
});

test.run();
