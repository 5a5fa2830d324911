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
  return rawParts([payload]);
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

/** Write the parts one after another (each its own write), then return the first answer line. */
function rawParts(parts: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(join(d.dataDir, 'rampart.sock'));
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', async () => {
      for (const p of parts) await new Promise<void>((r) => s.write(p, () => r()));
    });
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

test('an attachment arrives whole, also when its bytes are split inside a character; a bad one is refused', async () => {
  // validate answers with the problems of the document it got: a name with multi-byte characters shows it arrived intact.
  const doc = Buffer.from(JSON.stringify({ version: 1, hostname: 'zürich-ümlaut-🛡', interfaces: 'x' }));
  const cut = doc.indexOf(Buffer.from('🛡')) + 2; // inside the four bytes of the emoji
  const head = JSON.stringify({ id: 7, method: 'validateText', params: {}, attachment: { param: 'documentText', bytes: doc.length } }) + '\n';
  const answer = JSON.parse(await rawParts([head, doc.subarray(0, cut), doc.subarray(cut)]));
  assert.is(answer.id, 7);
  assert.is(answer.error?.code, 'not_found', 'an unknown method is refused after its attachment was read');
  // apply with a broken document as an attachment: refused with a pointer, nothing applied.
  const before = (await d.call('status')).running;
  assert.ok(before?.version >= 1, 'a running version to compare with');
  const broken = Buffer.from(JSON.stringify({ version: 1, firewall: { zones: 'nope' } }));
  const applyHead = JSON.stringify({ id: 8, method: 'apply', params: { author: 'test', source: 'local' }, attachment: { param: 'documentText', bytes: broken.length } }) + '\n';
  const refused = JSON.parse(await rawParts([applyHead, broken]));
  assert.is(refused.error.code, 'invalid_input');
  assert.ok(refused.error.details.length > 0 && refused.error.details.every((p: any) => typeof p.path === 'string'));
  assert.is((await d.call('status')).running.version, before.version);
  // A parameter that may not be attached, or a size that is not one: an error, and the connection is closed.
  for (const attachment of [{ param: 'author', bytes: 3 }, { param: 'documentText', bytes: -1 }, { param: 'documentText', bytes: 'x' }]) {
    const bad = JSON.parse(await raw(JSON.stringify({ id: 9, method: 'apply', params: {}, attachment }) + '\nabc'));
    assert.is(bad.error.code, 'invalid_input', JSON.stringify(attachment));
  }
  // A client that goes away in the middle of an attachment leaves no trace but its socket.
  await new Promise<void>((resolve) => {
    const s = createConnection(join(d.dataDir, 'rampart.sock'));
    s.on('connect', () => s.end(JSON.stringify({ id: 10, method: 'apply', params: {}, attachment: { param: 'documentText', bytes: 1000 } }) + '\n{"ver', () => resolve()));
  });
  assert.is((await d.call('status')).firewall.state, 'ok');
});

test.run();
