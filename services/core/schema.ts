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
  dhcp: z.boolean().optional(),
  slaac: z.boolean().optional(),
  mtu: z.number().int().min(576).max(65535).optional(),
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

export const Ids = z.strictObject({
  enabled: z.boolean().default(false),
  mode: z.enum(['ids', 'ips']).default('ids'),
  interfaces: z.array(Name).max(64).default([]),
  failOpen: z.boolean().default(true),
  ruleFiles: z.array(z.string().max(4096)).max(256).default([]),
  localRules: z.array(z.string().max(8192)).max(10_000).default([]),
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

export const Snmp = z.strictObject({
  enabled: z.boolean().default(false),
  listen: z.array(z.string().max(64)).max(16).default(['0.0.0.0:161']),
  contact: z.string().max(255).optional(),
  location: z.string().max(255).optional(),
  communities: z
    .array(z.strictObject({ name: z.string().min(1).max(64), sources: z.array(AddressRef).default([]) }))
    .default([]),
  users: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(32),
        authProtocol: z.enum(['sha', 'sha224', 'sha256', 'sha384', 'sha512']).default('sha256'),
        authKey: z.string().min(8).max(128),
        privProtocol: z.enum(['aes', 'aes256']).default('aes'),
        privKey: z.string().min(8).max(128).optional(),
      }),
    )
    .default([]),
  targets: z
    .array(
      z.strictObject({
        host: z.string().max(64),
        port: z.number().int().min(1).max(65535).default(162),
        version: z.enum(['v2c', 'v3']).default('v2c'),
        community: z.string().max(64).optional(),
        user: z.string().max(32).optional(),
      }),
    )
    .default([]),
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
});

export const Sync = z.strictObject({
  enabled: z.boolean().default(false),
  broker: z.string().max(512).optional(),
  tenant: Name.optional(),
  deviceId: Name.optional(),
  confirmSeconds: z.number().int().min(10).max(3600).default(120),
});

export const Syslog = z.strictObject({
  targets: z
    .array(
      z.strictObject({
        host: z.string().max(255),
        port: z.number().int().min(1).max(65535).default(514),
        proto: z.enum(['udp', 'tcp', 'tls']).default('udp'),
        facility: z.number().int().min(0).max(23).default(4),
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
