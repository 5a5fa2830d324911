/**
 * The web UI end to end: headless Chromium (playwright-core driving the Debian package) against a real rampartd
 * (bin/rampart serve on a loopback port) that manages a lab's firewall namespace; lab traffic is real.
 *
 * The first login is the real first-login state: the daemon made `admin` with a random password and mustChange; the
 * test sets a known one from the console (`rampart user passwd admin --must-change`, still mustChange) because the
 * test helper does not hand back the printed one. Every console error or page error on any page fails the test;
 * screenshots of each page go to test-artifacts/e2e/ (not committed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { run } from '../../services/host/exec.ts';
import { labConfig, ROOT, startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../helpers/lab.ts';
import { apiLogin as login, freePort, launchBrowser, nav as go, until, type Browser } from './browser.ts';
import { ensureUiBuilt } from './ui-build.ts';

const FIRST_PASSWORD = 'first-login-pass-1';
const NEW_PASSWORD = 'technician-pass-22';
const VIEWER_PASSWORD = 'viewer-password-333';

let lab: Lab | undefined;
let daemon: TestDaemon | undefined;
let browser: Browser | undefined;
let page: Page;
let base = '';

const shot = (name: string) => browser!.shot(name);
const apiLogin = (username: string, password: string) => login(base, username, password);
const nav = (title: string) => go(page, title);

test.before(async () => {
  await ensureUiBuilt();
  lab = await startLab();
  const config = labConfig();
  config.telemetry.intervalSeconds = 1;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  daemon = await startDaemon({ netns: lab.fw, config, extra: ['--listen', `127.0.0.1:${port}`] });
  const pw = await daemon.cli(['user', 'passwd', 'admin', '--must-change', '--password-stdin'], FIRST_PASSWORD + '\n');
  assert.is(pw.code, 0, pw.stderr);
  const viewer = await daemon.cli(['user', 'add', 'watcher', '--role', 'viewer', '--password-stdin'], VIEWER_PASSWORD + '\n');
  assert.is(viewer.code, 0, viewer.stderr);
  browser = await launchBrowser();
  page = browser.page;
});

test.after(async () => {
  await browser?.close();
  await daemon?.cleanup();
  await lab?.down();
});

test('first login forces a new password, then the dashboard shows the running version and health', async () => {
  await page.goto(base + '/');
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await shot('login');
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(FIRST_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  // The API refuses everything else to this session until the password is changed.
  await page.getByLabel('New password (at least 10 characters)').fill(NEW_PASSWORD);
  await page.getByLabel('New password again').fill(NEW_PASSWORD + 'x');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('The two new passwords differ.').waitFor();
  await page.getByLabel('New password again').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  assert.is(await page.getByTestId('whoami').textContent(), 'admin (admin)');
  await until('the running version on the dashboard', async () => (await page.getByTestId('running-version').textContent()) === '1');
  assert.match((await page.getByTestId('health-firewall').textContent()) ?? '', /FIREWALL\s*ok/);
  // The old password no longer works, the new one does.
  const bad = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: FIRST_PASSWORD }) });
  assert.is(bad.status, 401);
  await apiLogin('admin', NEW_PASSWORD);
  // A deep link is served the app (index.html), which routes by itself.
  await page.goto(base + '/firewall');
  await page.getByRole('heading', { level: 1, name: 'Firewall' }).waitFor();
  await nav('Dashboard');
});

test('a rule edit with a bad address is refused at the field, nothing changes', async () => {
  await nav('Firewall');
  await page.getByRole('button', { name: 'Edit rule lan-web' }).click();
  const dst = page.locator('#rule-forward-destination');
  await dst.fill('192.0.2.300');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await until('the field error at the destination', async () => (await dst.getAttribute('aria-invalid')) === 'true');
  assert.ok(((await page.locator('#rule-forward-destination-err').textContent()) ?? '').length > 0, 'a message under the field');
  await shot('firewall-field-error');
  await page.getByRole('button', { name: 'Cancel' }).click();
  // A port forward with a port out of range: the message is at the port field.
  await page.getByRole('button', { name: 'Add port forward' }).click();
  const pf = page.getByRole('form', { name: 'New port forward' });
  await pf.getByLabel('Id').fill('ssh-in');
  await pf.getByLabel('Port', { exact: true }).fill('99999');
  await pf.getByLabel('To address').fill('192.0.2.10');
  await pf.getByRole('button', { name: 'Add port forward' }).click();
  await until('the field error at the port', async () => (await pf.getByLabel('Port', { exact: true }).getAttribute('aria-invalid')) === 'true');
  assert.ok(((await page.locator('#pf-port-err').textContent()) ?? '').length > 0);
  await pf.getByRole('button', { name: 'Cancel' }).click();
  assert.is(await page.getByTestId('pf-ssh-in').count(), 0);
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isDisabled(), 'nothing to apply');
});

test('change a rule, apply with confirm, see the banner, confirm', async () => {
  const api = await apiLogin('admin', NEW_PASSWORD);
  await nav('Firewall');
  const box = page.getByLabel('Rule no-test3 enabled');
  assert.ok(await box.isChecked());
  await box.uncheck();
  await page.getByLabel('Message').fill('disable no-test3 from the web UI');
  await page.getByLabel('within (seconds)').fill('120');
  await page.getByRole('button', { name: 'Apply' }).click();
  const banner = page.getByTestId('pending-banner');
  await banner.waitFor();
  assert.match((await banner.textContent()) ?? '', /Version 2 is applied and waits for confirmation/);
  const first = await page.getByTestId('countdown').textContent();
  await until('the countdown to move', async () => (await page.getByTestId('countdown').textContent()) !== first);
  let status = (await api('GET', '/status')).body;
  assert.is(status.pending?.version, 2);
  await shot('pending-banner');
  await banner.getByRole('button', { name: 'Confirm' }).click();
  await page.getByTestId('outcome-banner').filter({ hasText: 'Version 2 confirmed' }).waitFor();
  assert.is(await banner.count(), 0);
  status = (await api('GET', '/status')).body;
  assert.is(status.pending, null);
  assert.is(status.running.version, 2);
  const running = (await api('GET', '/config')).body;
  assert.is(running.document.firewall.forward.find((r: any) => r.id === 'no-test3').enabled, false);
  assert.is(running.message, 'disable no-test3 from the web UI');
});

test('apply again and let it revert by itself: the banner counts down, then says so', async () => {
  const api = await apiLogin('admin', NEW_PASSWORD);
  await nav('Firewall');
  // Move no-test3 to the top of forward by keyboard (the handle takes the arrow keys).
  const handle = page.locator('#handle-forward-no-test3');
  await handle.focus();
  await handle.press('ArrowUp');
  await page.locator('#handle-forward-no-test3').press('ArrowUp');
  const ids = await page.getByTestId('rules-forward').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
  assert.equal(ids, ['rule-no-test3', 'rule-lan-web', 'rule-lan-ping']);
  await page.getByLabel('within (seconds)').fill('10');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByTestId('pending-banner').waitFor();
  assert.is((await api('GET', '/status')).body.pending?.version, 3);
  await page.getByTestId('outcome-banner').filter({ hasText: 'Version 3 was reverted' }).waitFor({ timeout: 30_000 });
  await shot('reverted-banner');
  const status = (await api('GET', '/status')).body;
  assert.is(status.pending, null);
  assert.is(status.running.version, 2, 'version 2 runs again');
  const versions = (await api('GET', '/config/versions')).body;
  assert.is(versions.find((v: any) => v.version === 3).state, 'reverted');
  // The page shows the running order again.
  await until('the running order on the page', async () => {
    const now = await page.getByTestId('rules-forward').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
    return now[0] === 'rule-lan-web';
  });
});

test('reorder by drag and drop, then discard the candidate', async () => {
  await nav('Firewall');
  const order = () => page.getByTestId('rules-forward').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
  assert.equal(await order(), ['rule-lan-web', 'rule-lan-ping', 'rule-no-test3']);
  await page.locator('#handle-forward-no-test3').dragTo(page.getByTestId('rule-lan-web'));
  await until('the dragged order', async () => (await order())[0] === 'rule-no-test3');
  assert.equal(await order(), ['rule-no-test3', 'rule-lan-web', 'rule-lan-ping']);
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isEnabled(), 'the candidate differs');
  await page.getByRole('button', { name: 'Discard changes' }).click();
  assert.equal(await order(), ['rule-lan-web', 'rule-lan-ping', 'rule-no-test3']);
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isDisabled());
});

test('changes: the diff of a version against the one before it, and a rollback to version 1', async () => {
  const api = await apiLogin('admin', NEW_PASSWORD);
  await nav('Changes');
  await page.getByLabel('Compare a version with').selectOption('previous');
  await page.getByRole('button', { name: 'Show the diff of version 2' }).click();
  const diff = page.getByTestId('diff');
  await diff.waitFor();
  const text = (await diff.textContent()) ?? '';
  assert.match(text, /\+\s+"enabled": false/);
  assert.match((await page.getByRole('heading', { name: /Diff: version 1 → version 2/ }).textContent()) ?? '', /\([1-9]\d* changed lines\)/);
  assert.not.match(text, /"lan-web"/, 'only the changed rule and its context');
  await shot('changes-diff');
  await page.getByRole('button', { name: 'Roll back to 1' }).click();
  await until('the rollback to run', async () => {
    const doc = (await api('GET', '/config')).body;
    return doc.document.firewall.forward.find((r: any) => r.id === 'no-test3').enabled === undefined;
  });
  await until('the running version on the page', async () => (await page.getByTestId('versions').locator('tr.current td').first().textContent()) !== '2');
  // The packet tracer: wan host → lan host port 80 directly is dropped by the forward policy; through the port
  // forward it is accepted and translated.
  const tracer = page.getByRole('form', { name: 'Trace a packet' });
  await tracer.getByLabel('Destination', { exact: true }).fill('192.0.2.10');
  await tracer.getByRole('button', { name: 'Trace' }).click();
  await until('the verdict', async () => /^drop in the forward chain, decided by policy/.test(((await page.getByTestId('trace-result').locator('p').textContent()) ?? '').trim()));
  await tracer.getByLabel('Destination', { exact: true }).fill('198.51.100.1');
  await tracer.getByLabel('Destination port').fill('8080');
  await tracer.getByRole('button', { name: 'Trace' }).click();
  await until('the port forward verdict', async () => /^accept .*port-forward web-in.*translated to 192\.0\.2\.10:80/.test(((await page.getByTestId('trace-result').locator('p').textContent()) ?? '').trim()));
  await shot('changes-trace');
  // The whole document as JSON: a bad port forward is refused with its pointer, nothing applied.
  await page.getByRole('button', { name: 'Edit the configuration document' }).click();
  const editor = page.getByLabel('Document (JSON)');
  const json = await editor.inputValue();
  assert.match(json, /"port": "8080"/);
  await editor.fill(json.replace('"port": "8080"', '"port": "80800"'));
  await page.getByRole('button', { name: 'Validate' }).click();
  await until('the problem with its pointer', async () => /\/firewall\/nat\/portForwards\/0\/port/.test((await page.locator('#doc-problems').textContent()) ?? ''));
  await page.getByRole('button', { name: 'Cancel' }).click();
});

test('lab traffic: the rule hit counter and the interface chart rise', async () => {
  await nav('Firewall');
  const hits = page.getByTestId('hits-lan-ping');
  await until('the hit counters to load', async () => (await hits.getAttribute('data-value')) !== '');
  const before = Number(await hits.getAttribute('data-value'));
  await nav('Dashboard');
  const chart = page.getByTestId('chart-lan0');
  await chart.waitFor();
  const maxBefore = Number(await chart.getAttribute('data-max'));
  // 40 pings of 1200 bytes from the lan host to the wan host: forwarded by the lan-ping rule.
  const ping = await run('ip', ['netns', 'exec', lab!.lan, 'ping', '-n', '-q', '-c', '40', '-i', '0.05', '-s', '1200', '-W', '1', '198.51.100.20'], { timeoutMs: 20_000 });
  assert.match(ping.stdout, / 40 received/);
  await until('the lan0 chart to rise', async () => Number(await chart.getAttribute('data-max')) > Math.max(maxBefore, 50_000), 30_000);
  await shot('dashboard');
  await nav('Firewall');
  // Echo requests after the first are established traffic (accepted before the rules): the rule sees one packet.
  await until('the lan-ping hit counter to rise', async () => Number(await page.getByTestId('hits-lan-ping').getAttribute('data-value')) > before, 20_000);
  // Its last hit, from the rule's telemetry series (refreshed every 15 s); a rule without traffic has none.
  await until('the last hit of lan-ping', async () => /\d+ (s|min) ago/.test((await page.getByTestId('last-hit-lan-ping').textContent()) ?? ''), 40_000);
  assert.is(await page.getByTestId('last-hit-no-test3').textContent(), '–');
  await shot('firewall');
});

test('block an address with a TTL, see it count down, unblock it', async () => {
  const api = await apiLogin('admin', NEW_PASSWORD);
  await nav('Firewall');
  const form = page.getByRole('form', { name: 'Block an address' });
  await form.getByLabel('Address or prefix').fill('203.0.113.77');
  await form.getByLabel('TTL (seconds, empty: permanent)').fill('600');
  await form.getByLabel('Reason').fill('scanner seen in the lab');
  await form.getByRole('button', { name: 'Block' }).click();
  const row = page.getByTestId('block-row').filter({ hasText: '203.0.113.77' });
  await row.waitFor();
  const ttl1 = await row.getByTestId('ttl').textContent();
  assert.match(ttl1 ?? '', /min/);
  await until('the TTL to count down', async () => (await row.getByTestId('ttl').textContent()) !== ttl1);
  assert.ok((await api('GET', '/blocks')).body.some((b: any) => b.address === '203.0.113.77'));
  await row.getByRole('button', { name: 'Unblock 203.0.113.77' }).click();
  await until('the row to go', async () => (await row.count()) === 0);
  assert.not.ok((await api('GET', '/blocks')).body.some((b: any) => b.address === '203.0.113.77'));
});

test('users: create an operator, then delete it; the audit log shows the changes', async () => {
  const api = await apiLogin('admin', NEW_PASSWORD);
  await nav('Users');
  const form = page.getByRole('form', { name: 'New user' });
  await form.getByLabel('User name').fill('tech2');
  await form.getByLabel('Password (at least 10 characters)').fill('short');
  browser!.expectedRefusals.push({ path: '/api/v1/users', status: 422 });
  await form.getByLabel('Role').selectOption('operator');
  await form.getByRole('button', { name: 'Create user' }).click();
  await until('the password problem at its field', async () => (await form.getByLabel('Password (at least 10 characters)').getAttribute('aria-invalid')) === 'true');
  assert.not.ok((await api('GET', '/users')).body.some((u: any) => u.username === 'tech2'), 'nothing created');
  browser!.expectedRefusals.pop();
  await form.getByLabel('Password (at least 10 characters)').fill('operator-pass-1');
  await form.getByRole('button', { name: 'Create user' }).click();
  const row = page.locator('tr', { hasText: 'tech2' });
  await row.waitFor();
  assert.ok((await api('GET', '/users')).body.some((u: any) => u.username === 'tech2' && u.role === 'operator' && u.mustChange));
  await page.getByRole('button', { name: 'Delete user tech2' }).click();
  await until('the row to go', async () => (await row.count()) === 0);
  assert.not.ok((await api('GET', '/users')).body.some((u: any) => u.username === 'tech2'));
  await nav('Audit log');
  const audit = page.getByTestId('audit');
  await until('the audit entries', async () => (await audit.locator('tbody tr').count()) > 5);
  const text = (await audit.textContent()) ?? '';
  for (const action of ['auth.password', 'config.apply', 'config.confirm', 'block.add', 'block.remove', 'user.create', 'user.delete']) assert.ok(text.includes(action), action);
});

test('telemetry: any metric, the resolution follows the range', async () => {
  await nav('Telemetry');
  await page.getByLabel('Metric', { exact: true }).selectOption('if.lan0.rx_bytes_rate');
  await page.getByLabel('Range').selectOption({ label: '15 min' });
  await until('raw points', async () => /^resolution raw, .* [1-9]\d* points$/.test(((await page.getByTestId('tm-resolution').textContent()) ?? '').trim()));
  await page.getByLabel('Range').selectOption({ label: '30 days' });
  await until('hourly points', async () => /^resolution 1h, one point per 3600 s/.test(((await page.getByTestId('tm-resolution').textContent()) ?? '').trim()));
  await shot('telemetry');
});

test('the other pages render (screenshots)', async () => {
  for (const [title, file] of [
    ['Firewall', 'firewall-final'],
    ['Changes', 'changes'],
    ['Alerts', 'alerts'],
    ['System', 'system'],
    ['Telemetry', 'telemetry-page'],
    ['Users', 'users'],
    ['Audit log', 'audit'],
    ['Dashboard', 'dashboard-final'],
  ] as const) {
    await nav(title);
    await page.waitForLoadState('networkidle').catch(() => undefined);
    await shot(file);
    // Every control has a name a screen reader can say, and every button too.
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => {
          const e = el as HTMLInputElement;
          const named = (e.labels?.length ?? 0) > 0 || !!e.getAttribute('aria-label') || !!e.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && !!el.textContent?.trim());
          return !named;
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );
    assert.equal(unnamed, [], `controls without a name on ${title}`);
  }
  await page.setViewportSize({ width: 768, height: 1024 });
  for (const [title, file] of [['Firewall', 'firewall-768'], ['Dashboard', 'dashboard-768'], ['Changes', 'changes-768']] as const) {
    await nav(title);
    await shot(file);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${title} fits 768 px (overflow ${overflow} px)`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('system: an administrator installs an MSSP enrollment bundle; a broken one is refused and changes nothing', async () => {
  // A real bundle from the reference MSSP tool (its CA, the device certificate and key).
  const home = mkdtempSync(join(tmpdir(), 'rampart-e2e-mssp-'));
  const mssp = join(ROOT, 'bin/rampart-mssp');
  try {
    await run(mssp, ['--home', join(home, 'm'), 'init', '--broker', 'mqtts://127.0.0.1:8883']);
    const bundle = (await run(mssp, ['--home', join(home, 'm'), 'enroll', '--tenant', 'lab', '--device', 'fw'])).stdout;
    const good = join(home, 'fw.json');
    const broken = join(home, 'broken.json');
    writeFileSync(good, bundle);
    writeFileSync(broken, JSON.stringify({ ...JSON.parse(bundle), key: 'not a private key' }));
    const api = await apiLogin('admin', NEW_PASSWORD);
    assert.is((await api('GET', '/sync')).body.state, 'not_enrolled');
    await nav('System');
    const form = page.getByTestId('enroll-form');
    await form.locator('#bundle-file').setInputFiles(broken);
    browser!.expectedRefusals.push({ path: '/api/v1/sync/enroll', status: 422 }); // the deliberate refusal
    await form.getByRole('button', { name: 'Enroll', exact: true }).click();
    await page.getByTestId('enroll-error').waitFor();
    browser!.expectedRefusals.pop();
    assert.is((await api('GET', '/sync')).body.state, 'not_enrolled', 'a refused bundle changes nothing');
    await form.locator('#bundle-file').setInputFiles(good);
    await form.getByRole('button', { name: 'Enroll', exact: true }).click();
    await page.getByTestId('enroll-result').waitFor();
    assert.match((await page.getByTestId('enroll-result').textContent()) ?? '', /Enrolled as lab\/fw with mqtts:\/\/127\.0\.0\.1:8883/);
    // The lab configuration has sync off: enrolled, but the channel stays down until a config turns it on.
    const s = (await api('GET', '/sync')).body;
    assert.is(s.state, 'disabled');
    await shot('system-enrolled');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a viewer sees no mutating controls, and the API refuses them anyway', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.getByLabel('User name').fill('watcher');
  await page.getByLabel('Password', { exact: true }).fill(VIEWER_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  const navLinks = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
  assert.not.ok(navLinks.includes('Users'), 'no user management');
  await nav('Firewall');
  await page.getByTestId('rules-forward').waitFor();
  await until('the counters', async () => (await page.getByTestId('hits-lan-web').getAttribute('data-value')) !== '');
  await shot('viewer-firewall');
  assert.is(await page.getByRole('checkbox').count(), 0, 'no checkboxes');
  assert.is(await page.getByRole('textbox').count(), 0, 'no inputs');
  const buttons = await page.locator('main button').allTextContents();
  assert.equal(buttons, [], 'no buttons in the page');
  assert.is(await page.getByTestId('apply-panel').count(), 0);
  const mutating = /apply|confirm|revert|roll ?back|delete|unblock|block|add|edit|save|create/i;
  for (const title of ['Dashboard', 'Changes', 'Alerts', 'System', 'Telemetry']) {
    await nav(title);
    await page.waitForLoadState('networkidle').catch(() => undefined);
    const names = (await page.locator('button').allTextContents()).filter((t) => mutating.test(t));
    assert.equal(names, [], `no mutating buttons on ${title}`);
  }
  const api = await apiLogin('watcher', VIEWER_PASSWORD);
  const running = (await api('GET', '/config')).body;
  assert.is((await api('POST', '/config', { config: running.document })).status, 403);
  assert.is((await api('POST', '/blocks', { address: '203.0.113.9' })).status, 403);
  assert.is((await api('POST', '/config/rollback', {})).status, 403);
  assert.is((await api('POST', '/users', { username: 'x', password: 'long-enough-1', role: 'admin' })).status, 403);
});

test('no console errors on any page', () => {
  assert.equal(browser!.errors, []);
});

test.run();
