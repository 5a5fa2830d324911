/**
 * The configuration document (SPEC §3): one zod schema for structure; cross references are checked in
 * validate.ts. The same schema is exported as JSON Schema to system/schema/rampart.schema.json.
 */
import { z } from 'zod';

export const NAME_PATTERN = '^[a-z][a-z0-9_-]{0,31}$';
const NAME_RE = new RegExp(NAME_PATTERN);
/** Linux interface names: at most 15 characters, no slash, no whitespace, not "." or "..". */
export const DEVICE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$';

export const Name = z
  .string()
  .regex(NAME_RE, { error: 'must be a name: lower-case letter, then up to 31 of a-z 0-9 _ -' })
  .describe('A name: lower-case letter, then up to 31 of a-z 0-9 _ -');

export const Device = z
  .string()
  .regex(new RegExp(DEVICE_PATTERN), { error: 'must be a Linux interface name (1-15 of A-Z a-z 0-9 _ . -)' });

/** An IP, a CIDR or an address-object name; resolved in validate.ts. */
export const AddressRef = z.string().min(1).max(64).describe('IPv4/IPv6 address, CIDR, or address-object name');

/** "80", "1000-2000" or a number. */
export const PortSpec = z
  .union([z.string().max(11), z.number().int()])
  .describe('A port (1-65535) or a range "low-high"');

export const Proto = z.enum(['tcp', 'udp', 'icmp', 'icmpv6']);

export const InlineService = z.strictObject({
  proto: Proto,
  ports: z.array(PortSpec).max(1024).optional(),
});

export const ServiceRef = z.union([Name.describe('service-object or built-in service name'), InlineService]);

export const Action = z.enum(['accept', 'drop', 'reject']);

export const Rate = z
  .string()
  .regex(/^[1-9][0-9]{0,8}\/(second|minute|hour|day)$/, { error: 'must look like "10/second" (second, minute, hour or day)' });

export const Rule = z.strictObject({
  id: Name,
  enabled: z.boolean().default(true),
  from: z.union([Name, z.literal('any')]).default('any'),
  to: z.union([Name, z.literal('any')]).optional(),
  source: z.array(AddressRef).max(100_000).optional(),
  destination: z.array(AddressRef).max(100_000).optional(),
  services: z.array(ServiceRef).max(1024).optional(),
  action: Action,
  log: z.boolean().default(false),
  limit: z.strictObject({ rate: Rate, burst: z.number().int().min(1).max(1_000_000).optional() }).optional(),
  comment: z.string().max(1024).optional(),
});

export const Interface = z.strictObject({
  name: Name,
  device: Device,
  zone: Name.optional(),
  addresses: z.array(z.string().max(64)).max(256).default([]),
  dhcp: z.boolean().optional().describe('IPv4 address and default route from a DHCP server (network.manage only)'),
  slaac: z.boolean().optional().describe('IPv6 addresses and default route from router advertisements (network.manage only)'),
  dhcpv6: z.boolean().optional().describe('An IPv6 address from a DHCPv6 server, the default route from router advertisements (network.manage only)'),
  mtu: z.number().int().min(576).max(65535).optional(),
  enabled: z.boolean().optional().describe('Link up (default) or down, when network.manage is on'),
  management: z.boolean().optional(),
  description: z.string().max(256).optional(),
});

export const Zone = z.strictObject({
  name: Name,
  description: z.string().max(256).optional(),
});

export const PortForward = z.strictObject({
  id: Name,
  enabled: z.boolean().default(true),
  zone: Name,
  proto: z.enum(['tcp', 'udp']),
  port: PortSpec,
  to: z.string().max(64),
  toPort: PortSpec.optional(),
  source: z.array(AddressRef).max(100_000).optional(),
  log: z.boolean().default(false),
  comment: z.string().max(1024).optional(),
});

export const Masquerade = z.strictObject({
  zone: Name,
  source: z.array(AddressRef).max(100_000).optional(),
  family: z.enum(['ipv4', 'ipv6', 'both']).default('ipv4'),
});

export const Snat = z.strictObject({
  id: Name,
  zone: Name,
  source: z.array(AddressRef).max(100_000).optional(),
  to: z.string().max(64),
});

export const Blocklist = z.strictObject({
  name: Name,
  entries: z.array(z.string().max(64)).max(2_000_000),
  comment: z.string().max(1024).optional(),
});

const Policy = z.enum(['accept', 'drop']);

export const AntiLockout = z.union([
  z.boolean(),
  z.strictObject({
    enabled: z.boolean().default(true),
    zones: z.array(Name).max(32).optional(),
    ports: z.array(PortSpec).min(1).max(32).optional(),
  }),
]);

export const Firewall = z.strictObject({
  policy: z
    .strictObject({ input: Policy.default('drop'), forward: Policy.default('drop'), output: Policy.default('accept') })
    .default({ input: 'drop', forward: 'drop', output: 'accept' }),
  antiLockout: AntiLockout.default(true),
  input: z.array(Rule).max(100_000).default([]),
  forward: z.array(Rule).max(100_000).default([]),
  nat: z
    .strictObject({
      masquerade: z.array(Masquerade).max(64).default([]),
      portForwards: z.array(PortForward).max(10_000).default([]),
      snat: z.array(Snat).max(1024).default([]),
    })
    .default({ masquerade: [], portForwards: [], snat: [] }),
  blocklists: z.array(Blocklist).max(256).default([]),
});

const Severity = z.number().int().min(1).max(4);
const Sid = z.number().int().min(1).max(4_294_967_295);

/**
 * A rule source fetched by suricata-update: an https URL, or a file URL of an absolute local path; printable URL
 * characters only (no spaces, quotes, backslashes or control characters), no credentials, no "." or ".." segments.
 */
export const RULE_SOURCE_URL_PATTERN = "^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?|file://)/[A-Za-z0-9._~!$&'()*+,;=:@/%?-]*$";
const RULE_SOURCE_URL_RE = new RegExp(RULE_SOURCE_URL_PATTERN);

/** Why a rule-source URL cannot be used, or undefined. */
export function ruleSourceUrlProblem(url: string): string | undefined {
  if (!RULE_SOURCE_URL_RE.test(url)) return 'must be an https:// URL or a file:/// URL of an absolute path, with URL characters only';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.username || u.password) return 'must not carry credentials';
  if (/\/\.{1,2}(\/|\?|$)/.test(url.split('?')[0]) || /%2e/i.test(url)) return 'must not contain "." or ".." path segments (nor an encoded dot)';
  if (u.protocol === 'file:' && (u.host || u.search || url.endsWith('/'))) return 'a file URL names one file: file:///absolute/path';
  if (u.protocol === 'https:' && u.port && (Number(u.port) < 1 || Number(u.port) > 65535)) return 'port out of range';
  return undefined;
}

export const RuleSourceSpec = z.strictObject({
  name: Name.describe('the source name (shown as the origin of its rules)'),
  url: z
    .string()
    .max(2048)
    .regex(RULE_SOURCE_URL_RE, { error: 'must be an https:// URL or a file:/// URL of an absolute path, with URL characters only' })
    .superRefine((url, ctx) => {
      const p = ruleSourceUrlProblem(url);
      if (p && RULE_SOURCE_URL_RE.test(url)) ctx.addIssue({ code: 'custom', message: p });
    })
    .describe('a rules tarball (.tar.gz, .zip) or a .rules file, as an https URL or a file URL of an absolute path'),
});

export const Ids = z.strictObject({
  enabled: z.boolean().default(false),
  mode: z.enum(['ids', 'ips']).default('ids'),
  interfaces: z.array(Name).max(64).default([]),
  failOpen: z.boolean().default(true),
  ruleFiles: z.array(z.string().max(4096)).max(256).default([]),
  localRules: z.array(z.string().max(8192)).max(10_000).default([]),
  sources: z
    .array(RuleSourceSpec)
    .max(64)
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((s, i) => {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate source name "${s.name}"` });
        seen.add(s.name);
      });
    })
    .default([])
    .describe('rule sources fetched by `rampart ids update` (suricata-update); their rules join ruleFiles and localRules'),
  sids: z
    .strictObject({
      enable: z.array(Sid).default([]),
      disable: z.array(Sid).default([]),
      drop: z.array(Sid).default([]),
    })
    .default({ enable: [], disable: [], drop: [] }),
  suppress: z
    .array(z.strictObject({ sid: Sid, track: z.enum(['by_src', 'by_dst', 'by_either']).optional(), ip: z.array(AddressRef).optional() }))
    .default([]),
  thresholds: z
    .array(
      z.strictObject({
        sid: Sid,
        type: z.enum(['limit', 'threshold', 'both']),
        track: z.enum(['by_src', 'by_dst', 'by_rule', 'by_both']),
        count: z.number().int().min(1),
        seconds: z.number().int().min(1),
      }),
    )
    .default([]),
  autoBlock: z
    .strictObject({
      enabled: z.boolean().default(false),
      maxSeverity: Severity.default(1),
      ttlSeconds: z.number().int().min(1).max(31_536_000).default(3600),
      allowlist: z.array(AddressRef).default([]),
    })
    .optional(),
});

/** Community strings and USM user names: printable ASCII (no spaces or control characters). */
const SnmpSecret = z.string().regex(/^[\x21-\x7e]+$/, { error: 'printable ASCII without spaces' });
const SNMP_LISTEN_RE = /^(\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)$/;
const SNMP_HOST_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)$/;

export const Snmp = z
  .strictObject({
    enabled: z.boolean().default(false),
    listen: z
      .array(z.string().max(64).regex(SNMP_LISTEN_RE, { error: 'must be ADDRESS or ADDRESS:PORT ([IPv6]:PORT for IPv6)' }))
      .min(1)
      .max(16)
      .default(['0.0.0.0:161'])
      .describe('UDP addresses to listen on (default port 161), in the namespace the daemon runs in'),
    contact: z.string().max(255).optional().describe('sysContact (default: system.contact)'),
    location: z.string().max(255).optional().describe('sysLocation (default: system.location)'),
    communities: z
      .array(
        z.strictObject({
          name: SnmpSecret.min(1).max(64).describe('v2c community (a secret: never logged; "(secret)" in the API, see docs/config.md)'),
          sources: z.array(AddressRef).min(1).describe('networks allowed to use this community (addresses, CIDRs, address objects)'),
        }),
      )
      .max(16)
      .default([]),
    users: z
      .array(
        z.strictObject({
          name: SnmpSecret.min(1).max(32),
          auth: z.strictObject({
            protocol: z.enum(['sha256', 'sha512', 'sha224', 'sha384', 'sha']).default('sha256').describe('sha (SHA-1) only with allowSha1'),
            key: z.string().min(8).max(128).describe('a secret: "(secret)" in the API, see docs/config.md'),
          }),
          priv: z.strictObject({
            protocol: z.enum(['aes', 'aes256']).default('aes'),
            key: z.string().min(8).max(128).describe('a secret: "(secret)" in the API, see docs/config.md'),
          }),
        }),
      )
      .max(16)
      .default([])
      .describe('v3 USM users, all at authPriv (no MD5, no DES)'),
    allowSha1: z.boolean().default(false).describe('allow SHA-1 authentication (legacy managers)'),
    targets: z
      .array(
        z.strictObject({
          host: z.string().max(64).regex(SNMP_HOST_RE, { error: 'must be an IPv4 or IPv6 address' }),
          port: z.number().int().min(1).max(65535).default(162),
          version: z.enum(['v2c', 'v3']).default('v2c').describe('v2c: traps; v3: informs'),
          community: SnmpSecret.max(64).optional().describe('v2c trap community (a secret: "(secret)" in the API, see docs/config.md)'),
          user: SnmpSecret.max(32).optional().describe('a user from snmp.users'),
          minSeverity: z.number().int().min(1).max(4).default(2).describe('IDS alerts at this severity or more severe (1 most severe)'),
        }),
      )
      .max(16)
      .default([]),
    notifyRatePerMinute: z.number().int().min(1).max(600).default(30).describe('notifications per minute to each target at most'),
  })
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.users.forEach((u, i) => {
      if (names.has(u.name)) ctx.addIssue({ code: 'custom', path: ['users', i, 'name'], message: 'duplicate user name' });
      names.add(u.name);
      if (u.auth.protocol === 'sha' && !s.allowSha1) ctx.addIssue({ code: 'custom', path: ['users', i, 'auth', 'protocol'], message: 'SHA-1 needs snmp.allowSha1' });
    });
    s.targets.forEach((t, i) => {
      if (t.version === 'v2c' && !t.community) ctx.addIssue({ code: 'custom', path: ['targets', i, 'community'], message: 'a v2c target needs a community' });
      if (t.version === 'v3' && !t.user) ctx.addIssue({ code: 'custom', path: ['targets', i, 'user'], message: 'a v3 target needs a user' });
      if (t.version === 'v3' && t.user && !names.has(t.user)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'user'], message: 'not a user in snmp.users' });
    });
  });

export const Telemetry = z.strictObject({
  intervalSeconds: z.number().int().min(1).max(3600).default(10),
  retention: z
    .strictObject({
      rawHours: z.number().int().min(1).max(24 * 31).default(24),
      minuteDays: z.number().int().min(1).max(366).default(30),
      hourDays: z.number().int().min(1).max(3660).default(365),
    })
    .optional(),
  anomaly: z
    .strictObject({ enabled: z.boolean().default(true), sensitivity: z.number().min(1).max(20).default(4) })
    .optional(),
  /** Prometheus text exposition at GET /metrics on the API's address, for scrapers presenting this bearer token. */
  prometheus: z
    .strictObject({
      token: z
        .string()
        .min(16, { error: 'at least 16 characters' })
        .max(512)
        .regex(/^[\x21-\x7e]+$/, { error: 'printable ASCII without spaces' })
        .describe('a secret: "(secret)" in the API, see docs/config.md'),
    })
    .optional(),
});

export const Sync = z.strictObject({
  enabled: z.boolean().default(false),
  /** mqtts://HOST[:PORT] (default port 8883); required when enabled (the enrollment bundle names one too). */
  broker: z
    .string()
    .max(512)
    .regex(/^mqtts:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?\/?$/, { error: 'must be mqtts://HOST[:PORT]' })
    .optional(),
  /** Must match the enrollment bundle when given. */
  tenant: Name.optional(),
  deviceId: Name.optional(),
  /** Confirm window of a change from the MSSP: it reverts unless the broker is reachable again within it. */
  confirmSeconds: z.number().int().min(5).max(3600).default(120),
  /** Period of the telemetry summary (QoS 0, expiring). */
  telemetryIntervalSeconds: z.number().int().min(5).max(86_400).default(60),
  /** Outbox bounds while the MSSP is unreachable (telemetry, then low-severity alerts are dropped first). */
  outbox: z
    .strictObject({
      maxRows: z.number().int().min(100).max(10_000_000).default(1_000_000),
      maxMegabytes: z.number().int().min(1).max(16_384).default(512),
      maxAgeDays: z.number().int().min(1).max(365).default(30),
      /** Drain rate cap after an outage, alerts per second. */
      drainRatePerSecond: z.number().int().min(10).max(1_000_000).default(50_000),
    })
    .default(() => ({ maxRows: 1_000_000, maxMegabytes: 512, maxAgeDays: 30, drainRatePerSecond: 50_000 })),
});

export const Syslog = z.strictObject({
  targets: z
    .array(
      z.strictObject({
        host: z
          .string()
          .max(255)
          .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]+)$/, { error: 'must be a host name or an IP address' }),
        port: z.number().int().min(1).max(65535).default(514),
        proto: z.enum(['udp', 'tcp', 'tls']).default('udp'),
        facility: z.number().int().min(0).max(23).default(4),
        ca: z.string().max(65_536).optional().describe('PEM CA certificate(s) that sign a TLS collector (default: the system CAs)'),
      }),
    )
    .max(16)
    .default([]),
});

export const Route = z.strictObject({
  destination: z.string().max(64),
  gateway: z.string().max(64).optional(),
  interface: Name.optional(),
  metric: z.number().int().min(0).max(4_294_967_295).optional(),
});

/** A host name label for DHCP and DNS (RFC 1123): letters, digits and inner hyphens. */
export const HostLabel = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, { error: 'must be a host name label (letters, digits, inner hyphens; at most 63)' });

/** A DNS domain: labels joined by dots. */
export const DomainName = z
  .string()
  .max(253)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, { error: 'must be a domain name (dot-separated labels)' });

export const DhcpRange = z.strictObject({
  interface: Name.describe('The LAN interface (its name in interfaces[]) this range is served on'),
  start: z.string().max(64),
  end: z.string().max(64),
  leaseSeconds: z.number().int().min(120).max(31_536_000).default(3600),
});

export const StaticLease = z.strictObject({
  mac: z.string().regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, { error: 'must be a MAC address (six pairs of hex digits joined by ":")' }),
  address: z.string().max(64),
  hostname: HostLabel.optional(),
});

export const Network = z.strictObject({
  manage: z
    .boolean()
    .default(false)
    .describe('Rampart applies links, addresses, routes, router sysctls, the DHCP client and the LAN services; off: it touches none of them'),
  routerSysctls: z.boolean().default(true).describe('Forwarding on, strict reverse-path filter, ICMP redirects off (when managed)'),
  dhcpServer: z
    .strictObject({
      ranges: z.array(DhcpRange).max(64).default([]),
      staticLeases: z.array(StaticLease).max(4096).default([]),
    })
    .default({ ranges: [], staticLeases: [] }),
  ra: z
    .strictObject({ interfaces: z.array(Name).max(64).default([]) })
    .default({ interfaces: [] })
    .describe('Router advertisements (SLAAC) for the IPv6 prefixes of these interfaces'),
  dns: z
    .strictObject({
      enabled: z.boolean().default(false),
      interfaces: z.array(Name).max(64).optional().describe('Where the forwarder answers (default: the interfaces with DHCP ranges)'),
      upstream: z.array(z.string().max(64)).max(8).default([]),
      domain: DomainName.optional(),
      hosts: z.array(z.strictObject({ name: HostLabel, addresses: z.array(z.string().max(64)).min(1).max(8) })).max(4096).default([]),
      cacheSize: z.number().int().min(0).max(10_000).default(1000),
    })
    .default({ enabled: false, upstream: [], hosts: [], cacheSize: 1000 }),
});

export const System = z.strictObject({
  hostname: z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, { error: 'must be a host name (letters, digits, hyphens)' })
    .default('rampart'),
  contact: z.string().max(255).optional(),
  location: z.string().max(255).optional(),
});

export const Config = z.strictObject({
  schema: z.literal(1),
  system: System.default({ hostname: 'rampart' }),
  interfaces: z.array(Interface).max(256).default([]),
  zones: z.array(Zone).max(64).default([]),
  objects: z
    .strictObject({
      addresses: z.record(Name, z.array(AddressRef).max(2_000_000)).default({}),
      services: z.record(Name, z.array(InlineService).min(1).max(256)).default({}),
    })
    .default({ addresses: {}, services: {} }),
  firewall: Firewall.default(() => Firewall.parse({})),
  routes: z.array(Route).max(10_000).default([]),
  network: Network.default(() => Network.parse({})),
  ids: Ids.default(() => Ids.parse({})),
  snmp: Snmp.default(() => Snmp.parse({})),
  telemetry: Telemetry.default(() => Telemetry.parse({})),
  sync: Sync.default(() => Sync.parse({})),
  syslog: Syslog.default(() => Syslog.parse({})),
});

export type ConfigInput = z.input<typeof Config>;
export type Config = z.output<typeof Config>;
export type Rule = z.output<typeof Rule>;
export type InlineService = z.output<typeof InlineService>;
export type PortForward = z.output<typeof PortForward>;

/** The JSON Schema of the configuration document (what a user writes). */
export function configJsonSchema(): Record<string, unknown> {
  const { $schema: _dialect, ...schema } = z.toJSONSchema(Config, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  // The dialect is JSON Schema draft 2020-12; its identifier URL is left out so the file names no remote host.
  return { title: 'Rampart configuration document', description: 'JSON Schema (draft 2020-12) of the Rampart configuration document', ...schema };
}
