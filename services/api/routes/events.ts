/** GET /events: Server-Sent Events from the daemon's event bus (config changes, blocks, alerts, anomalies, sync state). */
import { streamSSE } from 'hono/streaming';
import type { EventBus, EventMap } from '../../core/events.ts';
import type { Auth } from '../auth.ts';
import { EventStream } from '../schemas.ts';
import type { Router } from './define.ts';

/** A block event names at most this many addresses (bulk blocks can be 100,000s); `count` has the total. */
const MAX_ADDRESSES = 100;
/** An alert event carries at most this many of its batch's newest alerts (without their EVE detail); `count` has the total. */
const MAX_ALERTS = 50;
/** A client that falls this many events behind is disconnected (it reconnects and reads state afresh). */
const MAX_BACKLOG = 1000;

export function eventRoutes(r: Router, deps: { auth: Auth; events: EventBus; heartbeatMs?: number }): void {
  const { auth, events } = deps;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;

  r.add({
    method: 'get',
    path: '/events',
    tag: 'events',
    summary: 'Server-Sent Events: `ready` once, then `config`, `block`, `alert`, `anomaly` and `sync` events with JSON data',
    description: 'The stream ends when the session ends (logout, expiry). A `: keep-alive` comment is sent periodically.',
    need: 'read',
    stream: true,
    response: EventStream,
    handler: ({ c, sessionId }) => {
      c.header('Cache-Control', 'no-store');
      c.header('X-Accel-Buffering', 'no');
      return streamSSE(c, async (stream) => {
        let backlog = 0;
        let done!: () => void;
        const finished = new Promise<void>((resolve) => (done = resolve));
        const send = (event: string, data: unknown) => {
          if (stream.closed || stream.aborted) return;
          if (++backlog > MAX_BACKLOG) {
            done();
            return;
          }
          stream
            .writeSSE({ event, data: JSON.stringify(data) })
            .then(() => void backlog--)
            .catch(() => done());
        };
        const offs = [
          events.on('config', (p: EventMap['config']) => send('config', p)),
          events.on('block', (p: EventMap['block']) =>
            send('block', { ...p, addresses: p.addresses.slice(0, MAX_ADDRESSES), count: p.addresses.length }),
          ),
          events.on('alert', (batch: EventMap['alert']) =>
            send('alert', { count: batch.length, alerts: batch.slice(-MAX_ALERTS).map(({ detail: _detail, ...a }) => a) }),
          ),
          events.on('anomaly', (p: EventMap['anomaly']) => send('anomaly', p)),
          events.on('sync', (p: EventMap['sync']) => send('sync', p)),
        ];
        const timer = setInterval(() => {
          // An open stream is not activity: the session still ends after its idle time.
          if (!auth.session(sessionId, { touch: false })) return done();
          if (backlog === 0) stream.write(': keep-alive\n\n').catch(() => done());
        }, heartbeatMs);
        stream.onAbort(() => done());
        try {
          send('ready', {});
          await finished;
        } finally {
          clearInterval(timer);
          for (const off of offs) off();
        }
      });
    },
  });
}
