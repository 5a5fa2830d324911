/** GET /telemetry (points of one metric), /telemetry/metrics (their names) and /stats (the live figures). */
import { parseTelemetryRequest } from '../../telemetry/service.ts';
import type { ApiBackend } from '../app.ts';
import { LiveStats, MetricList, TelemetryQuery, TelemetryResult } from '../schemas.ts';
import type { Router } from './define.ts';

export function telemetryRoutes(r: Router, backend: ApiBackend): void {
  r.add({
    method: 'get',
    path: '/telemetry',
    tag: 'telemetry',
    summary: 'Points (min / avg / max per step) of one metric; the resolution (raw, 1-minute, 1-hour) follows from range and step',
    need: 'read',
    query: TelemetryQuery,
    response: TelemetryResult,
    handler: ({ query }) => backend.telemetry(parseTelemetryRequest(query)),
  });

  r.add({
    method: 'get',
    path: '/telemetry/metrics',
    tag: 'telemetry',
    summary: 'The names of all metrics with a series',
    need: 'read',
    response: MetricList,
    handler: () => backend.telemetryMetrics(),
  });

  r.add({
    method: 'get',
    path: '/stats',
    tag: 'telemetry',
    summary: 'The live figures of the last telemetry sample (interfaces with rates, system, conntrack, daemon) and the per-rule counters',
    need: 'read',
    response: LiveStats,
    handler: () => backend.stats(),
  });
}
