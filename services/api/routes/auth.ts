/** POST /auth/login, POST /auth/logout, GET /auth/me, POST /auth/password. */
import { deleteCookie, setCookie } from 'hono/cookie';
import type { Context } from 'hono';
import { RampartError } from '../../core/errors.ts';
import type { Auth } from '../auth.ts';
import { EmptyRequest, LoginRequest, Ok, PasswordChangeRequest, Session } from '../schemas.ts';
import { SESSION_COOKIE, type Router } from './define.ts';

export function authRoutes(r: Router, deps: { auth: Auth; tls: boolean }): void {
  const { auth, tls } = deps;
  const setSession = (c: Context, id: string) => setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: 'Strict', path: '/', secure: tls });

  r.add({
    method: 'post',
    path: '/auth/login',
    tag: 'auth',
    summary: 'Log in: sets the session cookie (a new session id every time; the one sent along is ended)',
    need: 'public',
    body: LoginRequest,
    response: Session,
    action: 'auth.login',
    errors: [401, 429],
    handler: async ({ c, body, source, sessionId, audit }) => {
      audit.username = body.username;
      audit.target = body.username;
      // From here on Auth records the outcome (ok, denied, throttled) itself, flood-limited.
      audit.recorded = true;
      let s;
      try {
        s = await auth.login(body.username, body.password, source, sessionId);
      } catch (err) {
        const code = RampartError.from(err).code;
        audit.recorded = code === 'unauthorized' || code === 'throttled';
        throw err;
      }
      setSession(c, s.id);
      return s;
    },
  });

  r.add({
    method: 'post',
    path: '/auth/logout',
    tag: 'auth',
    summary: 'End the session',
    need: 'session',
    body: EmptyRequest,
    response: Ok,
    action: 'auth.logout',
    handler: ({ c, sessionId }) => {
      auth.logout(sessionId!);
      deleteCookie(c, SESSION_COOKIE, { path: '/', secure: tls, httpOnly: true, sameSite: 'Strict' });
      return { ok: true };
    },
  });

  r.add({
    method: 'get',
    path: '/auth/me',
    tag: 'auth',
    summary: 'The session: user name, role, whether the password must be changed',
    need: 'session',
    response: Session,
    handler: ({ session }) => session,
  });

  r.add({
    method: 'post',
    path: '/auth/password',
    tag: 'auth',
    summary: "Change the caller's password (required first when mustChange); the session id is renewed",
    need: 'session',
    body: PasswordChangeRequest,
    response: Session,
    action: 'auth.password',
    handler: async ({ c, body, session, sessionId, source, audit }) => {
      audit.target = session!.username;
      // Wrong current password: 422 at /current (not 401, which would read as "logged out"); other sessions end.
      await auth.changePassword(session!.username, body.current, body.next, sessionId);
      // A fresh session id for the changed credentials (the old one is ended).
      const s = await auth.login(session!.username, body.next, source, sessionId);
      setSession(c, s.id);
      return s;
    },
  });
}
