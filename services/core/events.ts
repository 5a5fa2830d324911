/** A small typed event bus; each listener is isolated, so one that throws cannot break the others. */
import type { Logger } from './log.ts';
import type { AnomalyEvent } from '../telemetry/anomaly.ts';
import type { AlertRecord } from './alerts.ts';

export interface EventMap {
  config: { type: 'applied' | 'confirmed' | 'reverted'; version: number; state?: string; back?: number; reason?: string };
  block: { type: 'added' | 'removed' | 'expired'; addresses: string[]; reason?: string; source?: string };
  /** A telemetry anomaly opened (no `end`) or closed. */
  anomaly: { type: 'opened' | 'closed' } & AnomalyEvent;
  /** Alerts (IDS and anomalies) newly stored in the alert store, in seq order. */
  alert: AlertRecord[];
  /** Sync channel state changes (connected, lost...). */
  sync: { state: string; detail?: string };
}

type Listener<T> = (payload: T) => void;

export class EventBus {
  private listeners = new Map<keyof EventMap, Set<Listener<any>>>();

  constructor(private readonly log?: Logger) {}

  on<K extends keyof EventMap>(type: K, fn: Listener<EventMap[K]>): () => void {
    const set = this.listeners.get(type) ?? new Set();
    set.add(fn);
    this.listeners.set(type, set);
    return () => set.delete(fn);
  }

  emit<K extends keyof EventMap>(type: K, payload: EventMap[K]): void {
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        fn(payload);
      } catch (err) {
        this.log?.error({ err: String(err), event: type }, 'event listener failed');
      }
    }
  }
}
