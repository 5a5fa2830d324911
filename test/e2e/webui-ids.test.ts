/**
 * The Alerts page end to end: real Suricata on the lab's wan interface with a local rule, a real request from the
 * wan host through the port forward; the alert shows up on the open page by itself, "Block source" blocks the wan
 * host (its next request fails), and the block is removed again from the Firewall page.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import type { Page } from 'playwright-core';
import { run } from '../../services/host/exec.ts';
import { labConfig, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { startWeb } from '../helpers/lab-web.ts';
import { apiLogin, freePort, launchBrowser, nav, until, type ApiCall, type Browser } from './browser.ts';
import { ensureUiBuilt } from './ui-build.ts';

const PASSWORD = 'ids-e2e-password-1';
const WAN_HOST = '198.51.100.20';
const SID = 9100001;
const RULE = `alert http any any -> any any (msg:"RAMPART web UI test attack"; flow:to_server,established; http.uri; content:"/webui-test-attack"; classtype:web-application-attack; sid:${SID}; rev:1;)`;

let lab: Lab | undefined;
let daemon: TestDaemon | undefined;
let browser: Browser | undefined;
let web: ChildProcess | undefined;
let page: Page;
let base = '';
let api: ApiCall;

/** A web server on the lan host (port 80, reached from wan through the lab's port forward 198.51.100.1:8080). */
/** GET from the wan host through the port forward: did it answer? */
async function fromWan(path: string): Promise<boolean> {
  const r = await run('curl', ['-s', '-o', '/dev/null', '-m', '2', `http://198.51.100.1:8080${path}`], { netns: lab!.wan, timeoutMs: 10_000, allowFailure: true });
  return r.exitCode === 0;
}

test.before(async () => {
  await ensureUiBuilt();
  lab = await startLab();
  web = await startWeb(lab.lan);
  const config = labConfig();
  config.ids = { enabled: true, mode: 'ids', interfaces: ['wan'], localRules: [RULE] };
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The first password comes from the environment here (no forced change; that flow is in webui-flows).
  process.env.RAMPART_ADMIN_PASSWORD = PASSWORD;
  daemon = await startDaemon({ netns: lab.fw, config, extra: ['--listen', `127.0.0.1:${port}`] });
  delete process.env.RAMPART_ADMIN_PASSWORD;
  api = await apiLogin(base, 'admin', PASSWORD);
  await waitFor(async () => (await api('GET', '/ids/status')).body?.state === 'running', 60_000, 'Suricata to run');
  browser = await launchBrowser();
  page = browser.page;
});

test.after(async () => {
  await browser?.close();
  await daemon?.cleanup();
  if (web && web.exitCode === null) web.kill('SIGTERM');
  await lab?.down();
});

test('an IDS alert arrives live on the Alerts page; block its source in one click; unblock it', async () => {
  await page.goto(base + '/');
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  await nav(page, 'Alerts');
  await page.getByRole('form', { name: 'Filter alerts' }).waitFor();
  const rows = page.getByTestId('alert-row').filter({ hasText: 'RAMPART web UI test attack' });
  assert.is(await rows.count(), 0, 'no alert before the attack');
  assert.ok(await fromWan('/'), 'the wan host reaches the lan web server through the port forward');
  assert.ok(await fromWan('/webui-test-attack'), 'the attack request itself goes through (IDS mode)');
  await until('the alert on the open page', async () => (await rows.count()) > 0, 30_000);
  const row = rows.first();
  assert.match((await row.textContent()) ?? '', new RegExp(WAN_HOST.replace(/\./g, '\\.')));
  await browser!.shot('alerts-live');
  await row.getByRole('button', { name: `Block source ${WAN_HOST}` }).click();
  await until('the block in the API', async () => (await api('GET', '/blocks')).body.some((b: any) => b.address === WAN_HOST));
  await until('the row to say blocked', async () => ((await row.textContent()) ?? '').includes('blocked'));
  assert.not.ok(await fromWan('/'), 'the blocked wan host no longer gets through');
  await nav(page, 'Firewall');
  const blockRow = page.getByTestId('block-row').filter({ hasText: WAN_HOST });
  await blockRow.waitFor();
  assert.match((await blockRow.textContent()) ?? '', /IDS: RAMPART web UI test attack/);
  await blockRow.getByRole('button', { name: `Unblock ${WAN_HOST}` }).click();
  await until('the block to go', async () => (await blockRow.count()) === 0);
  assert.not.ok((await api('GET', '/blocks')).body.some((b: any) => b.address === WAN_HOST));
  await until('the wan host to get through again', () => fromWan('/'), 10_000);
});

test('IDS rules: the engine state, and a rule disabled with a confirmed change', async () => {
  await nav(page, 'Alerts');
  await until('the engine state', async () => (await page.getByTestId('ids-state').textContent()) === 'running');
  const row = page.getByTestId('ids-rules').locator('tr', { hasText: String(SID) });
  await row.waitFor();
  assert.match((await row.textContent()) ?? '', /RAMPART web UI test attack.*enabled/);
  await row.getByRole('button', { name: 'Disable' }).click();
  const banner = page.getByTestId('pending-banner');
  await banner.waitFor();
  await banner.getByRole('button', { name: 'Confirm' }).click();
  await page.getByTestId('outcome-banner').waitFor();
  await until('the rule to show disabled', async () => /disabled/.test((await row.textContent()) ?? ''), 30_000);
  const doc = (await api('GET', '/config')).body.document;
  assert.ok(doc.ids.sids.disable.includes(SID), 'ids.sids.disable has the SID');
  assert.is((await api('GET', '/status')).body.pending, null);
  await browser!.shot('alerts-ids-rules');
});

test('no console errors on any page', () => {
  assert.equal(browser!.errors, []);
});

test.run();
