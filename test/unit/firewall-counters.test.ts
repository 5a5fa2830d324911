/**
 * Which named counter belongs to which rule (the per-rule telemetry and SNMP figures) comes from the compilation the
 * apply made: asking for the running configuration's counters does not compile its ruleset again, whatever was
 * compiled since; another configuration is compiled, and gives its own counters.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { silentLogger } from '../../services/core/log.ts';
import { parseConfig } from '../../services/core/validate.ts';
import { compileRuleset } from '../../services/firewall/compile.ts';
import { Firewall } from '../../services/firewall/apply.ts';
import { Host } from '../../services/host/exec.ts';

const golden = (name: string) => parseConfig(JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/golden', `${name}.json`), 'utf8')));

test('the counters of the configuration compiled last are not compiled again', () => {
  const store = new Store(':memory:').open();
  try {
    const fw = new Firewall(store, new Host(), silentLogger());
    const a = golden('three-zones');
    const b = golden('lab');
    const compiled = fw.compile(a);
    assert.ok(Object.keys(compiled.counters).length > 1, 'the fixture has rule counters');
    assert.is(fw.countersOf(a), compiled.counters, 'the same object: no second compilation');
    const ofB = fw.countersOf(b);
    assert.is.not(ofB, compiled.counters);
    assert.equal(ofB, compileRuleset(b).counters);
    assert.is(fw.countersOf(b), ofB);
    // Compiling another configuration (a check, a diff) does not make the first one's counters be compiled again.
    assert.is(fw.countersOf(a), compiled.counters);
  } finally {
    store.close();
  }
});

test.run();
