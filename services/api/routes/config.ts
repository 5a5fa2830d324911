/**
 * GET /status, the configuration and its journal: GET/POST /config, versions, diff, validate, confirm, rollback.
 * Secrets (services/core/secrets.ts) are write-only for every role: documents go out with "(secret)" in their
 * place, and a document that comes in with "(secret)" keeps the running version's value there.
 */
import { z } from 'zod';
import { RampartError, type Problem } from '../../core/errors.ts';
import { SECRET_CHANGED_MARKER, SECRET_MARKER, SECRET_PATHS, redactForDiff, redactSecrets, restoreSecrets } from '../../core/secrets.ts';
import type { ApiBackend } from '../app.ts';
import {
  ApplyRequest,
  EmptyRequest,
  RollbackRequest,
  Status,
  ValidateRequest,
  ValidateResult,
  VersionList,
  VersionMeta,
  VersionParam,
  VersionsQuery,
  VersionWithDocument,
} from '../schemas.ts';
import type { Router } from './define.ts';

/** Configuration documents may be big (blocklists of 100,000s of entries). */
export const CONFIG_BODY_LIMIT = 32 * 1024 * 1024;

const SECRETS_OUT =
  `Secrets (${SECRET_PATHS.join(', ')}; \`*\` is any array index) read as "${SECRET_MARKER}" for every role: they are write-only.`;
const SECRETS_IN =
  `A secret given as "${SECRET_MARKER}" keeps the running version's value (array elements are matched as docs/config.md describes); ` +
  'one without a running value is a problem at its pointer ("secret not set: enter a value"). Any other value replaces the secret.';

const DiffQuery = z.strictObject({
  from: z.coerce.number().int().min(1).describe('the older version'),
  to: z.coerce.number().int().min(1).describe('the newer version'),
});
const VersionDiff = z.object({
  from: VersionWithDocument,
  to: VersionWithDocument,
  secretsChanged: z.array(z.string()).describe(`JSON pointers (into to.document) of the secrets that differ from their counterpart in from, shown as "${SECRET_CHANGED_MARKER}"`),
});

/** A journal entry with its document redacted. */
const redacted = <T extends { document: unknown }>(rec: T): T => ({ ...rec, document: redactSecrets(rec.document) });

export function configRoutes(r: Router, backend: ApiBackend): void {
  r.add({
    method: 'get',
    path: '/status',
    tag: 'status',
    summary: 'Running and pending versions, health of each subsystem, uptime',
    need: 'read',
    response: Status,
    immutableResult: true,
    handler: () => backend.status(),
  });

  r.add({
    method: 'get',
    path: '/config',
    tag: 'config',
    summary: 'The running configuration: its journal entry with the document',
    description: SECRETS_OUT,
    need: 'read',
    response: VersionWithDocument,
    errors: [404],
    handler: () => {
      const running = backend.running();
      if (!running) throw new RampartError('not_found', 'no configuration has been applied yet');
      return redacted(running);
    },
  });

  r.add({
    method: 'get',
    path: '/config/versions',
    tag: 'config',
    summary: 'The version journal, newest first (without documents)',
    need: 'read',
    query: VersionsQuery,
    response: VersionList,
    handler: ({ query }) => backend.versions(query.limit ?? 100),
  });

  r.add({
    method: 'get',
    path: '/config/versions/:v',
    tag: 'config',
    summary: 'One version of the journal, with its document',
    description: SECRETS_OUT,
    need: 'read',
    params: VersionParam,
    response: VersionWithDocument,
    errors: [404],
    handler: ({ params }) => {
      const rec = backend.version(params.v);
      if (!rec) throw new RampartError('not_found', `no version ${params.v}`);
      return redacted(rec);
    },
  });

  r.add({
    method: 'get',
    path: '/config/diff',
    tag: 'config',
    summary: 'Two versions of the journal with their documents, to compare; which secrets changed between them',
    description:
      `${SECRETS_OUT} In \`to\`, a secret that differs from its counterpart in \`from\` (or has none) reads as "${SECRET_CHANGED_MARKER}", ` +
      'so a line diff of the two documents shows the change without the value.',
    need: 'read',
    query: DiffQuery,
    response: VersionDiff,
    errors: [404],
    handler: ({ query }) => {
      const [a, b] = [query.from, query.to].map((v) => {
        const rec = backend.version(v);
        if (!rec) throw new RampartError('not_found', `no version ${v}`);
        return rec;
      });
      const d = redactForDiff(a.document, b.document);
      return { from: { ...a, document: d.from }, to: { ...b, document: d.to }, secretsChanged: d.changed };
    },
  });

  r.add({
    method: 'post',
    path: '/config/validate',
    tag: 'config',
    summary: 'Validate a document (nothing changes); problems as `rampart validate` prints them, pointers into the document',
    description: SECRETS_IN,
    need: 'read',
    body: ValidateRequest,
    bodyLimit: CONFIG_BODY_LIMIT,
    response: ValidateResult,
    handler: ({ body }) => {
      const { document, problems } = restoreSecrets(body.config, () => backend.running()?.document);
      const result = backend.validate(document);
      if (!problems.length) return result;
      // A marker left in place may fail the field's own rules too: the secret's problem says what to do.
      const at = new Set(problems.map((p) => p.path));
      return { ok: false, problems: [...problems, ...result.problems.filter((p: Problem) => !at.has(p.path))] };
    },
  });

  r.add({
    method: 'post',
    path: '/config',
    tag: 'config',
    summary: 'Apply a configuration atomically and record it as a new version',
    description:
      'Invalid documents are refused with 422 and the problems (JSON pointers into the request body, so /config/...); nothing is applied. ' +
      'With confirmSeconds the change reverts by itself unless POST /config/confirm arrives in time. 409 while another change waits for confirmation. ' +
      SECRETS_IN,
    need: 'operate',
    body: ApplyRequest,
    bodyLimit: CONFIG_BODY_LIMIT,
    response: VersionMeta,
    action: 'config.apply',
    errors: [409],
    handler: async ({ body, session, audit }) => {
      let rec;
      try {
        const { document, problems } = restoreSecrets(body.config, () => backend.running()?.document);
        if (problems.length) throw RampartError.invalid(problems, 'secrets not set');
        rec = await backend.apply({ document, author: session!.username, message: body.message, confirmSeconds: body.confirmSeconds });
      } catch (err) {
        // Problems point into the document; in this request it sits at /config.
        const e = RampartError.from(err);
        if (!e.problems.length) throw e;
        const moved = new RampartError(e.code, e.message, e.problems.map((p) => ({ ...p, path: '/config' + p.path })));
        moved.retryAfterSeconds = e.retryAfterSeconds;
        throw moved;
      }
      audit.target = `version ${rec.version}`;
      if (body.confirmSeconds) audit.detail = `pending confirmation within ${body.confirmSeconds} s`;
      return rec;
    },
  });

  r.add({
    method: 'post',
    path: '/config/confirm',
    tag: 'config',
    summary: 'Confirm the change that waits for confirmation',
    need: 'operate',
    body: EmptyRequest,
    response: VersionMeta,
    action: 'config.confirm',
    errors: [409],
    handler: async ({ audit }) => {
      const rec = await backend.confirm();
      audit.target = `version ${rec.version}`;
      return rec;
    },
  });

  r.add({
    method: 'post',
    path: '/config/rollback',
    tag: 'config',
    summary: 'Revert a pending change, or apply an earlier version again (default: the previous one)',
    need: 'operate',
    body: RollbackRequest,
    response: VersionMeta,
    action: 'config.rollback',
    errors: [404, 409],
    handler: async ({ body, session, audit }) => {
      audit.target = body.version === undefined ? 'previous' : `version ${body.version}`;
      const rec = await backend.rollback({ version: body.version, author: session!.username });
      audit.detail = `running version ${rec.version}`;
      return rec;
    },
  });
}
