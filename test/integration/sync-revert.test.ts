/**
 * A cloud push that cuts the appliance off its broker reverts by itself (SPEC §6, OpenWISP/FortiManager lesson).
 * Lab: rampartd runs inside the firewall namespace (so its own MQTT traffic crosses the ruleset it applies), the
 * broker (real Mosquitto, TLS) on the WAN host 198.51.100.20. The push puts the broker's address on a blocklist:
 * the fresh connection that must prove the broker is reachable after the apply fails, the confirm window closes,
 * the firewall reverts, and the device reports `rolled_back` once it is back. A harmless push then confirms itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { callDaemon } from '../../services/control.ts';
import { installBundle } from '../../services/sync/enroll.ts';
import { documentHash } from '../../services/core/store.ts';
import type { MsspHome } from '../../services/mssp/home.ts';
import { MSSP_BIN, broker, tempHome, waitFor, type Broker } from '../fixtures/sync/harness.ts';
import { BIN, labConfig } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';

const BROKER_IP = '198.51.100.20';
const PORT = 18883;
const T = 'lab';
const D = 'fw';
let lab: Lab;
let home: MsspHome;
let cleanupHome: () => void;
let b: Broker;
let data: string;
let daemon: ChildProcess | undefined;
let logs = '';

/** The MSSP tool on the WAN host (where the broker is): push FILE and wait for the device's final report. */
async function pushAndWait(doc: unknown): Promise<{ code: number; report: any }> {
  const f = join(data, `push-${Date.now()}.json`);
  writeFileSync(f, JSON.stringify(doc));
  const r = await execa('ip', ['netns', 'exec', lab.wan, MSSP_BIN, '--home', home.dir, 'push', '--tenant', T, '--device', D, f, '--wait', '60'], { reject: false });
  const last = String(r.stdout).trim().split('\n').pop() ?? '';
  let report: any;
  try {
    report = JSON.parse(last);
  } catch {
    throw new Error(`no report from rampart-mssp push (exit ${r.exitCode}): ${r.stdout} ${r.stderr}\n${logs.slice(-3000)}`);
  }
  return { code: r.exitCode ?? -1, report };
}

/** The namespace's ruleset without counter values (stateless listing). */
const rulesetText = async (netns: string) => String((await execa('ip', ['netns', 'exec', netns, 'nft', '-s', 'list', 'ruleset'])).stdout);
const call = (m: string, p: unknown = {}) => callDaemon(join(data, 'rampart.sock'), m, p, 30_000);
const config = (extra: (c: any) => void = () => {}) => {
  const c = labConfig();
  c.sync = { enabled: true, broker: `mqtts://${BROKER_IP}:${PORT}`, confirmSeconds: 8 };
  extra(c);
  return c;
};

test.before(async () => {
  try {
    lab = await startLab();
    ({ home, cleanup: cleanupHome } = await tempHome(PORT, BROKER_IP));
    b = broker(home, { port: PORT, host: BROKER_IP, netns: lab.wan });
    await b.start();
    data = mkdtempSync(join(tmpdir(), 'rampart-sync-revert-'));
    installBundle(data, await home.enroll(T, D));
    writeFileSync(join(data, 'seed.json'), JSON.stringify(config()));
    // Inside the firewall namespace itself (no --netns): the daemon's own traffic goes through its ruleset.
    daemon = spawn('ip', ['netns', 'exec', lab.fw, BIN, '--data', data, 'serve', '--config', join(data, 'seed.json')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RAMPART_LOG_LEVEL: 'info' },
    });
    daemon.stdout!.on('data', (x) => (logs += x));
    daemon.stderr!.on('data', (x) => (logs += x));
    await waitFor(async () => existsSync(join(data, 'rampart.sock')) && (await call('status').then((s) => s.sync.state === 'connected', () => false)), 30_000, 'the daemon connected to the broker');
  } catch (err) {
    console.error('setup failed:', err, logs);
    throw err;
  }
});

test.after(async () => {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    const d = daemon;
    await new Promise<void>((res) => {
      d.once('exit', () => res());
      process.kill(d.pid!, 'SIGTERM');
    });
  }
  await b?.stop();
  await lab?.down();
  cleanupHome?.();
  if (data) rmSync(data, { recursive: true, force: true });
});

test('a push that blocks the broker is reverted by itself and reported rolled_back', async () => {
  const before = await call('status');
  const kernelBefore = await rulesetText(lab.fw);
  const cut = config((c) => c.firewall.blocklists.push({ name: 'cut', entries: [BROKER_IP] }));
  const { code, report: rep } = await pushAndWait(cut);
  assert.is(code, 1, 'push --wait exits 1 when the change did not stay');
  assert.is(rep.version, 1);
  assert.is(rep.state, 'rolled_back', JSON.stringify(rep));
  assert.is(rep.reason, 'broker_unreachable');
  assert.is(rep.hash, documentHash(cut));
  assert.is(rep.running.hash, before.running.hash);
  const after = await call('status');
  assert.is(after.running.hash, before.running.hash, 'the previous configuration runs again');
  assert.is(await rulesetText(lab.fw), kernelBefore);
  const hist = await call('history', { limit: 3 });
  assert.ok(hist.some((h: any) => h.source === 'mssp' && h.state === 'reverted'), JSON.stringify(hist.map((h: any) => [h.version, h.source, h.state])));
  await waitFor(async () => (await call('status')).sync.state === 'connected', 30_000, 'connected again');
});

test('a harmless push confirms itself once the broker answers a fresh connection', async () => {
  const ok = config((c) => (c.system.hostname = 'fw-confirmed'));
  const { code, report } = await pushAndWait(ok);
  const hash = documentHash(ok);
  assert.is(code, 0, JSON.stringify(report));
  assert.is(report.version, 2);
  assert.is(report.state, 'applied');
  assert.is(report.hash, hash);
  const s = await call('status');
  assert.is(s.running.hash, hash);
  assert.is(s.pending, null);
});

test.run();
