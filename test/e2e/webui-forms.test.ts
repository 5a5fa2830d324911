/**
 * The SNMP settings form and the address / service objects forms end to end: headless Chromium (playwright-core
 * driving the Debian package) against a real rampartd managing a lab's firewall namespace.
 *
 * SNMP: a v2c community and a v3 user are set in the form, applied with confirm and confirmed; Net-SNMP's real
 * snmpget then reads the agent on loopback with them, and the secrets never appear in the page. Objects: an address
 * object, a service object and a rule using both are added in the forms and applied; they reach the running config
 * and the kernel's ruleset; deleting an object a rule uses is refused at the object with the API's pointer, and
 * nothing changes. A viewer gets neither form. Screenshots go to test-artifacts/e2e/.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { labConfig, rulesetText, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { freeUdpPort } from '../helpers/ports.ts';
import { PATIENT, QUICK, parseLines, tool } from '../fixtures/snmp/tools.ts';
import { join } from 'node:path';
import { ARTIFACTS, apiLogin, freePort, launchBrowser, nav as go, until, type ApiCall, type Browser } from './browser.ts';
import { ensureUiBuilt } from './ui-build.ts';

const PASSWORD = 'forms-e2e-password-1';
const VIEWER_PASSWORD = 'forms-viewer-pass-2';
// Secrets unique to this run, so finding one in the page can only mean the page shows it.
const COMMUNITY = `c-${randomBytes(6).toString('hex')}`;
const AUTH_KEY = `auth-${randomBytes(6).toString('hex')}`;
const PRIV_KEY = `priv-${randomBytes(6).toString('hex')}`;
const TRAP_COMMUNITY = `t-${randomBytes(6).toString('hex')}`;
const SYS_NAME = '1.3.6.1.2.1.1.5.0';
const SYS_LOCATION = '1.3.6.1.2.1.1.6.0';

let lab: Lab | undefined;
let daemon: TestDaemon | undefined;
let browser: Browser | undefined;
let page: Page;
let base = '';
let api: ApiCall;
let snmpTarget = '';
let trapPort = 0;

const nav = (title: string) => go(page, title);
const shot = (name: string) => browser!.shot(name);

async function login(username: string, password: string): Promise<void> {
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
}

/** Everything of the page a user or a script could read: its HTML and the current value of every field. */
async function pageText(): Promise<string> {
  const values = await page.evaluate(() => [...document.querySelectorAll('input, textarea, select')].map((e) => (e as HTMLInputElement).value).join('\n'));
  return (await page.content()) + '\n' + values;
}

/** Controls a screen reader could not name (no label, no aria-label, a button without text). */
async function unnamedControls(): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => {
        const e = el as HTMLInputElement;
        return !((e.labels?.length ?? 0) > 0 || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent?.trim()));
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

/** The running version as root reads it on the appliance (`rampart show`: the document with its secrets). */
async function stored(): Promise<{ version: number; document: any }> {
  const r = await daemon!.cli(['show', '--json']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function fitsWidth(width: number): Promise<number> {
  await page.setViewportSize({ width, height: 1024 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.setViewportSize({ width: 1280, height: 900 });
  return overflow;
}

test.before(async () => {
  await ensureUiBuilt();
  lab = await startLab();
  const port = await freePort();
  const udp = await freeUdpPort();
  snmpTarget = `127.0.0.1:${udp}`;
  trapPort = await freeUdpPort();
  base = `http://127.0.0.1:${port}`;
  process.env.RAMPART_ADMIN_PASSWORD = PASSWORD;
  daemon = await startDaemon({ netns: lab.fw, config: labConfig(), extra: ['--listen', `127.0.0.1:${port}`] });
  delete process.env.RAMPART_ADMIN_PASSWORD;
  const viewer = await daemon.cli(['user', 'add', 'watcher', '--role', 'viewer', '--password-stdin'], VIEWER_PASSWORD + '\n');
  assert.is(viewer.code, 0, viewer.stderr);
  api = await apiLogin(base, 'admin', PASSWORD);
  browser = await launchBrowser();
  page = browser.page;
  await page.goto(base + '/');
  await login('admin', PASSWORD);
});

test.after(async () => {
  await browser?.close();
  await daemon?.cleanup();
  await lab?.down();
});

test('SNMP: a community and a v3 user set in the form, applied and confirmed, answer snmpget; the secrets never show', async () => {
  assert.is((await api('GET', '/config')).body.document.snmp.enabled, false);
  // Nothing answers there yet.
  assert.is.not((await tool('snmpget', ['-v2c', '-c', COMMUNITY, ...QUICK, '-On', snmpTarget, SYS_NAME])).code, 0);

  await nav('SNMP');
  await until('the agent state', async () => (await page.getByTestId('snmp-state').textContent()) === 'disabled');
  await page.getByLabel('SNMP agent enabled').check();
  await page.locator('#snmp-listen').fill(snmpTarget);
  await page.locator('#snmp-location').fill('e2e rack 9');
  await page.getByRole('button', { name: 'Add community' }).click();
  assert.is(await page.getByTestId('community-0-state').textContent(), 'not set');
  await page.getByLabel('Community string 1').fill(COMMUNITY);
  assert.is(await page.getByTestId('community-0-state').textContent(), 'new value, not applied yet');
  await page.locator('#snmp-c0-sources').fill('127.0.0.1/33');
  await page.getByRole('button', { name: 'Add user' }).click();
  await page.locator('#snmp-u0-name').fill('nms');
  // The protocol choices are the schema's: SHA-2 (SHA-1 only when allowed) and AES.
  const authChoices = await page.locator('#snmp-u0-authp option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
  assert.equal(authChoices.sort(), ['sha224', 'sha256', 'sha384', 'sha512']);
  assert.equal(await page.locator('#snmp-u0-privp option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value)), ['aes', 'aes256']);
  await page.locator('#snmp-u0-authp').selectOption('sha512');
  await page.locator('#snmp-u0-privp').selectOption('aes256');
  // A trap target: a v3 target chooses among the users of the form; this one stays v2c with a community of its own.
  await page.getByRole('button', { name: 'Add target' }).click();
  await page.locator('#snmp-t0-host').fill('127.0.0.1');
  await page.locator('#snmp-t0-port').fill(String(trapPort));
  await page.locator('#snmp-t0-version').selectOption('v3');
  assert.equal(await page.locator('#snmp-t0-user option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value)), ['', 'nms']);
  await page.locator('#snmp-t0-version').selectOption('v2c');
  await page.locator('#snmp-t0-community').fill(TRAP_COMMUNITY);
  await page.locator('#snmp-t0-sev').selectOption('1');
  await page.locator('#snmp-u0-authk').fill('short');
  await page.locator('#snmp-u0-privk').fill(PRIV_KEY);

  // A key too short: the API's problem at the key's field.
  await page.getByRole('button', { name: 'Check' }).click();
  await until('the key problem at its field', async () => (await page.locator('#snmp-u0-authk').getAttribute('aria-invalid')) === 'true');
  assert.ok(((await page.locator('#snmp-u0-authk-err').textContent()) ?? '').length > 0);
  await page.locator('#snmp-u0-authk').fill(AUTH_KEY);
  // A source that is not a network: its problem at the sources field (a cross-reference check of the validator).
  await page.getByRole('button', { name: 'Check' }).click();
  await until('the source problem at its field', async () => (await page.locator('#snmp-c0-sources').getAttribute('aria-invalid')) === 'true');
  assert.match((await page.locator('#snmp-c0-sources-err').textContent()) ?? '', /0: not an IP address or object name/);
  assert.is(await page.locator('#snmp-u0-authk').getAttribute('aria-invalid'), null, 'the fixed key is no longer marked');
  await page.locator('#snmp-c0-sources').fill('127.0.0.1/32');
  await page.getByRole('button', { name: 'Check' }).click();
  await page.getByText('No problems: the settings can be applied.').waitFor();
  assert.is((await api('GET', '/config')).body.version, 1, 'checking changes nothing');
  await shot('snmp-form');

  await page.getByLabel('Message').fill('SNMP from the web UI');
  await page.getByLabel('within (seconds)').fill('120');
  await page.getByRole('button', { name: 'Apply' }).click();
  const banner = page.getByTestId('pending-banner');
  await banner.waitFor();
  assert.match((await banner.textContent()) ?? '', /Version 2 is applied and waits for confirmation/);
  await banner.getByRole('button', { name: 'Confirm' }).click();
  await page.getByTestId('outcome-banner').filter({ hasText: 'Version 2 confirmed' }).waitFor();

  // The API shows the secrets as "(secret)" only, to every role (docs/config.md, "Secrets").
  const shown = (await api('GET', '/config')).body;
  assert.is(shown.version, 2);
  assert.is(shown.message, 'SNMP from the web UI');
  assert.equal(shown.document.snmp.communities, [{ name: '(secret)', sources: ['127.0.0.1/32'] }]);
  assert.equal(shown.document.snmp.users, [{ name: 'nms', auth: { protocol: 'sha512', key: '(secret)' }, priv: { protocol: 'aes256', key: '(secret)' } }]);
  for (const secret of [COMMUNITY, AUTH_KEY, PRIV_KEY, TRAP_COMMUNITY]) assert.not.ok(JSON.stringify(shown).includes(secret), 'a secret from the API');
  // The ground truth: the running document as root reads it on the appliance, then the agent itself through Net-SNMP.
  const running = await stored();
  assert.is(running.version, 2);
  assert.equal(running.document.snmp.communities, [{ name: COMMUNITY, sources: ['127.0.0.1/32'] }]);
  assert.equal(running.document.snmp.users, [{ name: 'nms', auth: { protocol: 'sha512', key: AUTH_KEY }, priv: { protocol: 'aes256', key: PRIV_KEY } }]);
  assert.equal(running.document.snmp.targets, [{ host: '127.0.0.1', port: trapPort, version: 'v2c', minSeverity: 1, community: TRAP_COMMUNITY }]);
  let got = new Map<string, string>();
  await waitFor(
    async () => {
      const r = await tool('snmpget', ['-v2c', '-c', COMMUNITY, ...PATIENT, '-On', snmpTarget, SYS_NAME, SYS_LOCATION]);
      got = parseLines(r.stdout);
      return r.code === 0;
    },
    20_000,
    'snmpget with the community set in the form',
  );
  assert.is(got.get(SYS_NAME), 'fw-lab');
  assert.is(got.get(SYS_LOCATION), 'e2e rack 9');
  const v3 = await tool('snmpget', ['-v3', '-l', 'authPriv', '-u', 'nms', '-a', 'SHA-512', '-A', AUTH_KEY, '-x', 'AES-256', '-X', PRIV_KEY, ...PATIENT, '-On', snmpTarget, SYS_NAME]);
  assert.is(v3.code, 0, v3.stderr);
  assert.is(parseLines(v3.stdout).get(SYS_NAME), 'fw-lab');
  const wrong = await tool('snmpget', ['-v2c', '-c', COMMUNITY + 'x', ...QUICK, '-On', snmpTarget, SYS_NAME]);
  assert.is.not(wrong.code, 0, 'another community gets no answer');

  // The page follows the applied version and shows only that the secrets are set.
  await until('the agent running', async () => (await page.getByTestId('snmp-state').textContent()) === 'running');
  assert.is(await page.getByTestId('snmp-listen').textContent(), snmpTarget);
  await until('the stored community', async () => (await page.getByTestId('community-0-state').textContent()) === 'set (unchanged)');
  for (const secret of [COMMUNITY, AUTH_KEY, PRIV_KEY, TRAP_COMMUNITY]) assert.not.ok((await pageText()).includes(secret), 'a secret in the page');
  // A reload reads the stored settings afresh: still no secret in the page.
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'SNMP' }).waitFor();
  await until('the stored community after a reload', async () => (await page.getByTestId('community-0-state').textContent()) === 'set (unchanged)');
  assert.is(await page.locator('#snmp-c0-name').inputValue(), '');
  assert.match((await page.locator('label[for="snmp-u0-authk"]').textContent()) ?? '', /set; empty: unchanged/);
  for (const secret of [COMMUNITY, AUTH_KEY, PRIV_KEY, TRAP_COMMUNITY]) assert.not.ok((await pageText()).includes(secret), 'a secret in the page after a reload');
  // Nothing changed in the form: nothing to apply (the unchanged secrets are kept, not blanked).
  await page.locator('#snmp-location').fill('e2e rack 9');
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isDisabled());
  await shot('snmp-settings');
  assert.equal(await unnamedControls(), [], 'every control on the SNMP page has a name');
  assert.ok((await fitsWidth(768)) <= 0, 'the SNMP page fits 768 px');
});

test('objects: an address object, a service object and a rule using them, added in the forms and applied', async () => {
  await nav('Firewall');
  await page.getByRole('button', { name: 'New address object' }).click();
  const af = page.getByRole('form', { name: 'New address object' });
  const focused = () => page.evaluate(() => document.activeElement?.id ?? '');
  await until('the focus in the name field', async () => (await focused()) === 'obj-addresses-name');
  await af.getByLabel('Name', { exact: true }).fill('e2e-hosts');
  const members = af.getByLabel(/^Members/);
  await members.fill('192.0.2.11 192.0.2.300');
  await af.getByRole('button', { name: 'Add address object' }).click();
  await until('the member problem at its field', async () => (await members.getAttribute('aria-invalid')) === 'true');
  assert.match((await page.locator('#obj-addresses-members-err').textContent()) ?? '', /192\.0\.2\.300: not an IP address or CIDR/);
  assert.is(await page.getByTestId('addr-e2e-hosts').count(), 0, 'not in the candidate');
  await members.fill('192.0.2.11\n2001:db8:1::11');
  await af.getByRole('button', { name: 'Add address object' }).click();
  await page.getByTestId('addr-e2e-hosts').waitFor();
  await until('the focus on the saved object', async () => (await focused()) === 'obj-edit-addresses-e2e-hosts');
  assert.match((await page.getByTestId('addr-e2e-hosts').textContent()) ?? '', /192\.0\.2\.11, 2001:db8:1::11/);

  await page.getByRole('button', { name: 'New service object' }).click();
  const sf = page.getByRole('form', { name: 'New service object' });
  await sf.getByLabel('Name', { exact: true }).fill('e2e-svc');
  await sf.getByLabel(/^Ports 1/).fill('8443');
  await sf.getByRole('button', { name: 'Add protocol' }).click();
  assert.equal(await unnamedControls(), [], 'every control of the service object form has a name');
  await sf.getByLabel('Protocol 2', { exact: true }).selectOption('udp');
  await sf.getByLabel(/^Ports 2/).fill('70000');
  await sf.getByRole('button', { name: 'Add service object' }).click();
  await until('the port problem at its field', async () => (await sf.getByLabel(/^Ports 2/).getAttribute('aria-invalid')) === 'true');
  assert.is(await sf.getByLabel(/^Ports 1/).getAttribute('aria-invalid'), null);
  await sf.getByLabel(/^Ports 2/).fill('5000-5001');
  await sf.getByRole('button', { name: 'Add service object' }).click();
  await page.getByTestId('svc-e2e-svc').waitFor();
  assert.match((await page.getByTestId('svc-e2e-svc').textContent()) ?? '', /tcp\/8443, udp\/5000-5001/);

  // A forward rule that uses both.
  await page.getByRole('button', { name: 'Add forward rule' }).click();
  await page.locator('#rule-forward-id').fill('e2e-rule');
  await page.locator('#rule-forward-from').selectOption('lan');
  await page.locator('#rule-forward-to').selectOption('wan');
  await page.locator('#rule-forward-source').fill('e2e-hosts');
  await page.locator('#rule-forward-services').fill('e2e-svc');
  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.getByTestId('rule-e2e-rule').waitFor();
  await shot('firewall-objects-candidate');

  await page.getByLabel('Message').fill('objects from the web UI');
  await page.getByLabel('Revert by itself unless confirmed').uncheck();
  await page.getByRole('button', { name: 'Apply' }).click();
  await until('the new running version', async () => (await api('GET', '/config')).body.version === 3, 30_000);
  const doc = (await api('GET', '/config')).body.document;
  assert.equal(doc.objects.addresses['e2e-hosts'], ['192.0.2.11', '2001:db8:1::11']);
  assert.equal(doc.objects.services['e2e-svc'], [{ proto: 'tcp', ports: ['8443'] }, { proto: 'udp', ports: ['5000-5001'] }]);
  const rule = doc.firewall.forward.find((r: any) => r.id === 'e2e-rule');
  assert.equal(rule.source, ['e2e-hosts']);
  assert.equal(rule.services, ['e2e-svc']);
  // And in the kernel: the rule matches the object's addresses and the service's ports.
  const nft = await rulesetText(lab!.fw);
  for (const s of ['192.0.2.11', '2001:db8:1::11', '8443', '5000-5001']) assert.ok(nft.includes(s), `${s} in the ruleset`);
  await until('the apply panel to settle', async () => (await page.getByTestId('apply-panel').textContent())?.includes('No changes to the running version 3') ?? false);
});

test('objects: deleting an object a rule uses is refused at the object with the API\'s pointer; nothing changes', async () => {
  const before = (await api('GET', '/config')).body;
  const rulesetBefore = await rulesetText(lab!.fw);
  await nav('Firewall');
  const row = page.getByTestId('addr-e2e-hosts');
  await page.getByRole('button', { name: 'Delete address object e2e-hosts' }).click();
  const problem = page.getByTestId('obj-error-e2e-hosts');
  await problem.waitFor();
  const index = before.document.firewall.forward.findIndex((r: any) => r.id === 'e2e-rule');
  assert.match((await problem.textContent()) ?? '', new RegExp(`/firewall/forward/${index}/source/0 \\(rule e2e-rule\\): unknown address object "e2e-hosts"`));
  assert.is(await row.count(), 1, 'the object stays');
  assert.match((await page.getByRole('button', { name: 'Delete address object e2e-hosts' }).getAttribute('aria-describedby')) ?? '', /obj-err-addresses-e2e-hosts/);
  await page.getByRole('button', { name: 'Delete service object e2e-svc' }).click();
  await page.getByTestId('obj-error-e2e-svc').waitFor();
  assert.match((await page.getByTestId('obj-error-e2e-svc').textContent()) ?? '', new RegExp(`/firewall/forward/${index}/services/0 \\(rule e2e-rule\\): unknown service "e2e-svc"`));
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isDisabled(), 'the candidate is unchanged');
  await shot('firewall-objects-refused');
  await page.locator('section[aria-labelledby="objects-title"]').screenshot({ path: join(ARTIFACTS, 'firewall-objects.png') });
  // An object nothing uses goes (from the candidate), and Discard brings it back.
  await page.getByRole('button', { name: 'Delete address object web-srv' }).click();
  await until('web-srv to leave the candidate', async () => (await page.getByTestId('addr-web-srv').count()) === 0);
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isEnabled());
  await page.getByRole('button', { name: 'Discard changes' }).click();
  await page.getByTestId('addr-web-srv').waitFor();
  // The running configuration and the kernel are as they were.
  const after = (await api('GET', '/config')).body;
  assert.is(after.version, before.version);
  assert.equal(after.document, before.document);
  assert.is(await rulesetText(lab!.fw), rulesetBefore);
  await page.getByTestId('address-objects').scrollIntoViewIfNeeded();
  assert.equal(await unnamedControls(), [], 'every control on the Firewall page has a name');
  assert.ok((await fitsWidth(768)) <= 0, 'the Firewall page fits 768 px');
});

test('objects: editing an object keeps its place and is checked like a new one', async () => {
  await nav('Firewall');
  await page.getByRole('button', { name: 'Edit address object e2e-hosts' }).click();
  const form = page.getByRole('form', { name: 'Edit address object' });
  // Renaming it would leave the rule pointing at nothing: refused at the name.
  await form.getByLabel('Name', { exact: true }).fill('e2e-renamed');
  await form.getByRole('button', { name: 'Save address object' }).click();
  await until('the rename problem at the name', async () => (await form.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')) === 'true');
  assert.match((await page.locator('#obj-addresses-name-err').textContent()) ?? '', /"e2e-hosts" is still used at \/firewall\/forward\/\d+\/source\/0 \(rule e2e-rule\)/);
  await form.getByLabel('Name', { exact: true }).fill('e2e-hosts');
  await form.getByLabel(/^Members/).fill('192.0.2.11 192.0.2.12');
  await form.getByRole('button', { name: 'Save address object' }).click();
  await until('the edited members', async () => /192\.0\.2\.11, 192\.0\.2\.12/.test((await page.getByTestId('addr-e2e-hosts').textContent()) ?? ''));
  const names = await page.getByTestId('address-objects').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
  assert.equal(names, ['addr-lan-net', 'addr-web-srv', 'addr-e2e-hosts']);
  await page.getByRole('button', { name: 'Discard changes' }).click();
  await until('the running members again', async () => /192\.0\.2\.11, 2001:db8:1::11/.test((await page.getByTestId('addr-e2e-hosts').textContent()) ?? ''));
});

test('SNMP: one field changed in the form; the page sends "(secret)" for the secrets and the stored ones are kept', async () => {
  const before = await stored();
  await nav('SNMP');
  await until('the stored community', async () => (await page.getByTestId('community-0-state').textContent()) === 'set (unchanged)');
  await page.locator('#snmp-contact').fill('noc@e2e.example');
  await page.getByLabel('Revert by itself unless confirmed').uncheck();
  await page.getByRole('button', { name: 'Apply' }).click();
  await until('a new running version', async () => (await api('GET', '/config')).body.version === before.version + 1);
  const after = await stored();
  assert.is(after.document.snmp.contact, 'noc@e2e.example');
  assert.equal(after.document.snmp.communities, before.document.snmp.communities, 'the community is kept');
  assert.equal(after.document.snmp.users, before.document.snmp.users, 'the keys are kept');
  assert.equal(after.document.snmp.targets, before.document.snmp.targets, 'the trap community is kept');
  assert.is(after.document.snmp.communities[0].name, COMMUNITY);
  await waitFor(
    async () => (await tool('snmpget', ['-v2c', '-c', COMMUNITY, ...PATIENT, '-On', snmpTarget, SYS_NAME])).code === 0,
    20_000,
    'snmpget with the kept community',
  );
  await until('the page follows the new version', async () => (await page.getByTestId('community-0-state').textContent()) === 'set (unchanged)');
  for (const secret of [COMMUNITY, AUTH_KEY, PRIV_KEY, TRAP_COMMUNITY]) assert.not.ok((await pageText()).includes(secret), 'a secret in the page');
});

test('a viewer sees the settings and the objects but no control that edits them, and no secret', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await login('watcher', VIEWER_PASSWORD);
  await nav('SNMP');
  await page.getByTestId('snmp-readonly').waitFor();
  assert.match((await page.getByTestId('snmp-readonly').textContent()) ?? '', /Community 1 \(secret set\), from 127\.0\.0\.1\/32/);
  assert.is(await page.locator('main input, main select, main textarea').count(), 0, 'no fields');
  assert.equal(await page.locator('main button').allTextContents(), [], 'no buttons');
  for (const secret of [COMMUNITY, AUTH_KEY, PRIV_KEY, TRAP_COMMUNITY]) assert.not.ok((await pageText()).includes(secret), 'a secret in the viewer\'s page');
  await shot('viewer-snmp');
  // Nor in the history: the diff of the SNMP change shows that secrets are there, not what they are.
  await nav('Changes');
  await page.getByLabel('Compare a version with').selectOption('previous');
  await page.getByRole('button', { name: 'Show the diff of version 2' }).click();
  await page.getByTestId('diff').waitFor();
  const diff = (await page.getByTestId('diff').textContent()) ?? '';
  // New secrets: the diff says they changed, never what they are.
  assert.match(diff, /\+\s+"name": "\(secret, changed\)"/);
  assert.match(diff, /\+\s+"key": "\(secret, changed\)"/);
  assert.match(diff, /"127\.0\.0\.1\/32"/);
  for (const secret of [COMMUNITY, AUTH_KEY, PRIV_KEY, TRAP_COMMUNITY]) assert.not.ok((await pageText()).includes(secret), 'a secret in the diff');
  await nav('Firewall');
  await page.getByTestId('addr-e2e-hosts').waitFor();
  await page.getByTestId('svc-e2e-svc').waitFor();
  assert.is(await page.locator('main input, main select, main textarea').count(), 0, 'no fields');
  assert.equal(await page.locator('main button').allTextContents(), [], 'no buttons');
  assert.is(await page.getByRole('form').count(), 0);
});

test('no console errors on any page', () => {
  assert.equal(browser!.errors, []);
});

test.run();
