/**
 * blocks-50k: 50,000 distinct single addresses (10% IPv6) blocked with a one-hour TTL in one
 * `rampart block - --ttl 3600` call (addresses on stdin), against one hand-written `nft -f` script that adds the same
 * elements with the same timeouts to equivalent `flags timeout` hash sets in a scratch table. One round of both first,
 * not measured. Between runs: `rampart unblock --all` and a flush of the scratch sets (not measured).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blockAddresses, labDoc } from './configs.ts';
import {
  BIN,
  CLI_ENV,
  median,
  mustRun,
  nftIn,
  rampartArgs,
  removeTempDir,
  secs,
  startRampartd,
  nftPhases,
  tempDir,
  timed,
  traceChildren,
  type Result,
} from './lib.ts';
import type { BenchContext } from './run.ts';

export const COUNT = 50_000;
const TTL = 3600;
const SCRATCH = 'inet rampart_bench';
const TARGET = { maxValue: 2, maxRatio: 1.5 };

/** Element count of a set, from `nft -j list set`. */
async function setSize(netns: string, family: string, table: string, set: string): Promise<number> {
  const r = await nftIn(netns, ['-j', 'list', 'set', family, table, set]);
  const doc = JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
  return doc.nftables.find((o) => o.set)?.set?.elem?.length ?? 0;
}

export async function blocksBench(ctx: BenchContext): Promise<Result> {
  const runs = ctx.runs ?? 5;
  const dir = tempDir('blocks');
  const fw = ctx.lab.fw;
  const daemon = await startRampartd({ netns: fw, config: labDoc(), dataDir: join(dir, 'data') });
  try {
    const addrs = blockAddresses(COUNT, 0.1);
    const v4 = addrs.filter((a) => !a.includes(':'));
    const v6 = addrs.filter((a) => a.includes(':'));
    const listFile = join(dir, 'addresses.txt');
    writeFileSync(listFile, addrs.join('\n') + '\n');

    // The baseline: what an administrator would write by hand for the same result.
    const setupFile = join(dir, 'scratch-setup.nft');
    writeFileSync(
      setupFile,
      [
        `add table ${SCRATCH}`,
        `add set ${SCRATCH} h4 { type ipv4_addr; flags timeout; }`,
        `add set ${SCRATCH} h6 { type ipv6_addr; flags timeout; }`,
        `flush set ${SCRATCH} h4`,
        `flush set ${SCRATCH} h6`,
      ].join('\n') + '\n',
    );
    const elements = (list: string[]) => {
      const lines: string[] = [];
      for (let i = 0; i < list.length; i += 500) lines.push('\t' + list.slice(i, i + 500).map((a) => `${a} timeout ${TTL}s`).join(', '));
      return lines.join(',\n');
    };
    const addFile = join(dir, 'scratch-add.nft');
    writeFileSync(addFile, `add element ${SCRATCH} h4 {\n${elements(v4)}\n}\nadd element ${SCRATCH} h6 {\n${elements(v6)}\n}\n`);
    const flushFile = join(dir, 'scratch-flush.nft');
    writeFileSync(flushFile, `flush set ${SCRATCH} h4\nflush set ${SCRATCH} h6\n`);
    await nftIn(fw, ['-f', setupFile]);

    const rampartMs: number[] = [];
    const nftMs: number[] = [];
    const checks: Record<string, unknown> = {};
    const rampart = async (first: boolean) => {
      const r = await timed(BIN, rampartArgs(daemon.dataDir, fw, ['block', '-', '--ttl', String(TTL)]), { env: CLI_ENV, stdinFile: listFile });
      if (r.code !== 0) throw new Error(`rampart block failed (exit ${r.code}): ${r.stderr.trim().slice(0, 1500)}`);
      if (!first) rampartMs.push(r.ms);
      if (first) {
        checks.rampartOutput = r.stdout.trim();
        checks.rampartKernelElements = (await setSize(fw, 'inet', 'rampart_blocks', 'b4h')) + (await setSize(fw, 'inet', 'rampart_blocks', 'b6h'));
      }
      const u = await mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['unblock', '--all', '--json']), { env: CLI_ENV });
      if (first) checks.unblockAll = JSON.parse(u.stdout);
      return r.ms;
    };
    const nft = async (first: boolean) => {
      const r = await nftIn(fw, ['-f', addFile]);
      if (!first) nftMs.push(r.ms);
      if (first) checks.nftKernelElements = (await setSize(fw, 'inet', 'rampart_bench', 'h4')) + (await setSize(fw, 'inet', 'rampart_bench', 'h6'));
      await nftIn(fw, ['-f', flushFile]);
      return r.ms;
    };
    // One round first, not measured, which also checks both results: the daemon's code paths are compiled by then
    // (a long-running daemon's are), and the kernel has seen both sets before.
    await rampart(true);
    await nft(true);
    for (let i = 0; i < runs; i++) {
      let ra: number;
      let na: number;
      if (i % 2 === 0) {
        ra = await rampart(false);
        na = await nft(false);
      } else {
        na = await nft(false);
        ra = await rampart(false);
      }
      ctx.progress(`run ${i + 1}/${runs}: rampart block ${secs(ra)} s, nft -f ${secs(na)} s`);
    }
    // One extra block (not in the medians) traced from outside, split where the daemon runs nft.
    const traced = await traceChildren(daemon.pid, () =>
      mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['block', '-', '--ttl', String(TTL)]), { env: CLI_ENV, stdinFile: listFile }),
    );
    const phases = nftPhases(traced);
    await mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['unblock', '--all']), { env: CLI_ENV });
    // Fixed cost of one `rampart block` call (CLI start, control socket, one nft process): one address.
    const singleMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['block', '198.18.0.1', '--ttl', String(TTL)]), { env: CLI_ENV });
      singleMs.push(r.ms);
      await mustRun(BIN, rampartArgs(daemon.dataDir, fw, ['unblock', '--all']), { env: CLI_ENV });
    }
    if (checks.rampartKernelElements !== COUNT || checks.nftKernelElements !== COUNT) {
      throw new Error(`element counts differ from ${COUNT}: ${JSON.stringify(checks)}`);
    }

    const value = median(rampartMs) / 1000;
    const baseline = median(nftMs) / 1000;
    const ratio = value / baseline;
    return {
      name: 'blocks-50k',
      value,
      baseline,
      ratio,
      target: TARGET,
      pass: value <= TARGET.maxValue && ratio <= TARGET.maxRatio,
      unit: 's',
      details: {
        runs,
        addresses: COUNT,
        ipv4: v4.length,
        ipv6: v6.length,
        ttlSeconds: TTL,
        rampartBlockSeconds: rampartMs.map(secs),
        nftSeconds: nftMs.map(secs),
        singleAddressBlockSeconds: secs(median(singleMs)),
        tracedBlockSeconds: phases ?? { total: secs(traced.ms), note: 'no nft child seen' },
        baselineSets: 'table inet rampart_bench: h4 ipv4_addr + h6 ipv6_addr, flags timeout (hash); one add element statement per set',
        checks,
      },
    };
  } finally {
    await nftIn(fw, ['delete', 'table', 'inet', 'rampart_bench']).catch(() => undefined);
    await daemon.stop();
    removeTempDir(dir);
  }
}
