/**
 * systemd notifications of rampartd (services/host/notify.ts and its native helper services/host/native/notify.c):
 * the real helper, compiled from its source, sends to a real unix datagram socket that this test binds with
 * python3 (Node.js can neither bind nor send unix datagrams); the test reads what arrived there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../services/core/log.ts';
import { SystemdNotifier, notifySettings, statusText } from '../../services/host/notify.ts';
import { waitFor } from '../helpers/daemon.ts';

const ROOT = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'rampart-notify-'));
const helper = join(dir, 'rampart-notify');
const started: ChildProcess[] = [];

/** A datagram socket bound by python3 at `address` (a path or @abstract); every datagram it gets, in order. */
async function receiver(address: string): Promise<{ got: string[]; stop(): void }> {
  const script = [
    'import socket, sys, json',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    "a = sys.argv[1]",
    "s.bind('\\0' + a[1:] if a.startswith('@') else a)",
    "print('bound', flush=True)",
    'while True:',
    "    print(json.dumps(s.recv(65536).decode()), flush=True)",
  ].join('\n');
  const py = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(py);
  const got: string[] = [];
  let bound = false;
  let buf = '';
  py.stdout!.setEncoding('utf8');
  py.stdout!.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'bound') bound = true;
      else got.push(JSON.parse(line));
    }
  });
  await waitFor(() => bound || py.exitCode !== null, 10_000, 'python3 to bind the socket');
  assert.ok(bound, 'python3 bound the datagram socket');
  return { got, stop: () => py.pid && py.exitCode === null && process.kill(py.pid, 'SIGTERM') };
}

test.before(async () => {
  await execa('cc', ['-O2', '-Wall', '-Werror', '-o', helper, join(ROOT, 'services/host/native/notify.c')]);
});

test.after(() => {
  for (const c of started) if (c.pid && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('helper: each stdin line is one datagram to a path socket; empty lines skipped; exits 0 when stdin closes', async () => {
  const sock = join(dir, 'notify.sock');
  const rx = await receiver(sock);
  const r = await execa(helper, [], { input: 'READY=1\n\nSTATUS=firewall applied, version 3\r\nWATCHDOG=1', env: { NOTIFY_SOCKET: sock }, extendEnv: false, reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  await waitFor(() => rx.got.length >= 3, 10_000, 'three datagrams');
  assert.equal(rx.got, ['READY=1', 'STATUS=firewall applied, version 3', 'WATCHDOG=1']);
  rx.stop();
});

test('helper: abstract socket names (@name), as systemd may use', async () => {
  const name = `@rampart-notify-test-${process.pid}`;
  const rx = await receiver(name);
  const r = await execa(helper, [], { input: 'WATCHDOG=1\n', env: { NOTIFY_SOCKET: name }, extendEnv: false, reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  await waitFor(() => rx.got.length >= 1, 10_000, 'the datagram');
  assert.equal(rx.got, ['WATCHDOG=1']);
  rx.stop();
});

test('helper: refuses a missing or unusable NOTIFY_SOCKET, reports an unreachable one and an oversized line', async () => {
  const none = await execa(helper, [], { input: 'READY=1\n', env: {}, extendEnv: false, reject: false });
  assert.is(none.exitCode, 2);
  assert.match(none.stderr, /NOTIFY_SOCKET is not set/);
  const vsock = await execa(helper, [], { input: 'READY=1\n', env: { NOTIFY_SOCKET: 'vsock:2:1234' }, extendEnv: false, reject: false });
  assert.is(vsock.exitCode, 2);
  assert.match(vsock.stderr, /unsupported NOTIFY_SOCKET/);
  // Nobody listens there: reported per line, and the helper goes on until its input ends.
  const gone = await execa(helper, [], { input: 'READY=1\nWATCHDOG=1\n', env: { NOTIFY_SOCKET: join(dir, 'nobody.sock') }, extendEnv: false, reject: false });
  assert.is(gone.exitCode, 0);
  assert.is(gone.stderr.split('\n').filter((l) => l.includes('sending to')).length, 2);
  const sock = join(dir, 'long.sock');
  const rx = await receiver(sock);
  const r = await execa(helper, [], { input: `STATUS=${'x'.repeat(5000)}\nWATCHDOG=1\n`, env: { NOTIFY_SOCKET: sock }, extendEnv: false, reject: false });
  assert.match(r.stderr, /over 4096, not sent/);
  await waitFor(() => rx.got.length >= 1, 10_000, 'the datagram after the long line');
  assert.equal(rx.got, ['WATCHDOG=1']);
  rx.stop();
});

test('settings: NOTIFY_SOCKET, WATCHDOG_USEC halved into the ping interval, WATCHDOG_PID must be this process', () => {
  assert.is(notifySettings({}, 10), undefined);
  assert.is(notifySettings({ NOTIFY_SOCKET: 'vsock:2:1' }, 10), undefined);
  assert.is(notifySettings({ NOTIFY_SOCKET: '/' }, 10), undefined);
  assert.equal(notifySettings({ NOTIFY_SOCKET: '/run/systemd/notify' }, 10), { socket: '/run/systemd/notify' });
  assert.equal(notifySettings({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '10' }, 10), { socket: '@x', pingMs: 15_000 });
  assert.equal(notifySettings({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000' }, 10), { socket: '@x', pingMs: 15_000 });
  assert.equal(notifySettings({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '11' }, 10), { socket: '@x' }, 'another process is watched');
  assert.equal(notifySettings({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: 'soon' }, 10), { socket: '@x' });
  assert.is(statusText('line one\nSTATUS=forged\x07 '), 'line one STATUS=forged');
  assert.is(statusText('y'.repeat(500)).length, 200);
});

test('notifier: no NOTIFY_SOCKET, nothing happens (npm start, tests)', () => {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  let asked = false;
  const n = new SystemdNotifier(silentLogger(), {
    env,
    helper: () => {
      asked = true;
      return helper;
    },
  });
  n.start();
  n.ready('up');
  n.stop();
  assert.is(n.enabled, false);
  assert.is(asked, false, 'no helper is started');
});

test('notifier: STATUS, READY, watchdog pings from the event loop, STOPPING; the helper ends with it', async () => {
  const sock = join(dir, 'daemon.sock');
  const rx = await receiver(sock);
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000', WATCHDOG_PID: '4242' };
  let child: ChildProcess | undefined;
  const n = new SystemdNotifier(silentLogger(), { env, pid: 4242, helper: () => helper });
  n.start();
  // Taken out of the environment the daemon's engines inherit.
  assert.equal(Object.keys(env), []);
  assert.is(n.pingMs, 100);
  child = (n as unknown as { child?: ChildProcess }).child;
  assert.ok(child?.pid, 'the helper runs');
  started.push(child!);
  n.status('starting');
  n.ready('running configuration version 1\n');
  await waitFor(() => rx.got.filter((m) => m === 'WATCHDOG=1').length >= 4, 20_000, 'repeated watchdog pings');
  n.stop();
  await waitFor(() => rx.got.includes('STOPPING=1'), 10_000, 'STOPPING=1');
  await waitFor(() => child!.exitCode !== null, 10_000, 'the helper to end when its input closes');
  assert.is(child!.exitCode, 0);
  const other = rx.got.filter((m) => m !== 'WATCHDOG=1');
  assert.equal(other, ['STATUS=starting', 'READY=1', 'STATUS=running configuration version 1', 'STOPPING=1']);
  assert.is(rx.got[rx.got.length - 1], 'STOPPING=1', 'no ping after STOPPING');
  rx.stop();
});

test.run();
