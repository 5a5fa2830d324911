/**
 * Small pieces the IDS tests share: a web server on a lab host (answers "ok <path>"), a GET from the wan host
 * through the lab's port forward (198.51.100.1:8080 → the lan host's port 80), and `rampart ... --json`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import type { TestDaemon } from './daemon.ts';

/** A web server on port 80 inside `netns`, answering `ok <path>`; resolves once it listens. End it by its PID. */
export async function startWeb(netns: string): Promise<ChildProcess> {
  const code = `require('http').createServer((q, s) => s.end('ok ' + q.url + '\\n')).listen(80, () => console.log('listening'))`;
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b) => String(b).includes('listening') && resolve());
    child.once('exit', (c) => reject(new Error(`web server exited with ${c}`)));
  });
  return child;
}

/** GET from the wan host through the port forward; the body, or undefined when the connection fails. */
export async function getFromWan(wanNetns: string, path: string, timeoutS = 2): Promise<string | undefined> {
  const r = await execa('ip', ['netns', 'exec', wanNetns, 'curl', '-s', '-m', String(timeoutS), `http://198.51.100.1:8080${path}`], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
}

/** `rampart ARGS --json` against a test daemon, parsed; asserts it succeeded. */
export async function cliJson(d: TestDaemon, args: string[]): Promise<any> {
  const r = await d.cli([...args, '--json']);
  assert.is(r.code, 0, `rampart ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
