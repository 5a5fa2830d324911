/** Every golden script of the compiler loads into a real kernel (inside a scratch network namespace). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Host, run } from '../../services/host/exec.ts';

const dir = join(import.meta.dirname, '../fixtures/golden');
const ns = `rg-${randomBytes(3).toString('hex')}`;
const host = new Host(ns);

test.before(async () => {
  await run('ip', ['netns', 'add', ns]);
});
test.after(async () => {
  await run('ip', ['netns', 'del', ns], { allowFailure: true });
});

for (const name of readdirSync(dir).filter((f) => f.endsWith('.nft')).sort()) {
  test(`${name} loads, twice (replacing itself), and leaves foreign tables alone`, async () => {
    const script = readFileSync(join(dir, name), 'utf8');
    await host.nft('table ip foreign {\n chain c {\n  type filter hook input priority 10;\n  counter\n }\n}\n');
    const r1 = await host.nft(script, { allowFailure: true });
    assert.is(r1.exitCode, 0, r1.stderr);
    const r2 = await host.nft(script, { allowFailure: true });
    assert.is(r2.exitCode, 0, r2.stderr);
    const tables = (await host.run('nft', ['list', 'tables'])).stdout;
    assert.match(tables, /table ip foreign/);
    assert.match(tables, /table inet rampart\n/);
    await host.nft('delete table ip foreign\n');
  });
}

test.run();
