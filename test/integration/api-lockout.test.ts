/**
 * Applying a configuration through the API that cuts off the API's own client is reverted by the confirm window.
 *
 * rampartd runs INSIDE the lab's fw namespace (no --netns: its kernel commands act on the namespace it runs in) and
 * serves HTTPS on 192.0.2.1:8443 with its self-signed certificate; the client (test/helpers/api-client.mjs) runs in
 * the lab's lan namespace (192.0.2.10) and pins that certificate, so every request crosses the firewall under test.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callDaemon } from '../../services/control.ts';
import { run } from '../../services/host/exec.ts';
import { BIN, ROOT, labConfig, waitFor } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';

const CLIENT = fileURLToPath(new URL('../helpers/api-client.mjs', import.meta.url));
const API_HOST = '192.0.2.1';
const API_PORT = 8443;
const BASE = `https://${API_HOST}:${API_PORT}/api/v1`;
const PASSWORD = 'lockout-test-password';
const LOGIN = { login: { username: 'admin', password: PASSWORD } };

let lab: Lab | undefined;
let dataDir: string | undefined;
let daemon: ChildProcess | undefined;
let daemonOut = '';
let caFile = '';

/** The lab config: its anti-lockout rule keeps the port the API listens on reachable from lan. */
function reachableConfig(): any {
  return labConfig();
}

/** The lab config with nothing that lets lan reach the firewall on tcp/8443: no anti-lockout, no mgmt rule. */
function lockoutConfig(): any {
  const c = labConfig();
  c.firewall.antiLockout = false;
  c.firewall.policy.input = 'drop';
  c.firewall.input = c.firewall.input.filter((r: { id: string }) => r.id !== 'mgmt');
  return c;
}

interface ClientOut {
  cookie: string;
  results: any[];
}

/** Run the API client in the lan namespace with these steps. */
async function client(steps: object[], cookie = ''): Promise<ClientOut> {
  const budget = steps.reduce((n: number, s: any) => n + (s.timeoutMs ?? 4000), 0) + 10_000;
  const r = await run('ip', ['netns', 'exec', lab!.lan, process.execPath, CLIENT, caFile, BASE, JSON.stringify(steps), cookie], { timeoutMs: budget });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ClientOut;
}

/** Does a NEW connection from lan to the API complete (TLS handshake) within timeoutMs? */
async function newConnectionWorks(timeoutMs = 1000): Promise<boolean> {
  const out = await client([{ connect: true, timeoutMs }]);
  return out.results[0].ok === true;
}

test.before(async () => {
  lab = await startLab();
  dataDir = mkdtempSync(join(tmpdir(), 'rampart-lockout-'));
  daemon = spawn(
    'ip',
    ['netns', 'exec', lab.fw, BIN, '--data', dataDir, 'serve', '--listen', `${API_HOST}:${API_PORT}`, '--config', join(ROOT, 'system/examples/lab.json')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RAMPART_ADMIN_PASSWORD: PASSWORD, RAMPART_LOG_LEVEL: 'info' } },
  );
  const pid = daemon.pid!;
  // Last resort if the run is interrupted: this daemon, by its PID (`ip netns exec` and bin/rampart exec into it).
  process.on('exit', () => {
    if (daemon?.exitCode === null && daemon.signalCode === null) process.kill(pid, 'SIGKILL');
  });
  daemon.stdout!.on('data', (d) => (daemonOut += d));
  daemon.stderr!.on('data', (d) => (daemonOut += d));
  const sock = join(dataDir, 'rampart.sock');
  await waitFor(
    async () => {
      if (daemon!.exitCode !== null || daemon!.signalCode !== null) throw new Error(`rampartd exited at start:\n${daemonOut}`);
      return callDaemon(sock, 'status', {}, 2000).then(
        () => /API listening/.test(daemonOut),
        () => false,
      );
    },
    60_000,
    `rampartd in ${lab.fw}`,
  );
  caFile = join(dataDir, 'tls', 'cert.pem');
  readFileSync(caFile); // it exists
  // lab.json's default anti-lockout covers ssh and the port the daemon listens on: the API is reachable from lan.
  await waitFor(() => newConnectionWorks(), 10_000, 'the API to be reachable from lan');
});

test.after(async () => {
  try {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((r) => daemon!.once('exit', r));
      process.kill(daemon.pid!, 'SIGTERM');
      const t = setTimeout(() => daemon!.exitCode === null && daemon!.signalCode === null && process.kill(daemon!.pid!, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
  } finally {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await lab?.down();
  }
});

test('an apply that cuts the client off answers, blocks new connections, and is reverted by the confirm window', async () => {
  const lockout = lockoutConfig();
  const before = await client([
    LOGIN,
    { method: 'GET', path: '/status' },
    { connect: true, timeoutMs: 1500 },
    { method: 'POST', path: '/config', body: { config: lockout, confirmSeconds: 3, message: 'cuts lan off' }, timeoutMs: 15_000 },
    // Right after the answer, within the 3 s window: a new connection must not get through.
    { connect: true, timeoutMs: 1000 },
  ]);
  const [login, status, connBefore, apply, connAfter] = before.results;
  assert.is(login.status, 200, JSON.stringify(login));
  assert.is(login.body.mustChange, false, 'a password from RAMPART_ADMIN_PASSWORD need not be changed');
  assert.ok(before.cookie.startsWith('rampart_session='));
  assert.is(status.status, 200, JSON.stringify(status));
  const previous = status.body.running.version;
  assert.is(status.body.firewall.state, 'ok');
  assert.ok(connBefore.ok, `a new connection worked before the apply: ${JSON.stringify(connBefore)}`);
  // The apply's own (established) connection still gets its answer.
  assert.is(apply.status, 200, JSON.stringify(apply));
  assert.is(apply.body.state, 'pending_confirm');
  const cut = apply.body.version;
  assert.ok(cut > previous);
  assert.is(connAfter.error, 'timeout', `a new connection from lan must be dropped after the apply: ${JSON.stringify(connAfter)}`);

  // Without confirming: access comes back by itself (bounded wait).
  const t0 = Date.now();
  await waitFor(() => newConnectionWorks(1000), 20_000, 'a new connection from lan to work again after the confirm window');
  const backAfterMs = Date.now() - t0;
  process.stderr.write(`  apply answered in ${apply.ms} ms; new connection cut off (${connAfter.ms} ms timeout); access back ${backAfterMs} ms after that\n`);

  // Through the API, with the same session: the cut-off version is reverted and the previous one runs.
  const after = await client(
    [
      { method: 'GET', path: '/config/versions' },
      { method: 'GET', path: '/config' },
      { method: 'GET', path: '/status' },
    ],
    before.cookie,
  );
  const [versions, config, status2] = after.results;
  assert.is(versions.status, 200, JSON.stringify(versions));
  const v = versions.body.find((x: { version: number }) => x.version === cut);
  assert.ok(v, `version ${cut} in the journal`);
  assert.is(v.state, 'reverted');
  assert.is(config.status, 200);
  assert.is(config.body.version, previous);
  assert.is(config.body.state, 'applied');
  assert.equal(config.body.document.firewall.antiLockout, reachableConfig().firewall.antiLockout);
  assert.is(status2.body.running.version, previous);
  assert.is(status2.body.pending, null);
  assert.is(status2.body.firewall.state, 'ok');
  // The kernel holds the previous version again: its anti-lockout rule for the API's port is back.
  const nft = await run('ip', ['netns', 'exec', lab!.fw, 'nft', 'list', 'chain', 'inet', 'rampart', 'input']);
  assert.match(nft.stdout, /anti-lockout/);
  assert.match(nft.stdout, new RegExp(`\\b${API_PORT}\\b`));
});

test('an apply with a confirm window that keeps access, confirmed by the client, stays applied', async () => {
  const keep = reachableConfig();
  keep.objects.services.extra = [{ proto: 'tcp', ports: ['9999'] }];
  keep.firewall.input.push({ id: 'extra', from: 'lan', services: ['extra'], action: 'accept' });
  const confirmSeconds = 3;
  const out = await client([
    LOGIN,
    { method: 'POST', path: '/config', body: { config: keep, confirmSeconds, message: 'keeps access' }, timeoutMs: 15_000 },
    { connect: true, timeoutMs: 1500 },
    { method: 'POST', path: '/config/confirm', body: {} },
    { method: 'GET', path: '/status' },
  ]);
  const [login, apply, conn, confirm, status] = out.results;
  assert.is(login.status, 200, JSON.stringify(login));
  assert.is(apply.status, 200, JSON.stringify(apply));
  assert.is(apply.body.state, 'pending_confirm');
  const kept = apply.body.version;
  assert.ok(conn.ok, `a new connection still works: ${JSON.stringify(conn)}`);
  assert.is(confirm.status, 200, JSON.stringify(confirm));
  assert.is(confirm.body.version, kept);
  assert.is(confirm.body.state, 'applied');
  assert.is(status.body.pending, null);
  assert.is(status.body.running.version, kept);

  // Past the confirm deadline (plus a margin) it must still be the running, applied version: poll it all along.
  const until = Date.now() + confirmSeconds * 1000 + 2000;
  let checks = 0;
  await waitFor(
    async () => {
      const r = (await client([{ method: 'GET', path: '/config' }], out.cookie)).results[0];
      assert.is(r.status, 200, JSON.stringify(r));
      assert.is(r.body.version, kept, 'the confirmed version keeps running');
      assert.is(r.body.state, 'applied');
      checks++;
      return Date.now() > until;
    },
    30_000,
    'the confirm deadline to pass',
  );
  assert.ok(checks >= 2);
  assert.ok(await newConnectionWorks(1500), 'a new connection works after the deadline');
  const versions = (await client([{ method: 'GET', path: '/config/versions' }], out.cookie)).results[0];
  assert.is(versions.body.find((x: { version: number }) => x.version === kept).state, 'applied');
});

test.run();
