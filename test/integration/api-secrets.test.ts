/**
 * Secrets end to end on a real rampartd: a viewer reads the redacted document over HTTP; that very document, with
 * its "(secret)" markers, goes back through `rampart plan` and `rampart apply` (control socket) and through the API;
 * the stored community is kept, as Net-SNMP's real snmpget proves against the agent on loopback. A marker without a
 * running value is refused with its pointer and nothing changes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labConfig, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { freeUdpPort } from '../helpers/ports.ts';
import { PATIENT, QUICK, tool } from '../fixtures/snmp/tools.ts';
import { apiLogin, freePort, type ApiCall } from '../e2e/browser.ts';

const PASSWORD = 'secrets-admin-pass-1';
const VIEWER_PASSWORD = 'secrets-viewer-pass-1';
const COMMUNITY = `c-${randomBytes(6).toString('hex')}`;
const AUTH_KEY = `a-${randomBytes(6).toString('hex')}`;
const PRIV_KEY = `p-${randomBytes(6).toString('hex')}`;
const SYS_NAME = '1.3.6.1.2.1.1.5.0';

let lab: Lab | undefined;
let daemon: TestDaemon | undefined;
let viewer: ApiCall;
let admin: ApiCall;
let target = '';
const dir = mkdtempSync(join(tmpdir(), 'rampart-secrets-'));

test.before(async () => {
  lab = await startLab();
  const port = await freePort();
  target = `127.0.0.1:${await freeUdpPort()}`;
  const config = labConfig();
  config.snmp = {
    enabled: true,
    listen: [target],
    communities: [{ name: COMMUNITY, sources: ['127.0.0.1/32'] }],
    users: [{ name: 'nms', auth: { protocol: 'sha256', key: AUTH_KEY }, priv: { protocol: 'aes', key: PRIV_KEY } }],
  };
  process.env.RAMPART_ADMIN_PASSWORD = PASSWORD;
  daemon = await startDaemon({ netns: lab.fw, config, extra: ['--listen', `127.0.0.1:${port}`] });
  delete process.env.RAMPART_ADMIN_PASSWORD;
  const r = await daemon.cli(['user', 'add', 'watcher', '--role', 'viewer', '--password-stdin'], VIEWER_PASSWORD + '\n');
  assert.is(r.code, 0, r.stderr);
  viewer = await apiLogin(`http://127.0.0.1:${port}`, 'watcher', VIEWER_PASSWORD);
  admin = await apiLogin(`http://127.0.0.1:${port}`, 'admin', PASSWORD);
});

test.after(async () => {
  await daemon?.cleanup();
  await lab?.down();
  rmSync(dir, { recursive: true, force: true });
});

async function stored(): Promise<{ version: number; document: any }> {
  const r = await daemon!.cli(['show', '--json']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const answers = (community: string) => async () => (await tool('snmpget', ['-v2c', '-c', community, ...PATIENT, '-On', target, SYS_NAME])).code === 0;

test('the redacted document goes back through rampart plan and apply and through the API; the secrets are kept', async () => {
  await waitFor(answers(COMMUNITY), 20_000, 'the agent answers the community');
  const before = await stored();
  const shown = await viewer('GET', '/config');
  assert.is(shown.status, 200);
  const text = JSON.stringify(shown.body);
  for (const s of [COMMUNITY, AUTH_KEY, PRIV_KEY]) assert.not.ok(text.includes(s), 'a secret from the API');
  const doc = shown.body.document;
  assert.is(doc.snmp.communities[0].name, '(secret)');

  doc.system.location = 'rack 7';
  const file = join(dir, 'redacted.json');
  writeFileSync(file, JSON.stringify(doc));
  const plan = await daemon!.cli(['plan', file, '--json']);
  assert.is(plan.code, 0, plan.stderr);
  assert.equal(JSON.parse(plan.stdout).configChanges.map((c: { path: string }) => c.path), ['/system/location']);
  const applied = await daemon!.cli(['apply', file, '--message', 'from the redacted document']);
  assert.is(applied.code, 0, applied.stderr);
  let now = await stored();
  assert.is(now.version, before.version + 1);
  assert.is(now.document.system.location, 'rack 7');
  assert.equal(now.document.snmp, before.document.snmp, 'the secrets are kept');

  doc.system.location = 'rack 8';
  const res = await admin('POST', '/config', { config: doc, message: 'through the API' });
  assert.is(res.status, 200, JSON.stringify(res.body));
  now = await stored();
  assert.is(now.document.system.location, 'rack 8');
  assert.equal(now.document.snmp, before.document.snmp);
  // The agent restarts with the location; the community still answers, another does not.
  await waitFor(async () => {
    const r = await tool('snmpget', ['-v2c', '-c', COMMUNITY, ...PATIENT, '-Oqv', target, '1.3.6.1.2.1.1.6.0']);
    return r.code === 0 && r.stdout.includes('rack 8');
  }, 20_000, 'the community answers with the new location');
  assert.is.not((await tool('snmpget', ['-v2c', '-c', '(secret)', ...QUICK, '-On', target, SYS_NAME])).code, 0, 'the marker is no community');
});

test('a marker without a running value is refused with its pointer, by rampart apply and by the API; nothing changes', async () => {
  const before = await stored();
  const doc = (await viewer('GET', '/config')).body.document;
  doc.snmp.communities.push({ name: '(secret)', sources: ['192.0.2.0/24'] });
  const file = join(dir, 'unset.json');
  writeFileSync(file, JSON.stringify(doc));
  const r = await daemon!.cli(['apply', file]);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /\/snmp\/communities\/1\/name: secret not set: enter a value/);
  const res = await admin('POST', '/config', { config: doc });
  assert.is(res.status, 422);
  assert.equal(res.body.error.details, [{ path: '/config/snmp/communities/1/name', message: 'secret not set: enter a value' }]);
  const after = await stored();
  assert.is(after.version, before.version, 'no new version');
  assert.equal(after.document, before.document);
});

test.run();
