/**
 * Secrets of the configuration document (SPEC §3): the one list of the fields that are passwords, keys, tokens or
 * communities, and the two pure functions that keep them write-only in the API.
 *
 * - `redactSecrets(doc)`: a copy with every present secret replaced by the marker `"(secret)"`.
 * - `restoreSecrets(doc, running)`: every secret whose value is the marker takes the value of its counterpart in the
 *   running document; a marker without one is a problem at its JSON pointer ("secret not set: enter a value").
 *
 * Counterparts in arrays: an element is matched to the running element with the same key (SNMP users: `name`;
 * v2c communities, whose name is the secret itself: their `sources`, as a set; notification targets: `host` and
 * `port`); several with the same key are told apart by their order. An element whose key changed (a renamed user,
 * a community with other sources) keeps its secret only while the array has as many elements as the running one
 * (it is then matched by position, if that running element has no other match); after an element was added or
 * removed, its secret must be entered again. So a removed community never lends its string to the next one.
 *
 * The marker is a plain string, so it cannot itself be used as a secret value. `"(secret, changed)"` only appears
 * in diffs (`redactForDiff`); a document that carries it is refused.
 */
import type { Problem } from './errors.ts';
import { pointerToken } from './errors.ts';

/** What a secret reads as in every API response. */
export const SECRET_MARKER = '(secret)';
/** In a diff between two versions: this secret differs from its counterpart in the other version (or is new). */
export const SECRET_CHANGED_MARKER = '(secret, changed)';

/** JSON pointers of every secret in the document; `*` is any index of an array. */
export const SECRET_PATHS = [
  '/snmp/communities/*/name',
  '/snmp/users/*/auth/key',
  '/snmp/users/*/priv/key',
  '/snmp/targets/*/community',
  '/telemetry/prometheus/token',
] as const;

type Json = unknown;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The key that identifies an element of an array holding secrets (undefined: none, matched by position only). */
const ARRAY_KEYS: Record<string, (el: Obj) => string | undefined> = {
  '/snmp/users': (u) => (typeof u.name === 'string' ? u.name : undefined),
  '/snmp/communities': (c) =>
    Array.isArray(c.sources) ? JSON.stringify([...new Set(c.sources.map((s) => String(s)))].sort()) : undefined,
  '/snmp/targets': (t) => (typeof t.host === 'string' ? `${t.host}|${typeof t.port === 'number' ? t.port : 162}` : undefined),
};

interface Pattern {
  /** Pointer of the array (wildcard patterns) or of the secret itself. */
  base: string[];
  /** Below an array element (wildcard patterns only). */
  field?: string[];
}

const tokensOf = (p: string): string[] => p.split('/').slice(1);

const PATTERNS: Pattern[] = SECRET_PATHS.map((p) => {
  const t = tokensOf(p);
  const star = t.indexOf('*');
  return star < 0 ? { base: t } : { base: t.slice(0, star), field: t.slice(star + 1) };
});

/** The array patterns grouped by array: fields of one element share one counterpart. */
const ARRAYS = new Map<string, { base: string[]; fields: string[][] }>();
for (const p of PATTERNS) {
  if (!p.field) continue;
  const k = '/' + p.base.join('/');
  const entry = ARRAYS.get(k) ?? { base: p.base, fields: [] };
  entry.fields.push(p.field);
  ARRAYS.set(k, entry);
}
const SCALARS = PATTERNS.filter((p) => !p.field).map((p) => p.base);

function getAt(v: Json, tokens: readonly string[]): Json {
  for (const t of tokens) {
    if (Array.isArray(v)) v = /^(0|[1-9][0-9]*)$/.test(t) ? v[Number(t)] : undefined;
    else if (isObj(v)) v = Object.hasOwn(v, t) ? v[t] : undefined;
    else return undefined;
  }
  return v;
}

/** Sets a value in place (the caller owns the copy); the parents exist. */
function setAt(v: Json, tokens: readonly string[], value: Json): void {
  const parent = getAt(v, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent[Number(last)] = value;
  else if (isObj(parent)) parent[last] = value;
}

const ptr = (tokens: readonly (string | number)[]): string => tokens.map((t) => '/' + pointerToken(t)).join('');

/**
 * A copy of `doc` to write secrets into: the top-level sections that hold secrets are copied, the rest (firewall
 * rules, blocklists of 100,000s of entries) is shared with `doc` and never written.
 */
function copyForSecrets(doc: Obj): Obj {
  const out: Obj = { ...doc };
  for (const section of new Set(PATTERNS.map((p) => p.base[0]))) {
    if (Object.hasOwn(doc, section) && doc[section] !== null && typeof doc[section] === 'object') out[section] = structuredClone(doc[section]);
  }
  return out;
}

/** A copy of the document with each present secret replaced by SECRET_MARKER (anything that is not an object: itself). */
export function redactSecrets<T>(doc: T): T {
  if (!isObj(doc)) return doc;
  const out = copyForSecrets(doc);
  for (const p of SCALARS) if (getAt(out, p) !== undefined) setAt(out, p, SECRET_MARKER);
  for (const { base, fields } of ARRAYS.values()) {
    const arr = getAt(out, base);
    if (!Array.isArray(arr)) continue;
    arr.forEach((el) => {
      for (const f of fields) if (getAt(el, f) !== undefined) setAt(el, f, SECRET_MARKER);
    });
  }
  return out as T;
}

/**
 * For each element of `docArr` in `want`, the index of its counterpart in `runArr` (or undefined): by key first
 * (every keyed element of the document takes its counterpart, so none is lent twice), then by position when both
 * arrays have the same length and that running element was not taken.
 */
function counterparts(arrayPtr: string, docArr: unknown[], runArr: unknown[], want: (i: number) => boolean): (number | undefined)[] {
  const keyOf = ARRAY_KEYS[arrayPtr] ?? (() => undefined);
  const key = (el: unknown) => (isObj(el) ? keyOf(el) : undefined);
  const runKeys = runArr.map(key);
  const taken = new Set<number>();
  const out: (number | undefined)[] = docArr.map(() => undefined);
  docArr.forEach((el, i) => {
    const k = key(el);
    if (k === undefined) return;
    const candidates = runKeys.flatMap((rk, j) => (rk === k && !taken.has(j) ? [j] : []));
    if (!candidates.length) return;
    const j = candidates.includes(i) ? i : candidates[0];
    taken.add(j);
    out[i] = j;
  });
  if (docArr.length === runArr.length) {
    docArr.forEach((_el, i) => {
      if (out[i] === undefined && want(i) && !taken.has(i) && isObj(runArr[i])) {
        taken.add(i);
        out[i] = i;
      }
    });
  }
  return out;
}

/**
 * Puts the running values back where `doc` holds SECRET_MARKER. `doc` is not changed; the result shares what holds
 * no secret. Problems (JSON pointers into `doc`): a marker without a counterpart, and SECRET_CHANGED_MARKER.
 * `running` may be given as a function: it is called only when `doc` holds a marker (reading it costs).
 */
export function restoreSecrets<T>(doc: T, running: unknown): { document: T; problems: Problem[] } {
  const problems: Problem[] = [];
  if (!isObj(doc)) return { document: doc, problems };
  const out = copyForSecrets(doc);
  // `running` may be a function giving the running document: called only when a marker needs it.
  let runningDoc: { value: unknown } | undefined;
  const run = () => (runningDoc ??= { value: typeof running === 'function' ? running() : running }).value;
  const restore = (at: (string | number)[], value: Json, from: () => Json) => {
    if (value === SECRET_CHANGED_MARKER) {
      problems.push({ path: ptr(at), message: `"${SECRET_CHANGED_MARKER}" only appears in diffs: enter a value, or "${SECRET_MARKER}" to keep the stored one` });
    } else if (value === SECRET_MARKER) {
      const stored = from();
      if (typeof stored === 'string' && stored !== SECRET_MARKER) setAt(out, at.map(String), stored);
      else problems.push({ path: ptr(at), message: 'secret not set: enter a value' });
    }
  };
  for (const p of SCALARS) restore(p, getAt(out, p), () => getAt(run(), p));
  for (const [arrayPtr, { base, fields }] of ARRAYS) {
    const arr = getAt(out, base);
    if (!Array.isArray(arr)) continue;
    const marked = (i: number) => fields.some((f) => getAt(arr[i], f) === SECRET_MARKER);
    const runArr = () => {
      const r = getAt(run(), base);
      return Array.isArray(r) ? r : [];
    };
    let match: (number | undefined)[] | undefined;
    arr.forEach((el, i) => {
      for (const f of fields) {
        restore([...base, i, ...f], getAt(el, f), () => {
          const j = (match ??= counterparts(arrayPtr, arr, runArr(), marked))[i];
          return j === undefined ? undefined : getAt(runArr()[j], f);
        });
      }
    });
  }
  return { document: out as T, problems };
}

/**
 * Both versions of a diff, redacted: `to` says SECRET_CHANGED_MARKER where its secret differs from the counterpart
 * in `from` (matched as restoreSecrets matches) or has none; `changed` lists those pointers (into `to`).
 */
export function redactForDiff<A, B>(from: A, to: B): { from: A; to: B; changed: string[] } {
  const changed: string[] = [];
  const red = redactSecrets(to);
  if (!isObj(to)) return { from: redactSecrets(from), to: red, changed };
  for (const p of SCALARS) {
    const v = getAt(to, p);
    if (v !== undefined && v !== getAt(from, p)) changed.push(ptr(p));
  }
  for (const [arrayPtr, { base, fields }] of ARRAYS) {
    const arr = getAt(to, base);
    if (!Array.isArray(arr)) continue;
    const fromArr = getAt(from, base);
    const runArr = Array.isArray(fromArr) ? fromArr : [];
    const match = counterparts(arrayPtr, arr, runArr, () => true);
    arr.forEach((el, i) => {
      for (const f of fields) {
        const v = getAt(el, f);
        if (v === undefined) continue;
        const j = match[i];
        if (j === undefined || getAt(runArr[j], f) !== v) changed.push(ptr([...base, i, ...f]));
      }
    });
  }
  for (const c of changed) setAt(red, tokensOf(c), SECRET_CHANGED_MARKER);
  return { from: redactSecrets(from), to: red, changed };
}

/** Whether a JSON pointer names a secret (for logs and messages that must not echo one). */
export function isSecretPointer(pointer: string): boolean {
  const t = tokensOf(pointer);
  return SECRET_PATHS.some((p) => {
    const q = tokensOf(p);
    return q.length === t.length && q.every((x, i) => x === t[i] || (x === '*' && /^(0|[1-9][0-9]*)$/.test(t[i])));
  });
}

/**
 * Problems of the markers left in a document that is about to be applied (validateConfig): "(secret)" that no running
 * value replaced, "(secret, changed)". A marker is never stored as a secret, whatever path the document came by
 * (API, control socket, MSSP).
 */
export function markerProblems(doc: unknown): Problem[] {
  return restoreSecrets(doc, undefined).problems;
}
