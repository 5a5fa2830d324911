/**
 * SIEM forwarding from a running rampartd: three collectors on loopback (UDP, TCP with octet counting, TLS with a
 * CA from the configuration) receive an IDS alert (an EVE line in the daemon's eve.json) and an audit entry (a
 * `rampart block`) as RFC 5424 messages.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { labConfig, startScratchDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { eveLine } from '../../scripts/benchmarks/ids-ingest.ts';

let close: (() => Promise<void>) | undefined;
let d: TestDaemon;
let certDir: string;
const got: Record<'udp' | 'tcp' | 'tls', string[]> = { udp: [], tcp: [], tls: [] };
const udp = createSocket('udp4');
let tcp: Server;
let tls: Server;

/** RFC 6587 octet counting: "LEN SP MSG" frames. */
function framed(into: string[]) {
  return (sock: import('node:net').Socket) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const sp = buf.indexOf(32);
        if (sp < 0) return;
        const len = Number(buf.subarray(0, sp).toString());
        if (buf.length < sp + 1 + len) return;
        into.push(buf.subarray(sp + 1, sp + 1 + len).toString());
        buf = buf.subarray(sp + 1 + len);
      }
    });
  };
}

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

test.before(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'rampart-syslog-'));
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')]);
  const cert = readFileSync(join(certDir, 'cert.pem'), 'utf8');
  udp.on('message', (m) => got.udp.push(String(m)));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  tcp = createServer(framed(got.tcp));
  tls = createTlsServer({ cert, key: readFileSync(join(certDir, 'key.pem')) }, framed(got.tls));
  const [tcpPort, tlsPort] = [await listen(tcp), await listen(tls)];
  const s = await startScratchDaemon('idss');
  d = s.d;
  close = s.close;
  const c = labConfig();
  c.syslog = {
    targets: [
      { host: '127.0.0.1', port: udp.address().port, proto: 'udp' },
      { host: '127.0.0.1', port: tcpPort, proto: 'tcp', facility: 10 },
      { host: '127.0.0.1', port: tlsPort, proto: 'tls', ca: cert },
    ],
  };
  const r = await d.cli(['apply', d.file(c)]);
  assert.is(r.code, 0, r.stderr);
});

test.after(async () => {
  await close?.();
  udp.close();
  tcp?.close();
  tls?.close();
  rmSync(certDir, { recursive: true, force: true });
});

test('an IDS alert reaches every collector as RFC 5424', async () => {
  const dir = join(d.dataDir, 'suricata');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'eve.json'), eveLine(7) + '\n');
  for (const proto of ['udp', 'tcp', 'tls'] as const) {
    await waitFor(() => got[proto].some((m) => m.includes(' IDS [alert@32473 ')), 15_000, `the alert over ${proto}`);
  }
  const m = got.tcp.find((x) => x.includes(' IDS '))!;
  // facility 10 (authpriv), IDS severity 2 → syslog error (3): <83>
  assert.match(m, /^<83>1 2026-01-01T00:00:00\.049Z fw-lab rampart \d+ IDS \[alert@32473 id="[^"]+" seq="\d+" severity="2" sid="2000007" category="Web Application Attack" src="198\.51\.100\.8" sport="1031" dst="192\.0\.2\.10" dport="80" proto="tcp" action="allowed"\] ET WEB_SERVER Possible attack pattern number 7 in the request URI$/);
  assert.match(got.udp.find((x) => x.includes(' IDS '))!, /^<35>1 /, 'default facility 4');
});

test('audit entries are forwarded too', async () => {
  const r = await d.cli(['block', '203.0.113.9', '--ttl', '60', '-m', 'syslog test']);
  assert.is(r.code, 0, r.stderr);
  for (const proto of ['udp', 'tcp', 'tls'] as const) {
    await waitFor(() => got[proto].some((m) => m.includes(' AUDIT ') && m.includes('action="block.add"')), 15_000, `the audit entry over ${proto}`);
  }
  assert.match(got.tls.find((m) => m.includes('block.add'))!, /^<\d+>1 \S+ fw-lab rampart \d+ AUDIT \[audit@32473 id="\d+" user="[^"]+" role="root" source="console" action="block\.add" target="1 address\(es\)" result="ok"\] /);
});

test.run();
