/**
 * LAN services by a real rampartd in the lab's firewall namespace: dnsmasq serves DHCP and DNS on lan0; the LAN
 * host runs a real DHCP client (ISC dhclient with a test-owned lease file and a script that only records what it
 * was given) and gets an address, the router and the DNS server; the host name of its static lease, a local host
 * name and a name only the upstream server knows all resolve through the forwarder (a tiny UDP DNS query from node
 * inside the LAN namespace). The lease shows in `rampart status`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../services/host/exec.ts';
import { labConfig, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';

let lab: Lab;
let d: TestDaemon | undefined;
let tmp: string;
const children: ChildProcess[] = [];
let upstreamPidFile: string;
const port = 20000 + randomInt(30000);

/** A DNS A-record query over UDP; prints the answers as JSON (runs inside a namespace). */
const DNS_QUERY = `
const dgram = require('dgram');
const [name, server] = process.argv.slice(1);
const q = Buffer.concat([
  Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
  Buffer.from([0, 0, 1, 0, 1]),
]);
const s = dgram.createSocket('udp4');
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, 3000);
s.on('message', (m) => {
  clearTimeout(timer);
  const rcode = m[3] & 15, an = m.readUInt16BE(6);
  let i = 12;
  while (m[i] !== 0) i += m[i] + 1;
  i += 5;
  const out = [];
  for (let k = 0; k < an; k++) {
    if ((m[i] & 0xc0) === 0xc0) i += 2; else { while (m[i] !== 0) i += m[i] + 1; i += 1; }
    const type = m.readUInt16BE(i), len = m.readUInt16BE(i + 8);
    if (type === 1 && len === 4) out.push([...m.subarray(i + 10, i + 14)].join('.'));
    i += 10 + len;
  }
  console.log(JSON.stringify({ rcode, answers: out }));
  process.exit(0);
});
s.send(q, 53, server);
`;

async function resolve(name: string): Promise<{ rcode?: number; answers?: string[]; error?: string }> {
  const r = await run(process.execPath, ['-e', DNS_QUERY, name, '192.0.2.1'], { netns: lab.lan, timeoutMs: 10_000 });
  return JSON.parse(r.stdout.trim());
}

function config(mac: string): any {
  const c = labConfig();
  c.firewall.input.push({ id: 'lan-svc', from: 'lan', services: ['dns', 'dhcp'], action: 'accept' });
  c.network = {
    manage: true,
    dhcpServer: {
      ranges: [{ interface: 'lan', start: '192.0.2.100', end: '192.0.2.150', leaseSeconds: 600 }],
      staticLeases: [{ mac, address: '192.0.2.50', hostname: 'labhost' }],
    },
    dns: { enabled: true, upstream: ['198.51.100.20'], domain: 'lab.example', hosts: [{ name: 'nas', addresses: ['192.0.2.20'] }] },
  };
  return c;
}

/** Set-up errors are reported by every test (a failing before-hook would otherwise pass silently). */
let setupError: unknown;
test.before(async () => {
  try {
    lab = await startLab();
    tmp = mkdtempSync(join(tmpdir(), 'rampart-lan-'));
    // The upstream resolver: a dnsmasq on the WAN host that knows one name (ended by its PID after the test).
    upstreamPidFile = join(tmp, 'upstream.pid');
    await run('dnsmasq', [`--pid-file=${upstreamPidFile}`, '--no-resolv', '--no-hosts', '--port=53', '--listen-address=198.51.100.20', '--bind-interfaces', '--address=/far.example.net/203.0.113.77', '--dhcp-leasefile=' + join(tmp, 'up.leases')], { netns: lab.wan });
    // The LAN host forgets the address and route the lab script gave it: it will ask for them.
    await run('ip', ['addr', 'flush', 'dev', 'eth0', 'scope', 'global'], { netns: lab.lan });
  } catch (err) {
    setupError = err;
  }
});
test.before.each(() => {
  if (setupError) throw setupError;
});

test.after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (upstreamPidFile && existsSync(upstreamPidFile)) {
    try {
      process.kill(Number(readFileSync(upstreamPidFile, 'utf8').trim()), 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await d?.cleanup();
  await lab?.down();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('a LAN host gets its static lease, the router and the DNS server by DHCP; names resolve through the forwarder', async () => {
  const link = JSON.parse((await run('ip', ['-j', 'link', 'show', 'dev', 'eth0'], { netns: lab.lan })).stdout)[0];
  const mac = String(link.address);
  process.env.RAMPART_ADMIN_PASSWORD = 'lan-test-admin-password';
  d = await startDaemon({ netns: lab.fw, config: config(mac), extra: ['--listen', `127.0.0.1:${port}`] });
  delete process.env.RAMPART_ADMIN_PASSWORD;
  const dnsmasqPid = Number(readFileSync(join(d.dataDir, 'network', 'dnsmasq.pid'), 'utf8'));
  assert.ok(dnsmasqPid > 1, 'dnsmasq runs');

  // The test's DHCP client script only records what it was given (the test configures the host itself).
  const script = join(tmp, 'record.sh');
  const out = join(tmp, 'lease.env');
  writeFileSync(script, `#!/bin/sh\n[ "$reason" = BOUND ] || exit 0\nprintf 'ip=%s\\nmask=%s\\nrouters=%s\\ndns=%s\\n' "$new_ip_address" "$new_subnet_mask" "$new_routers" "$new_domain_name_servers" > "${out}.tmp" && mv "${out}.tmp" "${out}"\n`, { mode: 0o700 });
  const client = spawn('ip', ['netns', 'exec', lab.lan, 'dhclient', '-4', '-d', '-1', '-cf', '/dev/null', '-lf', join(tmp, 'client.leases'), '-pf', join(tmp, 'client.pid'), '-sf', script, 'eth0'], { stdio: 'ignore' });
  children.push(client);
  await waitFor(() => existsSync(out), 30_000, 'the DHCP client to be bound');
  const lease = Object.fromEntries(readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split('=') as [string, string]));
  assert.equal(lease, { ip: '192.0.2.50', mask: '255.255.255.0', routers: '192.0.2.1', dns: '192.0.2.1' });
  client.kill('SIGTERM');

  await run('ip', ['addr', 'add', `${lease.ip}/24`, 'dev', 'eth0'], { netns: lab.lan });
  assert.equal(await resolve('labhost.lab.example'), { rcode: 0, answers: ['192.0.2.50'] });
  assert.equal(await resolve('nas.lab.example'), { rcode: 0, answers: ['192.0.2.20'] });
  assert.equal(await resolve('far.example.net'), { rcode: 0, answers: ['203.0.113.77'] }, 'forwarded upstream');

  const status = JSON.parse((await d.cli(['status', '--json'])).stdout);
  assert.is(status.network.leases, 1);
  assert.is(status.network.dnsmasq.running, true);
  const cliLeases = JSON.parse((await d.cli(['leases', '--json'])).stdout);
  assert.equal(cliLeases.map((l: any) => [l.address, l.mac]), [['192.0.2.50', mac]]);
  assert.match((await d.cli(['leases'])).stdout, /192\.0\.2\.50\s+\S+\s+/);

  // The API: the lease, and the kernel's view of the namespace.
  const base = `http://127.0.0.1:${port}/api/v1`;
  assert.is((await fetch(`${base}/network/leases`)).status, 401, 'a session is needed');
  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'lan-test-admin-password' }) });
  assert.is(login.status, 200);
  const cookie = /rampart_session=[^;]*/.exec(login.headers.get('set-cookie')!)![0];
  const leases = await (await fetch(`${base}/network/leases`, { headers: { cookie } })).json();
  assert.is(leases.length, 1);
  assert.equal({ mac: leases[0].mac, address: leases[0].address }, { mac, address: '192.0.2.50' });
  const state = await (await fetch(`${base}/network/state`, { headers: { cookie } })).json();
  assert.is(state.managed, true);
  const lan0 = state.links.find((l: any) => l.device === 'lan0');
  assert.ok(lan0.addresses.some((a: any) => a.address === '192.0.2.1/24' && !a.dynamic), JSON.stringify(lan0));
});

test('dnsmasq that dies is started again; a change of LAN services restarts it with the new file', async () => {
  const pidFile = join(d!.dataDir, 'network', 'dnsmasq.pid');
  const first = Number(readFileSync(pidFile, 'utf8'));
  process.kill(first, 'SIGKILL');
  await waitFor(() => {
    try {
      const p = Number(readFileSync(pidFile, 'utf8'));
      return p !== first && existsSync(`/proc/${p}`);
    } catch {
      return false;
    }
  }, 20_000, 'the supervisor to start dnsmasq again');
  const c = config('02:00:00:00:00:01');
  c.network.dns.hosts.push({ name: 'printer', addresses: ['192.0.2.30'] });
  const r = await d!.cli(['apply', d!.file(c)]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await resolve('printer.lab.example'), { rcode: 0, answers: ['192.0.2.30'] });
  // Managed off: dnsmasq goes.
  const off = labConfig();
  const r2 = await d!.cli(['apply', d!.file(off)]);
  assert.is(r2.code, 0, r2.stderr);
  assert.not.ok(existsSync(pidFile), 'dnsmasq stopped');
});

test.run();
