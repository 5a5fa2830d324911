/**
 * The SNMP agent in a running daemon that manages a lab's firewall namespace and listens on 127.0.0.1 (an
 * unprivileged port): Net-SNMP's snmpwalk / snmpbulkwalk / snmpget and snmp-native read the system group, IF-MIB
 * (values equal to the kernel's counters in the namespace), HOST-RESOURCES, UCD and RAMPART-MIB (values equal to
 * the configuration, the rule counters and the blocks); v3 authPriv works; every refused request gets no answer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import snmpNative from 'snmp-native';
import { execa } from 'execa';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { probe, startServer, type Server } from '../helpers/probe.ts';
import { MIB_DIRS, QUICK, freeUdpPort, kernelLinks, parseLines, snmpSection, startTrapd, tool, v2c, v3 } from '../fixtures/snmp/tools.ts';

let lab: Lab | undefined;
let d: TestDaemon | undefined;
let server: Server | undefined;
let port = 0;
let target = '';
let saved: string | undefined;
let savedRelease: string | undefined;
const config = labConfig();
// The image's release file as images/build writes it (the daemon reads RAMPART_RELEASE_FILE in its place).
const IMAGE_VERSION = '0.1.0+202611290312';
const releaseDir = mkdtempSync(join(tmpdir(), 'rampart-snmp-release-'));

test.before(async () => {
  saved = process.env.RAMPART_TELEMETRY_SECONDS;
  process.env.RAMPART_TELEMETRY_SECONDS = '1';
  savedRelease = process.env.RAMPART_RELEASE_FILE;
  process.env.RAMPART_RELEASE_FILE = join(releaseDir, 'rampart-release');
  writeFileSync(process.env.RAMPART_RELEASE_FILE, `NAME=Rampart\nVERSION=0.1.0\nIMAGE_VERSION=${IMAGE_VERSION}\nBUILD_DATE=2026-11-29T03:12:00Z\nDEBIAN=12.8\n`);
  port = await freeUdpPort();
  target = `127.0.0.1:${port}`;
  config.snmp = snmpSection(port);
  lab = await startLab();
  d = await startDaemon({ netns: lab.fw, config });
  server = await startServer(lab.wan, { proto: 'tcp', port: 80 });
  await waitFor(async () => (await tool('snmpget', [...v2c('rampart-ro'), '-On', target, '1.3.6.1.2.1.1.5.0'])).code === 0, 20_000, 'the agent to answer');
});

test.after(async () => {
  if (saved === undefined) delete process.env.RAMPART_TELEMETRY_SECONDS;
  else process.env.RAMPART_TELEMETRY_SECONDS = saved;
  if (savedRelease === undefined) delete process.env.RAMPART_RELEASE_FILE;
  else process.env.RAMPART_RELEASE_FILE = savedRelease;
  rmSync(releaseDir, { recursive: true, force: true });
  await server?.stop().catch(() => undefined);
  await d?.cleanup().catch(() => undefined);
  await lab?.down();
});

const walk = async (args: string[], oid: string, cmd = 'snmpwalk') => {
  const r = await tool(cmd, [...args, '-On', target, oid]);
  assert.is(r.code, 0, `${cmd} ${oid}: ${r.stderr}`);
  return parseLines(r.stdout);
};

test('system group: sysName, contact and location from the config, sysObjectID under 32473, sysORTable', async () => {
  const sys = await walk(v2c('rampart-ro'), '1.3.6.1.2.1.1');
  assert.is(sys.get('1.3.6.1.2.1.1.5.0'), 'fw-lab');
  assert.is(sys.get('1.3.6.1.2.1.1.4.0'), 'noc@example.net', 'contact falls back to system.contact');
  assert.is(sys.get('1.3.6.1.2.1.1.6.0'), 'lab rack 7', 'snmp.location overrides system.location');
  assert.is(sys.get('1.3.6.1.2.1.1.2.0'), '.1.3.6.1.4.1.32473.1.1');
  assert.match(sys.get('1.3.6.1.2.1.1.1.0') ?? '', /Rampart/);
  assert.ok((sys.get('1.3.6.1.2.1.1.1.0') ?? '').includes(IMAGE_VERSION), 'sysDescr carries the image version');
  const ors = [...sys.entries()].filter(([k]) => k.startsWith('1.3.6.1.2.1.1.9.1.2.')).map(([, v]) => v);
  assert.ok(ors.includes('.1.3.6.1.2.1.31') && ors.includes('.1.3.6.1.4.1.32473'), ors.join(' '));
  // sysUpTime runs.
  const t1 = /\((\d+)\)/.exec(sys.get('1.3.6.1.2.1.1.3.0') ?? '')![1];
  await waitFor(async () => {
    const r = await walk(v2c('rampart-ro'), '1.3.6.1.2.1.1.3');
    return Number(/\((\d+)\)/.exec(r.get('1.3.6.1.2.1.1.3.0') ?? '')![1]) > Number(t1);
  }, 5000, 'sysUpTime to advance');
});

test('IF-MIB: ifTable and ifXTable (HC counters, ifName, ifAlias) agree with the kernel, with snmpbulkwalk and snmp-native', async () => {
  const p = await probe(lab!.lan, { proto: 'tcp', host: '198.51.100.20', port: 80 });
  assert.is(p.status, 'open');
  const links = await kernelLinks(lab!.fw);
  const lan0 = links.get('lan0')!;
  const wan0 = links.get('wan0')!;
  // The namespace is quiet after the probe: wait until the served counters (telemetry, 1 s) equal the kernel's.
  let got = new Map<string, string>();
  let kernel = links;
  await waitFor(
    async () => {
      kernel = await kernelLinks(lab!.fw);
      got = await walk(v2c('rampart-ro'), '1.3.6.1.2.1.31.1.1.1', 'snmpbulkwalk');
      return ['lan0', 'wan0'].every((n) => {
        const k = kernel.get(n)!;
        return got.get(`1.3.6.1.2.1.31.1.1.1.6.${k.ifindex}`) === String(k.rxBytes) && got.get(`1.3.6.1.2.1.31.1.1.1.10.${k.ifindex}`) === String(k.txBytes);
      });
    },
    20_000,
    'ifHCInOctets/ifHCOutOctets to equal the kernel counters',
  );
  const lan = kernel.get('lan0')!;
  assert.ok(lan.rxBytes > 0 && lan.rxBytes >= lan0.rxBytes);
  assert.is(got.get(`1.3.6.1.2.1.31.1.1.1.1.${lan0.ifindex}`), 'lan0', 'ifName');
  assert.is(got.get(`1.3.6.1.2.1.31.1.1.1.18.${lan0.ifindex}`), 'lan', 'ifAlias is the config name');
  assert.is(got.get(`1.3.6.1.2.1.31.1.1.1.18.${wan0.ifindex}`), 'wan');
  assert.is(got.get(`1.3.6.1.2.1.31.1.1.1.7.${lan0.ifindex}`), String(kernel.get('lan0')!.rxPackets), 'ifHCInUcastPkts');

  const table = await walk(v2c('rampart-ro'), '1.3.6.1.2.1.2');
  assert.is(table.get('1.3.6.1.2.1.2.1.0'), String(kernel.size), 'ifNumber counts every link of the namespace');
  assert.is(table.get(`1.3.6.1.2.1.2.2.1.2.${lan0.ifindex}`), 'lan0');
  assert.is(table.get(`1.3.6.1.2.1.2.2.1.8.${lan0.ifindex}`), '1', 'ifOperStatus up');
  assert.is(table.get(`1.3.6.1.2.1.2.2.1.4.${lan0.ifindex}`), '1500');
  assert.is(table.get(`1.3.6.1.2.1.2.2.1.10.${lan0.ifindex}`), String(lan.rxBytes % 2 ** 32), 'ifInOctets: low 32 bits');

  // Symbolic names resolve through IF-MIB.
  const sym = await tool('snmpbulkwalk', [...v2c('rampart-ro'), '-M', MIB_DIRS, '-m', 'IF-MIB', target, 'IF-MIB::ifXTable']);
  assert.is(sym.code, 0, sym.stderr);
  assert.match(sym.stdout, new RegExp(`IF-MIB::ifHCInOctets\\.${lan0.ifindex} = Counter64: \\d+`));
  assert.match(sym.stdout, new RegExp(`IF-MIB::ifName\\.${wan0.ifindex} = STRING: wan0`));

  // snmp-native (a v2c client of its own) reads the same values.
  const session = new snmpNative.Session({ host: '127.0.0.1', port, community: 'rampart-ro', timeouts: [2000, 2000] });
  try {
    const oids = [
      [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, lan0.ifindex],
      [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, lan0.ifindex],
      [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, lan0.ifindex],
    ];
    const vbs: any[] = await new Promise((res, rej) => session.getAll({ oids }, (err: Error | null, v: any[]) => (err ? rej(err) : res(v))));
    assert.is(vbs.length, 3);
    assert.is(String(vbs[0].value), got.get(`1.3.6.1.2.1.31.1.1.1.6.${lan0.ifindex}`));
    assert.is(String(vbs[1].value), got.get(`1.3.6.1.2.1.31.1.1.1.10.${lan0.ifindex}`));
    assert.is(vbs[2].value, 'lan0');
    const sub: any[] = await new Promise((res, rej) => session.getSubtree({ oid: [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1] }, (err: Error | null, v: any[]) => (err ? rej(err) : res(v))));
    assert.equal(sub.map((v) => v.value).sort(), [...kernel.keys()].sort(), 'ifName of every link');
  } finally {
    session.close();
  }
});

test('HOST-RESOURCES-MIB and UCD-SNMP-MIB: uptime, memory, storage, processors, load', async () => {
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
  let hr = new Map<string, string>();
  await waitFor(async () => {
    hr = await walk(v2c('rampart-ro'), '1.3.6.1.2.1.25');
    return [...hr.keys()].filter((k) => k.startsWith('1.3.6.1.2.1.25.3.3.1.2.')).length === cpus().length;
  }, 15_000, 'hrProcessorLoad for every CPU');
  const up = Number(/\((\d+)\)/.exec(hr.get('1.3.6.1.2.1.25.1.1.0') ?? '')?.[1]);
  const hostUp = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100;
  assert.ok(Math.abs(up - hostUp) < 1000, `hrSystemUptime ${up} vs /proc/uptime ${hostUp}`);
  assert.is(hr.get('1.3.6.1.2.1.25.2.2.0'), String(memKb), 'hrMemorySize (kB)');
  assert.is(hr.get('1.3.6.1.2.1.25.2.3.1.3.1'), 'Physical memory');
  assert.is(hr.get('1.3.6.1.2.1.25.2.3.1.5.1'), String(memKb), 'hrStorageSize of RAM in 1 kB units');
  for (const [k, v] of hr) if (k.startsWith('1.3.6.1.2.1.25.3.3.1.2.')) assert.ok(Number(v) >= 0 && Number(v) <= 100, `${k} = ${v}`);

  const ucd = await tool('snmpwalk', [...v2c('rampart-ro'), '-M', MIB_DIRS, '-m', 'UCD-SNMP-MIB', target, 'UCD-SNMP-MIB::laTable']);
  assert.is(ucd.code, 0, ucd.stderr);
  assert.match(ucd.stdout, /UCD-SNMP-MIB::laNames\.1 = STRING: Load-1/);
  const load1 = Number(/UCD-SNMP-MIB::laLoad\.1 = STRING: ([\d.]+)/.exec(ucd.stdout)?.[1]);
  const real = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  assert.ok(Math.abs(load1 - real) < 2, `laLoad.1 ${load1} vs ${real}`);
  const mem = await walk(v2c('rampart-ro'), '1.3.6.1.4.1.2021.4');
  assert.is(mem.get('1.3.6.1.4.1.2021.4.5.0'), String(memKb), 'memTotalReal (kB)');
});

test('RAMPART-MIB: config version, rule table with the config rule ids and the kernel counters, blocks, conntrack', async () => {
  const rules = [...config.firewall.input, ...config.firewall.forward].map((r: any) => r.id);
  let m = new Map<string, string>();
  let counters: any;
  await waitFor(
    async () => {
      counters = (await d!.call('counters')).rules;
      m = await tool('snmpbulkwalk', [...v2c('rampart-ro'), '-M', MIB_DIRS, '-m', 'RAMPART-MIB', '-OQsU', target, 'RAMPART-MIB::rampartMIB']).then((r) => {
        assert.is(r.code, 0, r.stderr);
        const out = new Map<string, string>();
        for (const line of r.stdout.split('\n')) {
          const x = /^(\S+) = (.*)$/.exec(line.trim());
          if (x) out.set(x[1], x[2].replace(/^"(.*)"$/, '$1'));
        }
        return out;
      });
      return rules.every((id: string, i: number) => counters[id] === undefined || m.get(`rampartRulePackets.${i + 1}`) === String(counters[id].packets));
    },
    20_000,
    'rampartRulePackets to equal the kernel rule counters',
  ).catch((err) => {
    console.log(JSON.stringify(counters), JSON.stringify([...m]));
    throw err;
  });
  assert.is(m.get('rampartConfigVersion.0'), '1');
  assert.is(m.get('rampartConfigState.0'), 'applied');
  rules.forEach((id: string, i: number) => assert.is(m.get(`rampartRuleId.${i + 1}`), id, `rule ${i + 1}`));
  assert.is(m.get('rampartRuleChain.1'), 'input');
  assert.is(m.get(`rampartRuleChain.${rules.length}`), 'forward');
  assert.ok(Object.keys(counters).length > 0, 'the ruleset has counters');
  for (const sev of [1, 2, 3, 4]) assert.is(m.get(`rampartIdsAlerts.${sev}`), '0');
  const max = (await execa('ip', ['netns', 'exec', lab!.fw, 'sysctl', '-n', 'net.netfilter.nf_conntrack_max'], { reject: false })).stdout.trim();
  if (max) assert.is(m.get('rampartConntrackMax.0'), max);
  else console.log('  (conntrack module not loaded: rampartConntrackMax not checked)');
  assert.is(m.get('rampartBlockedAddresses.0'), '0');

  const b = await d!.cli(['block', '203.0.113.77', '--ttl', '600']);
  assert.is(b.code, 0, b.stderr);
  await waitFor(async () => (await walk(v2c('rampart-ro'), '1.3.6.1.4.1.32473.2.4.1')).get('1.3.6.1.4.1.32473.2.4.1.0') === '1', 15_000, 'rampartBlockedAddresses = 1');
});

test('the image version: rampartImageVersion.0 by snmpget is the one `rampart status` shows', async () => {
  const st = await d!.cli(['status', '--json']);
  assert.is(st.code, 0, st.stderr);
  assert.is(JSON.parse(st.stdout).image?.version, IMAGE_VERSION, 'status shows the release file\'s version');
  const r = await tool('snmpget', [...v2c('rampart-ro'), '-M', MIB_DIRS, '-m', 'RAMPART-MIB', '-Ov', target, 'RAMPART-MIB::rampartImageVersion.0']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim(), `STRING: ${IMAGE_VERSION}`);
});

test('v3 authPriv: SHA-256 + AES-128 and SHA-512 + AES-256 read; status reports the agent', async () => {
  const a = await tool('snmpget', [...v3('nms', 'SHA-256', 'auth-secret-256', 'AES', 'priv-secret-128'), '-On', target, '1.3.6.1.2.1.1.5.0']);
  assert.is(a.code, 0, a.stderr);
  assert.match(a.stdout, /STRING: "fw-lab"/);
  const b = await tool('snmpbulkwalk', [...v3('nms512', 'SHA-512', 'auth-secret-512', 'AES256', 'priv-secret-256'), '-On', target, '1.3.6.1.2.1.31.1.1.1.1']);
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stdout, /STRING: "lan0"/);
  const st = await d!.call('status');
  assert.is(st.snmp.state, 'running');
  assert.equal(st.snmp.listen, [{ address: '127.0.0.1', port }]);
  assert.not.match(JSON.stringify(st), /auth-secret|priv-secret|rampart-ro/, 'no secret in the status');
});

test('refused → no answer: wrong community, source outside the allowed networks, v1, SET, wrong user, wrong keys, noAuth', async () => {
  const sysName = '1.3.6.1.2.1.1.5.0';
  const cases: [string, string[]][] = [
    ['wrong community', ['snmpget', ...v2c('public', true), target, sysName]],
    ['community of another network', ['snmpget', ...v2c('far-away', true), target, sysName]],
    ['allowed community from 127.0.0.2', ['snmpget', ...v2c('rampart-ro', true), '--clientaddr=127.0.0.2', target, sysName]],
    ['SNMPv1', ['snmpget', '-v1', '-c', 'rampart-ro', ...QUICK, target, sysName]],
    ['SET', ['snmpset', ...v2c('rampart-ro', true), target, sysName, 's', 'owned']],
    ['v3 SET', ['snmpset', ...v3('nms', 'SHA-256', 'auth-secret-256', 'AES', 'priv-secret-128', true), target, sysName, 's', 'owned']],
    ['unknown user', ['snmpget', ...v3('intruder', 'SHA-256', 'auth-secret-256', 'AES', 'priv-secret-128', true), target, sysName]],
    ['wrong auth key', ['snmpget', ...v3('nms', 'SHA-256', 'wrong-secret-256', 'AES', 'priv-secret-128', true), target, sysName]],
    ['wrong priv key', ['snmpget', ...v3('nms', 'SHA-256', 'auth-secret-256', 'AES', 'wrong-secret-128', true), target, sysName]],
    ['wrong auth protocol', ['snmpget', ...v3('nms', 'SHA-512', 'auth-secret-256', 'AES', 'priv-secret-128', true), target, sysName]],
    ['authNoPriv', ['snmpget', '-v3', '-l', 'authNoPriv', '-u', 'nms', '-a', 'SHA-256', '-A', 'auth-secret-256', ...QUICK, target, sysName]],
    ['noAuthNoPriv', ['snmpget', '-v3', '-l', 'noAuthNoPriv', '-u', 'nms', ...QUICK, target, sysName]],
  ];
  const before = (await d!.call('status')).snmp.requests;
  for (const [what, [cmd, ...args]] of cases) {
    const r = await tool(cmd, args);
    assert.is.not(r.code, 0, `${what}: answered\n${r.stdout}`);
    assert.not.match(r.stdout, /fw-lab|owned/, what);
    assert.match(r.stderr + r.stdout, /Timeout|No Response/i, `${what}: expected no answer, got: ${r.stderr}`);
  }
  const after = (await d!.call('status')).snmp.requests;
  assert.ok(after.refused > before.refused, 'the refusals were counted');
  assert.is(after.answered, before.answered, 'not one of them was answered (whatever the timing)');
  // The allowed community from the allowed address still works, and SET changed nothing.
  const ok = await tool('snmpget', [...v2c('rampart-ro'), '-On', target, sysName]);
  assert.match(ok.stdout, /"fw-lab"/);
});

test('a new configuration restarts the agent with its settings; v3 managers go on (engine boots persisted)', async () => {
  // The new configuration also adds a notification target: its own "config applied" reaches it (end to end, through
  // the firewall's event).
  const trapd = await startTrapd(d!.dataDir, 'trap-community', { name: 'nms', authKey: 'auth-secret-256', privKey: 'priv-secret-128' });
  const next = JSON.parse(JSON.stringify(config));
  next.snmp.communities = [{ name: 'rotated-ro', sources: ['127.0.0.0/8'] }];
  next.snmp.location = 'rack 9';
  next.snmp.targets = [{ host: '127.0.0.1', port: trapd.port, version: 'v3', user: 'nms' }];
  try {
    const r = await d!.cli(['apply', d!.file(next)]);
    assert.is(r.code, 0, r.stderr);
    await waitFor(() => trapd.lines().some((l) => /INFORM, SNMP v3, user nms/.test(l) && /rampartConfigAppliedNotification/.test(l)), 15_000, 'the config-applied inform at snmptrapd');
    assert.match(trapd.lines().find((l) => /rampartConfigAppliedNotification/.test(l))!, /rampartNotifyVersion\.0 = Gauge32: 2/);
  } finally {
    await trapd.stop();
  }
  await waitFor(async () => (await tool('snmpget', [...v2c('rotated-ro'), '-On', target, '1.3.6.1.2.1.1.6.0'])).stdout.includes('rack 9'), 15_000, 'the new community and location');
  const old = await tool('snmpget', [...v2c('rampart-ro'), target, '1.3.6.1.2.1.1.5.0']);
  assert.match(old.stderr + old.stdout, /Timeout|No Response/i, 'the old community is gone');
  const fromTwo = await tool('snmpget', [...v2c('rotated-ro'), '--clientaddr=127.0.0.2', '-On', target, '1.3.6.1.2.1.1.5.0']);
  assert.match(fromTwo.stdout, /fw-lab/, '127.0.0.2 is in the new 127.0.0.0/8');
  const a = await tool('snmpget', [...v3('nms', 'SHA-256', 'auth-secret-256', 'AES', 'priv-secret-128'), '-On', target, '1.3.6.1.4.1.32473.2.1.1.0']);
  assert.is(a.code, 0, a.stderr);
  assert.match(a.stdout, /Gauge32: 2/, 'rampartConfigVersion is the new version');
});

test.run();
