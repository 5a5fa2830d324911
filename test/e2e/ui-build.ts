/**
 * The e2e tests need webui/dist: bootstrap builds it, but a test file run on its own on a fresh tree builds it here
 * (the same command as `npm run build:ui`) when it is missing or older than the sources. Test files run in parallel,
 * so the build holds a lock (a directory, made atomically); whoever waits for it finds the build done.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, waitFor } from '../helpers/daemon.ts';

const LOCK = join(ROOT, 'webui/.build-lock');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function current(): boolean {
  const index = join(ROOT, 'webui/dist/index.html');
  const sources = Math.max(newest(join(ROOT, 'webui/src')), statSync(join(ROOT, 'webui/index.html')).mtimeMs, statSync(join(ROOT, 'webui/vite.config.ts')).mtimeMs);
  return existsSync(index) && statSync(index).mtimeMs >= sources;
}

function takeLock(): boolean {
  try {
    mkdirSync(LOCK);
    return true;
  } catch {
    // A lock left by a build that died more than two minutes ago is taken over.
    try {
      if (Date.now() - statSync(LOCK).mtimeMs > 120_000) {
        rmSync(LOCK, { recursive: true, force: true });
        mkdirSync(LOCK);
        return true;
      }
    } catch {
      // someone else got it
    }
    return false;
  }
}

export async function ensureUiBuilt(): Promise<void> {
  if (current()) return;
  await waitFor(takeLock, 180_000, 'the web UI build lock');
  try {
    if (current()) return;
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'webui/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the web UI build failed:\n${r.stdout}\n${r.stderr}`);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
