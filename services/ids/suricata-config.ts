/**
 * The Suricata configuration Rampart generates (pure): config document → suricata.yaml, classification.config and
 * the inline-IPS queue ruleset. The fixed part comes from system/suricata/base.yaml; only values Rampart derives
 * from the validated document (device names, parsed prefixes, numbers) and its own paths are set, through a YAML
 * serialiser, so nothing from the document is ever pasted into the file as text.
 */
import { parseDocument } from 'yaml';
import type { Config } from '../core/schema.ts';
import { parseInterfaceAddress, parsePrefix } from '../core/net.ts';

/** Where everything of the engine lives: DATA/suricata. */
export interface SuricataLayout {
  dir: string;
  yaml: string;
  rulesDir: string;
  rulesFile: string;
  candidateDir: string;
  thresholdFile: string;
  classificationFile: string;
  referenceFile: string;
  socket: string;
  eve: string;
  pidFile: string;
}

export function suricataLayout(dir: string): SuricataLayout {
  return {
    dir,
    yaml: `${dir}/suricata.yaml`,
    rulesDir: `${dir}/rules`,
    rulesFile: 'rampart.rules',
    candidateDir: `${dir}/candidate`,
    thresholdFile: `${dir}/rules/threshold.config`,
    classificationFile: `${dir}/classification.config`,
    referenceFile: `${dir}/reference.config`,
    socket: `${dir}/suricata.sock`,
    eve: `${dir}/eve.json`,
    pidFile: `${dir}/suricata.pid`,
  };
}

/** What the generated configuration depends on, derived from the document. */
export interface SuricataSettings {
  mode: 'ids' | 'ips';
  /** Capture devices (IDS mode). */
  devices: string[];
  /** Prefixes of HOME_NET, canonical text. */
  homeNet: string[];
  /** NFQUEUE number (IPS mode). */
  queue: number;
  failOpen: boolean;
}

/** Used when no internal network can be derived from the interfaces. */
export const DEFAULT_HOME_NET = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'];
export const DEFAULT_QUEUE = 0;

/**
 * HOME_NET is the networks of the interfaces in internal zones. A zone is external when it is masqueraded or holds
 * an interface addressed by DHCP or SLAAC (the uplink); every other zone, and interfaces without a zone, are internal.
 */
export function homeNetworks(cfg: Config): string[] {
  const external = new Set<string>(cfg.firewall.nat.masquerade.map((m) => m.zone));
  for (const i of cfg.interfaces) if ((i.dhcp || i.slaac) && i.zone) external.add(i.zone);
  const nets = new Set<string>();
  for (const i of cfg.interfaces) {
    if (i.zone && external.has(i.zone)) continue;
    for (const a of i.addresses) {
      const p = parseInterfaceAddress(a)?.network ?? parsePrefix(a);
      if (p) nets.add(p.text);
    }
  }
  return nets.size ? [...nets] : [...DEFAULT_HOME_NET];
}

export function suricataSettings(cfg: Config): SuricataSettings {
  const byName = new Map(cfg.interfaces.map((i) => [i.name, i.device]));
  return {
    mode: cfg.ids.mode,
    devices: cfg.ids.interfaces.map((n) => byName.get(n)).filter((d): d is string => !!d),
    homeNet: homeNetworks(cfg),
    queue: DEFAULT_QUEUE,
    failOpen: cfg.ids.failOpen,
  };
}

const DEVICE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/**
 * The exception policy, chosen deliberately: an IDS only watches, so an engine exception (memcap hit, midstream
 * flow...) changes nothing (`ignore`); an inline IPS lets the flow pass when it fails open and drops it when the
 * configuration asks for fail-closed.
 */
export function exceptionPolicy(s: SuricataSettings): string {
  if (s.mode === 'ids') return 'ignore';
  return s.failOpen ? 'pass-flow' : 'drop-flow';
}

/** suricata.yaml for the settings, on top of the base file's text. */
export function renderSuricataYaml(base: string, s: SuricataSettings, l: SuricataLayout): string {
  for (const d of s.devices) if (!DEVICE_RE.test(d)) throw new Error(`invalid capture device ${JSON.stringify(d)}`);
  const homeNet = s.homeNet.map((n) => {
    const p = parsePrefix(n);
    if (!p) throw new Error(`invalid HOME_NET prefix ${JSON.stringify(n)}`);
    return p.text;
  });
  if (!Number.isInteger(s.queue) || s.queue < 0 || s.queue > 65535) throw new Error('invalid queue number');
  const doc = parseDocument(base, { version: '1.1' });
  doc.setIn(['vars', 'address-groups', 'HOME_NET'], `[${homeNet.join(',')}]`);
  doc.set('default-log-dir', l.dir);
  doc.set('default-rule-path', l.rulesDir);
  doc.set('rule-files', [l.rulesFile]);
  doc.set('classification-file', l.classificationFile);
  doc.set('reference-config-file', l.referenceFile);
  doc.set('threshold-file', l.thresholdFile);
  doc.set('pid-file', l.pidFile);
  doc.set('unix-command', { enabled: 'yes', filename: l.socket });
  doc.set('exception-policy', exceptionPolicy(s));
  if (s.mode === 'ids') {
    doc.set('runmode', 'workers');
    doc.set('host-mode', 'sniffer-only');
    doc.set(
      'af-packet',
      s.devices.map((device, i) => ({
        interface: device,
        threads: 1,
        'cluster-id': 99 - i,
        'cluster-type': 'cluster_flow',
        defrag: 'yes',
        'use-mmap': 'yes',
        'tpacket-v3': 'yes',
        'checksum-checks': 'no',
      })),
    );
  } else {
    doc.set('runmode', 'autofp');
    doc.set('host-mode', 'router');
    doc.set('nfq', { mode: 'accept', 'fail-open': s.failOpen ? 'yes' : 'no' });
  }
  return '%YAML 1.1\n---\n' + doc.toString({ lineWidth: 0, directives: false });
}

/** Suricata's standard rule classes and their priorities (severity 1 most, 4 least); rule sets refer to them. */
const CLASSES: [string, string, number][] = [
  ['not-suspicious', 'Not Suspicious Traffic', 3],
  ['unknown', 'Unknown Traffic', 3],
  ['bad-unknown', 'Potentially Bad Traffic', 2],
  ['attempted-recon', 'Attempted Information Leak', 2],
  ['successful-recon-limited', 'Information Leak', 2],
  ['successful-recon-largescale', 'Large Scale Information Leak', 2],
  ['attempted-dos', 'Attempted Denial of Service', 2],
  ['successful-dos', 'Denial of Service', 2],
  ['attempted-user', 'Attempted User Privilege Gain', 1],
  ['unsuccessful-user', 'Unsuccessful User Privilege Gain', 1],
  ['successful-user', 'Successful User Privilege Gain', 1],
  ['attempted-admin', 'Attempted Administrator Privilege Gain', 1],
  ['successful-admin', 'Successful Administrator Privilege Gain', 1],
  ['rpc-portmap-decode', 'Decode of an RPC Query', 2],
  ['shellcode-detect', 'Executable code was detected', 1],
  ['string-detect', 'A suspicious string was detected', 3],
  ['suspicious-filename-detect', 'A suspicious filename was detected', 2],
  ['suspicious-login', 'An attempted login using a suspicious username was detected', 2],
  ['system-call-detect', 'A system call was detected', 2],
  ['tcp-connection', 'A TCP connection was detected', 4],
  ['trojan-activity', 'A Network Trojan was detected', 1],
  ['unusual-client-port-connection', 'A client was using an unusual port', 2],
  ['network-scan', 'Detection of a Network Scan', 3],
  ['denial-of-service', 'Detection of a Denial of Service Attack', 2],
  ['non-standard-protocol', 'Detection of a non-standard protocol or event', 2],
  ['protocol-command-decode', 'Generic Protocol Command Decode', 3],
  ['web-application-activity', 'access to a potentially vulnerable web application', 2],
  ['web-application-attack', 'Web Application Attack', 1],
  ['misc-activity', 'Misc activity', 3],
  ['misc-attack', 'Misc Attack', 2],
  ['icmp-event', 'Generic ICMP event', 3],
  ['inappropriate-content', 'Inappropriate Content was Detected', 1],
  ['policy-violation', 'Potential Corporate Privacy Violation', 1],
  ['default-login-attempt', 'Attempt to login by a default username and password', 2],
  ['targeted-activity', 'Targeted Malicious Activity was Detected', 1],
  ['exploit-kit', 'Exploit Kit Activity Detected', 1],
  ['external-ip-check', 'Device Retrieving External IP Address Detected', 2],
  ['domain-c2', 'Domain Observed Used for C2 Detected', 1],
  ['pup-activity', 'Possibly Unwanted Program Detected', 2],
  ['credential-theft', 'Successful Credential Theft Detected', 1],
  ['social-engineering', 'Possible Social Engineering Attempted', 2],
  ['coin-mining', 'Crypto Currency Mining Activity Detected', 2],
  ['command-and-control', 'Malware Command and Control Activity Detected', 1],
];

export function classificationConfig(): string {
  return CLASSES.map(([name, text, prio]) => `config classification: ${name},${text},${prio}`).join('\n') + '\n';
}

export const IPS_TABLE = 'rampart_ips';

/**
 * Inline IPS through nft's `queue` statement: forwarded traffic the firewall accepted (priority filter + 50, after
 * `inet rampart` and the blocks) goes to Suricata; `bypass` lets it through while no engine listens, unless
 * fail-closed. Replaces the table atomically.
 */
export function ipsNftScript(queue: number, failOpen: boolean): string {
  return [
    `table inet ${IPS_TABLE}`,
    `delete table inet ${IPS_TABLE}`,
    `table inet ${IPS_TABLE} {`,
    `\tchain forward {`,
    `\t\ttype filter hook forward priority filter + 50; policy accept;`,
    `\t\tmeta l4proto { tcp, udp, icmp, ipv6-icmp } queue num ${queue}${failOpen ? ' bypass' : ''}`,
    `\t}`,
    `}`,
    '',
  ].join('\n');
}

/** The same through the xt NFQUEUE target (iptables-nft), for kernels without nft's queue statement. */
export function ipsIptablesRules(queue: number, failOpen: boolean, family: 4 | 6): string {
  // iptables-nft's `security` table hooks forward at priority 50, after the filter chains; nothing else on the
  // appliance uses it, so Rampart owns it whole (restore without --noflush replaces it).
  const icmp = family === 4 ? 'icmp' : 'ipv6-icmp';
  return [
    '*security',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...['tcp', 'udp', icmp].map((p) => `-A FORWARD -p ${p} -m comment --comment rampart-ips -j NFQUEUE --queue-num ${queue}${failOpen ? ' --queue-bypass' : ''}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** A throwaway table that nft accepts only where the kernel has the queue statement (checked with `nft -c`). */
export const NFT_QUEUE_PROBE = `table inet rampart_ips_probe {\n\tchain forward {\n\t\ttype filter hook forward priority filter + 50; policy accept;\n\t\tqueue num 0 bypass\n\t}\n}\n`;
