// A small API client meant to run inside a lab namespace (`ip netns exec NS node api-client.mjs ...`), so that its
// requests cross the firewall under test. Plain JavaScript: nothing but Node's own modules.
//
// usage: node api-client.mjs CA_FILE BASE_URL STEPS_JSON [COOKIE]
//   CA_FILE   the daemon's self-signed certificate (pinned as the only CA)
//   BASE_URL  e.g. https://192.0.2.1:8443/api/v1
//   STEPS     JSON array, run in order; each step opens a NEW connection (no keep-alive):
//     {"login": {"username": "...", "password": "..."}}            POST /auth/login, keeps the session cookie
//     {"method": "GET"|"POST"|..., "path": "/status", "body"?: {...}} a request with the cookie (JSON body if any)
//     {"connect": true}                                              a TLS handshake only: does a new connection work?
//     each may have "timeoutMs" (default 4000)
//   COOKIE    a `rampart_session=...` cookie to start with
//
// Prints one JSON line: {"cookie": "...", "results": [...]}, each result
//   {status, body, ms} for requests (body parsed as JSON when it is), {ok: true, ms} for connect,
//   or {error: "timeout" | "ECONNREFUSED" | ..., ms} when the connection or the request failed.
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

const [caFile, base, stepsJson, startCookie] = process.argv.slice(2);
if (!caFile || !base || !stepsJson) {
  process.stderr.write('usage: api-client.mjs CA_FILE BASE_URL STEPS_JSON [COOKIE]\n');
  process.exit(2);
}
const ca = readFileSync(caFile, 'utf8');
const steps = JSON.parse(stepsJson);
let cookie = startCookie || '';

function request(method, path, body, timeoutMs) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, ms: Math.round(performance.now() - t0) });
    };
    const headers = { ...(cookie ? { cookie } : {}), ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) };
    const req = https.request(base + path, { method, ca, agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const set = res.headers['set-cookie']?.find((c) => c.startsWith('rampart_session='));
        if (set) cookie = set.split(';')[0];
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        finish({ status: res.statusCode, body: parsed });
      });
      res.on('error', (e) => finish({ error: e.code || e.message }));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ error: 'timeout' });
    }, timeoutMs);
    req.on('error', (e) => finish({ error: e.code || e.message }));
    req.end(payload);
  });
}

function connect(timeoutMs) {
  const url = new URL(base);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...r, ms: Math.round(performance.now() - t0) });
    };
    const socket = tls.connect({ host: url.hostname, port: Number(url.port || 443), ca }, () => finish({ ok: true }));
    const timer = setTimeout(() => finish({ error: 'timeout' }), timeoutMs);
    socket.on('error', (e) => finish({ error: e.code || e.message }));
  });
}

const results = [];
for (const s of steps) {
  const timeoutMs = s.timeoutMs ?? 4000;
  if (s.connect) results.push(await connect(timeoutMs));
  else if (s.login) results.push(await request('POST', '/auth/login', s.login, timeoutMs));
  else results.push(await request(s.method ?? 'GET', s.path, s.body, timeoutMs));
}
process.stdout.write(JSON.stringify({ cookie, results }) + '\n');
