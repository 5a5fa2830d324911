/**
 * Live updates: one EventSource on /api/v1/events (the session cookie goes along, same origin). The daemon sends
 * `ready`, then `config` (applied / confirmed / reverted), `block` (added / removed / expired) and, when the IDS is
 * there, `alert` events, each with JSON data. The browser reconnects by itself; after a hard failure (the session
 * ended: 401) we retry with a growing delay, and stop when closed.
 */
import { API } from './api.ts';

export type LiveEvent = { type: string; data: any };
type Listener = (e: LiveEvent) => void;

const KINDS = ['ready', 'config', 'block', 'alert', 'sync', 'anomaly'];

export class LiveEvents {
  private source?: EventSource;
  private listeners = new Set<Listener>();
  private retry = 1000;
  private timer?: ReturnType<typeof setTimeout>;
  private closed = true;
  connected = false;

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  open(): void {
    if (!this.closed) return;
    this.closed = false;
    this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = undefined;
    this.connected = false;
  }

  private emit(e: LiveEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        console.warn('event listener failed', err);
      }
    }
  }

  private connect(): void {
    if (this.closed) return;
    const es = new EventSource(`${API}/events`, { withCredentials: false });
    this.source = es;
    for (const kind of KINDS) {
      es.addEventListener(kind, (ev) => {
        let data: unknown = undefined;
        try {
          data = JSON.parse((ev as MessageEvent).data);
        } catch {
          data = undefined;
        }
        if (kind === 'ready') {
          this.connected = true;
          this.retry = 1000;
        }
        this.emit({ type: kind, data });
      });
    }
    es.onerror = () => {
      this.connected = false;
      this.emit({ type: 'disconnected', data: undefined });
      if (es.readyState === EventSource.CLOSED) {
        this.source = undefined;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.connect(), this.retry);
        this.retry = Math.min(this.retry * 2, 30_000);
      }
    };
  }
}

export const live = new LiveEvents();
