/**
 * The kernel side of the network: reads links, addresses and routes with `ip -j` in the managed namespace, runs the
 * planner's operations one `ip` command at a time (argv, never a shell), and sets the router sysctls.
 */
import { RampartError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Host } from '../host/exec.ts';
import type { IpLink, IpRoute, NetOp, RunningState } from './plan.ts';

function parseJson<T>(text: string, what: string): T {
  try {
    const v = JSON.parse(text.trim() || '[]');
    if (!Array.isArray(v)) throw new Error('not a list');
    return v as T;
  } catch (err) {
    throw new RampartError('system', `cannot read ${what}: ${(err as Error).message}`);
  }
}

export async function readRunningState(host: Host): Promise<RunningState> {
  const [links, r4, r6] = await Promise.all([
    host.run('ip', ['-j', 'addr', 'show']),
    host.run('ip', ['-j', '-4', 'route', 'show', 'table', 'main']),
    host.run('ip', ['-j', '-6', 'route', 'show', 'table', 'main']),
  ]);
  return {
    links: parseJson<IpLink[]>(links.stdout, 'links'),
    routes4: parseJson<IpRoute[]>(r4.stdout, 'IPv4 routes'),
    routes6: parseJson<IpRoute[]>(r6.stdout, 'IPv6 routes'),
  };
}

/** Run the operations in order; the first failure stops and reports which one. */
export async function runOps(host: Host, ops: readonly NetOp[], log: Logger): Promise<void> {
  for (const op of ops) {
    const res = await host.run('ip', op.argv, { allowFailure: true, timeoutMs: 15_000 });
    if (res.exitCode !== 0) {
      throw new RampartError('apply_failed', `ip ${op.argv.join(' ')} failed: ${res.stderr.trim().slice(0, 300)}`);
    }
    log.info({ op: op.argv.join(' ') }, op.why);
  }
}

/** Current values of sysctls (slash-separated keys; a missing key reads as undefined). */
export async function readSysctls(host: Host, keys: readonly string[]): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  if (!keys.length) return out;
  // One process: `sysctl -e` leaves unknown keys out; each line is "key = value" with the key written with dots.
  const res = await host.run('sysctl', ['-e', ...keys], { allowFailure: true });
  const byDots = new Map(keys.map((k) => [k.replaceAll('/', '.'), k]));
  for (const line of res.stdout.split('\n')) {
    const m = /^(\S+) = (.*)$/.exec(line);
    if (!m) continue;
    const key = byDots.get(m[1]) ?? keys.find((k) => k === m[1]);
    if (key) out[key] = m[2];
  }
  return out;
}

export async function writeSysctls(host: Host, settings: readonly string[], log: Logger): Promise<void> {
  if (!settings.length) return;
  const res = await host.run('sysctl', ['-q', '-w', ...settings], { allowFailure: true });
  if (res.exitCode !== 0) throw new RampartError('apply_failed', `sysctl failed: ${res.stderr.trim().slice(0, 300)}`);
  log.info({ settings }, 'router sysctls set');
}
