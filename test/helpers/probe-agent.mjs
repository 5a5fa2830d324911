// Runs inside a lab namespace (`ip netns exec NS node probe-agent.mjs ...`); plain JS so it needs no tsx.
//   serve '{"proto":"tcp","port":8080,"host":"::"}'  listen; print "ready" once listening; exit when stdin closes
//   probe '[{"proto":"tcp","host":"198.51.100.20","port":80,"timeoutMs":1500}, ...]'  print one JSON array of results
import dgram from 'node:dgram';
import net from 'node:net';

const unmap = (addr) => (addr?.startsWith('::ffff:') && net.isIPv4(addr.slice(7)) ? addr.slice(7) : addr);
const greeting = (addr) => `hello from ${unmap(addr)}\n`;

function serve({ proto, port, host = '::' }) {
  const v6 = net.isIPv6(host);
  const ready = () => process.stdout.write('ready\n');
  if (proto === 'tcp') {
    const server = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.write(greeting(sock.remoteAddress));
      sock.pipe(sock);
    });
    server.listen({ port, host, ipv6Only: false }, ready);
  } else {
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: false });
    sock.on('message', (_msg, rinfo) => sock.send(greeting(rinfo.address), rinfo.port, rinfo.address));
    sock.bind(port, host, ready);
  }
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EACCES', 'EPERM', 'ENETDOWN', 'EADDRNOTAVAIL', 'EHOSTDOWN']);

function classify(err) {
  if (err.code === 'ECONNREFUSED') return 'refused';
  if (UNREACHABLE.has(err.code)) return 'unreachable';
  return 'error';
}

function probeTcp({ host, port, timeoutMs }) {
  return new Promise((resolve) => {
    let text = '';
    let connected = false;
    const sock = net.connect({ host, port });
    const done = (status, error) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ status, text, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => done(connected ? 'open' : 'timeout'), timeoutMs);
    sock.on('connect', () => (connected = true));
    sock.on('data', (d) => {
      text += d;
      if (text.includes('\n')) done('open');
    });
    sock.on('end', () => done('open'));
    sock.on('error', (err) => (connected ? done('open', err.code) : done(classify(err), err.code)));
  });
}

function probeUdp({ host, port, timeoutMs }) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let finished = false;
    const done = (status, text = '', error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      resolve({ status, text, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    sock.on('message', (msg) => done('open', String(msg)));
    sock.on('error', (err) => done(classify(err), '', err.code));
    sock.connect(port, host, () => sock.send('probe\n'));
  });
}

async function probeAll(list) {
  const results = await Promise.all(
    list.map((p) => {
      const q = { timeoutMs: 1500, ...p };
      return (q.proto === 'udp' ? probeUdp(q) : probeTcp(q)).catch((err) => ({ status: 'error', text: '', error: String(err) }));
    }),
  );
  process.stdout.write(JSON.stringify(results) + '\n');
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'serve') serve(JSON.parse(arg));
else if (mode === 'probe') await probeAll(JSON.parse(arg));
else {
  process.stderr.write('usage: probe-agent.mjs serve JSON | probe JSON\n');
  process.exit(2);
}
