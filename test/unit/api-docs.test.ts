/** docs/openapi.json is the API's own OpenAPI document; regenerate it with `npm run openapi`. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, type Fixture } from '../helpers/api-fixture.ts';

const file = join(import.meta.dirname, '../../docs/openapi.json');
let f: Fixture;

test.before(async () => {
  f = await fixture();
});
test.after(() => f.close());

test('docs/openapi.json is current', async () => {
  const res = await f.req('GET', '/openapi.json');
  assert.is(res.status, 200);
  const doc = await res.json();
  assert.is(doc.openapi.startsWith('3.1'), true);
  const text = JSON.stringify(doc, null, 2) + '\n';
  if (process.env.UPDATE_DOCS === '1' || !existsSync(file)) writeFileSync(file, text);
  assert.fixture(readFileSync(file, 'utf8'), text);
});

test.run();
