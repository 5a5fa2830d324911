/**
 * `GET /api/v1/status` is what dashboards and monitoring poll, often and concurrently. Its plain case is answered
 * straight from node's request, before the hono app: the exact path without a query, a session cookie of a live
 * session that may read and has no password change pending. Nothing else is decided here: any other request, and
 * any session the plain case does not cover (none, expired, forced to change its password), goes to the app, which
 * answers it as for every route. The answer is byte for byte the app's: the same checked JSON (kept with the cached
 * status object), the same security headers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Status } from './schemas.ts';
import { can, type Auth } from './auth.ts';
import { securityHeaders } from './app.ts';
import { API_PREFIX } from './openapi.ts';
import { immutableJson, sessionCookie } from './routes/define.ts';

export type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export function withFastStatus(app: Listener, deps: { auth: Auth; status: () => Promise<Record<string, unknown>>; tls: boolean }): Listener {
  const path = `${API_PREFIX}/status`;
  // Raw header pairs, flat, as writeHead takes them without converting an object each time.
  const headers: string[] = ['Content-Type', 'application/json', ...securityHeaders(deps.tls).flat(), 'Cache-Control', 'no-store'];
  return (req, res) => {
    if (req.method !== 'GET' || req.url !== path) return app(req, res);
    const session = deps.auth.session(sessionCookie(req.headers.cookie));
    if (!session || session.mustChange || !can(session.role, 'read')) return app(req, res);
    deps.status().then(
      (status) => {
        let body: string;
        try {
          body = immutableJson(Status, status);
        } catch {
          return app(req, res); // the app reports the failure the usual way
        }
        res.writeHead(200, [...headers, 'Content-Length', String(Buffer.byteLength(body))]);
        res.end(body);
      },
      () => app(req, res),
    );
  };
}
