/**
 * The EVE tailer against real files and a real SQLite store: partial lines wait for their end, malformed lines are
 * counted and skipped, a restart (new tailer on the same store) resumes exactly where the last one stopped,
 * rotation (while reading and while stopped) and truncation lose nothing and repeat nothing; the head scanner
 * reads the same fields as JSON.parse.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { appendFileSync, mkdtempSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { AlertStore, type AlertRecord } from '../../services/core/alerts.ts';
import { EventBus } from '../../services/core/events.ts';
import { EveTailer, alertFromEve, scanEveAlert } from '../../services/ids/eve.ts';
import { groupAlerts } from '../../services/ids/correlate.ts';
import { eveLine } from '../../scripts/benchmarks/ids-ingest.ts';
import { waitFor } from '../helpers/daemon.ts';

let dir: string;
let store: Store;
let alerts: AlertStore;
let announced: AlertRecord[];
const eve = () => join(dir, 'eve.json');

function fresh(): void {
  dir = mkdtempSync(join(tmpdir(), 'rampart-eve-'));
  store = new Store(join(dir, 'rampart.db')).open();
  const bus = new EventBus();
  announced = [];
  bus.on('alert', (recs) => announced.push(...recs));
  alerts = new AlertStore(store, bus);
}

function tailer(writerThreadBytes?: number): EveTailer {
  return new EveTailer({ store, alerts, path: eve(), writerThreadBytes });
}

const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => eveLine(from + i) + '\n').join('');
const storedSids = () => alerts.list({ limit: 10_000, afterSeq: 0 }).map((a) => a.detail as any).map((d) => d.flow_id);
const flowIds = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => 1_000_000_000_000 + (from + i) * 13);

test.before.each(fresh);
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

// Every tailer test twice: rows stored on the tailer's thread, and through the writer thread (a backlog of any size).
for (const mode of [{ name: 'inline', bytes: undefined }, { name: 'writer thread', bytes: 0 }]) {
  test(`alerts are stored with normalised fields and the raw event (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 3));
    const t = tailer(mode.bytes);
    t.poll();
    const list = alerts.list({ afterSeq: 0 });
    assert.is(list.length, 3);
    const a = list[0];
    assert.is(a.kind, 'ids');
    assert.is(a.src, '198.51.100.1');
    assert.is(a.dst, '192.0.2.10');
    assert.is(a.sport, 1024);
    assert.is(a.dport, 80);
    assert.is(a.proto, 'tcp');
    assert.is(a.sid, 2_000_000);
    assert.is(a.severity, 1);
    assert.is(a.category, 'Web Application Attack');
    assert.is(a.action, 'allowed');
    assert.is(a.at, Date.UTC(2026, 0, 1));
    assert.equal(a.detail, JSON.parse(eveLine(0)));
    // Listeners get the same shape: the raw event as `detail` (parsed when read), not the line.
    assert.is(announced.length, 3);
    assert.equal(announced[0].detail, JSON.parse(eveLine(0)));
    assert.not.ok('detailJson' in announced[0]);
    assert.equal(JSON.parse(JSON.stringify(announced[0])), JSON.parse(JSON.stringify(a)));
    t.stop();
  });

  test(`raw events outside ASCII are stored exactly, and so are their neighbours (${mode.name})`, () => {
    // Multi-byte UTF-8 (two, three and four bytes) in the signature and in the app-layer part, an escaped one in
    // the URL, next to plain lines: each stored raw event is its own line, byte for byte.
    const odd = (i: number, text: string) => eveLine(i).replace('Possible attack', `Possible ${text} attack`).replace('www.example.net', `${text}.example`);
    const want = [eveLine(0), odd(1, 'café ☕ 𝄞'), eveLine(2), odd(3, 'Ωmega'), odd(4, '\\u00e9t\\u00e9'), eveLine(5)];
    writeFileSync(eve(), want.join('\n') + '\n');
    const t = tailer(mode.bytes);
    t.poll();
    t.stop();
    const rows = store.sql.prepare('SELECT signature, detail FROM alerts ORDER BY seq').all() as { signature: string; detail: string }[];
    assert.equal(rows.map((r) => r.detail), want);
    assert.equal(rows.map((r) => r.signature), want.map((l) => JSON.parse(l).alert.signature));
    assert.ok(rows[1].signature.includes('café ☕ 𝄞'));
  });

  test(`alerts group by signature and source within a window (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 1000));
    const t = tailer(mode.bytes);
    t.poll();
    t.stop();
    // Lines are 7 ms apart: 1000 lines span 7 s; sid cycles over 500, source over 250.
    const g = groupAlerts(store, { windowMs: 60_000, limit: 10_000 });
    assert.is(g.reduce((n, x) => n + x.count, 0), 1000);
    assert.is(g.length, 500, 'sid i%500 and source i%250 pair up in 500 ways');
    assert.ok(g.every((x) => x.count === 2 && x.window === Date.UTC(2026, 0, 1)));
    assert.is(groupAlerts(store, { windowMs: 1000, limit: 10_000 }).length, 1000, 'one-second windows split them');
  });

  test(`a partial line waits for its end; malformed lines are counted and skipped (${mode.name})`, () => {
    const full = eveLine(0);
    writeFileSync(eve(), full.slice(0, 100));
    const t = tailer(mode.bytes);
    t.poll();
    assert.is(alerts.list().length, 0, 'nothing from half a line');
    appendFileSync(eve(), full.slice(100) + '\n' + '{"event_type":"alert", broken\n' + 'not json at all\n' + '{"timestamp":"x","event_type":"alert"}\n' + eveLine(1) + '\n');
    t.poll();
    assert.is(alerts.list().length, 2);
    assert.is(t.counters.malformed, 3);
    t.stop();
  });

  test(`a restart resumes at the saved position: every alert exactly once (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 50));
    const t1 = tailer(mode.bytes);
    t1.poll();
    t1.stop();
    appendFileSync(eve(), lines(50, 80) + eveLine(80).slice(0, 40));
    const t2 = tailer(mode.bytes);
    t2.poll();
    appendFileSync(eve(), eveLine(80).slice(40) + '\n');
    t2.poll();
    t2.stop();
    const t3 = tailer(mode.bytes);
    t3.poll();
    t3.stop();
    assert.equal(storedSids(), flowIds(0, 81));
  });

  test(`rotation while reading: the old file is drained through its descriptor, then the new one is read (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 10));
    const t = tailer(mode.bytes);
    t.poll();
    appendFileSync(eve(), lines(10, 20));
    renameSync(eve(), eve() + '.1');
    writeFileSync(eve(), lines(20, 25));
    t.poll();
    appendFileSync(eve(), lines(25, 30));
    t.poll();
    t.stop();
    assert.equal(storedSids(), flowIds(0, 30));
    assert.is(t.counters.rotations, 1);
  });

  test(`rotation while stopped: the rotated file is found by its inode and finished first (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 10));
    const t1 = tailer(mode.bytes);
    t1.poll();
    t1.stop();
    appendFileSync(eve(), lines(10, 15));
    renameSync(eve(), eve() + '.1');
    writeFileSync(eve(), lines(15, 20));
    const t2 = tailer(mode.bytes);
    t2.poll();
    t2.stop();
    assert.equal(storedSids(), flowIds(0, 20));
  });

  test(`a batch that fails to store is read again: nothing lost, nothing twice (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 600)); // about 600 kB: several transactions
    store.sql.exec("CREATE TRIGGER refuse BEFORE INSERT ON alerts WHEN NEW.sid = 2000300 BEGIN SELECT RAISE(ABORT, 'refused'); END");
    const t = tailer(mode.bytes);
    t.poll();
    const partial = storedSids().length;
    assert.ok(partial < 300, `stopped before the refused alert (${partial} stored)`);
    assert.ok((t.position()?.offset ?? 0) < Buffer.byteLength(lines(0, 300)), 'the saved position is not past it');
    store.sql.exec('DROP TRIGGER refuse');
    t.poll();
    t.stop();
    assert.equal(storedSids(), flowIds(0, 600));
    assert.is(new Set(announced.map((a) => a.seq)).size, 600, 'each announced once');
  });

  test(`truncation: reading starts again at the beginning of the file (${mode.name})`, () => {
    writeFileSync(eve(), lines(0, 10));
    const t = tailer(mode.bytes);
    t.poll();
    truncateSync(eve(), 0);
    appendFileSync(eve(), lines(10, 12));
    t.poll();
    t.stop();
    assert.equal(storedSids(), flowIds(0, 12));
    assert.is(t.counters.truncations, 1);
  });
}

test('the head scanner reads what JSON.parse reads, also with escapes, spaces and other key orders', () => {
  const str = fc.string({ maxLength: 20 });
  fc.assert(
    fc.property(
      fc.record({
        sig: str,
        cat: str,
        src: fc.constantFrom('198.51.100.7', '2001:db8::1'),
        sport: fc.integer({ min: 0, max: 65535 }),
        sev: fc.integer({ min: 1, max: 255 }),
        sid: fc.integer({ min: 1, max: 4_294_967_295 }),
        extra: fc.jsonValue({ maxDepth: 2 }),
        first: fc.boolean(),
        spaced: fc.boolean(),
      }),
      (r) => {
        const alert = { action: 'allowed', gid: 1, signature_id: r.sid, rev: 1, signature: r.sig, category: r.cat, severity: r.sev };
        const head = { timestamp: '2026-11-29T00:13:06.911532+0000', flow_id: 42, event_type: 'alert', src_ip: r.src, src_port: r.sport, dest_ip: '192.0.2.10', dest_port: 80, proto: 'TCP' };
        const rec = r.first ? { alert, extra: r.extra, ...head } : { ...head, extra: r.extra, alert };
        const line = JSON.stringify(rec, null, r.spaced ? 1 : undefined).replace(/\n/g, ' ');
        const scanned = scanEveAlert(line);
        const parsed = alertFromEve(JSON.parse(line), line);
        assert.equal(scanned, parsed);
      },
    ),
    { numRuns: 300, seed: process.env.CI ? 1 : undefined },
  );
  // Members whose names begin with a wanted name are other members.
  const decoys = JSON.stringify({
    timestamp: '2026-11-29T00:13:06.911532+0000', event_type: 'alert', src_ip: '198.51.100.7', src_ipx: '10.9.9.9', proto: 'TCP', proto_v: 'UDP', dest_port: 80, dest_port_alt: 8080,
    alert: { action: 'allowed', gid: 1, signature_id: 7, signature_idx: 9, signature: 'S', signature_text: 'T', category: 'C', severity: 2, severity_x: 3 },
  });
  assert.equal(scanEveAlert(decoys), alertFromEve(JSON.parse(decoys), decoys));
  assert.is(scanEveAlert(decoys)!.src, '198.51.100.7');
  assert.is(scanEveAlert('{"event_type":"flow"}'), undefined, 'not an alert');
  assert.is(scanEveAlert('{"event_type":"alert","alert":{"signature_id":1'), null, 'cut short');
});

test('a backlog bigger than a slice is read in several turns of the event loop, each alert once', async () => {
  const total = 3000; // ~3.5 MB
  writeFileSync(eve(), lines(0, total));
  const t = new EveTailer({ store, alerts, path: eve(), sliceBytes: 256 << 10 });
  const more = t.poll();
  assert.ok(more, 'the first poll stops at its slice');
  const first = storedSids().length;
  assert.ok(first > 0 && first < total, `part of the backlog after one slice: ${first}`);
  await waitFor(() => storedSids().length >= total, 20_000, 'the rest of the backlog in later turns').finally(() => t.stop());
  assert.equal(storedSids(), flowIds(0, total), 'every alert once, in order');
});

test('a big backlog keeps the WAL bounded: checkpoints run beside the inserts and the WAL starts over', () => {
  // About 45 MB of rows with a checkpoint cycle every MiB: without checkpoints (or with cycles that never end with
  // the WAL wholly copied, so that it never starts over) the WAL file would grow past the data's size.
  const total = 40_000;
  const chunk = 5_000;
  for (let i = 0; i < total; i += chunk) appendFileSync(eve(), lines(i, i + chunk));
  const t = new EveTailer({ store, alerts, path: eve(), writerThreadBytes: 0, checkpointBytes: 1 << 20, sliceBytes: Infinity });
  t.poll();
  t.stop();
  assert.is(t.counters.stored, total);
  const wal = statSync(join(dir, 'rampart.db-wal')).size;
  const db = statSync(join(dir, 'rampart.db')).size;
  assert.ok(db > 40e6, `the rows are in the database file (${db} bytes)`);
  assert.ok(wal < 16 << 20, `WAL ${wal} bytes, database ${db} bytes`);
  assert.is(store.sql.pragma('integrity_check', { simple: true }), 'ok');
  const n = (store.sql.prepare("SELECT COUNT(*) AS n FROM alerts WHERE kind = 'ids'").get() as { n: number }).n;
  assert.is(n, total);
});

test.run();
