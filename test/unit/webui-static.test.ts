/** Serving the built web UI (services/api/static.ts): SPA fallback, content types, caching, no traversal. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { staticHandler } from '../../services/api/static.ts';

const top = mkdtempSync(join(tmpdir(), 'rampart-static-'));
const dist = join(top, 'dist');
mkdirSync(join(dist, 'assets'), { recursive: true });
writeFileSync(join(dist, 'index.html'), '<!doctype html><title>ui</title>');
writeFileSync(join(dist, 'assets', 'index-Ab12.js'), 'console.log(1)');
writeFileSync(join(dist, 'assets', 'index-Ab12.css'), 'body{}');
writeFileSync(join(dist, '.env'), 'SECRET=1');
writeFileSync(join(top, 'secret.txt'), 'top secret');
mkdirSync(join(dist, 'sub'));

function appFor(dir: string | undefined) {
  const app = new Hono();
  app.get('/api/v1/status', (c) => c.json({ ok: true }));
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'no route', details: [] } }, 404));
  app.on(['GET', 'HEAD'], '*', staticHandler(dir));
  return app;
}
const app = appFor(dist);
test.after(() => rmSync(top, { recursive: true, force: true }));

test('the app itself for / and for its own routes, never cached', async () => {
  for (const path of ['/', '/firewall', '/changes/3', '/login?next=%2F']) {
    const res = await app.request(path);
    assert.is(res.status, 200, path);
    assert.is(res.headers.get('content-type'), 'text/html; charset=utf-8', path);
    assert.is(res.headers.get('cache-control'), 'no-cache', path);
    assert.match(await res.text(), /<title>ui<\/title>/);
  }
});

test('hashed assets with their type and a long immutable cache; a missing asset is 404, not HTML', async () => {
  let res = await app.request('/assets/index-Ab12.js');
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.match(res.headers.get('cache-control') ?? '', /max-age=31536000/);
  assert.match(res.headers.get('cache-control') ?? '', /immutable/);
  assert.is(await res.text(), 'console.log(1)');
  res = await app.request('/assets/index-Ab12.css');
  assert.is(res.headers.get('content-type'), 'text/css; charset=utf-8');
  res = await app.request('/assets/index-Old1.js');
  assert.is(res.status, 404);
  assert.not.match(await res.text(), /<title>/);
  res = await app.request('/favicon.ico');
  assert.is(res.status, 404);
});

test('HEAD has the headers and no body', async () => {
  const res = await app.request('/assets/index-Ab12.js', { method: 'HEAD' });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.is(await res.text(), '');
});

test('no directory traversal, no dot files, no directories', async () => {
  for (const path of [
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/assets/..%2f..%2fsecret.txt',
    '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/..%5csecret.txt',
    '/.env',
    '/assets/.%2e/.env',
    '/%00',
  ]) {
    const res = await app.request(path);
    const text = await res.text();
    assert.not.match(text, /top secret|SECRET=1/, path);
    assert.ok(res.status === 404 || res.status === 400 || (res.status === 200 && /<title>ui/.test(text)), `${path}: ${res.status}`);
  }
  const bad = await app.request('/%E0%A4%A');
  assert.is(bad.status, 400);
  const dir = await app.request('/sub');
  assert.is(dir.status, 200);
  assert.match(await dir.text(), /<title>ui/, 'a directory name is an app route, never a listing');
});

test('API paths are never the app: unknown ones are the JSON 404', async () => {
  assert.is((await app.request('/api/v1/status')).status, 200);
  const res = await app.request('/api/v1/nothing');
  assert.is(res.status, 404);
  assert.is((await res.json()).error.code, 'not_found');
  assert.is((await app.request('/api/v1')).status, 404);
});

test('without a build: 503 with a plain note, the API still answers', async () => {
  const bare = appFor(undefined);
  const res = await bare.request('/');
  assert.is(res.status, 503);
  assert.match(await res.text(), /build:ui/);
  assert.is((await bare.request('/api/v1/status')).status, 200);
});

test.run();
