/**
 * The control socket under hostile input: random methods, random parameters, broken JSON lines and oversized
 * requests get errors, never a crash, and the daemon keeps answering. Runs in a scratch network namespace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { startScratchDaemon, type TestDaemon } from '../helpers/daemon.ts';

let d: TestDaemon;
let close: () => Promise<void>;

test.before(async () => {
  ({ d, close } = await startScratchDaemon('rc'));
});

test.after(async () => {
  await close?.();
});

const METHODS = ['status', 'validate', 'apply', 'confirm', 'rollback', 'plan', 'history', 'show', 'diff', 'counters', 'block', 'unblock', 'blocks', 'trace', 'nope', '__proto__', 'constructor', 'toString'];

/** Send raw bytes and return the first answer line. */
function raw(payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(join(d.dataDir, 'rampart.sock'));
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(payload));
    s.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        s.destroy();
        resolve(buf.slice(0, nl));
      }
    });
    s.on('error', reject);
  });
}

test('random methods and parameters get answers, never a crash', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...METHODS), fc.anything({ maxDepth: 3 }), async (method, params) => {
      const answer = JSON.parse(await raw(JSON.stringify({ id: 7, method, params }) + '\n'));
      assert.is(answer.id, 7);
      if (answer.error) {
        assert.type(answer.error.code, 'string');
        assert.type(answer.error.message, 'string');
        assert.not.ok(/at .*\.(ts|js):\d+/.test(answer.error.message), 'no stack traces');
      }
    }),
    { numRuns: 300, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
  );
  const status = await d.call('status');
  assert.is(status.firewall.state, 'ok');
});

test('broken lines and unknown methods are refused', async () => {
  const bad = JSON.parse(await raw('{"id": 1, "method": \n'));
  assert.is(bad.error.code, 'invalid_input');
  const unknown = JSON.parse(await raw(JSON.stringify({ id: 2, method: 'constructor' }) + '\n'));
  assert.is(unknown.error.code, 'not_found');
  const notObject = JSON.parse(await raw('42\n'));
  assert.ok(notObject.error);
  assert.is((await d.call('status')).firewall.state, 'ok');
});

test.run();
