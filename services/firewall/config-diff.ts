/** A structural diff of two configuration documents, as JSON-pointer operations (for `plan` and `diff`). */
import { pointerToken } from '../core/errors.ts';

export interface Change {
  op: 'add' | 'remove' | 'replace';
  path: string;
  from?: unknown;
  to?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Arrays of objects with an `id` or `name` are matched by that key, so a reorder or insert reads as such. */
function keyOf(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  const k = v.id ?? v.name;
  return typeof k === 'string' ? k : undefined;
}

export function configDiff(a: unknown, b: unknown, path = ''): Change[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (isObject(a) && isObject(b)) {
    const out: Change[] = [];
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const p = `${path}/${pointerToken(k)}`;
      if (!(k in b)) out.push({ op: 'remove', path: p, from: a[k] });
      else if (!(k in a)) out.push({ op: 'add', path: p, to: b[k] });
      else out.push(...configDiff(a[k], b[k], p));
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const keyed = a.every((x) => keyOf(x)) && b.every((x) => keyOf(x));
    if (keyed) {
      const out: Change[] = [];
      const aIdx = new Map(a.map((x, i) => [keyOf(x)!, i]));
      const bIdx = new Map(b.map((x, i) => [keyOf(x)!, i]));
      a.forEach((x, i) => {
        if (!bIdx.has(keyOf(x)!)) out.push({ op: 'remove', path: `${path}/${i}`, from: x });
      });
      b.forEach((x, i) => {
        const j = aIdx.get(keyOf(x)!);
        if (j === undefined) out.push({ op: 'add', path: `${path}/${i}`, to: x });
        else {
          if (j !== i) out.push({ op: 'replace', path: `${path}/${i}`, from: `(moved from position ${j})`, to: `(position ${i})` });
          out.push(...configDiff(a[j], x, `${path}/${i}`));
        }
      });
      return out;
    }
    const out: Change[] = [];
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (i >= b.length) out.push({ op: 'remove', path: `${path}/${i}`, from: a[i] });
      else if (i >= a.length) out.push({ op: 'add', path: `${path}/${i}`, to: b[i] });
      else out.push(...configDiff(a[i], b[i], `${path}/${i}`));
    }
    return out;
  }
  return [{ op: 'replace', path: path || '', from: a, to: b }];
}
