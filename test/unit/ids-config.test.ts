/**
 * The pure parts of the IDS: generated suricata.yaml (IDS and IPS), the inline queue in both forms (nft queue
 * statement, xt NFQUEUE through iptables-nft), rule merging with per-SID enable/disable/drop, the threshold file,
 * error mapping, hostile input, auto-block policy and RFC 5424 formatting. Golden files in test/fixtures/ids/
 * (UPDATE_GOLDEN=1 rewrites them).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig, validateConfig } from '../../services/core/validate.ts';
import {
  classificationConfig,
  homeNetworks,
  ipsIptablesRules,
  ipsNftScript,
  renderSuricataYaml,
  suricataLayout,
  suricataSettings,
} from '../../services/ids/suricata-config.ts';
import { mergeRules, ruleErrors, ruleProblem, thresholdConfig } from '../../services/ids/rules.ts';
import { allowed, autoBlockPolicy, offender } from '../../services/ids/autoblock.ts';
import { formatAlert, formatSyslog } from '../../services/ids/syslog.ts';
import { firewallMatch } from '../../services/ids/correlate.ts';
import { labConfig, ROOT } from '../helpers/daemon.ts';

const FIX = join(ROOT, 'test/fixtures/ids');
const BASE = readFileSync(join(ROOT, 'system/suricata/base.yaml'), 'utf8');
const LAYOUT = suricataLayout('DATA/suricata');

function golden(name: string, text: string): void {
  const file = join(FIX, name);
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) {
    mkdirSync(FIX, { recursive: true });
    writeFileSync(file, text);
  }
  assert.fixture(text, readFileSync(file, 'utf8'), `golden ${name}`);
}

function cfg(ids: Record<string, unknown>): any {
  const c = labConfig();
  c.ids = { enabled: true, interfaces: ['wan'], ...ids };
  return parseConfig(c);
}

test('suricata.yaml for IDS mode (AF_PACKET) and IPS mode (NFQUEUE) match their golden files', () => {
  const ids = renderSuricataYaml(BASE, suricataSettings(cfg({ mode: 'ids' })), LAYOUT);
  const ips = renderSuricataYaml(BASE, suricataSettings(cfg({ mode: 'ips', failOpen: false })), LAYOUT);
  golden('suricata-ids.yaml', ids);
  golden('suricata-ips.yaml', ips);
  const y = parseYaml(ids.replace(/^%YAML 1.1\n/, ''), { version: '1.1' });
  assert.ok(ids.startsWith('%YAML 1.1\n---\n'));
  assert.is(y.vars['address-groups'].HOME_NET, '[192.0.2.0/24,2001:db8:1::/64]');
  assert.equal(y['af-packet'].map((a: any) => a.interface), ['wan0']);
  assert.is(y['unix-command'].filename, 'DATA/suricata/suricata.sock');
  assert.is(y['exception-policy'], 'ignore');
  const p = parseYaml(ips.replace(/^%YAML 1.1\n/, ''), { version: '1.1' });
  assert.is(p.nfq['fail-open'], 'no');
  assert.is(p['exception-policy'], 'drop-flow');
  assert.is(p['af-packet'], undefined);
  assert.is(renderSuricataYaml(BASE, suricataSettings(cfg({ mode: 'ips' })), LAYOUT).includes('exception-policy: pass-flow'), true, 'fail-open IPS passes flows');
});

test('the inline queue in both forms matches the golden files', () => {
  golden('ips-queue.nft', ipsNftScript(0, true));
  golden('ips-queue-failclosed.nft', ipsNftScript(0, false));
  golden('ips-queue.iptables', ipsIptablesRules(0, true, 4));
  golden('ips-queue6.iptables', ipsIptablesRules(0, true, 6));
  assert.ok(ipsNftScript(3, true).includes('queue num 3 bypass'));
  assert.not.ok(ipsNftScript(3, false).includes('bypass'));
  assert.ok(ipsIptablesRules(3, true, 4).includes('--queue-num 3 --queue-bypass'));
  assert.not.ok(ipsIptablesRules(3, false, 4).includes('bypass'));
});

test('HOME_NET: internal zones only; a default when nothing is internal', () => {
  assert.equal(homeNetworks(cfg({})), ['192.0.2.0/24', '2001:db8:1::/64']);
  const c = labConfig();
  c.firewall.nat.masquerade = [{ zone: 'wan' }, { zone: 'lan' }];
  assert.equal(homeNetworks(parseConfig(c)), ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']);
});

test('hostile values never reach suricata.yaml as text', () => {
  const s = suricataSettings(cfg({}));
  assert.throws(() => renderSuricataYaml(BASE, { ...s, devices: ['wan0\nrule-files: [x]'] }, LAYOUT), /invalid capture device/);
  assert.throws(() => renderSuricataYaml(BASE, { ...s, homeNet: ['any]\nfoo: ['] }, LAYOUT), /invalid HOME_NET/);
  // Rules never go to the yaml at all: only the generated rules file name does.
  const y = renderSuricataYaml(BASE, suricataSettings(cfg({ localRules: ['alert tcp any any -> any any (msg:"x\\"; rule-files: evil"; sid:5;)'] })), LAYOUT);
  assert.not.ok(y.includes('evil'));
});

test('validation refuses hostile IDS input with pointers (nothing is applied)', () => {
  const c = labConfig();
  c.ids = {
    enabled: true,
    interfaces: [],
    localRules: ['alert tcp any any -> any any (sid:1;)\nalert ip any any -> any any (sid:2;)', 'include /etc/shadow', 'alert tcp any any -> any any (msg:"ok"; sid:3;)'],
    ruleFiles: ['rules/a.rules\nrule-files: [x]'],
    sids: { enable: [5], disable: [5], drop: [] },
    suppress: [{ sid: 3, ip: ['not-an-object'] }],
  };
  const r = validateConfig(c);
  assert.not.ok(r.ok);
  assert.equal(r.problems.map((p) => p.path).sort(), ['/ids/interfaces', '/ids/localRules/0', '/ids/localRules/1', '/ids/ruleFiles/0', '/ids/sids/enable/0', '/ids/suppress/0/ip/0'].sort());
});

test('rule strings are checked: one line, an action, options, a sid in range', () => {
  assert.is(ruleProblem('alert tcp any any -> any 80 (msg:"ok"; sid:1;)'), undefined);
  assert.match(ruleProblem('alert tcp any any -> any 80 (msg:"a"; sid:1;)\nalert ip any any -> any any (sid:2;)')!, /one line/);
  assert.match(ruleProblem('alert tcp any any -> any 80 (msg:"no sid";)')!, /no sid/);
  assert.match(ruleProblem('alert tcp any any -> any 80 (sid:0;)')!, /out of range/);
  assert.match(ruleProblem('alert tcp any any -> any 80 (sid:4294967296;)')!, /out of range/);
  assert.match(ruleProblem('include /etc/passwd')!, /not a rule/);
  assert.match(ruleProblem('alert tcp any any -> any 80 (sid:1;)\u0000')!, /control/);
  const m = mergeRules({ ...cfg({}).ids, localRules: ['rm -rf /', 'alert tcp any any -> any any (sid:7;)'] }, []);
  assert.equal(m.problems.map((p) => p.path), ['/ids/localRules/0']);
});

test('rule files and local rules merge with per-SID enable, disable and drop; each line keeps its origin', () => {
  const file = [
    'alert tcp any any -> any 22 (msg:"ssh"; sid:100; rev:1;)',
    '# alert tcp any any -> any 23 (msg:"telnet"; sid:101; rev:1;)',
    '# a comment, not a rule',
    'alert tcp any any -> any 25 (msg:"smtp"; classtype:misc-attack; sid:102; rev:1;)',
    'alert tcp any any -> any 80 (msg:"http from file"; sid:103; rev:1;)',
  ].join('\n');
  const ids = cfg({
    localRules: ['alert tcp any any -> any 80 (msg:"http local"; sid:103; rev:2;)', 'alert udp any any -> any 53 (msg:"dns"; sid:104;)'],
    sids: { enable: [101], disable: [100], drop: [102] },
  }).ids;
  const m = mergeRules(ids, [{ path: 'et.rules', text: file }]);
  assert.equal(m.problems, []);
  golden('merged.rules', m.text);
  const by = new Map(m.rules.map((r) => [r.sid, r]));
  assert.is(by.get(100)!.enabled, false);
  assert.is(by.get(101)!.enabled, true, 'a commented rule enabled by SID');
  assert.is(by.get(102)!.action, 'drop');
  assert.is(by.get(103)!.msg, 'http local', 'a local rule replaces a file rule with the same SID');
  assert.is(by.get(103)!.origin, 'localRules/0');
  assert.is(by.get(101)!.origin, 'file et.rules:2');
  const lines = m.text.split('\n');
  assert.ok(lines[m.origins.indexOf('file et.rules:1')].startsWith('# alert'), 'disabled SID commented out');
  const missing = mergeRules(ids, [{ path: 'gone.rules', error: 'ENOENT' }]);
  assert.equal(missing.problems, [{ path: '/ids/ruleFiles/0', message: 'cannot read gone.rules: ENOENT' }]);
});

test('suricata errors map back to the rule origin', () => {
  const ids = cfg({ localRules: ['alert tcp any any -> any 80 (msg:"a"; sid:1;)', 'alert tcp any any -> any 80 (msg:"b"; bogus; sid:2;)'] }).ids;
  const m = mergeRules(ids, []);
  const out = 'E: detect-parse: unknown rule keyword \'bogus\'.\nE: detect: error parsing signature "alert tcp any any -> any 80 (msg:"b"; bogus; sid:2;)" from file DATA/suricata/candidate/rules/rampart.rules at line 3\n';
  assert.equal(ruleErrors(out, m, 'rampart.rules').map((e) => [e.line, e.origin]), [[3, 'localRules/1']]);
});

test('threshold file: suppress and threshold entries with resolved, parsed addresses', () => {
  const c = labConfig();
  c.ids = {
    enabled: true,
    interfaces: ['wan'],
    suppress: [{ sid: 5 }, { sid: 6, track: 'by_dst', ip: ['web-srv', '2001:db8::/32'] }],
    thresholds: [{ sid: 7, type: 'limit', track: 'by_src', count: 1, seconds: 60 }],
  };
  const p = parseConfig(c);
  const t = thresholdConfig(p.ids, (ref) => (Object.hasOwn(p.objects.addresses, ref) ? p.objects.addresses[ref] : [ref]));
  assert.equal(t.problems, []);
  golden('threshold.config', t.text);
  const bad = thresholdConfig({ ...p.ids, suppress: [{ sid: 6, ip: ['1.2.3.4, track by_dst'] }] }, (r) => [r]);
  assert.equal(bad.problems.map((x) => x.path), ['/ids/suppress/0/ip/0']);
  assert.not.ok(bad.text.includes('1.2.3.4'));
});

test('classification.config gives web-application-attack priority 1', () => {
  assert.match(classificationConfig(), /^config classification: web-application-attack,Web Application Attack,1$/m);
});

test('auto-block: the outside end of a flow; HOME_NET, own addresses, allowlist and broker are never blocked', () => {
  const c = labConfig();
  c.ids = { enabled: true, interfaces: ['wan'], autoBlock: { enabled: true, allowlist: ['203.0.113.0/24', 'web-srv'] } };
  c.sync = { enabled: true, broker: 'mqtts://198.51.100.77:8883', tenant: 'acme', deviceId: 'fw1' };
  const p = parseConfig(c);
  const pol = autoBlockPolicy(p, homeNetworks(p));
  assert.is(offender({ src: '198.51.100.20', dst: '192.0.2.10' }, pol.homeNet), '198.51.100.20');
  assert.is(offender({ src: '192.0.2.10', dst: '198.51.100.20' }, pol.homeNet), '198.51.100.20', 'the outside end of an inside-out flow');
  assert.is(offender({ src: '192.0.2.10', dst: '192.0.2.11' }, pol.homeNet), undefined);
  for (const a of ['192.0.2.55', '198.51.100.1', '203.0.113.9', '198.51.100.77', '2001:db8:1::5', '127.0.0.1']) assert.ok(allowed(a, pol.allow), a);
  for (const a of ['198.51.100.20', '2001:db8:2::20']) assert.not.ok(allowed(a, pol.allow), a);
});

test('an alert is correlated with the firewall rule that lets its flow in', () => {
  const c = parseConfig(labConfig());
  const base = { id: 'x', seq: 1, kind: 'ids' as const, at: 0, severity: 1 as const, signature: 's', proto: 'tcp' };
  assert.equal(firewallMatch(c, { ...base, src: '198.51.100.20', dst: '198.51.100.1', dport: 8080, detail: { in_iface: 'wan0' } }), { chain: 'forward', verdict: 'accept', decidedBy: 'port-forward', rule: 'web-in' });
  // A reply-direction alert is traced from the flow's initiator (EVE's flow block).
  assert.equal(firewallMatch(c, { ...base, src: '198.51.100.20', sport: 80, dst: '192.0.2.10', dport: 40000, detail: { flow: { src_ip: '192.0.2.10', dest_ip: '198.51.100.20', src_port: 40000, dest_port: 80 } } })?.rule, 'lan-web');
  assert.equal(firewallMatch(c, { ...base, src: '198.51.100.20', dst: '192.0.2.10', dport: 22 }), { chain: 'forward', verdict: 'drop', decidedBy: 'policy' });
  assert.is(firewallMatch(c, { ...base, kind: 'anomaly' }), undefined);
});

test('RFC 5424: header, escaped structured data, one line', () => {
  const m = formatSyslog({ facility: 4, severity: 2, at: Date.UTC(2026, 10, 29, 1, 2, 3, 4), hostname: 'fw lab', msgid: 'IDS', sdId: 'alert@32473', params: { sig: 'a "b" [c] \\d', none: undefined }, text: 'line1\nline2', procid: 7 });
  assert.is(m, '<34>1 2026-11-29T01:02:03.004Z fwlab rampart 7 IDS [alert@32473 sig="a \\"b\\" [c\\] \\\\d"] line1 line2');
  const a = formatAlert({ id: 'x', seq: 3, kind: 'ids', at: 0, severity: 1, signature: 'sig', sid: 9, src: '198.51.100.20', sport: 4000, dst: '192.0.2.10', dport: 80, proto: 'tcp' }, 4, 'fw');
  assert.match(a, /^<34>1 1970-01-01T00:00:00.000Z fw rampart \d+ IDS \[alert@32473 id="x" seq="3" severity="1" sid="9" src="198.51.100.20" sport="4000" dst="192.0.2.10" dport="80" proto="tcp"\] sig$/);
});

test.run();
