/**
 * Runs every uvu test file in its own Node process (TypeScript through tsx), prints each file's output, and ends
 * with the line `N passed, N failed` (plus `, N skipped`). Usage: run-tests [--jobs N] DIR|FILE...
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
let jobs = 1;
const targets: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--jobs') jobs = Number(args[++i]);
  else targets.push(args[i]);
}
const filter = process.env.TEST_FILTER ? new RegExp(process.env.TEST_FILTER) : undefined;

function collect(p: string): string[] {
  const st = statSync(p);
  if (st.isFile()) return [p];
  return readdirSync(p)
    .sort()
    .flatMap((name) => {
      const full = join(p, name);
      if (statSync(full).isDirectory()) return collect(full);
      return /\.test\.ts$/.test(name) ? [full] : [];
    });
}

const files = targets.flatMap(collect).filter((f) => !filter || filter.test(f));
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

interface Outcome { file: string; passed: number; failed: number; skipped: number; ms: number; output: string }

function runFile(file: string): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const limit = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 600_000);
    const timer = setTimeout(() => {
      output += `\n[runner] ${file} exceeded ${limit} ms, killed\n`;
      child.kill('SIGKILL');
    }, limit);
    child.on('close', (code) => {
      clearTimeout(timer);
      const text = strip(output);
      const num = (label: string) => {
        const m = text.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'));
        return m ? Number(m[1]) : undefined;
      };
      const total = num('Total');
      const passed = num('Passed') ?? 0;
      const skipped = num('Skipped') ?? 0;
      let failed = total === undefined ? 1 : total - passed - skipped;
      if (code !== 0 && failed === 0) failed = 1;
      resolve({ file, passed, failed, skipped, ms: Date.now() - started, output: text });
    });
  });
}

const outcomes: Outcome[] = [];
let next = 0;
async function worker() {
  while (next < files.length) {
    const file = files[next++];
    const o = await runFile(file);
    outcomes.push(o);
    const mark = o.failed ? 'FAIL' : 'ok  ';
    process.stdout.write(`\n=== ${mark} ${relative(process.cwd(), file)} (${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped, ${o.ms} ms)\n`);
    if (o.failed || process.env.TEST_VERBOSE) process.stdout.write(o.output.trimEnd() + '\n');
    else {
      for (const line of o.output.split('\n')) if (/^SKIP\b/.test(line)) process.stdout.write(line + '\n');
    }
  }
}
await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));

const sum = (k: 'passed' | 'failed' | 'skipped') => outcomes.reduce((a, o) => a + o[k], 0);
const failedFiles = outcomes.filter((o) => o.failed).map((o) => relative(process.cwd(), o.file));
if (failedFiles.length) process.stdout.write(`\nfailed files:\n  ${failedFiles.join('\n  ')}\n`);
process.stdout.write(`\n${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped\n`);
process.exitCode = sum('failed') ? 1 : 0;
