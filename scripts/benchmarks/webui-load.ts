/**
 * The web UI's two budgets (issue: initial JS ≤ 150 KB gzip; dashboard interactive on loopback ≤ 1 s), measured in
 * this run against baselines measured beside them:
 *
 * - webui-js: the gzip size of the JavaScript the app's index.html loads at start (every <script> and
 *   modulepreload of webui/dist, gzip level 9) against uPlot's own minified build (the one library the app bundles
 *   besides Svelte), gzipped the same way. Target: at most 150 KB.
 * - webui-tti: headless Chromium (fresh profile, logged in) opens the dashboard; the time from navigation start until
 *   the dashboard shows the running version and its first chart (performance.now() in the page), against an empty
 *   HTML page served by the same rampartd in the same browser, alternating runs, medians. Target: at most 1000 ms.
 *
 * rampartd serves a copy of webui/dist (RAMPART_WEBUI_DIR) that also holds the empty page, so both come from one
 * server; it manages the bench lab's fw namespace.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { labDoc } from './configs.ts';
import { BIN, ROOT, median, removeTempDir, round, sleep, tempDir, trackPid, untrackPid, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';
import { freePort } from '../../test/helpers/ports.ts';

const MAX_JS_KB = 150;
const MAX_TTI_MS = 1000;
const PASSWORD = 'bench-webui-password';
const DIST = join(ROOT, 'webui/dist');

function ensureBuilt(): void {
  if (existsSync(join(DIST, 'index.html'))) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'webui/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`web UI build failed: ${r.stderr}`);
}

const gzipKb = (buf: Buffer) => gzipSync(buf, { level: 9 }).length / 1024;

/** The JavaScript index.html loads at start: module scripts and modulepreloads. */
function initialScripts(): string[] {
  const html = readFileSync(join(DIST, 'index.html'), 'utf8');
  const out = new Set<string>();
  for (const m of html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)) out.add(m[1]);
  for (const m of html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g)) out.add(m[1]);
  return [...out];
}

export async function webuiJsBench(_ctx: BenchContext): Promise<Result> {
  ensureBuilt();
  const files = initialScripts();
  if (!files.length) throw new Error('index.html loads no script');
  const sizes = Object.fromEntries(files.map((f) => [f, round(gzipKb(readFileSync(join(DIST, f.replace(/^\//, '')))), 1)]));
  const value = Object.values(sizes).reduce((a, b) => a + b, 0);
  const baseline = gzipKb(readFileSync(join(ROOT, 'node_modules/uplot/dist/uPlot.iife.min.js')));
  const css = readFileSync(join(DIST, 'index.html'), 'utf8').match(/href="(\/assets\/[^"]+\.css)"/)?.[1];
  return {
    name: 'webui-js',
    value,
    baseline,
    ratio: value / baseline,
    target: { maxValue: MAX_JS_KB },
    pass: value <= MAX_JS_KB,
    unit: 'KB gzip',
    details: { files: sizes, baselineIs: 'uPlot.iife.min.js gzip -9', cssKbGzip: css ? round(gzipKb(readFileSync(join(DIST, css.slice(1)))), 1) : null },
  };
}

export async function webuiTtiBench(ctx: BenchContext): Promise<Result> {
  ensureBuilt();
  const runs = ctx.runs ?? 7;
  const dir = tempDir('webui');
  const ui = join(dir, 'ui');
  cpSync(DIST, ui, { recursive: true });
  writeFileSync(join(ui, 'bench-empty.html'), '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>empty</title></head><body></body></html>');
  const seed = join(dir, 'seed.json');
  writeFileSync(seed, JSON.stringify(labDoc()));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(BIN, ['--data', join(dir, 'data'), '--netns', ctx.lab.fw, 'serve', '--listen', `127.0.0.1:${port}`, '--config', seed], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RAMPART_LOG_LEVEL: 'warn', RAMPART_ADMIN_PASSWORD: PASSWORD, RAMPART_WEBUI_DIR: ui },
  });
  trackPid(child.pid, 'rampartd');
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let gone = false;
  const exited = new Promise<void>((r) => child.once('exit', () => ((gone = true), untrackPid(child.pid), r())));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const end = Date.now() + 60_000;
    for (;;) {
      if (gone) throw new Error(`rampartd exited at start:\n${out.slice(-3000)}`);
      const ok = await fetch(`${base}/api/v1/openapi.json`).then((r) => r.arrayBuffer().then(() => r.ok), () => false);
      if (ok) break;
      if (Date.now() > end) throw new Error('rampartd did not answer in 60 s');
      await sleep(50);
    }
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // Log in through the UI once (the session cookie then stays in the context).
    await page.goto(base + '/');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('running-version').filter({ hasText: /^\d+$/ }).waitFor({ timeout: 30_000 });
    const app: number[] = [];
    const empty: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      // The first round warms the server's file cache and the daemon's status copy; it is not counted.
      await page.goto(`${base}/bench-empty.html`, { waitUntil: 'load' });
      const e = await page.evaluate(() => performance.now());
      await page.goto(`${base}/`, { waitUntil: 'commit' });
      const t = await page.waitForFunction(
        () => {
          const v = document.querySelector('[data-testid="running-version"]')?.textContent ?? '';
          return /^\d+$/.test(v) && document.querySelector('.uplot') ? performance.now() : false;
        },
        undefined,
        { polling: 'raf', timeout: 30_000 },
      );
      const a = (await t.jsonValue()) as number;
      if (i > 0) {
        empty.push(e);
        app.push(a);
      }
    }
    await context.close();
    const value = median(app);
    const baseline = median(empty);
    return {
      name: 'webui-tti',
      value,
      baseline,
      ratio: value / baseline,
      target: { maxValue: MAX_TTI_MS },
      pass: value <= MAX_TTI_MS,
      unit: 'ms',
      details: { runs, dashboardMs: app.map((x) => round(x, 1)), emptyPageMs: empty.map((x) => round(x, 1)), interactiveWhen: 'running version shown and the first chart drawn' },
    };
  } finally {
    await browser.close().catch(() => undefined);
    if (!gone) process.kill(child.pid!, 'SIGTERM');
    const t = setTimeout(() => !gone && process.kill(child.pid!, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
    removeTempDir(dir);
  }
}
