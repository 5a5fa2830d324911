/**
 * The appliance's system files, checked without building or booting the image (the qemu smoke test is
 * test/image/smoke.test.ts): rampartd.service's hardening (`systemd-analyze security --offline` on the unit file),
 * its capability and address-family sets and watchdog, the router sysctls, first boot, root partition growth (the
 * real systemd-repart on a small GPT disk file), and the first-boot default config (valid, management from the LAN
 * only).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../services/core/validate.ts';
import { tracePacket } from '../../services/firewall/trace.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { imageRelease } from '../../services/core/release.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const ROOT = join(import.meta.dirname, '../..');
const SYS = join(ROOT, 'system/systemd');
const read = (f: string) => readFileSync(join(SYS, f), 'utf8');

/** The unit's directives as key → values (later lines of a key add to it, like systemd's list settings). */
function directives(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const k = line.slice(0, eq);
    m.set(k, [...(m.get(k) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

test('rampartd.service: hardening directives', () => {
  const d = directives(read('rampartd.service'));
  const one = (k: string) => d.get(k)?.join(' ');
  assert.is(one('StateDirectory'), 'rampart');
  assert.is(one('ProtectSystem'), 'strict');
  for (const k of ['ProtectHome', 'PrivateTmp', 'NoNewPrivileges', 'PrivateDevices', 'ProtectKernelModules', 'ProtectControlGroups', 'RestrictSUIDSGID', 'LockPersonality'])
    assert.is(one(k), 'yes', k);
  assert.equal(one('CapabilityBoundingSet')!.split(/\s+/).sort(), ['CAP_KILL', 'CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID']);
  assert.equal(one('RestrictAddressFamilies')!.split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX']);
  assert.is(one('SystemCallFilter'), '@system-service');
  assert.is(one('Restart'), 'always');
  // The watchdog: readiness and pings come from rampartd's child rampart-notify (hence NotifyAccess=all).
  assert.is(one('Type'), 'notify');
  assert.is(one('NotifyAccess'), 'all');
  const watchdog = /^(\d+)s$/.exec(one('WatchdogSec') ?? '');
  assert.ok(watchdog && Number(watchdog[1]) >= 10 && Number(watchdog[1]) <= 120, `WatchdogSec=${one('WatchdogSec')}`);
  assert.match(one('ExecStart')!, /--data \/var\/lib\/rampart serve --listen \[::\]:443 --config \/etc\/rampart\/appliance\.json$/);
  assert.not.ok(d.has('AmbientCapabilities'), 'no ambient capabilities');
});

test('rampartd.service: systemd-analyze security --offline scores it OK or better', async () => {
  const r = await execa('systemd-analyze', ['security', '--offline=yes', '--no-pager', join(SYS, 'rampartd.service')], { reject: false });
  if (r.exitCode === undefined || /unrecognized option|Unknown option/i.test(r.stderr)) {
    console.log(`skipped: no systemd-analyze with --offline here (${(r.stderr || r.shortMessage || '').trim().split('\n')[0]})`);
    return;
  }
  const m = /Overall exposure level for rampartd\.service: ([\d.]+) (\S+)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  console.log(`systemd-analyze security --offline rampartd.service: ${m![1]} ${m![2]}`);
  assert.ok(Number(m![1]) <= 4.0, `exposure ${m![1]}`);
});

test('router sysctls: forwarding, strict rp_filter, syncookies, no redirects', () => {
  const kv = new Map(
    read('90-rampart-router.conf')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.replace(/^-/, '').split('=').map((s) => s.trim()) as [string, string]),
  );
  for (const k of ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.tcp_syncookies']) assert.is(kv.get(k), '1', k);
  for (const k of ['net.ipv4.conf.all.send_redirects', 'net.ipv4.conf.all.accept_redirects', 'net.ipv6.conf.all.accept_redirects']) assert.is(kv.get(k), '0', k);
  assert.match(read('90-rampart-journald.conf'), /^SystemMaxUse=\d+M$/m);
});

test('first boot: valid shell, a random password per unit, never written to the journal', async () => {
  const script = read('rampart-firstboot.sh');
  const r = await execa('bash', ['-n', join(SYS, 'rampart-firstboot.sh')], { reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(script, /password=\$\(head -c 18 \/dev\/urandom/);
  assert.match(script, /--must-change --password-stdin/);
  const unit = directives(read('rampart-firstboot.service'));
  assert.equal(unit.get('StandardOutput'), ['journal']);
  assert.match(unit.get('Before')!.join(' '), /rampartd\.service/);
  // The password reaches only the console and the login prompt, never stdout (the journal).
  for (const line of script.split('\n').filter((l) => /\$password/.test(l))) assert.not.match(line, /^\s*echo /, line);
});

test('root partition growth: systemd-repart grows the root partition, x-systemd.growfs its file system, before first boot', async () => {
  const repart = directives(read('repart-root.conf'));
  assert.equal(repart.get('Type'), ['root-x86-64'], 'the root partition type the image build gives partition 2');
  for (const k of ['SizeMaxBytes', 'PaddingMinBytes', 'Format', 'CopyBlocks']) assert.not.ok(repart.has(k), `${k}: grow to the end, create nothing`);
  const build = readFileSync(join(ROOT, 'images/build'), 'utf8');
  assert.match(build, /type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709/, 'partition 2 is typed root-x86-64');
  assert.match(build, /install -D -m 0644 system\/systemd\/repart-root\.conf "\$R\/usr\/lib\/repart\.d\/[^"]+\.conf"/);
  assert.match(build, /LABEL=rampart-root\\t\/\\text4\\t[^\\]*x-systemd\.growfs/, 'fstab: the root file system grows online');
  assert.match(directives(read('rampart-firstboot.service')).get('After')!.join(' '), /systemd-repart\.service systemd-growfs@-\.service/);
});

test('root partition growth: systemd-repart with repart-root.conf grows partition 2 of a GPT disk to its end', async () => {
  const tools = await Promise.all(['systemd-repart', 'sfdisk'].map((t) => execa(t, ['--version'], { reject: false }).then((r) => r.exitCode === 0, () => false)));
  if (tools.includes(false)) {
    console.log('skipped: systemd-repart or sfdisk (util-linux fdisk) is not installed here');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'rampart-repart-'));
  try {
    const disk = join(dir, 'disk.img');
    const defs = join(dir, 'repart.d');
    mkdirSync(defs);
    writeFileSync(join(defs, '50-rampart-root.conf'), read('repart-root.conf'));
    // The image's layout in small: ESP, then the root partition; then the disk grows by 32 MiB.
    writeFileSync(disk, '');
    await execa('truncate', ['-s', '40M', disk]);
    await execa('sfdisk', ['-q', '-X', 'gpt', disk], {
      input: 'start=1MiB, size=8MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=9MiB, size=30MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\n',
    });
    await execa('truncate', ['-s', '72M', disk]);
    const r = await execa('systemd-repart', ['--dry-run=no', `--definitions=${defs}`, '--no-pager', disk], { reject: false });
    assert.is(r.exitCode, 0, r.stderr);
    const table = JSON.parse((await execa('sfdisk', ['--json', disk])).stdout).partitiontable;
    const [esp, root] = table.partitions;
    assert.is(table.partitions.length, 2, 'no partition created');
    assert.equal([esp.start, esp.size], [2048, 8 * 2048], 'the ESP untouched');
    assert.is(root.start, 9 * 2048, 'the root partition not moved');
    const endMib = ((root.start + root.size) * 512) / 1048576;
    assert.ok(endMib > 71 && endMib <= 72, `the root partition ends at ${endMib} MiB of 72`);
    assert.is((await execa('sfdisk', ['--verify', disk])).exitCode, 0, 'a valid GPT (backup header at the new end)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('appliance.json: valid; HTTPS from the LAN, nothing from the WAN', () => {
  const config = parseConfig(JSON.parse(readFileSync(join(ROOT, 'system/examples/appliance.json'), 'utf8')));
  assert.is(config.firewall.policy.input, 'drop');
  assert.ok(config.network.manage);
  const lan = tracePacket(config, { from: 'lan', src: '192.168.1.100', dst: '192.168.1.1', proto: 'tcp', dport: 443 }, { apiPort: 443 });
  assert.is(lan.verdict, 'accept');
  for (const dport of [443, 22, 80, 161]) {
    const wan = tracePacket(config, { from: 'wan', src: '198.51.100.7', dst: '198.51.100.1', proto: 'tcp', dport }, { apiPort: 443 });
    assert.is(wan.verdict, 'drop', `wan tcp ${dport}: ${wan.steps.join('; ')}`);
  }
  assert.is(tracePacket(config, { from: 'wan', src: '198.51.100.7', dst: '198.51.100.1', proto: 'udp', dport: 161 }, { apiPort: 443 }).verdict, 'drop');
  assert.is(tracePacket(config, { from: 'lan', to: 'wan', src: '192.168.1.100', dst: '203.0.113.5', proto: 'tcp', dport: 80 }, { apiPort: 443 }).verdict, 'accept');
  assert.is(tracePacket(config, { from: 'wan', to: 'lan', src: '203.0.113.5', dst: '192.168.1.100', proto: 'tcp', dport: 80 }, { apiPort: 443 }).verdict, 'drop');
  assert.match(compileRuleset(config, { apiPort: 443 }).script, /policy drop;/);
});

test('image release file: parsed when present, undefined when absent or malformed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-release-'));
  try {
    const f = join(dir, 'rampart-release');
    writeFileSync(f, 'NAME=Rampart\nVERSION=0.1.0\nIMAGE_VERSION=0.1.0+202611290000\nBUILD_DATE=2026-11-29T00:00:00Z\nDEBIAN=12.12\n');
    assert.equal(imageRelease(f), { version: '0.1.0+202611290000', rampart: '0.1.0', buildDate: '2026-11-29T00:00:00Z', debian: '12.12' });
    writeFileSync(f, 'IMAGE_VERSION=has space\n');
    assert.is(imageRelease(f), undefined);
    assert.is(imageRelease(join(dir, 'missing')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
