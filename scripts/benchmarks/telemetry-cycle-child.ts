/**
 * The measuring process of telemetry-cycle (see telemetryCycleBench): runs the measurement with the given number of
 * runs, progress on stderr, the result as JSON on stdout.
 */
import { measureCycle } from './telemetry.ts';

const runs = Number(process.argv[2] ?? 10);
const result = await measureCycle({ runs, progress: (msg) => process.stderr.write(`  [telemetry-cycle] ${msg}\n`) });
process.stdout.write(JSON.stringify(result));
