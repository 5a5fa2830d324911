/**
 * Smoke test of the appliance image (`npm run test:image`, which builds it first): boots images/out's kernel,
 * initrd and root file system in qemu under software emulation (TCG) with two user-mode NICs, LAN and WAN, both
 * `restrict=on` (the guest reaches nothing outside qemu; the only ways in are ports forwarded from 127.0.0.1), the
 * root disk opened with snapshot=on (every run is a first boot; see qemu.ts).
 *
 * It reads the first-boot banner (host name, certificate fingerprint, admin password) from the serial console,
 * waits for rampartd's API through the forwarded LAN port, logs in with that password (which must be changed
 * first), checks /status, and that the API does not answer from the WAN side until a rule allows it. The guest's
 * self-check (kernel command line `systemd.wants=rampart-selfcheck.service`) prints `systemd-analyze security
 * rampartd.service`, the router sysctls and rampartd's capability set on the console; the test records the score.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, waitFor } from '../helpers/daemon.ts';
import { BOOT_MS, OUT, bootImage, call, firstApiReply, type Guest, type Reply } from './qemu.ts';

const started = Date.now();
const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;
let guest: Guest;
let password = '';
let fingerprint = '';
let cookie = '';

test.before(async () => {
  guest = await bootImage('direct', ['systemd.wants=rampart-selfcheck.service', 'rampart.selfcheck=watchdog']);
});

test.after(async () => {
  await guest?.stop();
});

test('first boot shows a unique admin password and the certificate fingerprint on the console', async () => {
  try {
    await waitFor(() => /first-login user admin, password: \S+/.test(guest.console()) || !guest.alive(), BOOT_MS, 'the first-boot banner on the console');
  } catch (err) {
    guest.fail(err);
  }
  const text = guest.console();
  const pw = /rampart: first-login user admin, password: (\S+)/.exec(text);
  if (!pw) guest.fail(new Error('qemu ended before the first-boot banner'));
  password = pw![1];
  assert.ok(password.length >= 20, 'a long random password');
  assert.not.ok(/password: (admin|rampart|changeme)/i.test(text), 'never a default password');
  fingerprint = /TLS certificate\s+SHA-256 ([0-9A-F:]{95})/.exec(text)?.[1] ?? '';
  assert.ok(fingerprint, 'the certificate fingerprint is on the console');
  assert.match(text, /host name\s+rampart-[0-9a-f]{6}/, 'a host name derived from the machine id');
  console.log(`first-boot banner after ${elapsed()}`);
});

test('the API answers through the forwarded LAN port: 401 without a session, with the certificate shown on the console', async () => {
  const last: Reply | undefined = await firstApiReply(guest);
  console.log(`API up after ${elapsed()}`);
  assert.is(last!.status, 401);
  assert.is(last!.fingerprint, fingerprint, 'the served certificate is the one first boot announced');
});

test('login with the console password; it must be changed before anything else', async () => {
  const login = await call(guest.lanPort, 'POST', '/api/v1/auth/login', { json: { username: 'admin', password } });
  assert.is(login.status, 200, JSON.stringify(login.body));
  cookie = login.cookies.join('; ');
  assert.ok(cookie, 'a session cookie');
  const blocked = await call(guest.lanPort, 'GET', '/api/v1/status', { cookie });
  assert.ok(blocked.status >= 400 && blocked.status !== 401, `status before the password change: ${blocked.status}`);
  const wrong = await call(guest.lanPort, 'POST', '/api/v1/auth/login', { json: { username: 'admin', password: password + 'x' } });
  assert.is(wrong.status, 401);
  const next = `Rampart-${Math.random().toString(36).slice(2)}-Smoke`;
  const changed = await call(guest.lanPort, 'POST', '/api/v1/auth/password', { json: { current: password, next }, cookie });
  assert.ok(changed.status === 200 || changed.status === 204, `password change: ${changed.status} ${JSON.stringify(changed.body)}`);
  if (changed.cookies.length) cookie = changed.cookies.join('; ');
});

test('status: the appliance default is running as version 1, with the image version', async () => {
  const s = await call(guest.lanPort, 'GET', '/api/v1/status', { cookie });
  assert.is(s.status, 200, JSON.stringify(s.body));
  assert.is(s.body.version, 1);
  assert.is(s.body.running.state, 'applied');
  assert.match(String(s.body.image?.version), /^\d+\.\d+\.\d+\+\d{12}$/);
  const manifest = JSON.parse(readFileSync(join(OUT, 'manifest.json'), 'utf8'));
  assert.is(s.body.image.version, manifest.image.version);
  console.log(`status: firewall ${s.body.firewall.state}, network ${s.body.network?.state}, image ${s.body.image.version}`);
});

test('the API does not answer from the WAN side (management from the LAN only)', async () => {
  // The WAN NIC's address comes from the WAN's DHCP server; only then does the forward reach the appliance at all.
  await waitFor(async () => {
    const s = await call(guest.lanPort, 'GET', '/api/v1/status', { cookie });
    return JSON.stringify(s.body.network ?? {}).includes('10.0.2.15');
  }, 300_000, 'the WAN address from DHCP (10.0.2.15) in /status').catch(guest.fail);
  const r = await call(guest.wanPort, 'GET', '/api/v1/status', { timeoutMs: 30_000 }).then(
    (x) => `answered ${x.status}`,
    (e: Error) => `no answer (${e.message})`,
  );
  assert.match(r, /^no answer/, 'the input policy drops HTTPS from the WAN');
  // Control: a configuration that opens HTTPS from the WAN, applied through the API, makes the same forward answer,
  // so the silence above was the firewall (not a broken WAN path or a dead guest).
  const config = JSON.parse(readFileSync(join(ROOT, 'system/examples/appliance.json'), 'utf8'));
  config.firewall.input.push({ id: 'wan-https-test', from: 'wan', services: ['https'], action: 'accept' });
  const applied = await call(guest.lanPort, 'POST', '/api/v1/config', { json: { config, message: 'image smoke test: HTTPS from the WAN' }, cookie, timeoutMs: 120_000 });
  assert.ok(applied.status === 200 || applied.status === 201, `apply: ${applied.status} ${JSON.stringify(applied.body)}`);
  const open = await call(guest.wanPort, 'GET', '/api/v1/status', { timeoutMs: 30_000 });
  assert.is(open.status, 401, 'the WAN forward reaches rampartd once the rule allows it');
});

test('IDS: Suricata runs under the hardened unit (AF_PACKET capture on the LAN port, no extra capabilities)', async () => {
  const config = JSON.parse(readFileSync(join(ROOT, 'system/examples/appliance.json'), 'utf8'));
  config.ids = { enabled: true, mode: 'ids', interfaces: ['lan'], localRules: ['alert icmp any any -> any any (msg:"image smoke test"; sid:9000001; rev:1;)'] };
  const applied = await call(guest.lanPort, 'POST', '/api/v1/config', { json: { config, message: 'image smoke test: IDS on' }, cookie, timeoutMs: 300_000 });
  assert.ok(applied.status === 200 || applied.status === 201, `apply: ${applied.status} ${JSON.stringify(applied.body)}`);
  let ids: any;
  await waitFor(
    async () => {
      ids = (await call(guest.lanPort, 'GET', '/api/v1/status', { cookie })).body.ids;
      return ids?.state === 'running' || ids?.state === 'failed' || ids?.state === 'error';
    },
    600_000,
    'Suricata to run',
  ).catch(guest.fail);
  assert.is(ids.state, 'running', JSON.stringify(ids));
  console.log(`IDS running after ${elapsed()}`);
});

test('self-check: systemd-analyze security score, router sysctls, capability bounding set', async () => {
  await waitFor(() => /selfcheck: end/.test(guest.console()), BOOT_MS, 'the self-check on the console').catch(guest.fail);
  // The unit's output reaches the console through journald, which may prefix it ("rampart-selfcheck[PID]: ...").
  const lines = guest.console()
    .split('\n')
    .filter((l) => l.includes('selfcheck: '))
    .map((l) => l.slice(l.indexOf('selfcheck: ')));
  console.log(lines.join('\n'));
  const get = (re: RegExp) => lines.map((l) => re.exec(l)).find(Boolean);
  const score = get(/exposure level for rampartd\.service: ([\d.]+) (\S+)/);
  assert.ok(score, 'systemd-analyze security ran in the guest');
  const exposure = Number(score![1]);
  console.log(`systemd-analyze security rampartd.service (in the guest): ${exposure} ${score![2]}`);
  assert.ok(exposure <= 4.0, `exposure ${exposure} should be at most 4.0 (OK or better)`);
  const states = lines.filter((l) => l.startsWith('selfcheck: rampartd '));
  assert.is(states.length, 2, 'rampartd state at the start and at the end of the self-check');
  for (const l of states) assert.match(l, /rampartd active restarts=0/, 'rampartd active and never restarted');
  for (const k of ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.tcp_syncookies']) {
    assert.ok(get(new RegExp(`sysctl ${k.replace(/\./g, '\\.')}=1$`)), `${k} = 1`);
  }
  // CAP_KILL(5) CAP_SETGID(6) CAP_SETUID(7) CAP_NET_BIND_SERVICE(10) CAP_NET_ADMIN(12) CAP_NET_RAW(13)
  const caps = get(/CapBnd: ([0-9a-f]{16})/);
  assert.is(caps?.[1], (2 ** 5 + 2 ** 6 + 2 ** 7 + 2 ** 10 + 2 ** 12 + 2 ** 13).toString(16).padStart(16, '0'));
  assert.ok(get(/status image\s+\S+/), '`rampart status` shows the image version');
  assert.ok(get(/nft table inet rampart$/), 'the firewall table is loaded');
  // Type=notify: "active" above means systemd got READY=1; the status text can only have come through sd_notify.
  const notify = get(/notify type=(\S+) access=(\S+) watchdog=(\S+) status=(.*)$/);
  assert.ok(notify, 'the notify line');
  assert.is(notify![1], 'notify');
  assert.is(notify![2], 'all');
  assert.is(notify![3], '30s', 'WatchdogUSec');
  assert.match(notify![4], /^running configuration version \d+/, 'STATUS= from rampartd');
  console.log(`systemd: Type=${notify![1]} NotifyAccess=${notify![2]} WatchdogUSec=${notify![3]} StatusText="${notify![4]}"`);
  const root = get(/root fs=(\d+)MiB device=(\S+) size=(\d+)MiB/);
  assert.ok(root, 'the root file system line');
  console.log(`root file system ${root![1]} MiB on ${root![2]} (${root![3]} MiB)`);
});

test('watchdog: a frozen rampartd (SIGSTOP) misses its pings, systemd restarts it, and the API comes back', async () => {
  // The self-check (kernel command line rampart.selfcheck=watchdog) freezes rampartd only once the rule with the id
  // "selfcheck-watchdog" has counted a packet, so nothing above was disturbed: the rule opens HTTPS from the WAN,
  // and the trigger is one request to the WAN forward after the apply has answered.
  const before = (await call(guest.lanPort, 'GET', '/api/v1/status', { cookie })).body;
  const config = JSON.parse(readFileSync(join(ROOT, 'system/examples/appliance.json'), 'utf8'));
  config.firewall.input.push({ id: 'selfcheck-watchdog', from: 'wan', services: ['https'], action: 'accept' });
  const applied = await call(guest.lanPort, 'POST', '/api/v1/config', { json: { config, message: 'image smoke test: watchdog' }, cookie, timeoutMs: 300_000 });
  assert.ok(applied.status === 200 || applied.status === 201, `apply: ${applied.status} ${JSON.stringify(applied.body)}`);
  // The trigger (its answer does not matter: rampartd may be frozen before it answers).
  await call(guest.wanPort, 'GET', '/api/v1/status', { timeoutMs: 20_000 }).catch(() => undefined);
  await waitFor(() => /selfcheck: watchdog: end/.test(guest.console()) || !guest.alive(), BOOT_MS, 'the watchdog check on the console').catch(guest.fail);
  const lines = guest.console().split('\n').filter((l) => l.includes('selfcheck: watchdog: ')).map((l) => l.slice(l.indexOf('selfcheck: ')));
  console.log(lines.join('\n'));
  const stopped = lines.map((l) => /SIGSTOP to rampartd \(pid (\d+), restarts=(\d+)\)/.exec(l)).find(Boolean);
  const after = lines.map((l) => /rampartd (\S+) pid (\d+) restarts=(\d+) result=(\S+) after (\d+) s/.exec(l)).find(Boolean);
  assert.ok(stopped && after, 'the check ran');
  assert.is(after![1], 'active', 'rampartd is active again');
  assert.is.not(after![2], stopped![1], 'a new process');
  assert.is(Number(after![3]), Number(stopped![2]) + 1, 'restarted once');
  assert.ok(lines.some((l) => /watchdog: journal .*[Ww]atchdog timeout/.test(l)), 'systemd logged the watchdog timeout');
  // The restarted daemon serves the API again, with the running version and the session it had.
  let s: Reply | undefined;
  await waitFor(async () => {
    s = await call(guest.lanPort, 'GET', '/api/v1/status', { cookie, timeoutMs: 10_000 }).catch(() => undefined);
    return s?.status === 200;
  }, BOOT_MS, 'the API after the restart').catch(guest.fail);
  assert.is(s!.body.version, before.version + 1, 'the version applied before the freeze is still the running one');
  assert.ok(s!.body.uptimeSeconds < before.uptimeSeconds, `a new daemon (uptime ${s!.body.uptimeSeconds} s, was ${before.uptimeSeconds} s)`);
  console.log(`watchdog restart: ${after![5]} s from SIGSTOP to active again`);
});

test.run();
