/**
 * Request and response bodies of the local HTTP API (SPEC §4), as zod schemas. The routes validate what comes in and
 * what goes out with them, and the OpenAPI document (openapi.ts) is generated from the same schemas.
 *
 * Configuration documents travel as `ConfigDocument`: at run time an opaque JSON value (validateConfig checks it,
 * with JSON pointers into the document, the same problems `rampart validate` prints); in the OpenAPI document a
 * reference to the configuration schema of services/core/schema.ts.
 */
import { z } from 'zod';
import { parsePrefix } from '../core/net.ts';
import { METRIC_RE } from '../telemetry/series.ts';
import { DURATION_RE } from '../telemetry/service.ts';
import { PASSWORD_MAX, PASSWORD_MIN, USERNAME_RE } from './auth.ts';

/** A configuration document: opaque here, `#/components/schemas/Config` in the OpenAPI document. */
export const ConfigDocument = z.unknown().describe('a Rampart configuration document (see the Config schema)');

const Username = z.string().regex(USERNAME_RE, 'must start with a lower-case letter and have at most 32 of a-z 0-9 _ . -');
const Password = z.string().min(PASSWORD_MIN, `must have at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX, `must have at most ${PASSWORD_MAX} characters`);
export const Role = z.enum(['admin', 'operator', 'viewer']);

// ---- errors ----

export const Problem = z.object({ path: z.string().describe('JSON pointer into the input'), message: z.string() });
export const ErrorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.array(Problem) }) });

// ---- auth ----

export const LoginRequest = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
export const PasswordChangeRequest = z.strictObject({ current: z.string().min(1).max(1024), next: Password });
export const Session = z
  .object({
    username: z.string(),
    role: Role,
    mustChange: z.boolean().describe('the password must be changed before anything else is allowed'),
    createdAt: z.number().describe('epoch milliseconds'),
    lastSeen: z.number().describe('epoch milliseconds'),
  });
export const Ok = z.object({ ok: z.literal(true) });

// ---- users ----

export const User = z
  .object({ username: z.string(), role: Role, mustChange: z.boolean(), createdAt: z.number().describe('epoch milliseconds') });
export const UserList = z.array(User);
export const CreateUserRequest = z.strictObject({
  username: Username,
  password: Password,
  role: Role,
  mustChange: z.boolean().optional().describe('the user must change the password at first login (default false)'),
});
export const UserNameParam = z.object({ name: Username });

// ---- status ----

export const Status = z
  .object({
    version: z.number().nullable(),
    running: z.object({ version: z.number(), state: z.string(), appliedAt: z.string().optional(), hash: z.string() }).passthrough().nullable(),
    pending: z.object({ version: z.number(), confirmDeadline: z.string().optional() }).passthrough().nullable(),
    uptimeSeconds: z.number(),
    firewall: z.object({ state: z.string() }).passthrough(),
  })
  .passthrough();

// ---- configuration and journal ----

const VersionFields = {
  version: z.number().int(),
  createdAt: z.string(),
  author: z.string(),
  source: z.enum(['local', 'api', 'mssp']),
  message: z.string(),
  state: z.enum(['applied', 'pending_confirm', 'reverted', 'failed', 'superseded', 'rejected']),
  hash: z.string(),
  appliedAt: z.string().optional(),
  confirmDeadline: z.string().optional(),
  error: z.string().optional(),
};
export const VersionMeta = z.object(VersionFields);
export const VersionWithDocument = z.object({ ...VersionFields, document: ConfigDocument });
export const VersionList = z.array(VersionMeta);
export const VersionsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).optional() });
export const VersionParam = z.object({ v: z.coerce.number().int().min(1).describe('version number') });

export const ValidateRequest = z.strictObject({ config: ConfigDocument });
export const ValidateResult = z.object({ ok: z.boolean(), problems: z.array(Problem) });
export const ApplyRequest = z.strictObject({
  config: ConfigDocument,
  message: z.string().max(1024).optional(),
  confirmSeconds: z.number().int().min(1).max(86_400).optional().describe('revert by itself unless confirmed within this many seconds'),
});
export const RollbackRequest = z.strictObject({ version: z.number().int().min(1).optional().describe('default: the previous version') });
export const EmptyRequest = z.strictObject({});

// ---- firewall ----

const CounterValue = z.object({ packets: z.number(), bytes: z.number(), path: z.string().optional().describe('JSON pointer of the rule in the config') });
const CounterMap = z.record(z.string(), CounterValue);
export const Counters = z
  .object({
    rules: CounterMap.describe('by rule id'),
    portForwards: CounterMap.optional(),
    snat: CounterMap.optional(),
    blocklists: CounterMap.optional(),
    antiLockout: CounterValue.optional(),
    dynamicBlocks: z.object({ packets: z.number(), bytes: z.number() }).optional(),
  });

const Address = z
  .string()
  .max(64)
  .refine((a) => parsePrefix(a) !== undefined, 'not an IP address or CIDR');
export const Block = z
  .object({
    address: z.string(),
    family: z.union([z.literal(4), z.literal(6)]),
    expiresAt: z.number().optional().describe('epoch milliseconds; absent: permanent'),
    reason: z.string(),
    source: z.string(),
    createdAt: z.number(),
  });
export const BlockList = z.array(Block);
export const BlockRequest = z.strictObject({
  address: Address.describe('IPv4/IPv6 address or CIDR'),
  ttlSeconds: z.number().int().min(1).max(365 * 24 * 3600).optional(),
  reason: z.string().max(512).optional(),
});
export const BlockParam = z.object({ address: Address });
export const Removed = z.object({ removed: z.literal(true) });

// ---- audit ----

const Instant = z
  .union([z.string().regex(/^\d{1,15}$/, 'must be epoch milliseconds'), z.iso.datetime({ offset: true })])
  .describe('epoch milliseconds or an ISO 8601 date-time');
export const AuditQuery = z.strictObject({
  since: Instant.optional(),
  until: Instant.optional(),
  username: z.string().max(64).optional(),
  action: z.string().max(64).optional(),
  result: z.enum(['ok', 'denied', 'failed', 'throttled']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
export const AuditEntry = z
  .object({
    id: z.number(),
    at: z.number().describe('epoch milliseconds'),
    username: z.string().nullable(),
    role: z.string().nullable(),
    source: z.string(),
    action: z.string(),
    target: z.string(),
    result: z.enum(['ok', 'denied', 'failed', 'throttled']),
    detail: z.string(),
  });
export const AuditList = z.array(AuditEntry);

// ---- events ----

export const EventStream = z.string().describe('text/event-stream: events `config` and `block`, each with a JSON `data` line; comments as keep-alive');

// ---- telemetry ----

export const TelemetryQuery = z.strictObject({
  metric: z.string().min(1).max(200).regex(METRIC_RE, 'must be dotted words of A-Z a-z 0-9 _ : -').describe('e.g. if.lan0.rx_bytes_rate, sys.cpu'),
  from: Instant.optional().describe('epoch milliseconds or an ISO 8601 date-time; default: an hour before `to`'),
  to: Instant.optional().describe('epoch milliseconds or an ISO 8601 date-time; default: now'),
  step: z.string().regex(DURATION_RE, 'must be milliseconds, or a number with ms, s, m, h or d').optional().describe('bucket width, e.g. 10s, 1m, 1h (default: about 1000 points)'),
});
export const TelemetryResult = z.object({
  metric: z.string(),
  resolution: z.enum(['raw', '1m', '1h']),
  stepMs: z.number().describe('bucket width of the points (ms)'),
  points: z.array(z.object({ ts: z.number().describe('bucket start, epoch ms'), min: z.number(), avg: z.number(), max: z.number() })),
});
export const MetricList = z.array(z.string()).describe('every metric that has a series');
export const LiveStats = z
  .object({
    ts: z.number().nullable().describe('time of the last sample (epoch ms); null before the first'),
    interfaces: z.record(z.string(), z.record(z.string(), z.union([z.number(), z.boolean()]))).describe('per device: up, counters and their *_rate per second'),
    system: z.record(z.string(), z.number()).describe('cpu (%), mem_*_bytes, load1/5/15, uptime_seconds, disk_*_bytes'),
    conntrack: z.object({ count: z.number(), max: z.number() }).nullable(),
    daemon: z.record(z.string(), z.number()).describe('rss_bytes, heap_used_bytes, loop_lag_ms'),
    errors: z.array(z.string()).describe('what could not be read in the last sample'),
    ...Counters.shape,
    rules: Counters.shape.rules.optional(),
  })
  .describe('the live figures, and the per-rule counters as GET /firewall/counters has them');

export const CertificateInfoSchema = z
  .object({
    subject: z.string(),
    issuer: z.string(),
    validFrom: z.string(),
    validTo: z.string(),
    fingerprint256: z.string(),
    subjectAltName: z.string(),
  });

export const CertificateUpload = z
  .strictObject({
    cert: z.string().min(1).max(32 * 1024).describe('certificate (PEM; a chain may follow)'),
    key: z.string().min(1).max(16 * 1024).describe('private key (PEM)'),
  });
