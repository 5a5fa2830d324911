/**
 * The DHCP client's request script, run for real (sh + iproute2) in a scratch namespace with a veth device, fed
 * the environment dhclient would give it: good leases configure the address (with the lease's lifetime) and the
 * default route; hostile values (command substitutions, extra words, separators) are refused with nothing changed
 * and nothing executed; losing the lease takes back exactly what was applied, even without dhclient's old_ values.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DHCLIENT_SCRIPT } from '../../services/network/dhcp-client.ts';

const ns = `tdscr-${randomBytes(3).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'rampart-dhscript-'));
const script = join(tmp, 'script');
const stateFile = join(tmp, 'state');
const witness = join(tmp, 'pwned');

async function runScript(env: Record<string, string>): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', ns, script], { env: { RAMPART_DEVICE: 'd0', RAMPART_STATE: stateFile, ...env }, extendEnv: false, reject: false });
  return r.exitCode ?? -1;
}

async function kernel(): Promise<{ addrs: string[]; lifetimes: number[]; routes: string[] }> {
  const a = JSON.parse((await execa('ip', ['-n', ns, '-j', '-4', 'addr', 'show', 'dev', 'd0'])).stdout)[0];
  const r = JSON.parse((await execa('ip', ['-n', ns, '-j', '-4', 'route', 'show', 'default'])).stdout);
  const list = ((a?.addr_info ?? []) as any[]).filter((x) => x.scope === 'global');
  return { addrs: list.map((x) => `${x.local}/${x.prefixlen}`), lifetimes: list.map((x) => x.valid_life_time), routes: r.map((x: any) => `${x.gateway} ${x.protocol}`) };
}

/** Set-up errors are reported by every test (a failing before-hook would otherwise pass silently). */
let setupError: unknown;
test.before(async () => {
  try {
    writeFileSync(script, DHCLIENT_SCRIPT, { mode: 0o700 });
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
    await execa('ip', ['-n', ns, 'link', 'set', 'd1', 'up']);
    await execa('ip', ['-n', ns, 'link', 'set', 'd0', 'up']);
  } catch (err) {
    setupError = err;
  }
});
test.before.each(() => {
  if (setupError) throw setupError;
});

test.after(async () => {
  await execa('ip', ['netns', 'del', ns], { reject: false });
  rmSync(tmp, { recursive: true, force: true });
});

const bound = { reason: 'BOUND', new_ip_address: '198.51.100.50', new_subnet_mask: '255.255.255.0', new_routers: '198.51.100.1', new_dhcp_lease_time: '120' };

test('a good lease: address with the lease lifetime, default route of protocol dhcp, state reported', async () => {
  assert.is(await runScript(bound), 0);
  const k = await kernel();
  assert.equal(k.addrs, ['198.51.100.50/24']);
  assert.ok(k.lifetimes[0] <= 120 && k.lifetimes[0] > 0, String(k.lifetimes));
  assert.equal(k.routes, ['198.51.100.1 dhcp']);
  assert.match(readFileSync(stateFile, 'utf8'), /^state=bound\naddress=198\.51\.100\.50\nmask=255\.255\.255\.0\nrouter=198\.51\.100\.1\nlease=120\n/);
});

const hostile: [string, Record<string, string>][] = [
  ['command substitution in the address', { new_ip_address: '$(touch ' + witness + ')' }],
  ['backticks in the address', { new_ip_address: '`touch ' + witness + '`' }],
  ['separator in the address', { new_ip_address: '198.51.100.51;touch ' + witness }],
  ['extra words in the address', { new_ip_address: '198.51.100.51 dev lo' }],
  ['an octet out of range', { new_ip_address: '198.51.100.256' }],
  ['a mask with words', { new_subnet_mask: '255.255.255.0 scope host' }],
  ['a newline in the mask', { new_subnet_mask: '255.255.255.0\nrouter=6.6.6.6' }],
];

for (const [name, bad] of hostile) {
  test(`refused, nothing changed: ${name}`, async () => {
    const before = await kernel();
    const stateBefore = readFileSync(stateFile, 'utf8');
    assert.is.not(await runScript({ ...bound, reason: 'RENEW', old_ip_address: '198.51.100.50', old_subnet_mask: '255.255.255.0', ...bad }), 0);
    assert.equal(await kernel(), { ...before, lifetimes: (await kernel()).lifetimes });
    assert.is(readFileSync(stateFile, 'utf8'), stateBefore);
    assert.not.ok(existsSync(witness), 'nothing was executed');
  });
}

test('hostile routers are skipped (the first valid one is used); a hostile lease time means no lifetime', async () => {
  assert.is(await runScript({ ...bound, reason: 'RENEW', old_ip_address: '198.51.100.50', old_subnet_mask: '255.255.255.0', old_routers: '198.51.100.1', new_routers: '$(touch ' + witness + ') 198.51.100.2', new_dhcp_lease_time: '1;reboot' }), 0);
  const k = await kernel();
  assert.equal(k.routes, ['198.51.100.2 dhcp']);
  assert.equal(k.addrs, ['198.51.100.50/24']);
  assert.not.ok(existsSync(witness));
});

test('a hostile device from the environment is refused', async () => {
  assert.is.not(await runScript({ ...bound, RAMPART_DEVICE: 'd0;touch ' + witness }), 0);
  assert.not.ok(existsSync(witness));
});

test('FAIL without old_ values takes back what the state file says was applied', async () => {
  assert.is(await runScript({ reason: 'FAIL' }), 0);
  assert.equal(await kernel(), { addrs: [], lifetimes: [], routes: [] });
  assert.match(readFileSync(stateFile, 'utf8'), /^state=none\n/);
});

test('EXPIRE with old_ values removes the lease', async () => {
  assert.is(await runScript(bound), 0);
  assert.is((await kernel()).addrs.length, 1);
  assert.is(await runScript({ reason: 'EXPIRE', old_ip_address: '198.51.100.50', old_subnet_mask: '255.255.255.0', old_routers: '198.51.100.1' }), 0);
  assert.equal(await kernel(), { addrs: [], lifetimes: [], routes: [] });
});

async function v6addrs(): Promise<string[]> {
  const a = JSON.parse((await execa('ip', ['-n', ns, '-j', '-6', 'addr', 'show', 'dev', 'd0', 'scope', 'global'])).stdout)[0];
  return ((a?.addr_info ?? []) as any[]).filter((x) => x.local).map((x) => `${x.local}/${x.prefixlen} ${x.valid_life_time <= 300 ? 'leased' : 'forever'}`);
}

test('DHCPv6: a good lease is applied with its lifetime; hostile addresses are refused; EXPIRE6 removes it', async () => {
  const v6state = join(tmp, 'state6');
  const run6 = (env: Record<string, string>) => runScript({ RAMPART_STATE: v6state, ...env });
  await execa('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.d0.accept_dad=0']);
  assert.is(await run6({ reason: 'BOUND6', new_ip6_address: '2001:db8:2::123', new_ip6_prefixlen: '128', new_max_life: '240', new_preferred_life: '120' }), 0);
  assert.equal(await v6addrs(), ['2001:db8:2::123/128 leased']);
  assert.match(readFileSync(v6state, 'utf8'), /^state=bound\naddress=2001:db8:2::123\nmask=128\n/);
  for (const bad of ['2001:db8:2::124;touch ' + witness, '$(touch ' + witness + ')', '2001:db8:2::124 dev lo', '2001:db8:2::124/0']) {
    assert.is.not(await run6({ reason: 'RENEW6', old_ip6_address: '2001:db8:2::123', new_ip6_address: bad, new_ip6_prefixlen: '128' }), 0, bad);
  }
  assert.is.not(await run6({ reason: 'RENEW6', new_ip6_address: '2001:db8:2::125', new_ip6_prefixlen: '129' }), 0);
  assert.equal(await v6addrs(), ['2001:db8:2::123/128 leased']);
  assert.not.ok(existsSync(witness));
  assert.is(await run6({ reason: 'EXPIRE6' }), 0);
  assert.equal(await v6addrs(), []);
});

test.run();
