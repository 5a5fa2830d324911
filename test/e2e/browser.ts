/**
 * Shared pieces of the web UI end-to-end tests: headless Debian Chromium through playwright-core with a fresh
 * profile, a collector of console errors (every failed load named by its address), screenshots into
 * test-artifacts/e2e/, a free loopback port for the daemon, and a small API client for the ground truth.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, waitFor } from '../helpers/daemon.ts';
import { freePort } from '../helpers/ports.ts';
export { freePort };

export const ARTIFACTS = join(ROOT, 'test-artifacts/e2e');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Console errors, page errors and failed loads (4xx/5xx) not expected by the test. */
  errors: string[];
  /** Requests the test makes fail on purpose (a form sent with a bad value): path and status. */
  expectedRefusals: { path: string; status: number }[];
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'rampart-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  const expectedRefusals: { path: string; status: number }[] = [];
  const expected = (url: string | undefined, status?: number) =>
    !!url && expectedRefusals.some((e) => new URL(url).pathname === e.path && (status === undefined || status === e.status));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/^Failed to load resource/.test(m.text()) && expected(m.location()?.url)) return;
    errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${page.url()}: page error: ${e.message}`));
  // Chromium reports failed loads as console errors without their address: name them.
  page.on('response', (r) => {
    if (r.status() >= 400 && !expected(r.url(), r.status())) errors.push(`${page.url()}: ${r.request().method()} ${r.url()} answered ${r.status()}`);
  });
  return {
    context,
    page,
    errors,
    expectedRefusals,
    shot: async (name) => void (await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })),
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export type ApiCall = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/** A logged-in API client from Node (for checks the browser must not make, and for the ground truth). */
export async function apiLogin(base: string, username: string, password: string): Promise<ApiCall> {
  const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`API login of ${username}: HTTP ${res.status}`);
  const cookie = res.headers.get('set-cookie')!.split(';')[0];
  return async (method, path, body) => {
    const r = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { cookie, ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
      body: method === 'GET' ? undefined : JSON.stringify(body ?? {}),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
}

/** Wait for a condition that may throw while the page changes. */
export async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        return await cond();
      } catch {
        return false;
      }
    },
    timeoutMs,
    what,
  );
}

/** Go to a page of the app through its main navigation and wait for its heading. */
export async function nav(page: Page, title: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: title, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: title }).waitFor();
}
