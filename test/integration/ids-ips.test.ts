/**
 * Inline IPS for real in the lab: forwarded traffic is queued to Suricata (nft's queue statement where the kernel
 * has it, else the xt NFQUEUE target through iptables-nft, detected at start). A drop rule stops the matching
 * request while other traffic passes; with Suricata stopped, traffic still flows (queue bypass), unless the
 * configuration asks for fail-closed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { startDaemon, labConfig, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { cliJson, getFromWan, startWeb } from '../helpers/lab-web.ts';

const DROP_SID = 9000101;

let lab: Lab | undefined;
let d: TestDaemon | undefined;
let web: ChildProcess | undefined;

/** GET from the wan host through the port forward; the body, or undefined when the connection fails. */
const get = (path: string, timeoutS = 2) => getFromWan(lab!.wan, path, timeoutS);
const json = (args: string[]) => cliJson(d!, args);

test.before(async () => {
  lab = await startLab();
  web = await startWeb(lab.lan);
  const c = labConfig();
  c.ids = {
    enabled: true,
    mode: 'ips',
    failOpen: true,
    localRules: [`drop http any any -> any any (msg:"RAMPART IPS drop test"; flow:to_server,established; http.uri; content:"/rampart-ips-drop"; classtype:web-application-attack; sid:${DROP_SID}; rev:1;)`],
  };
  d = await startDaemon({ netns: lab.fw, config: c });
  await waitFor(async () => (await json(['ids', 'status'])).state === 'running', 30_000, 'suricata to run inline');
});

test.after(async () => {
  await d?.cleanup().catch(() => undefined);
  if (web && web.exitCode === null) web.kill('SIGTERM');
  await lab?.down();
});

test('a drop rule stops the matching request while other traffic passes', async () => {
  const s = await json(['ids', 'status']);
  assert.is(s.mode, 'ips');
  assert.ok(['nft', 'iptables-nft'].includes(s.inline?.method), JSON.stringify(s.inline));
  console.log(`  inline queue through ${s.inline.method}`);
  const ruleset = await execa('ip', ['netns', 'exec', lab!.fw, 'nft', 'list', 'ruleset']);
  assert.match(String(ruleset.stdout), /queue (flags bypass )?(num 0 )?(bypass)?|NFQUEUE/);

  assert.is(await get('/fine'), 'ok /fine');
  assert.is(await get('/rampart-ips-drop', 2), undefined, 'the matching request is dropped');
  assert.is(await get('/fine-again'), 'ok /fine-again', 'other traffic still passes');
  let alert: any;
  await waitFor(async () => {
    alert = (await json(['alerts'])).find((a: any) => a.sid === DROP_SID);
    return !!alert;
  }, 20_000, 'the drop alert');
  assert.is(alert.action, 'blocked');
  assert.is(alert.src, '198.51.100.20');
});

test('with Suricata stopped, traffic flows in bypass mode', async () => {
  const pid = (await json(['ids', 'status'])).engine.pid;
  await d!.stop();
  assert.throws(() => process.kill(pid, 0), 'the engine is gone with the daemon');
  const ruleset = String((await execa('ip', ['netns', 'exec', lab!.fw, 'nft', 'list', 'ruleset'])).stdout);
  assert.match(ruleset, /queue/, 'the queue rule is still there');
  assert.is(await get('/while-down'), 'ok /while-down');
});

test('fail-closed: no bypass, so traffic stops while Suricata is down', async () => {
  await d!.restart();
  await waitFor(async () => (await d!.call('idsStatus')).state === 'running', 30_000, 'suricata after the restart');
  const c = labConfig();
  c.ids = { enabled: true, mode: 'ips', failOpen: false, localRules: ['alert tcp any any -> any 9 (msg:"placeholder"; sid:9000102;)'] };
  const applied = Date.now();
  const r = await d!.cli(['apply', d!.file(c)]);
  assert.is(r.code, 0, r.stderr);
  await waitFor(async () => {
    const s = await d!.call('idsStatus');
    return s.state === 'running' && s.lastReload?.ok === true && s.lastReload.at >= applied && s.lastReload.action === 'restarted';
  }, 30_000, 'the fail-closed engine');
  const ruleset = String((await execa('ip', ['netns', 'exec', lab!.fw, 'nft', 'list', 'ruleset'])).stdout);
  assert.match(ruleset, /queue/);
  assert.not.match(ruleset, /bypass/, 'no bypass when fail-closed');
  assert.is(await get('/fine-closed'), 'ok /fine-closed', 'traffic flows through the running engine');
  await d!.stop();
  assert.is(await get('/while-down-closed', 2), undefined, 'nothing passes without the engine');
});

test.run();
