/**
 * The appliance image's identity: `/etc/rampart-release` (KEY=value lines, written by images/build), or the file in
 * env RAMPART_RELEASE_FILE. Absent (a development machine): undefined.
 */
import { readFileSync } from 'node:fs';

export interface ImageRelease {
  /** The image version, e.g. "0.1.0+202611290000". */
  version: string;
  /** Rampart's own version inside it. */
  rampart?: string;
  buildDate?: string;
  debian?: string;
}

export function imageRelease(path = process.env.RAMPART_RELEASE_FILE || '/etc/rampart-release'): ImageRelease | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=([\x21-\x7e]{1,128})$/.exec(line.trim());
    if (m) kv.set(m[1], m[2]);
  }
  const version = kv.get('IMAGE_VERSION');
  if (!version) return undefined;
  return { version, rampart: kv.get('VERSION'), buildDate: kv.get('BUILD_DATE'), debian: kv.get('DEBIAN') };
}
