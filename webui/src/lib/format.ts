/** Formatting helpers shared by the pages. */
import { SECRET_CHANGED_MARKER, SECRET_MARKER, SECRET_PATHS } from '../../../services/core/secrets.ts';

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function rate(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond)) return '–';
  return `${bytes(bytesPerSecond * 8).replace('B', 'b')}/s`;
}

export function count(n: number | undefined): string {
  if (n === undefined) return '–';
  return n.toLocaleString('en');
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function time(t: number | string | undefined): string {
  if (t === undefined) return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString('en-GB', { hour12: false });
}

/** Services of a rule, short. */
export function services(list: unknown[] | undefined): string {
  if (!list?.length) return 'any';
  return list
    .map((s) => (typeof s === 'string' ? s : `${(s as { proto: string }).proto}${(s as { ports?: string[] }).ports?.length ? '/' + (s as { ports: string[] }).ports.join(',') : ''}`))
    .join(', ');
}

/** A line diff (longest common subsequence) of two texts: each line with ' ', '-' or '+'. */
export function lineDiff(a: string, b: string): { op: ' ' | '-' | '+'; text: string }[] {
  const x = a.split('\n');
  const y = b.split('\n');
  // Trim the common head and tail, then LCS on the middle (small for config edits).
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xm = x.slice(head, x.length - tail);
  const ym = y.slice(head, y.length - tail);
  const out: { op: ' ' | '-' | '+'; text: string }[] = x.slice(0, head).map((text) => ({ op: ' ' as const, text }));
  if (xm.length * ym.length > 4_000_000) {
    for (const text of xm) out.push({ op: '-', text });
    for (const text of ym) out.push({ op: '+', text });
  } else {
    const n = xm.length;
    const m = ym.length;
    const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = xm[i] === ym[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (xm[i] === ym[j]) {
        out.push({ op: ' ', text: xm[i] });
        i++;
        j++;
      } else if (L[i + 1][j] >= L[i][j + 1]) out.push({ op: '-', text: xm[i++] });
      else out.push({ op: '+', text: ym[j++] });
    }
    while (i < n) out.push({ op: '-', text: xm[i++] });
    while (j < m) out.push({ op: '+', text: ym[j++] });
  }
  for (const text of x.slice(x.length - tail)) out.push({ op: ' ', text });
  return out;
}

/** Problems under a JSON pointer prefix, keyed by the rest of the pointer. */
export function problemsUnder(problems: { path: string; message: string }[], prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of problems) {
    if (p.path === prefix || p.path.startsWith(prefix + '/')) {
      const rest = p.path.slice(prefix.length).split('/')[1] ?? '';
      out[rest] = out[rest] ? `${out[rest]}; ${p.message}` : p.message;
    }
  }
  return out;
}

/** "12 s ago", "3 min ago"… for a past instant (epoch ms) seen from `now`. */
export function ago(at: number | undefined, now: number): string {
  if (at === undefined) return '–';
  return `${duration(Math.max(0, (now - at) / 1000))} ago`;
}

/** The value a JSON pointer (RFC 6901) names in a document, or undefined. */
export function atPointer(doc: unknown, path: string): unknown {
  let v: unknown = doc;
  for (const raw of path.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    v = Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
  }
  return v;
}

/** Words of a list field: split at spaces, commas and line breaks. */
export const tokens = (s: string): string[] => s.split(/[\s,]+/).filter(Boolean);

/**
 * A copy of a configuration document with its secrets (the one list: services/core/secrets.ts) replaced by
 * "(secret)". The API already sends them so; this is a second line of defence for showing documents (diffs), and
 * leaves the API's "(secret, changed)" as it is. Never for applying documents.
 */
export function redactSecrets<T>(doc: T): T {
  const d = JSON.parse(JSON.stringify(doc)) as unknown;
  const walk = (v: any, path: string[]) => {
    if (!v || typeof v !== 'object') return;
    const [head, ...rest] = path;
    const keys = head === '*' ? (Array.isArray(v) ? v.map((_x, i) => String(i)) : []) : [head];
    for (const k of keys) {
      if (!Object.hasOwn(v, k)) continue;
      if (rest.length) walk(v[k], rest);
      else if (v[k] !== SECRET_CHANGED_MARKER) v[k] = SECRET_MARKER;
    }
  };
  for (const p of SECRET_PATHS) walk(d, p.split('/').slice(1));
  return d as T;
}
