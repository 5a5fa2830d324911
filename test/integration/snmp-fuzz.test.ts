/**
 * Random, truncated and mutated UDP datagrams to the agent (real sockets on loopback, the SNMP service in this
 * process on a real store): no crash, no answer to random or truncated ones, and the agent still answers a good
 * request afterwards. Seeded: the seed is printed; replay with SNMP_FUZZ_SEED (fixed under CI=true).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../../services/core/events.ts';
import { silentLogger } from '../../services/core/log.ts';
import { Store } from '../../services/core/store.ts';
import { SnmpService } from '../../services/snmp/service.ts';
import { TelemetryService } from '../../services/telemetry/service.ts';
import { labConfig, waitFor } from '../helpers/daemon.ts';
import { prng } from '../helpers/random.ts';
import { freeUdpPort, snmpSection } from '../fixtures/snmp/tools.ts';
import { v2cGet, v3Discovery } from '../fixtures/snmp/ber.ts';

const SEED = Number(process.env.SNMP_FUZZ_SEED ?? (process.env.CI === 'true' ? 7 : Math.floor(Math.random() * 2 ** 31)));
let dir = '';
let store: Store | undefined;
let svc: SnmpService | undefined;
let port = 0;

function client(): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  socket.unref();
  return new Promise((res) => socket.bind(0, '127.0.0.1', () => res({ socket, received })));
}
const send = (s: Socket, b: Buffer) => new Promise<void>((res) => s.send(b, port, '127.0.0.1', () => res()));
const read = () => svc!.status().requests!.received;

/** Send in small batches, letting the agent read each batch (a flood would only overflow the socket buffer). */
async function sendPaced(s: Socket, list: Buffer[]): Promise<void> {
  for (let i = 0; i < list.length; i += 25) {
    const start = read();
    const batch = list.slice(i, i + 25);
    for (const b of batch) await send(s, b);
    const end = Date.now() + 1000;
    while (read() - start < batch.length && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  }
}

/** Send a good request until it is answered (UDP: a datagram may be lost under load). */
async function answered(reqId: number): Promise<Buffer> {
  const c = await client();
  try {
    await waitFor(
      async () => {
        if (c.received.length) return true;
        await send(c.socket, v2cGet('rampart-ro', reqId));
        await new Promise((r) => setTimeout(r, 200));
        return c.received.length > 0;
      },
      10_000,
      'the agent to answer a good request',
    );
    return c.received[0];
  } finally {
    c.socket.close();
  }
}

test.before(async () => {
  console.log(`  SNMP_FUZZ_SEED=${SEED}`);
  dir = mkdtempSync(join(tmpdir(), 'rampart-snmp-fuzz-'));
  port = await freeUdpPort();
  store = new Store(join(dir, 'rampart.db')).open();
  const config = labConfig();
  config.snmp = snmpSection(port);
  store.addVersion({ author: 'test', source: 'local', document: config, state: 'applied' });
  const log = silentLogger();
  svc = new SnmpService({ store, events: new EventBus(), telemetry: new TelemetryService({ store, log }), log });
  await svc.start();
});

test.after(async () => {
  await svc?.stop();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the requests the fuzzer starts from are answered (the harness is sound)', async () => {
  const c = await client();
  await send(c.socket, v2cGet('rampart-ro', 4242));
  await send(c.socket, v3Discovery(77));
  await waitFor(() => c.received.length === 2, 5000, 'two answers');
  assert.ok(c.received.some((m) => m.includes(Buffer.from('fw-lab'))), 'sysName in the v2c answer');
  c.socket.close();
});

test('random and truncated datagrams: no answer, no crash; a good request is answered afterwards', async () => {
  const rnd = prng(SEED);
  const c = await client();
  const before = read();
  const list: Buffer[] = [];
  for (const g of [v2cGet('rampart-ro', 1001), v3Discovery(1002)]) for (let n = 0; n < g.length; n++) list.push(g.subarray(0, n));
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rnd() * (rnd() < 0.2 ? 1400 : 120));
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
    // A third of them look like an SNMP message at first glance.
    if (len > 4 && rnd() < 0.33) {
      b[0] = 0x30;
      b[1] = Math.min(len - 2, 127);
      b[2] = 0x02;
      b[3] = 0x01;
      b[4] = Math.floor(rnd() * 4);
    }
    list.push(b);
  }
  await sendPaced(c.socket, list);
  const got = await answered(2002);
  assert.ok(got.includes(Buffer.from('fw-lab')));
  assert.ok(read() - before >= list.length * 0.9, `the agent read ${read() - before} of ${list.length} datagrams`);
  assert.is(c.received.length, 0, `${c.received.length} answers to garbage`);
  c.socket.close();
});

test('mutated requests: no crash, and the agent keeps answering', async () => {
  const rnd = prng(SEED + 1);
  const c = await client();
  const base = [v2cGet('rampart-ro', 3003), v3Discovery(3004)];
  const list: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(base[i % 2]);
    const flips = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    list.push(b);
  }
  await sendPaced(c.socket, list);
  const got = await answered(4004);
  assert.ok(got.includes(Buffer.from('fw-lab')));
  c.socket.close();
});

test.run();
