/** GET /alerts (SPEC §4), GET /ids/status, GET /ids/rules, POST /ids/reload. */
import { z } from 'zod';
import type { AlertQuery, AlertRecord } from '../../core/alerts.ts';
import { RampartError, type Problem } from '../../core/errors.ts';
import type { ReloadResult, UpdateResult } from '../../ids/service.ts';
import type { RuleInfo } from '../../ids/rules.ts';
import type { AlertGroup } from '../../ids/correlate.ts';
import { EmptyRequest } from '../schemas.ts';
import type { Router } from './define.ts';

/** What these routes need from the daemon. */
export interface IdsApi {
  alerts(q: AlertQuery): AlertRecord[];
  groups(q: { since?: number; windowMs: number; limit?: number }): AlertGroup[];
  status(): Record<string, unknown>;
  rules(): RuleInfo[];
  reload(): Promise<ReloadResult>;
  /** Fetch the rule sources with suricata-update and reload (absent: the route answers 503). */
  update?(): Promise<UpdateResult>;
}

const Instant = z
  .union([z.string().regex(/^\d{1,15}$/, 'must be epoch milliseconds'), z.iso.datetime({ offset: true })])
  .describe('epoch milliseconds or an ISO 8601 date-time');

export const AlertsQuery = z.strictObject({
  since: Instant.optional().describe('alerts at or after this time'),
  until: Instant.optional(),
  severity: z.string().regex(/^[1-4]$/, 'must be 1, 2, 3 or 4').optional().describe('at least this severe (1 most severe)'),
  kind: z.enum(['ids', 'anomaly']).optional(),
  afterSeq: z.string().regex(/^\d{1,15}$/, 'must be a whole number').optional().describe('only alerts stored after this seq, oldest first'),
  limit: z.string().regex(/^\d{1,5}$/, 'must be a whole number').optional().describe('default 100, at most 10000'),
});

const AlertRec = z
  .object({
    id: z.string(),
    seq: z.number(),
    kind: z.enum(['ids', 'anomaly']),
    at: z.number().describe('epoch milliseconds of the event'),
    severity: z.number(),
    signature: z.string(),
    sid: z.number().optional(),
    category: z.string().optional(),
    src: z.string().optional(),
    dst: z.string().optional(),
    proto: z.string().optional(),
    sport: z.number().optional(),
    dport: z.number().optional(),
    action: z.string().optional(),
    detail: z.unknown().optional().describe('the original record (EVE event)'),
    firewall: z
      .object({ chain: z.string(), verdict: z.string(), decidedBy: z.string(), rule: z.string().optional() })
      .optional()
      .describe('the firewall rule of the running configuration that lets this flow in'),
  })
  .passthrough();

const Status = z.record(z.string(), z.unknown());
const Rule = z.object({ sid: z.number(), msg: z.string(), action: z.string(), enabled: z.boolean(), origin: z.string(), classtype: z.string().optional(), priority: z.number().optional() });
const Reload = z.object({
  ok: z.boolean(),
  action: z.string(),
  rulesLoaded: z.number().optional(),
  rulesFailed: z.number().optional(),
  errors: z.array(z.object({ line: z.number(), origin: z.string(), message: z.string() })).optional(),
  message: z.string().optional(),
});
const Update = Reload.extend({ sources: z.array(z.object({ name: z.string(), rules: z.number().describe('rules in the source, enabled or not') })) });

function instant(v: unknown, path: string, problems: Problem[]): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    if (/^\d{1,15}$/.test(v)) return Number(v);
    const t = Date.parse(v);
    if (Number.isFinite(t) && /^\d{4}-\d{2}-\d{2}/.test(v)) return t;
  }
  problems.push({ path, message: 'must be epoch milliseconds or an ISO 8601 date-time' });
  return undefined;
}

function whole(v: unknown, path: string, problems: Problem[], min: number, max: number): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
  if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return n;
  problems.push({ path, message: `must be a whole number from ${min} to ${max}` });
  return undefined;
}

export const GroupsQuery = z.strictObject({
  since: Instant.optional(),
  window: z.string().regex(/^\d{1,7}$/, 'must be seconds').optional().describe('window length in seconds (default 300)'),
  limit: z.string().regex(/^\d{1,5}$/, 'must be a whole number').optional(),
});
const Group = z.object({ sid: z.number().nullable(), signature: z.string(), src: z.string().nullable(), severity: z.number(), count: z.number(), first: z.number(), last: z.number(), window: z.number() });

/** The grouping query (window in seconds, default 300). */
export function parseGroupQuery(p: Record<string, unknown>): { since?: number; windowMs: number; limit?: number } {
  const problems: Problem[] = [];
  const since = instant(p.since, '/since', problems);
  const window = whole(p.window, '/window', problems, 1, 31 * 24 * 3600);
  const limit = whole(p.limit, '/limit', problems, 1, 10_000);
  if (problems.length) throw RampartError.invalid(problems, 'invalid alert group query');
  return { ...(since !== undefined ? { since } : {}), windowMs: (window ?? 300) * 1000, ...(limit !== undefined ? { limit } : {}) };
}

/** The alert query of the API and the control socket (strings or numbers), checked. */
export function parseAlertQuery(p: Record<string, unknown>): AlertQuery {
  const problems: Problem[] = [];
  const q: AlertQuery = {};
  const since = instant(p.since, '/since', problems);
  const until = instant(p.until, '/until', problems);
  const severity = whole(p.severity, '/severity', problems, 1, 4);
  const limit = whole(p.limit, '/limit', problems, 1, 10_000);
  const afterSeq = whole(p.afterSeq, '/afterSeq', problems, 0, Number.MAX_SAFE_INTEGER);
  if (p.kind !== undefined && p.kind !== 'ids' && p.kind !== 'anomaly') problems.push({ path: '/kind', message: 'must be ids or anomaly' });
  if (problems.length) throw RampartError.invalid(problems, 'invalid alert query');
  if (since !== undefined) q.since = since;
  if (until !== undefined) q.until = until;
  if (severity !== undefined) q.severity = severity;
  if (limit !== undefined) q.limit = limit;
  if (afterSeq !== undefined) q.afterSeq = afterSeq;
  if (p.kind === 'ids' || p.kind === 'anomaly') q.kind = p.kind;
  return q;
}

/** A reload that did not take: an error carrying the failed lines (or the config problems) as problems. */
export function reloadError(r: ReloadResult): RampartError {
  const problems = r.problems?.length ? r.problems : (r.errors ?? []).map((e) => ({ path: e.origin.startsWith('localRules/') ? `/ids/${e.origin}` : '/ids/ruleFiles', message: `rules file line ${e.line} (${e.origin}): ${e.message}` }));
  return new RampartError('invalid_input', r.message ?? 'the IDS rules were not loaded', problems);
}

export function idsRoutes(r: Router, ids: IdsApi | undefined): void {
  const need = (): IdsApi => {
    if (!ids) throw new RampartError('unavailable', 'the IDS is not part of this server');
    return ids;
  };
  r.add({
    method: 'get',
    path: '/alerts',
    tag: 'ids',
    summary: 'IDS alerts and telemetry anomalies, newest first (oldest first with afterSeq)',
    need: 'read',
    query: AlertsQuery,
    response: z.array(AlertRec),
    handler: ({ query }) => need().alerts(parseAlertQuery(query)),
  });
  r.add({
    method: 'get',
    path: '/alerts/groups',
    tag: 'ids',
    summary: 'Alerts grouped by signature and source within time windows, most recent first',
    need: 'read',
    query: GroupsQuery,
    response: z.array(Group),
    handler: ({ query }) => need().groups(parseGroupQuery(query)),
  });
  r.add({
    method: 'get',
    path: '/ids/status',
    tag: 'ids',
    summary: 'Suricata state: engine, rules loaded, last reload, EVE ingest, auto-block, inline queue',
    need: 'read',
    response: Status,
    handler: () => need().status(),
  });
  r.add({
    method: 'get',
    path: '/ids/rules',
    tag: 'ids',
    summary: 'The merged rule set: SID, message, action, enabled, where it comes from',
    need: 'read',
    response: z.array(Rule),
    handler: () => need().rules(),
  });
  r.add({
    method: 'post',
    path: '/ids/reload',
    tag: 'ids',
    summary: 'Re-read the rule files and reload the rules live (checked with suricata -T first; a broken rule keeps the old rules)',
    need: 'operate',
    body: EmptyRequest,
    response: Reload,
    action: 'ids.reload',
    errors: [422, 503],
    handler: async ({ audit }) => {
      audit.target = 'rules';
      const res = await need().reload();
      if (!res.ok) throw reloadError(res);
      audit.detail = `${res.action}, ${res.rulesLoaded ?? '?'} rules loaded`;
      return res;
    },
  });
  r.add({
    method: 'post',
    path: '/ids/update',
    tag: 'ids',
    summary: 'Fetch the rule sources (ids.sources) with suricata-update, check the rule set with suricata -T and reload it live',
    description:
      'A source that cannot be fetched or holds no rules, or a rule Suricata refuses, keeps the running rules (422 with a problem per source, /ids/sources/N); 503 when suricata-update is not installed or the IDS is off.',
    need: 'admin',
    body: EmptyRequest,
    response: Update,
    action: 'ids.update',
    errors: [422, 503],
    handler: async ({ audit }) => {
      audit.target = 'sources';
      const api = need();
      if (!api.update) throw new RampartError('unavailable', 'rule updates are not part of this server');
      const res = await api.update();
      audit.detail = `${res.sources.map((s) => `${s.name}: ${s.rules}`).join(', ')}; ${res.action}, ${res.rulesLoaded ?? '?'} rules loaded`;
      return res;
    },
  });
}
