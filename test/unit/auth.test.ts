import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../services/core/store.ts';
import { silentLogger } from '../../services/core/log.ts';
import { RampartError } from '../../services/core/errors.ts';
import { Auth, can, hashPassword, sourceKey, verifyPassword, type Role } from '../../services/api/auth.ts';
import { AuditLog } from '../../services/api/audit.ts';

// Low scrypt cost keeps the throttling tests fast; the hashing test uses the real default.
const N = 1 << 10;
const PW = 'correct horse battery';

let dir: string;
let store: Store;
let clock: number;
let auth: Auth;

const make = (opts: { idleSeconds?: number; absoluteSeconds?: number } = {}) => new Auth(store, silentLogger(), { now: () => clock, scryptN: N, ...opts });

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-auth-'));
  store = new Store(join(dir, 'rampart.db')).open();
  clock = Date.UTC(2030, 0, 1);
  auth = make();
});
test.after.each(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function rejects(p: Promise<unknown>, code: string): Promise<RampartError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, RampartError);
    assert.is((err as RampartError).code, code, (err as Error).message);
    return err as RampartError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

function throws(fn: () => unknown, code: string): RampartError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, RampartError);
    assert.is((err as RampartError).code, code, (err as Error).message);
    return err as RampartError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('scrypt hashing: format, round trip, wrong password, malformed hashes', async () => {
  const h = await hashPassword(PW); // default cost N = 2^15
  assert.match(h, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.ok(await verifyPassword(PW, h));
  assert.not.ok(await verifyPassword(PW + 'x', h));
  assert.not.ok(await verifyPassword('', h));
  assert.is.not(await hashPassword(PW, N), await hashPassword(PW, N)); // salted
  for (const bad of ['', 'plain', 'scrypt$1$8$1$AAAA$AAAA', 'scrypt$32768$8$1$$', 'bcrypt$x$y$z$a$b', h.replace('$32768$', '$3000$')]) assert.not.ok(await verifyPassword(PW, bad), bad);
});

test('first start without RAMPART_ADMIN_PASSWORD: random password, must change, only once', async () => {
  const r = await auth.ensureAdmin(undefined);
  assert.ok(r.created);
  assert.ok(r.mustChange);
  assert.type(r.password, 'string');
  assert.ok(r.password!.length >= 20);
  assert.equal(auth.getUser('admin'), { username: 'admin', role: 'admin', mustChange: true, createdAt: clock });
  const again = await auth.ensureAdmin(undefined);
  assert.equal(again, { created: false, mustChange: false });
  const s = await auth.login('admin', r.password!, '192.0.2.1');
  assert.ok(s.mustChange);
  // a second store gets a different password: no shared default
  const other = new Store(join(dir, 'other.db')).open();
  const r2 = await new Auth(other, silentLogger(), { scryptN: N }).ensureAdmin();
  other.close();
  assert.is.not(r2.password, r.password);
  // changing it clears mustChange
  await auth.changePassword('admin', r.password!, 'a brand new password', s.id);
  assert.not.ok(auth.getUser('admin')!.mustChange);
  assert.not.ok(auth.session(s.id)!.mustChange);
});

test('first start with RAMPART_ADMIN_PASSWORD: no password returned, no forced change; too short refused', async () => {
  await rejects(auth.ensureAdmin('short'), 'invalid_input');
  assert.is(auth.listUsers().length, 0);
  const r = await auth.ensureAdmin('from-the-environment');
  assert.equal(r, { created: true, mustChange: false });
  const s = await auth.login('admin', 'from-the-environment', '192.0.2.1');
  assert.not.ok(s.mustChange);
  assert.is(s.role, 'admin');
});

test('first start creates admin when only non-admins were added from the console', async () => {
  await auth.createUser('viewer1', PW, 'viewer');
  const r = await auth.ensureAdmin();
  assert.ok(r.created);
  assert.is(auth.getUser('admin')!.role, 'admin');
});

test('users: validation, conflict, list, get, delete; the last admin stays', async () => {
  let e = await rejects(auth.createUser('Bad Name', 'short', 'root' as Role), 'invalid_input');
  assert.equal(e.problems.map((p) => p.path).sort(), ['/password', '/role', '/username']);
  await rejects(auth.createUser('x'.repeat(33), PW, 'viewer'), 'invalid_input');
  await rejects(auth.createUser('ok', 'y'.repeat(257), 'viewer'), 'invalid_input');
  await auth.createUser('alice', PW, 'admin');
  await auth.createUser('op.1', PW, 'operator', { mustChange: true });
  await rejects(auth.createUser('alice', PW, 'viewer'), 'conflict');
  assert.equal(
    auth.listUsers().map((u) => [u.username, u.role, u.mustChange]),
    [
      ['alice', 'admin', false],
      ['op.1', 'operator', true],
    ],
  );
  assert.is(auth.getUser('nobody'), undefined);
  throws(() => auth.deleteUser('alice'), 'conflict'); // last admin
  throws(() => auth.deleteUser('nobody'), 'not_found');
  const s = await auth.login('op.1', PW, '192.0.2.1');
  auth.deleteUser('op.1');
  assert.is(auth.getUser('op.1'), undefined);
  assert.is(auth.session(s.id), undefined); // sessions go with the user
  await auth.createUser('bob', PW, 'admin');
  auth.deleteUser('alice'); // no longer the last
  throws(() => auth.deleteUser('bob'), 'conflict');
});

test('sessions: random ids, only a hash stored, idle expiry with touch', async () => {
  await auth.createUser('alice', PW, 'operator');
  const s = await auth.login('alice', PW, '192.0.2.1');
  assert.match(s.id, /^[A-Za-z0-9_-]{43}$/);
  assert.equal([s.username, s.role, s.mustChange, s.createdAt, s.lastSeen], ['alice', 'operator', false, clock, clock]);
  const rows = store.sql.prepare('SELECT * FROM sessions').all() as { id_hash: string }[];
  assert.is(rows.length, 1);
  assert.is.not(rows[0].id_hash, s.id);
  assert.not.ok(JSON.stringify(rows).includes(s.id));
  const got = auth.session(s.id)!;
  assert.is(got.username, 'alice');
  assert.is(got.id, ''); // the raw id is only handed out at login
  clock += 1799_000;
  assert.ok(auth.session(s.id)); // touched
  clock += 1799_000;
  assert.ok(auth.session(s.id));
  clock += 1800_000;
  assert.is(auth.session(s.id), undefined);
  assert.is((store.sql.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n, 0);
});

test('sessions: a look without touch (an open event stream) does not keep a session alive', async () => {
  await auth.createUser('alice', PW, 'operator');
  const s = await auth.login('alice', PW, '192.0.2.1');
  clock += 1000_000;
  assert.ok(auth.session(s.id, { touch: false }));
  clock += 1000_000; // 2000 s since the last real activity: past the 1800 s idle time
  assert.is(auth.session(s.id, { touch: false }), undefined);
});

test('sessions: absolute expiry even when active; logout', async () => {
  auth = make({ idleSeconds: 600, absoluteSeconds: 3600 });
  await auth.createUser('alice', PW, 'viewer');
  const s = await auth.login('alice', PW, '192.0.2.1');
  for (let t = 0; t < 5; t++) {
    clock += 500_000;
    assert.ok(auth.session(s.id), `alive at ${t}`);
  }
  clock += 500_000; // 3000 s
  assert.ok(auth.session(s.id));
  clock += 600_000 - 1; // 3599.999 s, idle not reached
  assert.ok(auth.session(s.id));
  clock += 1;
  assert.is(auth.session(s.id), undefined);
  const s2 = await auth.login('alice', PW, '192.0.2.1');
  auth.logout(s2.id);
  assert.is(auth.session(s2.id), undefined);
  auth.logout('garbage'); // harmless
});

test('sessions: forged and unknown ids', async () => {
  await auth.createUser('alice', PW, 'viewer');
  const s = await auth.login('alice', PW, '192.0.2.1');
  const forged = [undefined, '', 'x', s.id + 'A', s.id.slice(1), s.id.toUpperCase() === s.id ? s.id.toLowerCase() : s.id.toUpperCase(), 'A'.repeat(43), "' OR 1=1 --", 'a'.repeat(100_000)];
  for (const id of forged) assert.is(auth.session(id as string), undefined, String(id).slice(0, 50));
  // the stored hash itself is not a valid id
  const { id_hash } = store.sql.prepare('SELECT id_hash FROM sessions').get() as { id_hash: string };
  assert.is(auth.session(id_hash), undefined);
  assert.ok(auth.session(s.id));
});

test('sessions: rotation at login, setPassword and changePassword end sessions', async () => {
  await auth.createUser('alice', PW, 'admin');
  const s1 = await auth.login('alice', PW, '192.0.2.1');
  const s2 = await auth.login('alice', PW, '192.0.2.1', s1.id);
  assert.is.not(s2.id, s1.id);
  assert.is(auth.session(s1.id), undefined);
  assert.ok(auth.session(s2.id));
  const other = await auth.login('alice', PW, '192.0.2.2');
  // own change: the caller's session survives, the others end; wrong current refused
  const e = await rejects(auth.changePassword('alice', 'not the password', 'the next password'), 'invalid_input');
  assert.is(e.problems[0].path, '/current');
  await rejects(auth.changePassword('alice', PW, PW), 'invalid_input');
  await rejects(auth.changePassword('alice', PW, 'short'), 'invalid_input');
  await auth.changePassword('alice', PW, 'the next password', s2.id);
  assert.ok(auth.session(s2.id));
  assert.is(auth.session(other.id), undefined);
  await rejects(auth.login('alice', PW, '192.0.2.1'), 'unauthorized');
  // set by an administrator: every session ends, mustChange as asked
  await auth.setPassword('alice', 'reset by admin', { mustChange: true });
  assert.is(auth.session(s2.id), undefined);
  const s3 = await auth.login('alice', 'reset by admin', '192.0.2.1');
  assert.ok(s3.mustChange);
  await rejects(auth.setPassword('nobody', 'whatever12345'), 'not_found');
  await rejects(auth.setPassword('alice', 'short'), 'invalid_input');
});

test('roles', () => {
  const m = (r: Role) => [can(r, 'read'), can(r, 'operate'), can(r, 'admin')];
  assert.equal(m('viewer'), [true, false, false]);
  assert.equal(m('operator'), [true, true, false]);
  assert.equal(m('admin'), [true, true, true]);
  assert.not.ok(can('root' as Role, 'read'));
  assert.not.ok(can('admin', 'superuser' as 'admin'));
});

test('login: one message for unknown users and wrong passwords; logins audited', async () => {
  await auth.createUser('alice', PW, 'operator');
  const a = await rejects(auth.login('alice', 'wrong password', '192.0.2.1'), 'unauthorized');
  const b = await rejects(auth.login('mallory', 'wrong password', '192.0.2.2'), 'unauthorized');
  const c = await rejects(auth.login('NOT VALID\n', 'x', '192.0.2.3'), 'unauthorized');
  assert.is(a.message, b.message);
  assert.is(a.message, c.message);
  await auth.login('alice', PW, '192.0.2.1');
  const log = new AuditLog(store).list({ action: 'auth.login' });
  assert.equal(
    log.map((e) => [e.username, e.role, e.source, e.result]),
    [
      ['alice', 'operator', '192.0.2.1', 'ok'],
      ['NOT VALID?', null, '192.0.2.3', 'denied'],
      ['mallory', null, '192.0.2.2', 'denied'],
      ['alice', 'operator', '192.0.2.1', 'denied'],
    ],
  );
});

test('throttling: 100 wrong passwords from one address; cool-down; a second address is not punished', async () => {
  await auth.createUser('admin', PW, 'admin');
  const attacker = '203.0.113.7';
  let denied = 0;
  let refused = 0;
  let lastRetry = 0;
  for (let i = 0; i < 100; i++) {
    try {
      await auth.login('admin', `guess-${i}-wrong`, attacker);
    } catch (err) {
      const e = err as RampartError;
      if (e.code === 'unauthorized') denied++;
      else if (e.code === 'throttled') {
        refused++;
        assert.ok(e.retryAfterSeconds! >= 1);
        lastRetry = e.retryAfterSeconds!;
      } else throw err;
    }
  }
  // the clock stood still: 5 guesses checked, then refused without checking
  assert.is(denied, 5);
  assert.is(refused, 95);
  assert.is(lastRetry, 1);
  // the right password from the attacking address is refused too during the block
  const blocked = await rejects(auth.login('admin', PW, attacker), 'throttled');
  assert.is(blocked.retryAfterSeconds, 1);
  // the real admin at another address gets in at once
  const other = await auth.login('admin', PW, '198.51.100.20');
  assert.is(other.username, 'admin');
  // after the cool-down the right password works from the first address too
  clock += blocked.retryAfterSeconds! * 1000;
  assert.ok(await auth.login('admin', PW, attacker));
  assert.equal(auth.throttleState().sources, {});
  // audited: denied guesses and one entry for the whole throttled burst (not 96)
  const log = new AuditLog(store).list({ action: 'auth.login', limit: 1000 });
  assert.is(log.filter((e) => e.result === 'denied').length, 5);
  const t = log.filter((e) => e.result === 'throttled');
  assert.is(t.length, 1);
  assert.is(t[0].source, attacker);
  assert.match(t[0].detail, /source throttled after 5 failure/);
});

test('throttling: backoff doubles up to 15 min per source; right password works after the cool-down', async () => {
  await auth.createUser('admin', PW, 'admin');
  const attacker = '203.0.113.7';
  const waits: number[] = [];
  let checked = 0;
  // 100 wrong passwords, each actually checked: the attacker waits out every block
  while (checked < 100) {
    try {
      await auth.login('admin', `guess-${checked}`, attacker);
    } catch (err) {
      const e = err as RampartError;
      if (e.code === 'unauthorized') {
        checked++;
        continue;
      }
      assert.is(e.code, 'throttled');
      waits.push(e.retryAfterSeconds!);
      clock += e.retryAfterSeconds! * 1000;
    }
  }
  assert.equal(waits.slice(0, 11), [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
  assert.ok(waits.every((w) => w <= 900));
  assert.is(auth.throttleState().sources[attacker].failures, 100);
  const e = await rejects(auth.login('admin', PW, attacker), 'throttled');
  assert.is(e.retryAfterSeconds, 900);
  // another address with a clean record is not slowed by the per-user counter
  assert.ok(await auth.login('admin', PW, '198.51.100.20'));
  // an address that has failed once itself is slowed by the user counter, but only up to 30 s
  await rejects(auth.login('admin', 'typo typo typo', '198.51.100.21'), 'unauthorized');
  await rejects(auth.login('admin', 'guess again', attacker), 'throttled');
  clock += 899_000;
  await rejects(auth.login('admin', PW, attacker), 'throttled');
  clock += 1000;
  const s = await auth.login('admin', PW, attacker);
  assert.is(s.username, 'admin');
  assert.is(auth.throttleState().sources[attacker], undefined);
  // after the success the attacking address starts over with 4 free failures
  for (let i = 0; i < 4; i++) await rejects(auth.login('admin', `again-${i}`, attacker), 'unauthorized');
  const after = await rejects(auth.login('admin', 'fifth', attacker), 'unauthorized');
  assert.ok(after);
  assert.is((await rejects(auth.login('admin', 'sixth', attacker), 'throttled')).retryAfterSeconds, 1);
});

test('throttling: a distributed attack on one user is slowed (≤ 30 s), never locks out a clean address', async () => {
  await auth.createUser('admin', PW, 'admin');
  // 40 addresses, each one guess: each is a fresh source, so only the user counter grows
  for (let i = 0; i < 40; i++) await rejects(auth.login('admin', `guess-${i}`, `203.0.113.${i + 1}`), 'unauthorized');
  assert.is(auth.throttleState().users['admin'].failures, 40);
  // a second guess from any of those addresses meets the user block, capped at 30 s
  const e = await rejects(auth.login('admin', 'again', '203.0.113.1'), 'throttled');
  assert.ok(e.retryAfterSeconds! >= 1 && e.retryAfterSeconds! <= 30, String(e.retryAfterSeconds));
  // even the right password from such an address must wait for the user block
  await rejects(auth.login('admin', PW, '203.0.113.2'), 'throttled');
  // a clean address gets in at once
  assert.ok(await auth.login('admin', PW, '192.0.2.50'));
  // and the success reset the user counter
  assert.is(auth.throttleState().users['admin'], undefined);
  assert.ok(await auth.login('admin', PW, '203.0.113.2'));
});

test('throttling: concurrent checks per source are bounded', async () => {
  await auth.createUser('admin', PW, 'admin');
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => auth.login('admin', `parallel-${i}`, '203.0.113.9')));
  const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as RampartError).code : 'ok'));
  assert.is(codes.filter((c) => c === 'unauthorized').length, 3);
  assert.is(codes.filter((c) => c === 'throttled').length, 7);
});

test('source keys: IPv4-mapped unwrapped, IPv6 per /64, zones dropped', () => {
  assert.is(sourceKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.is(sourceKey('192.0.2.1'), '192.0.2.1');
  assert.is(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.is(sourceKey('2001:db8:1:2:bbbb::9'), '2001:db8:1:2::/64');
  assert.is(sourceKey('fe80::1%eth0'), 'fe80::/64');
  assert.is(sourceKey(''), 'unknown');
  assert.is(sourceKey('console'), 'console');
});

test.run();
