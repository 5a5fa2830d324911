/**
 * Parsed configuration documents, shared: validating a big document (10,000 rules, 200,000 blocklist entries) takes
 * a few hundred milliseconds, and the network, firewall, IDS, SNMP, sync and metrics all follow the same running
 * version. A document is parsed once per object (an apply hands the same object from the network to the firewall),
 * and the running version once per version; consumers must not change what they get.
 */
import type { Config } from './schema.ts';
import type { Store } from './store.ts';
import { parseConfig } from './validate.ts';

const byDocument = new WeakMap<object, Config>();
const byVersion = new Map<string, Config>();
const VERSIONS_KEPT = 4;

/** parseConfig, remembered for this very document object (throws the same problems when it is invalid). */
export function parseConfigOnce(doc: unknown): Config {
  const key = doc !== null && typeof doc === 'object' ? doc : undefined;
  const known = key && byDocument.get(key);
  if (known) return known;
  const config = parseConfig(doc);
  if (key) byDocument.set(key, config);
  return config;
}

/** Record the parsed configuration of a version that was just applied (its hash names its content). */
export function rememberVersionConfig(version: number, hash: string, config: Config): void {
  const key = `${version}:${hash}`;
  byVersion.delete(key);
  byVersion.set(key, config);
  while (byVersion.size > VERSIONS_KEPT) byVersion.delete(byVersion.keys().next().value!);
}

/**
 * The running version's configuration if it is parsed already (nothing is read or parsed here); `meta`, the running
 * version's row, when the caller has it.
 */
export function knownRunningConfig(store: Store, meta = store.runningVersionMeta()): Config | undefined {
  return meta && byVersion.get(`${meta.version}:${meta.hash}`);
}

/** The running version's configuration, parsed once; undefined when there is none or it no longer parses. */
export function runningConfig(store: Store): Config | undefined {
  const meta = store.runningVersionMeta();
  if (!meta) return undefined;
  const known = knownRunningConfig(store, meta);
  if (known) return known;
  const rec = store.getVersion(meta.version);
  if (!rec) return undefined;
  let config: Config;
  try {
    config = parseConfig(rec.document);
  } catch {
    return undefined;
  }
  rememberVersionConfig(rec.version, rec.hash, config);
  return config;
}
