/**
 * A table another process owns: a long-running `nft -i` in a namespace holds `table inet NAME { flags owner; }`, so
 * the kernel refuses every other process's change to it (how the tests make the kernel refuse a transaction). The
 * kernel drops the table when its owner's netlink socket closes; `end()` stops the owner (by its PID) and waits for
 * that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from '../../services/host/exec.ts';
import { waitFor } from './daemon.ts';

export async function holdOwnerTable(netns: string, table: string): Promise<{ pid: number; end(): Promise<void> }> {
  const text = async () => (await run('nft', ['list', 'table', 'inet', table], { netns, allowFailure: true })).stdout;
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns, 'nft', '-i'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const end = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGTERM');
    await exited;
    await waitFor(async () => !/flags owner/.test(await text()), 5000, `the owner table ${table} to go`);
  };
  child.stdin!.write(`add table inet ${table} { flags owner; }\n`);
  try {
    await waitFor(async () => /flags owner/.test(await text()), 5000, `the owner table ${table} (nft -i said: ${out})`);
  } catch (err) {
    await end();
    throw err;
  }
  return { pid: child.pid!, end };
}
