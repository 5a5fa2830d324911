/**
 * Rule management (pure): the rule files and local rules of the configuration merged into one rules file, with
 * per-SID enable / disable / drop, plus the threshold file (suppress and threshold entries). Every output line
 * remembers where it came from, so an error Suricata reports at "line N" maps back to the file or the config entry.
 */
import type { Problem } from '../core/errors.ts';
import type { Config } from '../core/schema.ts';
import { parsePrefix } from '../core/net.ts';

const ACTIONS = ['alert', 'drop', 'pass', 'reject', 'rejectsrc', 'rejectdst', 'rejectboth'];
const RULE_RE = new RegExp(`^(${ACTIONS.join('|')})\\s+\\S.*\\(.*\\)\\s*$`);
const SID_RE = /(?:^|[;(\s])sid\s*:\s*(\d{1,10})\s*;/;
const MSG_RE = /(?:^|[;(\s])msg\s*:\s*"((?:[^"\\]|\\.)*)"/;
const CLASSTYPE_RE = /(?:^|[;(\s])classtype\s*:\s*([A-Za-z0-9_-]+)\s*;/;
const PRIORITY_RE = /(?:^|[;(\s])priority\s*:\s*(\d)\s*;/;
export const MAX_SID = 4_294_967_295;

/** Why a rule string cannot be used, or undefined. Suricata itself checks the rest (`suricata -T`). */
export function ruleProblem(rule: unknown): string | undefined {
  if (typeof rule !== 'string') return 'must be a string';
  if (rule.length > 8192) return 'longer than 8192 characters';
  // A newline would smuggle a second rule (or anything) into the rules file.
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(rule)) return 'must be one line without control characters';
  const r = rule.trim();
  if (!RULE_RE.test(r)) return `not a rule: must be "<${ACTIONS.slice(0, 3).join('|')}|...> <header> (<options>)"`;
  const sid = SID_RE.exec(r);
  if (!sid) return 'has no sid option';
  const n = Number(sid[1]);
  if (n < 1 || n > MAX_SID) return `sid ${sid[1]} is out of range (1-${MAX_SID})`;
  return undefined;
}

export interface RuleInfo {
  sid: number;
  msg: string;
  action: string;
  enabled: boolean;
  /** "file PATH:LINE" or "localRules/N". */
  origin: string;
  classtype?: string;
  priority?: number;
}

export interface MergedRules {
  /** The rules file. */
  text: string;
  /** Origin of each line of `text` (index 0 is line 1). */
  origins: string[];
  rules: RuleInfo[];
  /** Problems in the configuration (JSON pointers); nothing is written when there are any. */
  problems: Problem[];
}

export interface RuleSource {
  /** As written in the configuration. */
  path: string;
  /** How its lines are named in origins (default `file PATH`): e.g. `source NAME` for a fetched rule source. */
  origin?: string;
  /** JSON pointer of the configuration entry it comes from (default `/ids/ruleFiles/N`). */
  pointer?: string;
  /** Its text, or undefined when it could not be read. */
  text?: string;
  error?: string;
}

function parseRule(line: string): { action: string; sid: number; msg: string; classtype?: string; priority?: number } | undefined {
  if (!RULE_RE.test(line)) return undefined;
  const sid = SID_RE.exec(line);
  if (!sid) return undefined;
  const ct = CLASSTYPE_RE.exec(line);
  const pr = PRIORITY_RE.exec(line);
  return {
    action: line.slice(0, line.search(/\s/)),
    sid: Number(sid[1]),
    msg: MSG_RE.exec(line)?.[1] ?? '',
    ...(ct ? { classtype: ct[1] } : {}),
    ...(pr ? { priority: Number(pr[1]) } : {}),
  };
}

/**
 * Merge rule files and fetched rule sources (in the order given) and local rules (last, so a local rule replaces a
 * file rule with the same SID).
 */
export function mergeRules(ids: Config['ids'], sources: RuleSource[]): MergedRules {
  const problems: Problem[] = [];
  const enable = new Set(ids.sids.enable);
  const disable = new Set(ids.sids.disable);
  const drop = new Set(ids.sids.drop);
  for (const sid of enable) if (disable.has(sid)) problems.push({ path: '/ids/sids/enable', message: `sid ${sid} is both enabled and disabled` });
  const bySid = new Map<number, { line: string; info: RuleInfo }>();
  const take = (raw: string, origin: string, commented: boolean) => {
    const rule = parseRule(raw);
    if (!rule) return false;
    let enabled = !commented;
    if (enable.has(rule.sid)) enabled = true;
    if (disable.has(rule.sid)) enabled = false;
    let line = raw;
    let action = rule.action;
    if (drop.has(rule.sid) && action !== 'drop') {
      line = 'drop' + line.slice(action.length);
      action = 'drop';
    }
    bySid.delete(rule.sid);
    bySid.set(rule.sid, {
      line: enabled ? line : `# ${line}`,
      info: { sid: rule.sid, msg: rule.msg, action, enabled, origin, ...(rule.classtype ? { classtype: rule.classtype } : {}), ...(rule.priority ? { priority: rule.priority } : {}) },
    });
    return true;
  };
  sources.forEach((src, i) => {
    if (src.text === undefined) {
      problems.push({ path: src.pointer ?? `/ids/ruleFiles/${i}`, message: `cannot read ${src.path}: ${src.error ?? 'unreadable'}` });
      return;
    }
    const origin = src.origin ?? `file ${src.path}`;
    src.text.split('\n').forEach((l, n) => {
      const t = l.trim();
      if (!t) return;
      // Control characters other than tab make a line unusable; skip it (a rule file is not trusted more than config).
      if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(t)) return;
      if (t.startsWith('#')) take(t.replace(/^#+\s*/, ''), `${origin}:${n + 1}`, true);
      else take(t, `${origin}:${n + 1}`, false);
    });
  });
  ids.localRules.forEach((r, i) => {
    const p = ruleProblem(r);
    if (p) problems.push({ path: `/ids/localRules/${i}`, message: p });
    else take(r.trim(), `localRules/${i}`, false);
  });
  const lines = ['# Generated by Rampart from the configuration; changes here are overwritten.'];
  const origins = ['(header)'];
  const rules: RuleInfo[] = [];
  for (const { line, info } of [...bySid.values()].sort((a, b) => a.info.sid - b.info.sid)) {
    lines.push(line);
    origins.push(info.origin);
    rules.push(info);
  }
  return { text: lines.join('\n') + '\n', origins, rules, problems };
}

/**
 * threshold.config: suppress and threshold entries. Addresses are resolved (objects) and parsed, so only canonical
 * prefixes reach the file.
 */
export function thresholdConfig(ids: Config['ids'], resolve: (ref: string) => string[] | undefined): { text: string; problems: Problem[] } {
  const problems: Problem[] = [];
  const lines = ['# Generated by Rampart from the configuration.'];
  ids.suppress.forEach((s, i) => {
    if (!s.ip?.length) {
      lines.push(`suppress gen_id 1, sig_id ${s.sid}`);
      return;
    }
    const track = s.track ?? 'by_src';
    s.ip.forEach((ref, j) => {
      const list = resolve(ref);
      if (!list) return problems.push({ path: `/ids/suppress/${i}/ip/${j}`, message: 'not an IP address or object name' });
      for (const a of list) {
        const p = parsePrefix(a);
        if (!p) return problems.push({ path: `/ids/suppress/${i}/ip/${j}`, message: `not an IP address: ${a}` });
        lines.push(`suppress gen_id 1, sig_id ${s.sid}, track ${track}, ip ${p.text}`);
      }
    });
  });
  ids.thresholds.forEach((t) => {
    lines.push(`threshold gen_id 1, sig_id ${t.sid}, type ${t.type}, track ${t.track}, count ${t.count}, seconds ${t.seconds}`);
  });
  return { text: lines.join('\n') + '\n', problems };
}

/**
 * Map Suricata's error output (`suricata -T`) to the offending rules: "... at line N" in the rules file becomes the
 * rule's origin (config entry or source file line).
 */
export function ruleErrors(output: string, merged: Pick<MergedRules, 'origins'>, rulesFile: string): { line: number; origin: string; message: string }[] {
  const out: { line: number; origin: string; message: string }[] = [];
  const seen = new Set<number>();
  for (const l of output.split('\n')) {
    const m = /from file (\S+) at line (\d+)/.exec(l);
    if (!m || !m[1].endsWith(rulesFile)) continue;
    const line = Number(m[2]);
    if (seen.has(line)) continue;
    seen.add(line);
    out.push({ line, origin: merged.origins[line - 1] ?? 'unknown', message: l.replace(/^.*?(Error|error):\s*/, '').slice(0, 500) });
  }
  return out;
}
