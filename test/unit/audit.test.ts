import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../../services/core/store.ts';
import { silentLogger } from '../../services/core/log.ts';
import { AuditLog } from '../../services/api/audit.ts';
import { Auth } from '../../services/api/auth.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'bin', 'rampart');

let dir: string;
let store: Store;
let clock: number;
let audit: AuditLog;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-audit-'));
  store = new Store(join(dir, 'rampart.db')).open();
  clock = Date.UTC(2030, 0, 1);
  audit = new AuditLog(store, silentLogger(), () => clock);
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('record and list: newest first, filters, limit', () => {
  audit.record({ username: 'alice', role: 'admin', source: '192.0.2.1', action: 'auth.login', target: 'alice', result: 'ok' });
  clock += 1000;
  audit.record({ username: 'bob', role: 'viewer', source: '192.0.2.2', action: 'config.apply', result: 'denied', detail: 'viewer may not apply' });
  clock += 1000;
  audit.record({ source: '192.0.2.3', action: 'auth.login', target: 'mallory', result: 'throttled' });
  const all = audit.list();
  assert.equal(
    all.map((e) => [e.username, e.action, e.result]),
    [
      [null, 'auth.login', 'throttled'],
      ['bob', 'config.apply', 'denied'],
      ['alice', 'auth.login', 'ok'],
    ],
  );
  assert.equal(all[1], { id: 2, at: clock - 1000, username: 'bob', role: 'viewer', source: '192.0.2.2', action: 'config.apply', target: '', result: 'denied', detail: 'viewer may not apply' });
  assert.is(audit.list({ username: 'alice' }).length, 1);
  assert.is(audit.list({ action: 'auth.login' }).length, 2);
  assert.is(audit.list({ result: 'denied' })[0].username, 'bob');
  assert.equal(audit.list({ since: clock - 1000 }).map((e) => e.id), [3, 2]);
  assert.equal(audit.list({ until: clock - 1000 }).map((e) => e.id), [1]);
  assert.equal(audit.list({ limit: 1 }).map((e) => e.id), [3]);
  assert.is(audit.list({ limit: 0 }).length, 1); // at least one
});

test('limit defaults to 100 and is capped at 1000', () => {
  const stmt = store.sql.prepare("INSERT INTO audit (at, source, action, result) VALUES (?, 'x', 'a', 'ok')");
  store.sql.transaction(() => {
    for (let i = 0; i < 1200; i++) stmt.run(i);
  })();
  assert.is(audit.list().length, 100);
  assert.is(audit.list({ limit: 5000 }).length, 1000);
  assert.is(audit.list()[0].at, 1199);
});

test('long fields truncated, control characters replaced, bad result mapped', () => {
  audit.record({ username: 'u'.repeat(500), role: 'r'.repeat(100), source: 's'.repeat(1000), action: 'a\nb', target: '\x1b[31mred', result: 'weird' as 'ok', detail: 'd'.repeat(100_000) });
  const [e] = audit.list();
  assert.is(e.username!.length, 64);
  assert.is(e.role!.length, 16);
  assert.is(e.source.length, 128);
  assert.is(e.action, 'a?b');
  assert.is(e.target, '?[31mred');
  assert.is(e.result, 'failed');
  assert.is(e.detail.length, 1024);
});

test('record never throws; purge by age', () => {
  audit.record({ source: 'a', action: 'old', result: 'ok' });
  clock += 10_000;
  audit.record({ source: 'a', action: 'new', result: 'ok' });
  assert.is(audit.purge(5_000), 1);
  assert.equal(audit.list().map((e) => e.action), ['new']);
  assert.is(audit.purge(-1), 0);
  store.close();
  audit.record({ source: 'a', action: 'lost', result: 'ok' }); // store closed: logged, not thrown
  store.open();
});

// ---- the CLI, through bin/rampart (a real process, a temp data dir) ----

function rampart(args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (!opts.env?.RAMPART_NEW_PASSWORD) delete env.RAMPART_NEW_PASSWORD;
  delete env.RAMPART_DATA;
  const r = spawnSync(bin, ['--data', dir, ...args], { input: opts.input ?? '', env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('cli: user add / list / passwd / del, audit; offline, nothing secret printed', async () => {
  const pw1 = 'first-console-password';
  let r = rampart(['user', 'add', 'alice', '--role', 'admin', '--password-stdin'], { input: pw1 + '\nignored second line\n' });
  assert.is(r.code, 0, r.stderr);
  assert.not.ok((r.stdout + r.stderr).includes(pw1));
  r = rampart(['user', 'add', 'bob', '--role', 'viewer'], { env: { RAMPART_NEW_PASSWORD: 'bobs-env-password' } });
  assert.is(r.code, 0, r.stderr);
  r = rampart(['user', 'add', 'carol', '--role', 'viewer']);
  assert.is(r.code, 2); // no password given
  assert.match(r.stderr, /password-stdin/);
  r = rampart(['user', 'add', 'Bad', '--role', 'nope', '--password-stdin'], { input: 'long enough password\n' });
  assert.is(r.code, 2);
  assert.match(r.stderr, /\/username/);
  r = rampart(['user', 'add', 'bob', '--role', 'viewer', '--password-stdin'], { input: 'long enough password\n' });
  assert.is(r.code, 1);
  assert.match(r.stderr, /exists/);

  r = rampart(['user', 'list', '--json']);
  assert.is(r.code, 0, r.stderr);
  const users = JSON.parse(r.stdout);
  assert.equal(users.map((u: any) => [u.username, u.role, u.mustChange]), [
    ['alice', 'admin', false],
    ['bob', 'viewer', false],
  ]);
  assert.not.ok(r.stdout.includes('scrypt'));
  r = rampart(['user', 'list']);
  assert.match(r.stdout, /alice\s+admin/);

  // the password from stdin is the one stored (one line, the rest ignored)
  const auth = new Auth(store, silentLogger());
  const s = await auth.login('alice', pw1, '192.0.2.1');
  assert.ok(auth.session(s.id));

  r = rampart(['user', 'passwd', 'alice', '--must-change', '--password-stdin'], { input: 'second-console-password\n' });
  assert.is(r.code, 0, r.stderr);
  assert.is(auth.session(s.id), undefined); // sessions ended
  const s2 = await auth.login('alice', 'second-console-password', '192.0.2.1');
  assert.ok(s2.mustChange);
  r = rampart(['user', 'passwd', 'nobody', '--password-stdin'], { input: 'whatever-password\n' });
  assert.is(r.code, 2);

  r = rampart(['user', 'del', 'alice']);
  assert.is(r.code, 1); // the last admin
  assert.match(r.stderr, /last administrator/);
  r = rampart(['user', 'del', 'bob']);
  assert.is(r.code, 0, r.stderr);
  assert.is(auth.getUser('bob'), undefined);

  r = rampart(['audit', '--json', '--limit', '50']);
  assert.is(r.code, 0, r.stderr);
  const entries = JSON.parse(r.stdout);
  const fromConsole = entries.filter((e: any) => e.source === 'console').map((e: any) => [e.action, e.target, e.result]);
  assert.equal(fromConsole, [
    ['user.del', 'bob', 'ok'],
    ['user.del', 'alice', 'failed'],
    ['user.passwd', 'nobody', 'failed'],
    ['user.passwd', 'alice', 'ok'],
    ['user.add', 'bob', 'failed'],
    ['user.add', 'Bad', 'failed'],
    ['user.add', 'bob', 'ok'],
    ['user.add', 'alice', 'ok'],
  ]);
  assert.ok(entries.some((e: any) => e.action === 'auth.login' && e.username === 'alice' && e.result === 'ok'));
  for (const secret of [pw1, 'bobs-env-password', 'second-console-password']) assert.not.ok(r.stdout.includes(secret));

  r = rampart(['audit', '--user', 'alice', '--limit', '1']);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2);
  assert.match(lines[0], /^TIME\s+USER/);
  assert.match(lines[1], /alice\s+admin\s+192\.0\.2\.1\s+auth\.login/);
  r = rampart(['audit', '--limit', 'x']);
  assert.is(r.code, 2);
});

test.run();
