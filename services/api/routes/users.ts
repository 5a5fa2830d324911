/** User management (admin only) and the audit log: GET/POST /users, DELETE /users/{name}, GET /audit. */
import { RampartError } from '../../core/errors.ts';
import type { Auth } from '../auth.ts';
import type { AuditLog } from '../audit.ts';
import { AuditList, AuditQuery, CreateUserRequest, EmptyRequest, Ok, User, UserList, UserNameParam } from '../schemas.ts';
import type { Router } from './define.ts';

const instant = (v: string | undefined) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : Date.parse(v));

export function userRoutes(r: Router, deps: { auth: Auth; audit: AuditLog }): void {
  const { auth, audit: auditLog } = deps;

  r.add({
    method: 'get',
    path: '/users',
    tag: 'users',
    summary: 'Local users',
    need: 'admin',
    response: UserList,
    handler: () => auth.listUsers(),
  });

  r.add({
    method: 'post',
    path: '/users',
    tag: 'users',
    summary: 'Create a local user',
    need: 'admin',
    body: CreateUserRequest,
    response: User,
    status: 201,
    action: 'user.create',
    errors: [409],
    handler: async ({ body, audit }) => {
      audit.target = body.username;
      audit.detail = `role ${body.role}`;
      if (auth.getUser(body.username)) throw new RampartError('conflict', `user ${body.username} exists`);
      return auth.createUser(body.username, body.password, body.role, { mustChange: body.mustChange ?? false });
    },
  });

  r.add({
    method: 'delete',
    path: '/users/:name',
    tag: 'users',
    summary: 'Delete a local user (and end their sessions)',
    need: 'admin',
    params: UserNameParam,
    body: EmptyRequest,
    response: Ok,
    action: 'user.delete',
    errors: [404, 409],
    handler: ({ params, session }) => {
      if (params.name === session!.username) throw new RampartError('conflict', 'you cannot delete yourself');
      if (!auth.getUser(params.name)) throw new RampartError('not_found', `no user ${params.name}`);
      auth.deleteUser(params.name);
      return { ok: true as const };
    },
  });

  r.add({
    method: 'get',
    path: '/audit',
    tag: 'audit',
    summary: 'The audit log, newest first: logins and every change, with who, role, source address, target and result',
    need: 'operate',
    query: AuditQuery,
    response: AuditList,
    handler: ({ query }) =>
      auditLog.list({
        since: instant(query.since),
        until: instant(query.until),
        username: query.username,
        action: query.action,
        result: query.result,
        limit: query.limit,
      }),
  });
}
