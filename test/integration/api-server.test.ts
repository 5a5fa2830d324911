/**
 * The API served by a real rampartd: plain HTTP on a loopback address (the daemon managing a namespace of this
 * test), and HTTPS with the self-signed certificate on a non-loopback address inside a namespace of this test,
 * the client pinning the generated certificate.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { run } from '../../services/host/exec.ts';
import { callDaemon } from '../../services/control.ts';
import { BIN, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';

const NS = `rapi${randomInt(1e6).toString(36)}`;
const ADDR = '198.18.0.1';
let nsUp = false;

function cleanupNs() {
  if (nsUp) spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  nsUp = false;
}
process.on('exit', cleanupNs);

test.before(async () => {
  await run('ip', ['netns', 'add', NS]);
  nsUp = true;
  await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  // A veth pair with both ends in the namespace (the dummy link type may be missing from the kernel).
  await run('ip', ['-n', NS, 'link', 'add', 'api0', 'type', 'veth', 'peer', 'name', 'api1']);
  await run('ip', ['-n', NS, 'addr', 'add', `${ADDR}/24`, 'dev', 'api0']);
  await run('ip', ['-n', NS, 'link', 'set', 'api0', 'up']);
  await run('ip', ['-n', NS, 'link', 'set', 'api1', 'up']);
});
test.after(() => cleanupNs());

test('loopback: plain HTTP, login, status, apply over the API, and the audit trail of console changes', async () => {
  const port = 20000 + randomInt(30000);
  process.env.RAMPART_ADMIN_PASSWORD = 'env-admin-password';
  let d: TestDaemon | undefined;
  try {
    d = await startDaemon({ netns: NS, extra: ['--listen', `127.0.0.1:${port}`] });
    const base = `http://127.0.0.1:${port}/api/v1`;
    await waitFor(() => fetch(`${base}/openapi.json`).then((r) => r.ok, () => false), 10_000, 'the API');
    assert.is((await fetch(`${base}/status`)).status, 401);
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'env-admin-password' }) });
    assert.is(login.status, 200);
    assert.is((await login.json()).mustChange, false, 'a password from RAMPART_ADMIN_PASSWORD need not be changed');
    const setCookie = login.headers.get('set-cookie')!;
    assert.not.match(setCookie, /Secure/i);
    const cookie = /(rampart_session=[^;]+)/.exec(setCookie)![1];
    const status = await fetch(`${base}/status`, { headers: { cookie } });
    assert.is(status.status, 200);
    assert.is(status.headers.get('x-frame-options'), 'DENY');
    const s = await status.json();
    assert.is(s.firewall.state, 'unconfigured');
    // The polled plain case (answered before the app) and the same request through the app (a query string sends
    // it there) carry the same headers and, within the status cache's second, the same body.
    const headersOf = (r: Response) => [...r.headers.entries()].filter(([k]) => !['date', 'content-length', 'keep-alive', 'connection'].includes(k)).sort();
    await waitFor(
      async () => {
        const [fast, viaApp] = await Promise.all([fetch(`${base}/status`, { headers: { cookie } }), fetch(`${base}/status?via=app`, { headers: { cookie } })]);
        assert.equal(headersOf(fast), headersOf(viaApp));
        return (await fast.text()) === (await viaApp.text());
      },
      10_000,
      'the same status body both ways',
    );
    // Cookies the plain case does not serve still get the app's answers.
    assert.is((await fetch(`${base}/status`, { headers: { cookie: 'rampart_session=' + 'A'.repeat(43) } })).status, 401);
    assert.is((await fetch(`${base}/status`, { method: 'HEAD', headers: { cookie } })).status, 200);
    const applied = await fetch(`${base}/config`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ config: { schema: 1 }, message: 'via api' }) });
    assert.is(applied.status, 200, await applied.clone().text());
    assert.is((await applied.json()).source, 'api');
    // a console change is audited with source 'console'
    await d.cli(['block', '203.0.113.5', '--ttl', '60']);
    const audit = await (await fetch(`${base}/audit?action=block.add`, { headers: { cookie } })).json();
    assert.is(audit[0].source, 'console');
    assert.is(audit[0].result, 'ok');
    const blocks = await (await fetch(`${base}/blocks`, { headers: { cookie } })).json();
    assert.ok(blocks.some((b: { address: string }) => b.address === '203.0.113.5'));
  } finally {
    delete process.env.RAMPART_ADMIN_PASSWORD;
    await d?.cleanup();
  }
});

/** A request from inside the namespace, trusting only the generated certificate. */
function nsRequests(ca: string, script: object[]): any[] {
  const client = `
    import https from 'node:https';
    import { readFileSync } from 'node:fs';
    const [ca, steps] = [readFileSync(process.argv[1], 'utf8'), JSON.parse(process.argv[2])];
    let cookie = '';
    const out = [];
    for (const s of steps) {
      const body = s.body === undefined ? undefined : JSON.stringify(s.body);
      const res = await new Promise((resolve, reject) => {
        const req = https.request(s.url, { method: s.method, ca, headers: { ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': 'application/json' } : {}) } }, (r) => {
          let text = '';
          r.on('data', (d) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, text }));
        });
        req.on('error', (e) => resolve({ error: e.code || e.message }));
        req.end(body);
      });
      const set = res.headers?.['set-cookie']?.[0];
      if (set) cookie = set.split(';')[0];
      out.push(res);
    }
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', client, ca, JSON.stringify(script)], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`client failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('non-loopback: HTTPS with a self-signed certificate, kept in DATA/tls; first login must change the password', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-api-tls-'));
  let child: ChildProcess | undefined;
  let out = '';
  const start = async () => {
    out = '';
    child = spawn('ip', ['netns', 'exec', NS, BIN, '--data', dataDir, 'serve', '--listen', `${ADDR}:8443`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RAMPART_ADMIN_PASSWORD: '' } });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await waitFor(() => callDaemon(join(dataDir, 'rampart.sock'), 'status', {}, 2000).then(() => /API listening/.test(out), () => false), 30_000, `rampartd in ${NS}:\n${out}`);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const c = child;
    const exited = new Promise((r) => c.once('exit', r));
    process.kill(c.pid!, 'SIGTERM');
    await exited;
  };
  try {
    await start();
    const m = /^rampart: first-login user admin, password: (\S+)$/m.exec(out);
    assert.ok(m, `the first-login password is printed once:\n${out}`);
    const password = m![1];
    assert.is(out.split(password).length, 2, 'printed exactly once, nowhere in the log');
    const certPath = join(dataDir, 'tls/cert.pem');
    const keyPath = join(dataDir, 'tls/key.pem');
    assert.is(statSync(keyPath).mode & 0o777, 0o600);
    const x = new X509Certificate(readFileSync(certPath));
    assert.ok(x.checkIP(ADDR), x.subjectAltName);
    const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
    assert.ok(Math.abs(days - 825) <= 1, `${days} days`);
    const base = `https://${ADDR}:8443/api/v1`;
    const caFile = join(dataDir, 'ca.pem');
    writeFileSync(caFile, readFileSync(certPath));
    const r = nsRequests(caFile, [
      { method: 'POST', url: `${base}/auth/login`, body: { username: 'admin', password } },
      { method: 'GET', url: `${base}/status` },
      { method: 'POST', url: `${base}/auth/password`, body: { current: password, next: 'a-new-admin-password' } },
      { method: 'GET', url: `${base}/status` },
    ]);
    assert.is(r[0].status, 200, JSON.stringify(r[0]));
    assert.match(r[0].headers['set-cookie'][0], /; Secure/i);
    assert.match(r[0].headers['strict-transport-security'], /max-age/);
    assert.is(JSON.parse(r[0].text).mustChange, true);
    assert.is(r[1].status, 403, 'nothing but the password change before it is changed');
    assert.is(r[2].status, 200, r[2].text);
    assert.is(r[3].status, 200, r[3].text);
    assert.ok('firewall' in JSON.parse(r[3].text));
    // plain HTTP on a non-loopback address is not served
    const plain = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', `fetch('http://${ADDR}:8443/api/v1/status').then(r=>console.log(r.status),e=>console.log('refused'))`], { encoding: 'utf8', timeout: 10_000 });
    assert.not.match(plain.stdout, /^200/);
    // restart: the certificate is reused, no new password is printed
    await stop();
    await start();
    assert.is(new X509Certificate(readFileSync(certPath)).fingerprint256, x.fingerprint256);
    assert.not.match(out, /first-login/);
    const again = nsRequests(caFile, [
      { method: 'POST', url: `${base}/auth/login`, body: { username: 'admin', password: 'a-new-admin-password' } },
      { method: 'GET', url: `${base}/status` },
    ]);
    assert.is(again[1].status, 200);
    // An uploaded certificate replaces the served one for new connections, without a restart.
    const upDir = mkdtempSync(join(tmpdir(), 'rampart-upload-'));
    try {
      const mk = (name: string) => {
        const r = spawnSync('openssl', ['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', join(upDir, `${name}.key`), '-out', join(upDir, `${name}.pem`), '-days', '30', '-subj', `/CN=${name}`, '-addext', `subjectAltName=IP:${ADDR}`], { encoding: 'utf8' });
        assert.is(r.status, 0, r.stderr);
        return { cert: readFileSync(join(upDir, `${name}.pem`), 'utf8'), key: readFileSync(join(upDir, `${name}.key`), 'utf8') };
      };
      const fresh = mk('uploaded');
      const other = mk('other');
      const up = nsRequests(caFile, [
        { method: 'POST', url: `${base}/auth/login`, body: { username: 'admin', password: 'a-new-admin-password' } },
        { method: 'POST', url: `${base}/tls`, body: { cert: fresh.cert, key: other.key } },
        { method: 'POST', url: `${base}/tls`, body: { cert: fresh.cert, key: fresh.key } },
      ]);
      assert.is(up[1].status, 422, 'a key that does not match is refused');
      assert.match(up[1].text, /key does not match/);
      assert.is(up[2].status, 200, up[2].text);
      assert.is(JSON.parse(up[2].text).fingerprint256, new X509Certificate(fresh.cert).fingerprint256);
      const newCa = join(upDir, 'uploaded.pem');
      const viaNew = nsRequests(newCa, [{ method: 'GET', url: `${base}/openapi.json` }]);
      assert.is(viaNew[0].status, 200, 'a client trusting only the uploaded certificate connects');
      const viaOld = nsRequests(caFile, [{ method: 'GET', url: `${base}/openapi.json` }]);
      assert.ok(viaOld[0].error, 'the old certificate is no longer served');
      assert.is(readFileSync(certPath, 'utf8'), fresh.cert, 'kept in DATA/tls');
      assert.is(statSync(keyPath).mode & 0o777, 0o600);
    } finally {
      rmSync(upDir, { recursive: true, force: true });
    }
  } finally {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
