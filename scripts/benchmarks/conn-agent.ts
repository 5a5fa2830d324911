/**
 * The two ends of the conn-rate benchmark, each run inside a lab namespace (`ip netns exec NS node --import tsx
 * conn-agent.ts ...`):
 *   serve PORT                         accept TCP connections on 0.0.0.0:PORT, send a greeting and close each one;
 *                                      prints "ready" once listening, exits when stdin closes or on SIGTERM
 *   client HOST PORT WORKERS WARMUP_MS MEASURE_MS
 *                                      WORKERS concurrent loops of connect → read the greeting → close; counts the
 *                                      connections completed during MEASURE_MS after WARMUP_MS; prints one JSON line
 */
import net from 'node:net';

const GREETING = 'hello\n';

function serve(port: number): void {
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    // The server closes first (like a daytime service): TIME_WAIT stays on the server side and the client's
    // ephemeral ports are free again at once.
    sock.end(GREETING);
  });
  server.on('error', (err) => {
    process.stderr.write(`serve: ${err.message}\n`);
    process.exit(1);
  });
  server.listen({ port, host: '0.0.0.0', backlog: 4096 }, () => process.stdout.write('ready\n'));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
}

async function client(host: string, port: number, workers: number, warmupMs: number, measureMs: number): Promise<void> {
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + measureMs;
  let counted = 0;
  let total = 0;
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const latencies: number[] = [];

  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      let got = '';
      let done = false;
      const finish = (err?: NodeJS.ErrnoException) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        const t1 = performance.now();
        if (err || got !== GREETING) {
          errors++;
          const code = err?.code ?? (err ? 'error' : 'bad-greeting');
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        } else {
          total++;
          if (t1 >= measureFrom && t1 < end) {
            counted++;
            if (latencies.length < 200_000) latencies.push(t1 - t0);
          }
        }
        resolve();
      };
      const timer = setTimeout(() => finish(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })), 3000);
      const sock = net.connect({ host, port });
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (got += d));
      sock.on('end', () => finish());
      sock.on('error', (err) => finish(err));
    });

  const loop = async () => {
    while (performance.now() < end) await once();
  };
  await Promise.all(Array.from({ length: workers }, loop));
  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(3)) : null);
  process.stdout.write(
    JSON.stringify({
      connections: counted,
      seconds: measureMs / 1000,
      rate: counted / (measureMs / 1000),
      total,
      errors,
      errorCodes,
      latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99) },
    }) + '\n',
  );
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'serve') serve(Number(rest[0]));
else if (mode === 'client') {
  const [host, port, workers, warmup, measure] = rest;
  client(host, Number(port), Number(workers), Number(warmup), Number(measure)).catch((err) => {
    process.stderr.write(`client: ${err?.message ?? err}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: conn-agent serve PORT | client HOST PORT WORKERS WARMUP_MS MEASURE_MS\n');
  process.exit(2);
}
