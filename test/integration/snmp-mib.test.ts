/**
 * RAMPART-MIB with the real tools: `smilint -l 4` reports nothing, `snmptranslate` resolves every object, notification
 * and group of the module, and the numeric OIDs it gives are the ones the agent serves (services/snmp/mibs/rampart.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../helpers/daemon.ts';
import { OIDS, RAMPART, RAMPART_APPLIANCE } from '../../services/snmp/mibs/rampart.ts';
import { MIB_DIRS, SMIPATH, tool } from '../fixtures/snmp/tools.ts';

const FILE = join(ROOT, 'system/mibs/RAMPART-MIB.txt');
const TEXT = readFileSync(FILE, 'utf8');
/** Every named definition of the module. */
const NAMES = [...TEXT.matchAll(/^(\w+)[ \t]+(?:OBJECT-TYPE|NOTIFICATION-TYPE|OBJECT-IDENTITY|MODULE-IDENTITY|OBJECT-GROUP|NOTIFICATION-GROUP|MODULE-COMPLIANCE|OBJECT IDENTIFIER)\b/gm)].map((m) => m[1]);

test('smilint -l 4 reports nothing', async () => {
  const r = await execa('smilint', ['-l', '4', '-s', FILE], { reject: false, env: { SMIPATH } });
  assert.is(`${r.stdout}${r.stderr}`.trim(), '', 'smilint found problems');
  assert.is(r.exitCode, 0);
  // The check is real: a broken copy is reported.
  const broken = await execa('smilint', ['-l', '4', '-'], { input: TEXT.replace('MAX-ACCESS  read-only', 'MAX-ACCESS  read-mostly'), reject: false, env: { SMIPATH } });
  assert.ok(`${broken.stdout}${broken.stderr}`.trim().length > 0, 'smilint flags a broken module');
});

test('the module says the enterprise number is the documentation one, to be replaced', () => {
  assert.match(TEXT, /::= \{ enterprises 32473 \}/);
  assert.match(TEXT, /RFC 5612/);
  assert.match(TEXT, /registered private enterprise number replaces it/);
});

test('snmptranslate resolves every definition, at the OIDs the agent uses', async () => {
  assert.ok(NAMES.length > 40, `${NAMES.length} definitions`);
  const r = await tool('snmptranslate', ['-M', MIB_DIRS, '-m', 'RAMPART-MIB', '-On', ...NAMES.map((n) => `RAMPART-MIB::${n}`)]);
  assert.is(r.code, 0, r.stderr);
  const oids = r.stdout.split('\n').filter((l) => l.trim());
  assert.is(oids.length, NAMES.length, r.stderr);
  const byName = new Map(NAMES.map((n, i) => [n, oids[i].replace(/^\./, '')]));
  for (const [n, o] of byName) assert.ok(o.startsWith(RAMPART), `${n} → ${o}`);
  const expect: Record<string, string> = {
    rampartMIB: RAMPART,
    rampartAppliance: RAMPART_APPLIANCE,
    rampartConfigVersion: OIDS.configVersion.replace(/\.0$/, ''),
    rampartConfigState: OIDS.configState.replace(/\.0$/, ''),
    rampartConfigPendingVersion: OIDS.configPendingVersion.replace(/\.0$/, ''),
    rampartConfigHash: OIDS.configHash.replace(/\.0$/, ''),
    rampartRuleEntry: OIDS.ruleEntry,
    rampartIdsAlertEntry: OIDS.idsAlertEntry,
    rampartAnomalies: OIDS.anomalies.replace(/\.0$/, ''),
    rampartAnomaliesActive: OIDS.anomaliesActive.replace(/\.0$/, ''),
    rampartBlockedAddresses: OIDS.blockedAddresses.replace(/\.0$/, ''),
    rampartConntrackCount: OIDS.conntrackCount.replace(/\.0$/, ''),
    rampartConntrackMax: OIDS.conntrackMax.replace(/\.0$/, ''),
    rampartSyncState: OIDS.syncState.replace(/\.0$/, ''),
    rampartSyncOutboxDepth: OIDS.syncOutboxDepth.replace(/\.0$/, ''),
    rampartImageVersion: OIDS.imageVersion.replace(/\.0$/, ''),
    rampartNotifySeverity: OIDS.notifySeverity,
    rampartNotifySignature: OIDS.notifySignature,
    rampartNotifySid: OIDS.notifySid,
    rampartNotifySource: OIDS.notifySource,
    rampartNotifyDestination: OIDS.notifyDestination,
    rampartNotifyVersion: OIDS.notifyVersion,
    rampartNotifyDetail: OIDS.notifyDetail,
    rampartIdsAlertNotification: OIDS.idsAlertNotification,
    rampartConfigAppliedNotification: OIDS.configAppliedNotification,
    rampartConfigRolledBackNotification: OIDS.configRolledBackNotification,
    rampartSyncLostNotification: OIDS.syncLostNotification,
    rampartSyncRestoredNotification: OIDS.syncRestoredNotification,
  };
  for (const [n, o] of Object.entries(expect)) assert.is(byName.get(n), o, n);
  // Table columns: the rule table's columns 2..7 and the alert counter, as the agent numbers them.
  const cols = ['rampartRuleId', 'rampartRuleChain', 'rampartRuleAction', 'rampartRuleEnabled', 'rampartRulePackets', 'rampartRuleBytes'];
  cols.forEach((c, i) => assert.is(byName.get(c), `${OIDS.ruleEntry}.${i + 2}`, c));
  assert.is(byName.get('rampartIdsAlerts'), `${OIDS.idsAlertEntry}.2`);
});

test.run();
