/** GET /status, the configuration and its journal: GET/POST /config, versions, validate, confirm, rollback. */
import { RampartError } from '../../core/errors.ts';
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
    need: 'read',
    response: VersionWithDocument,
    errors: [404],
    handler: () => {
      const running = backend.running();
      if (!running) throw new RampartError('not_found', 'no configuration has been applied yet');
      return running;
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
    need: 'read',
    params: VersionParam,
    response: VersionWithDocument,
    errors: [404],
    handler: ({ params }) => {
      const rec = backend.version(params.v);
      if (!rec) throw new RampartError('not_found', `no version ${params.v}`);
      return rec;
    },
  });

  r.add({
    method: 'post',
    path: '/config/validate',
    tag: 'config',
    summary: 'Validate a document (nothing changes); problems as `rampart validate` prints them, pointers into the document',
    need: 'read',
    body: ValidateRequest,
    bodyLimit: CONFIG_BODY_LIMIT,
    response: ValidateResult,
    handler: ({ body }) => backend.validate(body.config),
  });

  r.add({
    method: 'post',
    path: '/config',
    tag: 'config',
    summary: 'Apply a configuration atomically and record it as a new version',
    description:
      'Invalid documents are refused with 422 and the problems (JSON pointers into the request body, so /config/...); nothing is applied. ' +
      'With confirmSeconds the change reverts by itself unless POST /config/confirm arrives in time. 409 while another change waits for confirmation.',
    need: 'operate',
    body: ApplyRequest,
    bodyLimit: CONFIG_BODY_LIMIT,
    response: VersionMeta,
    action: 'config.apply',
    errors: [409],
    handler: async ({ body, session, audit }) => {
      let rec;
      try {
        rec = await backend.apply({ document: body.config, author: session!.username, message: body.message, confirmSeconds: body.confirmSeconds });
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
