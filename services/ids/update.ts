/**
 * Rule sources (`ids.sources`) fetched with suricata-update. Rampart uses it only to download, unpack and merge each
 * source's rules: every source runs in its own output directory under DATA/suricata/update with suricata-update's
 * own testing, reloading and system-wide filter files turned off (`--no-test --no-reload`, empty enable / disable /
 * modify / drop files, no distribution rules), because Rampart applies the per-SID overrides itself, checks the
 * result with `suricata -T` and reloads the engine live as it does for local rules.
 *
 * A fetch lands in `staging/`; only once the whole rule set built from it has passed `suricata -T` and is loaded are
 * the files moved to `rules/`, which every later apply or reload reads (offline: nothing is fetched again). A failed
 * update leaves `rules/` and the running engine as they were.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { RampartError, type Problem } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { NAME_PATTERN, ruleSourceUrlProblem } from '../core/schema.ts';
import { run, type RunResult } from '../host/exec.ts';
import type { RuleSource } from './rules.ts';

export interface SourceSpec {
  name: string;
  url: string;
}

export interface UpdateLayout {
  dir: string;
  /** suricata-update's data directory (`-D`): its download cache. */
  dataDir: string;
  staging: string;
  live: string;
  manifest: string;
  updateYaml: string;
  /** An empty directory: suricata-update's "distribution rules" (none). */
  emptyDir: string;
  /** An empty filter file for --enable-conf / --disable-conf / --modify-conf / --drop-conf. */
  emptyConf: string;
}

export function updateLayout(suricataDir: string): UpdateLayout {
  const dir = join(suricataDir, 'update');
  return {
    dir,
    dataDir: join(dir, 'data'),
    staging: join(dir, 'staging'),
    live: join(dir, 'rules'),
    manifest: join(dir, 'rules', 'manifest.json'),
    updateYaml: join(dir, 'update.yaml'),
    emptyDir: join(dir, 'empty'),
    emptyConf: join(dir, 'empty.conf'),
  };
}

/** The file of one source's rules in a directory (staging or live). */
export const sourceFile = (dir: string, name: string) => join(dir, `${name}.rules`);

/**
 * The suricata-update command line for one source (argv, no shell): its own data directory, configuration and
 * filter files, output to `outDir`, strict failure, always a fresh download, nothing tested or reloaded by it.
 */
export function suricataUpdateArgs(layout: UpdateLayout, source: SourceSpec, outDir: string, opts: { suricataConf?: string; suricata?: string } = {}): string[] {
  return [
    '--quiet',
    `--data-dir=${layout.dataDir}`,
    `--config=${layout.updateYaml}`,
    `--suricata-conf=${opts.suricataConf ?? join(layout.dir, 'no-suricata.yaml')}`,
    ...(opts.suricata ? [`--suricata=${opts.suricata}`] : []),
    `--output=${outDir}`,
    `--enable-conf=${layout.emptyConf}`,
    `--disable-conf=${layout.emptyConf}`,
    `--modify-conf=${layout.emptyConf}`,
    `--drop-conf=${layout.emptyConf}`,
    '--no-test',
    '--no-reload',
    '--fail',
    '--force',
    `--url=${source.url}`,
  ];
}

/** Problems with the sources (JSON pointers): the schema checks them too; this is the last gate before argv. */
export function sourceProblems(sources: readonly SourceSpec[]): Problem[] {
  const problems: Problem[] = [];
  const nameRe = new RegExp(NAME_PATTERN);
  const seen = new Set<string>();
  sources.forEach((s, i) => {
    if (typeof s?.name !== 'string' || !nameRe.test(s.name)) problems.push({ path: `/ids/sources/${i}/name`, message: 'must be a name: lower-case letter, then up to 31 of a-z 0-9 _ -' });
    else if (seen.has(s.name)) problems.push({ path: `/ids/sources/${i}/name`, message: `duplicate source name "${s.name}"` });
    else seen.add(s.name);
    const p = typeof s?.url === 'string' && s.url.length <= 2048 ? ruleSourceUrlProblem(s.url) : 'must be a URL of at most 2048 characters';
    if (p) problems.push({ path: `/ids/sources/${i}/url`, message: p });
  });
  return problems;
}

const RULE_LINE_RE = /^#*\s*(alert|drop|pass|reject|rejectsrc|rejectdst|rejectboth)\s+\S.*\(.*\bsid\s*:\s*\d+\s*;.*\)\s*$/;

/** How many rules (enabled or commented out) a rules text holds. */
export function countRules(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) if (RULE_LINE_RE.test(line.trim())) n++;
  return n;
}

export interface FetchedSource {
  name: string;
  /** Kept in the manifest only (a subscription's URL may carry its access code): never in results or status. */
  url: string;
  rules: number;
}

export interface UpdateManifest {
  at: number;
  sources: FetchedSource[];
}

/** The absolute path of a program on PATH, or undefined. */
function which(program: string): string | undefined {
  if (isAbsolute(program)) return existsSync(program) ? program : undefined;
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export interface RuleUpdaterOptions {
  /** DATA/suricata. */
  suricataDir: string;
  log: Logger;
  /** The suricata-update program (default from PATH). */
  binary?: string;
  /** The suricata program suricata-update asks for its version (default from PATH). */
  suricata?: string;
  /** Milliseconds one source may take (default 300 s). */
  timeoutMs?: number;
}

export class RuleUpdater {
  readonly layout: UpdateLayout;

  constructor(private readonly opts: RuleUpdaterOptions) {
    this.layout = updateLayout(opts.suricataDir);
  }

  /** The suricata-update program, or undefined when it is not installed. */
  program(): string | undefined {
    return which(this.opts.binary ?? 'suricata-update');
  }

  /**
   * Fetch every source into staging (one suricata-update run each). Throws, with a problem per failed source and
   * staging removed, when suricata-update is missing, a source cannot be fetched or unpacked, or it holds no rules.
   */
  async fetch(sources: readonly SourceSpec[], opts: { suricataConf?: string } = {}): Promise<FetchedSource[]> {
    const problems = sourceProblems(sources);
    if (problems.length) throw RampartError.invalid(problems, 'invalid rule sources');
    if (!sources.length) throw RampartError.invalid([{ path: '/ids/sources', message: 'no rule sources are configured' }], 'no rule sources are configured (ids.sources)');
    const program = this.program();
    if (!program) {
      throw new RampartError(
        'unavailable',
        'suricata-update is not installed, so rule sources cannot be fetched (Debian package suricata-update); ruleFiles, localRules and the rules of earlier updates keep working',
      );
    }
    const L = this.layout;
    for (const d of [L.dir, L.dataDir, L.emptyDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
    // Its own configuration: nothing from /etc/suricata (filters, sources, distribution rules) leaks in.
    writeFileSync(L.updateYaml, `# Written by Rampart for suricata-update.\ndist-rule-directory: ${JSON.stringify(L.emptyDir)}\n`);
    writeFileSync(L.emptyConf, '');
    this.discard();
    mkdirSync(L.staging, { recursive: true, mode: 0o700 });
    const suricata = this.opts.suricata ? which(this.opts.suricata) : undefined;
    const fetched: FetchedSource[] = [];
    const failures: Problem[] = [];
    for (const [i, s] of sources.entries()) {
      const out = join(L.staging, `${s.name}.d`);
      let res: RunResult;
      try {
        res = await run(program, suricataUpdateArgs(L, s, out, { suricataConf: opts.suricataConf, suricata }), { allowFailure: true, timeoutMs: this.opts.timeoutMs ?? 300_000 });
      } catch (err) {
        failures.push({ path: `/ids/sources/${i}`, message: `${s.name}: ${RampartError.from(err).message}` });
        continue;
      }
      const merged = join(out, 'suricata.rules');
      if (res.exitCode !== 0 || !existsSync(merged)) {
        // The URL is left out (a subscription's URL may carry its access code): the name says which source.
        const why = (updateErrors(res) || `suricata-update exited with ${res.exitCode}`).split(s.url).join('(its url)');
        failures.push({ path: `/ids/sources/${i}`, message: `${s.name}: cannot fetch: ${why}` });
        continue;
      }
      const text = readFileSync(merged, 'utf8');
      const rules = countRules(text);
      if (!rules) {
        failures.push({ path: `/ids/sources/${i}`, message: `${s.name}: no rules in what was fetched (not a .rules file or an archive of .rules files)` });
        continue;
      }
      writeFileSync(sourceFile(L.staging, s.name), text, { mode: 0o600 });
      rmSync(out, { recursive: true, force: true });
      fetched.push({ name: s.name, url: s.url, rules });
    }
    if (failures.length) {
      this.discard();
      throw new RampartError('apply_failed', `rule update failed; the running rules stay active: ${failures.map((f) => f.message).join('; ')}`, failures);
    }
    this.opts.log.info({ sources: fetched.map((f) => `${f.name}: ${f.rules}`) }, 'ids: rule sources fetched');
    return fetched;
  }

  /** The fetched rules become the live ones (after the rule set built from them is loaded). */
  promote(fetched: FetchedSource[]): void {
    const L = this.layout;
    mkdirSync(L.live, { recursive: true, mode: 0o700 });
    for (const f of fetched) renameSync(sourceFile(L.staging, f.name), sourceFile(L.live, f.name));
    // Files of sources that are no longer configured (or were not part of this update) stay until replaced; the
    // manifest says what the last update fetched.
    const manifest: UpdateManifest = { at: Date.now(), sources: fetched };
    const tmp = `${L.manifest}.tmp`;
    writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, L.manifest);
    this.discard();
  }

  discard(): void {
    rmSync(this.layout.staging, { recursive: true, force: true });
  }

  /**
   * The rule texts of the configured sources for the rule merge: from staging when `staged` (an update being
   * checked), else from the last successful update. A source never fetched contributes nothing (yet).
   */
  ruleSources(sources: readonly SourceSpec[], staged = false): RuleSource[] {
    const out: RuleSource[] = [];
    const live = this.liveNames(sources);
    sources.forEach((s, i) => {
      const file = [staged ? sourceFile(this.layout.staging, s.name) : undefined, live.has(s.name) ? sourceFile(this.layout.live, s.name) : undefined].find((f) => f && existsSync(f));
      if (!file) return;
      try {
        out.push({ path: `source ${s.name}`, origin: `source ${s.name}`, pointer: `/ids/sources/${i}`, text: readFileSync(file, 'utf8') });
      } catch (err) {
        out.push({ path: `source ${s.name}`, origin: `source ${s.name}`, pointer: `/ids/sources/${i}`, error: (err as NodeJS.ErrnoException).code ?? String(err) });
      }
    });
    return out;
  }

  private manifest(): UpdateManifest | undefined {
    try {
      return JSON.parse(readFileSync(this.layout.manifest, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * The configured sources whose rules of the last update are on disk, fetched from the URL configured now (rules
   * fetched from another URL under the same name are not used: the source needs an update).
   */
  private liveNames(sources: readonly SourceSpec[]): Set<string> {
    const manifest = this.manifest();
    const files = new Set(existsSync(this.layout.live) ? readdirSync(this.layout.live).filter((f) => f.endsWith('.rules')).map((f) => f.slice(0, -6)) : []);
    return new Set(sources.filter((s) => files.has(s.name) && manifest?.sources.some((m) => m.name === s.name && m.url === s.url)).map((s) => s.name));
  }

  /** What the last update fetched, and which configured sources have rules on disk. */
  status(sources: readonly SourceSpec[]): Record<string, unknown> {
    const manifest = this.manifest();
    const have = this.liveNames(sources);
    return {
      available: !!this.program(),
      ...(manifest ? { lastUpdate: { at: manifest.at, sources: manifest.sources.map((m) => ({ name: m.name, rules: m.rules })) } } : {}),
      sources: sources.map((s) => ({ name: s.name, fetched: have.has(s.name) })),
    };
  }
}

/** suricata-update's error lines (without the timestamp prefix), shortened. */
function updateErrors(res: RunResult): string {
  const lines = (res.stderr + '\n' + res.stdout)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /<Error>|Error|error:|Traceback|Exception/.test(l))
    .map((l) => l.replace(/^.*?<Error>\s*--\s*/, ''));
  return lines.slice(-3).join(' | ').slice(0, 1000);
}
