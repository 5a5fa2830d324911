/**
 * api-status: `GET /api/v1/status` with an authenticated session on a real rampartd (`rampart serve --listen
 * 127.0.0.1:PORT`, plain HTTP on loopback, managing the bench lab's fw namespace, admin password from
 * RAMPART_ADMIN_PASSWORD) against a bare `node:http` server in its own process that answers every request with the
 * very same JSON body (captured from the daemon once). Same load tool (autocannon, in this process), same
 * connections, alternating runs; the ratio is daemon req/s ÷ bare req/s, and the daemon's p99 latency must stay low.
 *
 * Where the time goes (extra, unmeasured): one request at a time against each server, the daemon's child processes
 * during a short traced load run (a /status that reads the kernel spawns `nft` per request), and the cost of one
 * `nft -t list table` in the namespace as the daemon runs it.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDoc } from './configs.ts';
import { BIN, ROOT, median, mustRun, removeTempDir, round, sleep, tempDir, trackPid, traceChildren, untrackPid, type Result } from './lib.ts';
import type { BenchContext } from './run.ts';
import { freePort } from '../../test/helpers/ports.ts';

const CONNECTIONS = 100;
const MEASURE_SECONDS = 5;
const WARMUP_SECONDS = 1;
const TARGET = { minRatio: 0.6 };
/** The daemon's p99 latency under the load, in ms (not in `unit`, hence not in TARGET). */
const MAX_P99_MS = 20;
const PASSWORD = 'bench-admin-password';

// autocannon ships no type declarations: the few fields used here.
interface Histogram {
  average: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
interface CannonResult {
  requests: Histogram & { total: number };
  latency: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}
type Autocannon = (opts: { url: string; connections: number; duration: number; headers?: Record<string, string> }) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Run {
  rps: number;
  requests: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
}

async function load(url: string, seconds: number, headers: Record<string, string>): Promise<Run> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: seconds, headers });
  return {
    rps: r.requests.total / r.duration,
    requests: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

async function poll(cond: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(50);
  }
}

interface Proc {
  pid: number;
  output(): string;
  stop(): Promise<void>;
  exited(): boolean;
}

/** Spawn a process tracked by PID; stop() ends it (SIGTERM, then SIGKILL after 15 s) and waits for its exit. */
function launch(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: ROOT });
  const pid = child.pid!;
  trackPid(pid, what);
  let out = '';
  const keep = (d: Buffer) => {
    if (out.length < 5_000_000) out += d;
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let gone = false;
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      gone = true;
      untrackPid(pid);
      r();
    }),
  );
  return {
    pid,
    output: () => out,
    exited: () => gone,
    async stop() {
      if (!gone) process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => !gone && process.kill(pid, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The bare baseline: node:http answering every request with `body` (application/json). */
const BARE_SERVER = `
const http = require('node:http');
const body = require('node:fs').readFileSync(process.argv[1]);
const s = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
s.keepAliveTimeout = 5000;
s.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('ready'));
`;

/** One request at a time: median latency in ms of `n` requests. */
async function sequentialMs(url: string, headers: Record<string, string>, n: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(url, { headers });
    await r.arrayBuffer();
    xs.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  }
  return median(xs);
}

export async function apiStatusBench(ctx: BenchContext): Promise<Result> {
  const runs = ctx.runs ?? 2;
  const dir = tempDir('api');
  const dataDir = join(dir, 'data');
  const seed = join(dir, 'seed.json');
  writeFileSync(seed, JSON.stringify(labDoc()));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/api/v1`;
  const daemon = launch(BIN, ['--data', dataDir, '--netns', ctx.lab.fw, 'serve', '--listen', `127.0.0.1:${port}`, '--config', seed], { ...process.env, RAMPART_LOG_LEVEL: 'warn', RAMPART_ADMIN_PASSWORD: PASSWORD }, 'rampartd');
  let bare: Proc | undefined;
  try {
    await poll(
      async () => {
        if (daemon.exited()) throw new Error(`rampartd exited at start:\n${daemon.output().slice(-3000)}`);
        return fetch(`${base}/openapi.json`).then(
          (r) => r.arrayBuffer().then(() => r.ok),
          () => false,
        );
      },
      60_000,
      () => `the API of rampartd on ${base}:\n${daemon.output().slice(-3000)}`,
    );
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    const loginBody = (await login.json()) as { mustChange?: boolean };
    if (login.status !== 200) throw new Error(`login: HTTP ${login.status} ${JSON.stringify(loginBody)}`);
    if (loginBody.mustChange) throw new Error('login: the session must change its password first (RAMPART_ADMIN_PASSWORD was not honoured)');
    const cookie = /(rampart_session=[^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
    if (!cookie) throw new Error(`login: no rampart_session cookie in ${login.headers.get('set-cookie')}`);
    const headers = { cookie };

    // Wait until the seeded version runs and the kernel holds it, then capture the body once.
    let body = '';
    await poll(
      async () => {
        const r = await fetch(`${base}/status`, { headers });
        body = await r.text();
        if (r.status !== 200) throw new Error(`GET /status: HTTP ${r.status} ${body}`);
        const s = JSON.parse(body);
        return s.version !== null && s.firewall?.state === 'ok';
      },
      30_000,
      () => `the seeded version to run (last /status: ${body})`,
    );
    const bodyFile = join(dir, 'status.json');
    writeFileSync(bodyFile, body);
    const barePort = await freePort();
    bare = launch(process.execPath, ['-e', BARE_SERVER, bodyFile, String(barePort)], process.env, 'bare node:http');
    await poll(
      async () => {
        if (bare!.exited()) throw new Error(`bare server exited: ${bare!.output()}`);
        return bare!.output().includes('ready');
      },
      10_000,
      () => 'the bare server',
    );
    const bareUrl = `http://127.0.0.1:${barePort}/api/v1/status`;
    const daemonUrl = `${base}/status`;
    const same = await (await fetch(bareUrl)).text();
    if (same !== body) throw new Error('the bare server does not answer the captured body');

    // Warm both (JIT, connection setup), then alternate: daemon, bare, daemon, bare...
    await load(daemonUrl, WARMUP_SECONDS, headers);
    await load(bareUrl, WARMUP_SECONDS, headers);
    const d: Run[] = [];
    const b: Run[] = [];
    for (let i = 0; i < runs; i++) {
      const order: Array<'daemon' | 'bare'> = i % 2 ? ['bare', 'daemon'] : ['daemon', 'bare'];
      for (const which of order) {
        const r = await load(which === 'daemon' ? daemonUrl : bareUrl, MEASURE_SECONDS, headers);
        (which === 'daemon' ? d : b).push(r);
        ctx.progress(`run ${i + 1}/${runs}: ${which} ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms${r.errors || r.non2xx ? ` (${r.errors} errors, ${r.non2xx} non-2xx)` : ''}`);
      }
    }

    // Where the time goes (not measured above).
    const seqDaemon = await sequentialMs(daemonUrl, headers, 50);
    const seqBare = await sequentialMs(bareUrl, headers, 50);
    const traced = await traceChildren(daemon.pid, () => load(daemonUrl, 2, headers));
    const nftChildren = traced.spans.filter((s) => / nft /.test(` ${s.cmd} `)).length;
    const nftMs: number[] = [];
    for (let i = 0; i < 10; i++) nftMs.push((await mustRun('ip', ['netns', 'exec', ctx.lab.fw, 'nft', '-t', 'list', 'table', 'inet', 'rampart'])).ms);
    const final = JSON.parse(await (await fetch(daemonUrl, { headers })).text());
    ctx.progress(
      `one at a time: daemon ${seqDaemon.toFixed(2)} ms, bare ${seqBare.toFixed(2)} ms; traced 2 s load: ${traced.result.requests} requests, ${nftChildren} nft children; one \`ip netns exec … nft -t list table\` ${median(nftMs).toFixed(1)} ms`,
    );

    const value = median(d.map((r) => r.rps));
    const baseline = median(b.map((r) => r.rps));
    const ratio = value / baseline;
    const p99 = median(d.map((r) => r.p99));
    const errors = [...d, ...b].reduce((n, r) => n + r.errors + r.non2xx, 0);
    return {
      name: 'api-status',
      value,
      baseline,
      ratio,
      target: TARGET,
      pass: ratio >= TARGET.minRatio && p99 <= MAX_P99_MS && errors === 0,
      unit: 'req/s',
      details: {
        runs,
        connections: CONNECTIONS,
        measureSeconds: MEASURE_SECONDS,
        loadTool: 'autocannon (programmatic, in the bench process), same options for both servers',
        daemonP99Ms: p99,
        targetP99Ms: MAX_P99_MS,
        daemon: d.map((r) => ({ ...r, rps: round(r.rps, 1) })),
        bare: b.map((r) => ({ ...r, rps: round(r.rps, 1) })),
        errors,
        bodyBytes: Buffer.byteLength(body),
        firewallState: final.firewall?.state,
        whereTheTimeGoes: {
          sequentialMedianMs: { daemon: round(seqDaemon, 2), bare: round(seqBare, 2) },
          tracedLoad: { seconds: 2, requests: traced.result.requests, nftChildren, nftPerRequest: round(nftChildren / Math.max(1, traced.result.requests), 3) },
          nftListTableMs: round(median(nftMs), 2),
          note: 'nftChildren counts the nft processes the daemon spawned during the traced load run (polled every 2 ms, so a lower bound); ~1 per request means /status reads the kernel each time',
        },
        daemonTarget: `rampart --netns ${ctx.lab.fw} serve --listen 127.0.0.1:PORT (lab.json)`,
      },
    };
  } finally {
    await bare?.stop();
    await daemon.stop();
    removeTempDir(dir);
  }
}
