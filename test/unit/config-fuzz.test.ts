/**
 * Property tests of configuration validation and the compiler (no root needed).
 *
 * (a) Garbage in: arbitrary JSON / JS values and damaged documents (the lab example and generated valid documents,
 *     with wrong types, hostile and huge strings, deleted and unknown fields) → `validateConfig` never throws; an
 *     invalid document gets at least one problem, and every problem's `path` is a well-formed JSON pointer naming an
 *     existing location of the input or the parent of a missing one. Damaged documents that still validate compile.
 * (b) Generated valid documents (test/helpers/arbitraries.ts) → `validateConfig` accepts them; compiling is
 *     deterministic (twice, from a copy, and with object keys in another order: same bytes); no free text of the
 *     document reaches the script; every chain, set and counter is declared once and every reference resolves.
 *
 * Seeds: fast-check prints seed and path of a failure; replay with FUZZ_SEED=<seed>.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { validateConfig, type ValidationResult } from '../../services/core/validate.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import {
  HOSTILE_STRINGS,
  TEXT_MARKER,
  applyMutations,
  decodePointer,
  freeTexts,
  mutationsArb,
  pointerExists,
  validConfigArb,
  type Doc,
} from '../helpers/arbitraries.ts';

const LAB_DOC = JSON.parse(readFileSync(new URL('../../system/examples/lab.json', import.meta.url), 'utf8')) as Doc;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, includeErrorInReport: true, ...(seed === undefined ? {} : { seed }) });

/** validateConfig must not throw; returns its result. */
function validateNoThrow(doc: unknown): ValidationResult {
  try {
    return validateConfig(doc);
  } catch (err) {
    throw new Error(`validateConfig threw: ${(err as Error)?.stack ?? String(err)}`);
  }
}

/** Problems that break the contract of an invalid result (empty when it holds). */
function problemViolations(doc: unknown, r: ValidationResult): string[] {
  const out: string[] = [];
  if (!Array.isArray(r.problems)) return ['problems is not an array'];
  if (r.ok) {
    if (r.problems.length) out.push('ok with problems');
    if (!r.config) out.push('ok without config');
    return out;
  }
  if (r.problems.length === 0) out.push('invalid without any problem');
  for (const p of r.problems) {
    if (typeof p.message !== 'string' || !p.message) out.push(`problem without message at ${JSON.stringify(p.path)}`);
    const tokens = decodePointer(p.path);
    if (!tokens) {
      out.push(`not a JSON pointer: ${JSON.stringify(p.path)} (${p.message})`);
      continue;
    }
    if (!pointerExists(doc, tokens) && !pointerExists(doc, tokens.slice(0, -1))) {
      out.push(`pointer names neither a location nor the parent of one: ${JSON.stringify(p.path)} (${p.message})`);
    }
  }
  return out;
}

/** A document that validated must compile, and nothing hostile it carries may reach the script. */
function compileViolations(doc: unknown, r: ValidationResult): string[] {
  if (!r.ok || !r.config) return [];
  let script: string;
  try {
    script = compileRuleset(r.config).script;
  } catch (err) {
    return [`compileRuleset threw on a valid document: ${(err as Error)?.stack ?? String(err)}`];
  }
  const out: string[] = [];
  if (/flush ruleset|table inet evil|\u0000|\r/.test(script)) out.push('hostile text reached the script');
  // A mutation can move a structural value ("icmp", a rule id) into a comment: such a text legitimately appears in
  // the script through the field it came from, so only free texts that are no structural value of the document count.
  const structural = new Set(structuralStrings(doc));
  for (const t of freeTexts(doc)) {
    if (t.length >= 4 && !structural.has(t) && script.includes(t)) out.push(`free text in script: ${JSON.stringify(t.slice(0, 80))}`);
  }
  return out;
}

/** Every string value of a document that is not free text (see freeTexts), with the keys of objects. */
function structuralStrings(doc: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key?: string) => {
    if (typeof v === 'string') {
      if (!key || !['comment', 'description', 'contact', 'location'].includes(key)) out.push(v);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (out.push(k), walk(x, k));
  };
  walk(doc);
  return out;
}

function check(doc: unknown, withCompile = true): void {
  const r = validateNoThrow(doc);
  const v = [...problemViolations(doc, r), ...(withCompile ? compileViolations(doc, r) : [])];
  if (v.length) throw new Error(`${v.join('\n')}\nproblems: ${JSON.stringify(r.problems?.slice(0, 10))}`);
}

/* ------------------------------------------------------------------------------------------- (a) */

test('(a) arbitrary JSON values: validateConfig never throws, problems carry valid pointers', () => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }))), (v) => check(v, false)),
    params(250),
  );
});

test('(a) arbitrary JS values (NaN, undefined, -0, null prototypes, sparse arrays...): never throws', () => {
  fc.assert(
    fc.property(fc.anything({ withNullPrototype: true, withSparseArray: true, withBigInt: true, withDate: true, withMap: true, withSet: true, withBoxedValues: true }), (v) =>
      check(v, false),
    ),
    params(150),
  );
});

test('(a) damaged lab example: never throws, pointers resolve, still-valid documents compile cleanly', () => {
  assert.ok(validateConfig(LAB_DOC).ok, 'the lab example itself must be valid');
  fc.assert(fc.property(mutationsArb, (muts) => check(applyMutations(LAB_DOC, muts))), params(300));
});

test('(a) damaged generated documents: never throws, pointers resolve, still-valid documents compile cleanly', () => {
  fc.assert(
    fc.property(validConfigArb({ maxRules: 20, maxBlocklistEntries: 10 }), mutationsArb, (doc, muts) => check(applyMutations(doc, muts))),
    params(150),
  );
});

test('(a) hostile strings in every string position of the lab example are rejected or kept out of the script', () => {
  // Exhaustive over positions (not random): each string value of the example, replaced by each hostile string.
  const positions: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    if (typeof v === 'string') positions.push(p);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(LAB_DOC, []);
  for (const p of positions) {
    for (const h of HOSTILE_STRINGS) {
      const doc = structuredClone(LAB_DOC);
      let parent = doc as Doc;
      for (const k of p.slice(0, -1)) parent = parent[k as string];
      parent[p[p.length - 1] as string] = h;
      try {
        check(doc);
      } catch (err) {
        throw new Error(`at /${p.join('/')} = ${JSON.stringify(h)}: ${(err as Error).message}`);
      }
    }
  }
});

/* ------------------------------------------------------------------------------------------- (b) */

/** Same document with the members of every object in another (reversed or rotated) order. */
function reorderKeys(v: unknown, salt: number): unknown {
  if (Array.isArray(v)) return v.map((x) => reorderKeys(x, salt));
  if (!v || typeof v !== 'object') return v;
  const entries = Object.entries(v);
  const k = entries.length ? salt % entries.length : 0;
  const order = salt % 2 ? entries.reverse() : [...entries.slice(k), ...entries.slice(0, k)];
  return Object.fromEntries(order.map(([key, x]) => [key, reorderKeys(x, salt + 1)]));
}

/**
 * Per table: declarations of chains, sets and counters are unique, and every goto/jump, @set and named counter
 * resolves to a declaration of the same table.
 */
function structureViolations(script: string): string[] {
  const out: string[] = [];
  type Decl = { chain: Map<string, number>; set: Map<string, number>; counter: Map<string, number> };
  const tables = new Map<string, { decl: Decl; refs: { kind: keyof Decl; name: string; line: string }[] }>();
  let current: { decl: Decl; refs: { kind: keyof Decl; name: string; line: string }[] } | undefined;
  for (const line of script.split('\n')) {
    const t = /^table (\S+ \S+) \{/.exec(line);
    if (t) {
      if (tables.has(t[1])) out.push(`table ${t[1]} declared twice in one script`);
      current = { decl: { chain: new Map(), set: new Map(), counter: new Map() }, refs: [] };
      tables.set(t[1], current);
      continue;
    }
    if (line === '}') {
      current = undefined;
      continue;
    }
    if (!current) continue;
    const m = /^\t(chain|set|map|counter) (\S+) \{/.exec(line);
    if (m) {
      // Named maps and sets share one namespace and are both referenced with @.
      const map = current.decl[(m[1] === 'map' ? 'set' : m[1]) as keyof Decl];
      map.set(m[2], (map.get(m[2]) ?? 0) + 1);
    }
    for (const r of line.matchAll(/\b(?:goto|jump) ([A-Za-z0-9_./-]+)/g)) current.refs.push({ kind: 'chain', name: r[1], line });
    for (const r of line.matchAll(/@([A-Za-z0-9_./-]+)/g)) current.refs.push({ kind: 'set', name: r[1], line });
    for (const r of line.matchAll(/counter name "([^"]+)"/g)) current.refs.push({ kind: 'counter', name: r[1], line });
  }
  for (const [table, { decl, refs }] of tables) {
    for (const [kind, map] of Object.entries(decl)) {
      for (const [name, n] of map) if (n > 1) out.push(`${table}: ${kind} ${name} declared ${n} times (the rules of different scopes are merged into one chain)`);
    }
    for (const r of refs) if (!decl[r.kind].has(r.name)) out.push(`${table}: reference to undeclared ${r.kind} ${r.name}: ${r.line.trim()}`);
  }
  return out;
}

test('(b) generated valid documents validate', () => {
  fc.assert(
    fc.property(validConfigArb(), (doc) => {
      const r = validateNoThrow(doc);
      if (!r.ok) throw new Error(`generated document rejected: ${JSON.stringify(r.problems.slice(0, 5))}`);
    }),
    params(200),
  );
});

test('(b) compile is deterministic and keeps free text (comments, descriptions...) out of the script', () => {
  fc.assert(
    fc.property(validConfigArb(), fc.nat(), (doc, salt) => {
      const config = validateConfig(doc).config!;
      const a = compileRuleset(config);
      const b = compileRuleset(config);
      assert.is(b.script, a.script, 'second compile differs');
      const c = compileRuleset(validateConfig(structuredClone(doc)).config!);
      assert.is(c.script, a.script, 'compile of a copy differs');
      const d = compileRuleset(validateConfig(reorderKeys(doc, salt)).config!);
      assert.is(d.script, a.script, 'compile with object members in another order differs');
      assert.equal(d.lineMap, a.lineMap);
      assert.is(a.fingerprint, d.fingerprint);
      assert.is(a.lineMap.length, a.script.split('\n').length - 1, 'lineMap has one entry per line');
      assert.not.ok(a.script.includes(TEXT_MARKER), 'free text (marker) in the script');
      for (const t of freeTexts(doc)) if (t && a.script.includes(t)) throw new Error(`free text in script: ${JSON.stringify(t)}`);
      assert.not.ok(/flush ruleset|table inet evil|\u0000|\r/.test(a.script), 'hostile text in the script');
    }),
    params(200),
  );
});

test('(b) every chain, set and counter is declared once, every reference resolves', () => {
  fc.assert(
    fc.property(validConfigArb(), (doc) => {
      const script = compileRuleset(validateConfig(doc).config!).script;
      const v = structureViolations(script);
      if (v.length) throw new Error(v.join('\n'));
    }),
    params(250),
  );
});

test.run();
