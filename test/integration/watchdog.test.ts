/** The firewall watchdog restores the running ruleset when it disappears behind the daemon's back. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../services/host/exec.ts';
import { startLab, type Lab } from '../helpers/lab.ts';
import { labConfig, rulesetText, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';

let lab: Lab;
let d: TestDaemon;

test.before(async () => {
  lab = await startLab();
  process.env.RAMPART_WATCH_SECONDS = '1';
  d = await startDaemon({ netns: lab.fw, config: labConfig() });
});

test.after(async () => {
  await d?.cleanup();
  await lab?.down();
});

test('a flushed ruleset comes back by itself, blocklists and dynamic blocks included', async () => {
  await d.call('block', { address: '203.0.113.99', ttlSeconds: 600 });
  const before = await rulesetText(lab.fw);
  assert.match(before, /table inet rampart \{/);
  assert.match(before, /table inet rampart_lists \{/);
  await run('ip', ['netns', 'exec', lab.fw, 'nft', 'flush', 'ruleset']);
  assert.not.match(await rulesetText(lab.fw), /table inet rampart \{/);
  await waitFor(async () => /table inet rampart \{/.test(await rulesetText(lab.fw)), 15_000, 'the watchdog to restore the table');
  const after = await rulesetText(lab.fw);
  assert.match(after, /table inet rampart_lists \{/);
  assert.match(after, /203\.0\.113\.66/);
  await waitFor(async () => /table inet rampart_blocks \{[^]*203\.0\.113\.99/.test(await rulesetText(lab.fw)), 15_000, 'the dynamic blocks to come back');
  const status = await d.call('status');
  assert.is(status.firewall.state, 'ok');
});

test.run();
