/**
 * Labs for tests: a unique prefix per lab, always torn down, also when the test process exits or is interrupted.
 */
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { labDown, labNames, labUp, type LabNames } from '../../services/lab/lab.ts';

export interface Lab extends LabNames {
  prefix: string;
  down(): Promise<void>;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const active = new Set<string>();
let hooked = false;

/** `t` + 5 random characters: a valid lab prefix unlikely to collide with a parallel test. */
export function uniquePrefix(): string {
  let s = 't';
  for (let i = 0; i < 5; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

function cleanupSync(): void {
  for (const prefix of active) {
    for (const ns of Object.values(labNames(prefix))) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  active.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupSync);
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
    process.once(sig, () => {
      cleanupSync();
      process.exit(128 + num);
    });
  }
}

/** Bring a lab up; it is removed by `down()` or, at the latest, when the process exits. */
export async function startLab(prefix = uniquePrefix()): Promise<Lab> {
  hookExit();
  active.add(prefix);
  try {
    const names = await labUp(prefix);
    return {
      ...names,
      prefix,
      down: async () => {
        await labDown(prefix);
        active.delete(prefix);
      },
    };
  } catch (err) {
    active.delete(prefix);
    throw err;
  }
}

/** Run `fn` with a fresh lab (unique prefix unless one is given) and always remove the lab afterwards. */
export async function withLab<T>(fn: (lab: Lab) => Promise<T>): Promise<T>;
export async function withLab<T>(prefix: string, fn: (lab: Lab) => Promise<T>): Promise<T>;
export async function withLab<T>(a: string | ((lab: Lab) => Promise<T>), b?: (lab: Lab) => Promise<T>): Promise<T> {
  const [prefix, fn] = typeof a === 'function' ? [uniquePrefix(), a] : [a, b!];
  const lab = await startLab(prefix);
  try {
    return await fn(lab);
  } finally {
    await lab.down();
  }
}
