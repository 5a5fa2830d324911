/** The app's shared state: the session, the daemon's status (refreshed on config events), routing and notices. */
import { get, type Session, type Status } from './api.ts';

export const app = $state({
  session: undefined as Session | undefined,
  status: undefined as Status | undefined,
  statusError: '' as string,
  path: location.pathname as string,
  /** A short message for everyone (aria-live). */
  notice: '' as string,
  now: Date.now() as number,
});

export const canOperate = () => app.session?.role === 'admin' || app.session?.role === 'operator';
export const isAdmin = () => app.session?.role === 'admin';

export function navigate(path: string, replace = false): void {
  if (path === app.path) return;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  app.path = path;
}

addEventListener('popstate', () => (app.path = location.pathname));

export async function refreshStatus(): Promise<void> {
  try {
    app.status = await get<Status>('/status');
    app.statusError = '';
  } catch (err) {
    app.statusError = (err as Error).message;
  }
}

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
export function notify(text: string): void {
  app.notice = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (app.notice = ''), 6000);
}

/** One clock for every countdown on the page. */
setInterval(() => (app.now = Date.now()), 1000);
