/**
 * Restart safety of EVE ingest in a real rampartd: the daemon is killed (-9) in the middle of a big batch, EVE
 * keeps growing and is rotated while it is down, then again while it runs; after the restart every alert is in
 * the store exactly once. (The lines are written by the test into the daemon's own DATA/suricata/eve.json, the
 * file Suricata writes; the engine itself is not needed for this and stays disabled.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { appendFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { startScratchDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { eveLine } from '../../scripts/benchmarks/ids-ingest.ts';

let close: (() => Promise<void>) | undefined;
let d: TestDaemon;

test.before(async () => {
  const s = await startScratchDaemon('idsr');
  d = s.d;
  close = s.close;
});
test.after(async () => {
  await close?.();
});

function counts(): { rows: number; distinct: number; flows: Set<number> } {
  const db = new Database(join(d.dataDir, 'rampart.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT id, json_extract(detail, '$.flow_id') AS flow FROM alerts WHERE kind = 'ids'").all() as { id: string; flow: number }[];
    return { rows: rows.length, distinct: new Set(rows.map((r) => r.id)).size, flows: new Set(rows.map((r) => r.flow)) };
  } finally {
    db.close();
  }
}

const write = (file: string, from: number, to: number) => {
  const parts: string[] = [];
  for (let i = from; i < to; i++) parts.push(eveLine(i) + '\n');
  appendFileSync(file, parts.join(''));
};

test('kill -9 mid-ingest, growth and rotation while down and while up: every alert exactly once', async () => {
  const dir = join(d.dataDir, 'suricata');
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  const eve = join(dir, 'eve.json');
  write(eve, 0, 8000);
  await waitFor(() => counts().rows > 0, 20_000, 'ingest to begin');
  await d.crash();
  const atCrash = counts().rows;
  // EVE keeps growing while the daemon is down, and is rotated.
  write(eve, 8000, 8500);
  renameSync(eve, eve + '.1');
  write(eve, 8500, 9000);
  await d.restart();
  write(eve, 9000, 9500);
  await waitFor(() => counts().rows >= 9500, 20_000, 'the backlog');
  // Rotated while running.
  renameSync(eve, eve + '.1');
  write(eve, 9500, 10000);
  await waitFor(() => counts().rows >= 10000, 20_000, 'everything');
  const c = counts();
  assert.is(c.rows, 10000, 'no duplicates');
  assert.is(c.distinct, 10000);
  for (let i = 0; i < 10000; i++) if (!c.flows.has(1_000_000_000_000 + i * 13)) assert.unreachable(`alert ${i} lost`);
  console.log(`  ${atCrash} alerts stored when the daemon was killed`);
  const s = await d.call('idsStatus');
  assert.is(s.state, 'disabled');
  assert.ok(s.eve.rotations >= 1);
});

test('engine stats events feed the telemetry series', async () => {
  const at = Date.now();
  const stats = { timestamp: new Date(at).toISOString().replace('Z', '000+0000'), event_type: 'stats', stats: { uptime: 60, decoder: { pkts: 1234 }, capture: { kernel_packets: 1300, kernel_drops: 7 }, detect: { alert: 42 } } };
  appendFileSync(join(d.dataDir, 'suricata', 'eve.json'), JSON.stringify(stats) + '\n');
  let q: any;
  await waitFor(async () => {
    q = await d.call('telemetry', { metric: 'ids.kernel_drops', from: String(at - 60_000), to: String(at + 60_000) });
    return q.points?.length > 0;
  }, 10_000, 'the ids.kernel_drops series');
  assert.is(q.points[0].max, 7);
  assert.is((await d.call('idsStatus')).engineStats.alerts, 42);
});

test.run();
