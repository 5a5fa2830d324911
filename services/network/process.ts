/**
 * Background processes started by Rampart (dnsmasq, dhclient) are known by their pid file, and only a process whose
 * command line names Rampart's own file for it (its config, its lease file) is ever signalled: a stale pid file
 * whose number now belongs to someone else is left alone.
 */
import { readFileSync, rmSync } from 'node:fs';

function readPid(pidFile: string): number | undefined {
  try {
    const n = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The pid in the file if that process runs and its command line contains `marker`. */
export function pidAlive(pidFile: string, marker: string): number | undefined {
  const pid = readPid(pidFile);
  if (!pid) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.split('\0').some((arg) => arg.includes(marker))) return undefined;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie has exited already.
    if (/\) Z /.test(stat)) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

/** Stop the process of a pid file (SIGTERM, then SIGKILL after `graceMs`) and remove the file. */
export async function stopPidFile(pidFile: string, marker: string, graceMs = 3000): Promise<boolean> {
  const pid = pidAlive(pidFile, marker);
  if (!pid) {
    rmSync(pidFile, { force: true });
    return false;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone already */
  }
  const end = Date.now() + graceMs;
  while (pidAlive(pidFile, marker) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  if (pidAlive(pidFile, marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const end2 = Date.now() + 2000;
    while (pidAlive(pidFile, marker) && Date.now() < end2) await new Promise((r) => setTimeout(r, 25));
  }
  rmSync(pidFile, { force: true });
  return true;
}
