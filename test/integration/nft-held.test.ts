/**
 * Host.nftHeld, the second step of a two-step load, against the real nft in a namespace of the test's own: nft
 * parses the head (a file the FIFO includes) before the held part comes; the whole applies once released; an error
 * in either part comes back with the line number of the whole script (so that it maps to the right JSON pointer);
 * an abort applies nothing (a daemon that dies mid-way: firewall-lists-staged.test.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host, run } from '../../services/host/exec.ts';
import { mapNftErrors } from '../../services/firewall/apply.ts';
import { uniquePrefix } from '../helpers/lab.ts';
import { waitFor } from '../helpers/daemon.ts';

const ns = `${uniquePrefix()}-held`;
let created = false;
let dir: string;
let host: Host;

test.before(async () => {
  await run('ip', ['netns', 'add', ns]);
  created = true;
  host = new Host(ns);
  dir = mkdtempSync(join(tmpdir(), 'rampart-held-'));
});

test.after(async () => {
  if (created) await run('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
});

/** A table of `chains` chains, each a line of its own, closing brace last (the held part is that line). */
function script(name: string, chains: number, bad?: number): string {
  const lines = [`table inet ${name}`, `delete table inet ${name}`, `table inet ${name} {`];
  for (let i = 0; i < chains; i++) lines.push(`\tchain c${i} { ${i === bad ? 'tcp dport 22 bogus' : 'tcp dport 22 accept'} ; }`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

const tables = async () => (await host.run('nft', ['list', 'tables'])).stdout;
const heldPart = (s: string) => s.length - s.lastIndexOf('}\n');

test('nft parses the head while the end is held; the whole applies on release', async () => {
  const s = script('held_ok', 20_000);
  const tx = await host.nftHeld(s, heldPart(s), join(dir, 'a'));
  // nft (the one process in this namespace) spends CPU time on the head before it has the end.
  const cpuTicks = async () => {
    const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split('\n').filter(Boolean);
    assert.is(pids.length, 1, 'nft runs in the namespace');
    const stat = readFileSync(`/proc/${pids[0]}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  };
  await waitFor(async () => (await cpuTicks()) >= 5, 10_000, 'nft parsing the head');
  assert.not.match(await tables(), 'held_ok', 'nothing applied before the release');
  const res = await tx.release();
  assert.is(res.exitCode, 0, res.stderr);
  assert.match(await tables(), 'held_ok');
  assert.equal(readdirSync(dir), ['a.fifo'], 'the head, the tail, the link and the copy are gone');
});

test('an error in the head or in the held part names the line of the whole script', async () => {
  for (const bad of [7, 2_999]) {
    const s = script(`held_bad${bad}`, 3_000, bad);
    const lineOfBad = 4 + bad; // three header lines, then one chain per line
    const tail = bad === 2_999 ? s.length - s.lastIndexOf('\tchain c2999') : heldPart(s);
    const tx = await host.nftHeld(s, tail, join(dir, 'b'));
    const res = await tx.release();
    assert.is(res.exitCode, 1);
    const lineMap = s.split('\n').map((_, i) => `/line/${i + 1}`);
    const problems = mapNftErrors(res.stderr, lineMap);
    assert.is(problems[0]?.path, `/line/${lineOfBad}`, res.stderr);
    assert.match(problems[0].message, 'syntax error');
    assert.not.match(await tables(), `held_bad${bad}`);
  }
});

test('an abort applies nothing', async () => {
  const s = script('held_abort', 5_000);
  const tx = await host.nftHeld(s, heldPart(s), join(dir, 'c'));
  await tx.abort();
  assert.not.match(await tables(), 'held_abort');
  assert.equal(readdirSync(dir).sort(), ['a.fifo', 'b.fifo', 'c.fifo']);
});

test.run();
