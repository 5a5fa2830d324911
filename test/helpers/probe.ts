/**
 * Real packets through the lab: listeners and probes run as small Node processes inside a namespace
 * (test/helpers/probe-agent.mjs), so a test sees what the firewall does: accepted, rejected (RST / ICMP) or dropped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RampartError } from '../../services/core/errors.ts';
import { checkNetnsName, run } from '../../services/host/exec.ts';

const AGENT = fileURLToPath(new URL('./probe-agent.mjs', import.meta.url));

export type Proto = 'tcp' | 'udp';
export type ProbeStatus = 'open' | 'refused' | 'unreachable' | 'timeout';

export interface ProbeTarget {
  proto: Proto;
  host: string;
  port: number;
  /** How long to wait before calling it 'timeout' (dropped); default 1500 ms. */
  timeoutMs?: number;
}

export interface ProbeResult {
  status: ProbeStatus;
  /** What the server answered, e.g. `hello from 192.0.2.10\n` (the source address it saw). */
  text: string;
  /** The socket error code behind 'refused' / 'unreachable'. */
  error?: string;
}

export interface Server {
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** Start an echo listener inside `netns` (dual-stack on '::' by default); resolves once it is listening. */
export function startServer(netns: string, opts: { proto: Proto; port: number; host?: string }): Promise<Server> {
  checkNetnsName(netns);
  hookExit();
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, AGENT, 'serve', JSON.stringify(opts)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => running.delete(child));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };

  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let settled = false;
    const timer = setTimeout(() => fail(`not ready within 5000 ms`), 5000);
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop();
      reject(new RampartError('system', `server ${opts.proto}/${opts.port} in ${netns}: ${why}: ${err.trim()}`));
    };
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      if (!settled && out.includes('ready\n')) {
        settled = true;
        clearTimeout(timer);
        resolve({ pid: child.pid!, stop });
      }
    });
    child.once('exit', (code) => fail(`exited (${code})`));
  });
}

/** Run all probes concurrently in one process inside `netns`; results are in the order of `targets`. */
export async function probeMany(netns: string, targets: ProbeTarget[]): Promise<ProbeResult[]> {
  if (targets.length === 0) return [];
  const longest = Math.max(...targets.map((t) => t.timeoutMs ?? 1500));
  const res = await run(process.execPath, [AGENT, 'probe', JSON.stringify(targets)], { netns, timeoutMs: longest + 10_000 });
  const results = JSON.parse(res.stdout) as Array<ProbeResult | { status: 'error'; error: string }>;
  return results.map((r, i) => {
    if (r.status === 'error') {
      const t = targets[i];
      throw new RampartError('system', `probe ${t.proto} ${t.host}:${t.port} from ${netns} failed: ${r.error}`);
    }
    return r as ProbeResult;
  });
}

export async function probe(netns: string, target: ProbeTarget): Promise<ProbeResult> {
  return (await probeMany(netns, [target]))[0];
}

/** One ICMP echo (IPv4 or IPv6) from `netns`; true if answered within the timeout (default 1000 ms). */
export async function ping(netns: string, host: string, opts: { timeoutMs?: number } = {}): Promise<boolean> {
  const seconds = Math.max(1, Math.ceil((opts.timeoutMs ?? 1000) / 1000));
  const res = await run('ping', ['-c1', '-n', '-q', `-W${seconds}`, host], { netns, allowFailure: true, timeoutMs: seconds * 1000 + 5000 });
  return res.exitCode === 0;
}
