/**
 * Rule sources fetched with the real suricata-update, loaded into real Suricata in the lab (IDS mode on wan0):
 *  - a file:// source (a .tar.gz built here) → `rampart ids update` → its rule is loaded and alerts on a request
 *    from the wan host; the per-SID overrides of the configuration apply to source rules too;
 *  - a broken source (random bytes), an unreachable one and one with a rule Suricata refuses → clear errors with
 *    JSON pointers, and the running rules stay active (same engine, same rule count);
 *  - hostile source names and URLs are refused by the validator with JSON pointers, and nothing is applied;
 *  - POST /api/v1/ids/update: admins only, audited;
 *  - suricata-update missing → a clear "not installed" error (a program name that does not exist stands in for the
 *    uninstalled package: it cannot be removed from this shared machine).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { silentLogger } from '../../services/core/log.ts';
import { RampartError } from '../../services/core/errors.ts';
import { RuleUpdater, countRules, sourceProblems, suricataUpdateArgs, updateLayout } from '../../services/ids/update.ts';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { cliJson, getFromWan, startWeb } from '../helpers/lab-web.ts';
import { freePort } from '../helpers/ports.ts';

const LOCAL_SID = 9000201;
const LOCAL_RULE = `alert http any any -> any any (msg:"RAMPART local rule"; flow:to_server,established; http.uri; content:"/rampart-local-only"; sid:${LOCAL_SID}; rev:1;)`;
const SOURCE_SID = 9100001;
const SOURCE_RULES = [
  `alert http any any -> any any (msg:"RAMPART update test"; flow:to_server,established; http.uri; content:"/rampart-update-test"; classtype:web-application-attack; sid:${SOURCE_SID}; rev:1;)`,
  // Disabled by the configuration's sids.disable.
  'alert http any any -> any any (msg:"RAMPART update disabled"; flow:to_server,established; http.uri; content:"/rampart-update-off"; sid:9100002; rev:1;)',
  // Commented out in the source: stays disabled.
  '# alert http any any -> any any (msg:"RAMPART update commented"; http.uri; content:"/x"; sid:9100003; rev:1;)',
];
const PASSWORD = 'update-admin-password';

let lab: Lab | undefined;
let d: TestDaemon | undefined;
let web: ChildProcess | undefined;
let tmp: string;
let port: number;
let dataDir: string | undefined;

/**
 * The daemon this test started on `dir`, found by its command line: when startDaemon gives up waiting for it (a
 * loaded machine), the helper has no handle to return, and it must not outlive the test.
 */
function daemonPids(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('--data');
      if (i >= 0 && argv[i + 1] === dir && argv.includes('serve')) pids.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return pids;
}

function existsPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A rules tarball like the ones rule vendors publish (rules/NAME.rules inside). */
async function tarball(name: string, rules: string[]): Promise<string> {
  const dir = join(tmp, `${name}-src`);
  mkdirSync(join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'rules', `${name}.rules`), rules.join('\n') + '\n');
  const file = join(tmp, `${name}.tar.gz`);
  await execa('tar', ['-czf', file, '-C', dir, 'rules']);
  return file;
}

function config(sources: { name: string; url: string }[]): any {
  const c = labConfig();
  c.ids = { enabled: true, mode: 'ids', interfaces: ['wan'], localRules: [LOCAL_RULE], sources, sids: { disable: [9100002] } };
  return c;
}

test.before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rampart-ids-update-'));
  const good = await tarball('lab', SOURCE_RULES);
  lab = await startLab();
  web = await startWeb(lab.lan);
  port = await freePort();
  process.env.RAMPART_ADMIN_PASSWORD = PASSWORD;
  dataDir = mkdtempSync(join(tmpdir(), 'rampart-test-'));
  d = await startDaemon({ dataDir, netns: lab.fw, config: config([{ name: 'lab', url: `file://${good}` }]), extra: ['--listen', `127.0.0.1:${port}`] });
  await waitFor(async () => (await d!.call('idsStatus')).state === 'running', 30_000, 'suricata to run');
});

test.after(async () => {
  delete process.env.RAMPART_ADMIN_PASSWORD;
  await d?.cleanup().catch(() => undefined);
  if (!d && dataDir) {
    const pids = daemonPids(dataDir);
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    await waitFor(() => pids.every((pid) => !existsPid(pid)), 30_000, 'the unanswering daemon to stop').catch(() => pids.forEach((pid) => existsPid(pid) && process.kill(pid, 'SIGKILL')));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (web && web.exitCode === null) web.kill('SIGTERM');
  await lab?.down();
  rmSync(tmp, { recursive: true, force: true });
});

test('before any update the local rules run alone (offline), and the source is listed as not fetched', async () => {
  const s = await cliJson(d!, ['ids', 'status']);
  assert.is(s.rules.loaded, 1, JSON.stringify(s.rules));
  assert.equal(s.update.sources, [{ name: 'lab', fetched: false }]);
  assert.is(s.update.available, true, 'suricata-update is installed here (scripts/bootstrap)');
  assert.equal((await cliJson(d!, ['ids', 'rules'])).map((r: any) => r.sid), [LOCAL_SID]);
});

test('ids update: the file:// source is fetched, merged with the per-SID overrides, loaded live and alerts', async () => {
  const pid = (await d!.call('idsStatus')).engine.pid;
  const r = await cliJson(d!, ['ids', 'update']);
  assert.equal(r.sources.map((s: any) => [s.name, s.rules]), [['lab', 3]]);
  assert.is(r.action, 'reloaded');
  assert.is(r.rulesLoaded, 2, 'the local rule and the enabled source rule');
  const rules = await cliJson(d!, ['ids', 'rules']);
  const bySid = new Map(rules.map((x: any) => [x.sid, x]));
  assert.equal(bySid.get(SOURCE_SID), { sid: SOURCE_SID, msg: 'RAMPART update test', action: 'alert', enabled: true, origin: 'source lab:1', classtype: 'web-application-attack' });
  assert.is((bySid.get(9100002) as any).enabled, false, 'sids.disable applies to source rules');
  assert.is((bySid.get(9100003) as any).enabled, false, 'commented out in the source');
  const s = await cliJson(d!, ['ids', 'status']);
  assert.is(s.engine.pid, pid, 'reloaded live, not restarted');
  assert.is(s.rules.loaded, 2);
  assert.equal(s.update.sources[0].fetched, true);
  assert.equal(s.update.lastUpdate.sources, [{ name: 'lab', rules: 3 }]);
  assert.not.match(JSON.stringify(s) + JSON.stringify(r), /file:\/\//, 'source URLs (which may carry access codes) are not shown');
  assert.match((await d!.cli(['ids', 'status'])).stdout, /^sources {5}lab; last update \d{4}-/m);

  assert.is(await getFromWan(lab!.wan, '/rampart-update-test'), 'ok /rampart-update-test');
  let alert: any;
  await waitFor(async () => {
    alert = (await d!.call('alerts', {})).find((a: any) => a.sid === SOURCE_SID);
    return !!alert;
  }, 20_000, 'the alert from the source rule');
  assert.is(alert.signature, 'RAMPART update test');
  assert.is(alert.src, '198.51.100.20');
});

test('POST /api/v1/ids/update: admins only, audited', async () => {
  process.env.RAMPART_NEW_PASSWORD = 'operator-password-1';
  const added = await d!.cli(['user', 'add', 'op', '--role', 'operator']);
  delete process.env.RAMPART_NEW_PASSWORD;
  assert.is(added.code, 0, added.stderr);
  const base = `http://127.0.0.1:${port}/api/v1`;
  const login = async (username: string, password: string) => {
    const res = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
    assert.is(res.status, 200, `login ${username}`);
    return /(rampart_session=[^;]+)/.exec(res.headers.get('set-cookie')!)![1];
  };
  const post = (cookie: string) => fetch(`${base}/ids/update`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' });
  const op = await post(await login('op', 'operator-password-1'));
  assert.is(op.status, 403);
  const admin = await login('admin', PASSWORD);
  const res = await post(admin);
  assert.is(res.status, 200, await res.clone().text());
  const body = await res.json();
  assert.equal(body.sources.map((s: any) => s.name), ['lab']);
  assert.is(body.rulesLoaded, 2);
  assert.is(body.action, 'reloaded');
  const audit = await (await fetch(`${base}/audit?action=ids.update`, { headers: { cookie: admin } })).json();
  assert.equal(audit.slice(0, 2).map((e: any) => [e.username, e.result]), [['admin', 'ok'], ['op', 'denied']]);
  assert.match(audit[0].detail, /lab: 3/);
});

test('broken, unreachable and refused sources: clear errors with pointers, the running rules stay active', async () => {
  const good = `file://${join(tmp, 'lab.tar.gz')}`;
  const junk = join(tmp, 'junk.tar.gz');
  writeFileSync(junk, randomFillSync(Buffer.alloc(2048)));
  const refused = await tarball('bad', ['alert http any any -> any any (msg:"broken"; no_such_keyword; sid:9100010; rev:1;)']);
  const pid = (await d!.call('idsStatus')).engine.pid;
  // A source that cannot be fetched or unpacked stops the update before Suricata sees anything; every such source is
  // reported at once. A rule Suricata refuses is found by `suricata -T`.
  const cases: [{ name: string; url: string }[], RegExp[]][] = [
    [
      [
        { name: 'junk', url: `file://${junk}` },
        { name: 'gone', url: `file://${join(tmp, 'missing.tar.gz')}` },
      ],
      [/^\/ids\/sources\/1: junk: no rules in what was fetched/m, /^\/ids\/sources\/2: gone: cannot fetch: .*No such file or directory/m],
    ],
    [[{ name: 'bad', url: `file://${refused}` }], [/^\/ids\/sources\/1: rules file line \d+ \(source bad:1\): .*no_such_keyword/m]],
  ];
  for (const [extra, expected] of cases) {
    const name = extra.map((e) => e.name).join('+');
    const t = Date.now();
    const applied = await d!.cli(['apply', d!.file(config([{ name: 'lab', url: good }, ...extra]))]);
    assert.is(applied.code, 0, applied.stderr);
    // The unfetched second source adds nothing; the first keeps the rules of its last update.
    await waitFor(async () => ((await d!.call('idsStatus')).lastReload?.at ?? 0) >= t, 20_000, 'the IDS to take the new version');
    assert.is((await d!.call('idsStatus')).rules.configured, 2);
    const r = await d!.cli(['ids', 'update']);
    assert.is(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /the running rules stay active/, r.stderr);
    for (const e of expected) assert.match(r.stderr, e, r.stderr);
    assert.not.match(r.stderr, /file:\/\//, 'no source URL in the error');
    const s = await cliJson(d!, ['ids', 'status']);
    assert.is(s.state, 'running');
    assert.is(s.engine.pid, pid, `${name}: the engine was not restarted`);
    assert.is(s.rules.loaded, 2, `${name}: the old rule set is still loaded`);
    assert.ok(!(await cliJson(d!, ['ids', 'rules'])).some((x: any) => extra.some((e) => x.origin.startsWith(`source ${e.name}:`))), `${name}: none of its rules`);
  }
  const audit = await cliJson(d!, ['audit', '--limit', '20']);
  assert.ok(audit.some((e: any) => e.action === 'ids.update' && e.result === 'failed'), 'failed updates are audited');
});

test('hostile source names and URLs are refused by the validator with JSON pointers; nothing is applied', async () => {
  const before = (await cliJson(d!, ['history'])).length;
  const hostile = [
    { name: 'Evil;rm', url: 'https://rules.example.net/a.tar.gz' },
    { name: 'spaces', url: 'https://rules.example.net/a b.tar.gz' },
    { name: 'option', url: '--output=/etc' },
    { name: 'plain', url: 'http://rules.example.net/a.rules' },
    { name: 'creds', url: 'https://user:secret@rules.example.net/a.rules' },
    { name: 'dotdot', url: 'file:///tmp/../etc/shadow' },
    { name: 'encoded', url: 'file:///tmp/%2E%2e/etc/shadow' },
    { name: 'newline', url: 'https://rules.example.net/a.rules\n--output=/etc' },
    { name: 'lab', url: 'file:///tmp/dup.rules' },
    { name: 'lab', url: 'file:///tmp/dup2.rules' },
  ];
  const file = d!.file(config(hostile));
  const v = await d!.cli(['validate', file]);
  assert.is(v.code, 2);
  for (const p of ['/ids/sources/0/name', '/ids/sources/1/url', '/ids/sources/2/url', '/ids/sources/3/url', '/ids/sources/4/url', '/ids/sources/5/url', '/ids/sources/6/url', '/ids/sources/7/url', '/ids/sources/9/name']) {
    assert.match(v.stderr, new RegExp(`^${p}: `, 'm'), `${p} in:\n${v.stderr}`);
  }
  assert.match(v.stderr, /\/ids\/sources\/9\/name: duplicate source name "lab"/);
  assert.match(v.stderr, /\/ids\/sources\/6\/url: must not contain "\." or "\.\." path segments/);
  assert.match(v.stderr, /\/ids\/sources\/5\/url: must not contain "\." or "\.\." path segments/);
  const applied = await d!.cli(['apply', file]);
  assert.is(applied.code, 2);
  assert.is((await cliJson(d!, ['history'])).length, before, 'no new version');
});

test('suricata-update missing: a clear error, nothing fetched; its argv keeps every value in one --opt=value', async () => {
  const dir = join(tmp, 'absent');
  const u = new RuleUpdater({ suricataDir: dir, log: silentLogger(), binary: 'rampart-no-such-suricata-update' });
  assert.is(u.program(), undefined);
  const err = await u.fetch([{ name: 'lab', url: 'file:///tmp/x.rules' }]).then(() => undefined, (e) => e);
  assert.instance(err, RampartError);
  assert.is(err.code, 'unavailable');
  assert.match(err.message, /suricata-update is not installed.*ruleFiles, localRules and the rules of earlier updates keep working/);
  const args = suricataUpdateArgs(updateLayout(dir), { name: 'lab', url: 'https://rules.example.net/x.tar.gz' }, join(dir, 'out'));
  assert.ok(args.includes('--no-test') && args.includes('--no-reload') && args.includes('--fail'));
  assert.is(args.at(-1), '--url=https://rules.example.net/x.tar.gz');
  assert.ok(args.every((a) => a.startsWith('--')), 'no positional argument a value could turn into an option');
  // The updater's own gate before argv (the schema checks the same): hostile entries never reach suricata-update.
  assert.equal(
    sourceProblems([
      { name: 'ok', url: 'https://rules.example.net/x.tar.gz' },
      { name: '../etc', url: 'file:///tmp/x.rules' },
      { name: 'opt', url: '--output=/etc' },
      { name: 'ok', url: 'file:///tmp/y.rules' },
    ]).map((p) => p.path),
    ['/ids/sources/1/name', '/ids/sources/2/url', '/ids/sources/3/name'],
  );
  const refused = await new RuleUpdater({ suricataDir: dir, log: silentLogger() }).fetch([{ name: 'opt', url: '--output=/etc' }]).then(() => undefined, (e) => e);
  assert.is(refused.code, 'invalid_input');
  assert.equal(refused.problems.map((p: any) => p.path), ['/ids/sources/0/url']);
  assert.is(countRules(SOURCE_RULES.join('\n') + '\nnot a rule\n# a comment\n'), 3);
});

test.run();
