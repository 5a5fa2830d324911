/**
 * sync-fleet: 1,000 simulated appliances (scripts/fleet.ts: the real sync module, own certificate and MQTT
 * connection each, no kernel) on one Mosquitto. A signed push to all → all report `applied` (target: within 30 s);
 * then a broker restart, whose reconnect storm the jittered backoff spreads (the connect-rate curve is reported).
 * Baseline, same run: the same push to a fleet of one.
 */
import { runFleet } from '../fleet.ts';
import type { Result } from './lib.ts';
import type { BenchContext } from './run.ts';

const DEVICES = Number(process.env.SYNC_FLEET_DEVICES ?? 1000);
const TARGET = { maxValue: 30 };

export async function syncFleetBench(ctx: BenchContext): Promise<Result> {
  const one = await runFleet(1, (m) => ctx.progress(`fleet of 1: ${m}`));
  const fleet = await runFleet(DEVICES, (m) => ctx.progress(`fleet of ${DEVICES}: ${m}`));
  const value = fleet.applied === DEVICES ? fleet.pushToAllAppliedSeconds : null;
  const baseline = one.pushToAllAppliedSeconds;
  return {
    name: 'sync-fleet',
    value,
    baseline,
    ratio: value !== null && baseline ? value / baseline : null,
    target: TARGET,
    pass: value !== null && value <= TARGET.maxValue,
    unit: 's',
    details: {
      devices: DEVICES,
      applied: fleet.applied,
      enrollSeconds: fleet.enrollSeconds,
      connectSeconds: fleet.connectSeconds,
      reconnectAllSeconds: fleet.reconnect.seconds,
      reconnectPeakPer250ms: fleet.reconnect.peakPer250ms,
      reconnectCurvePer250ms: fleet.reconnect.curve.map((c) => c.connects),
      rssMb: Math.round(fleet.rssMb),
    },
  };
}
