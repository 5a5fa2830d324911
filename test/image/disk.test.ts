/**
 * The raw disk image as it is flashed (`dd` to the appliance's disk): boots through UEFI firmware (OVMF) and
 * systemd-boot in qemu under software emulation (see qemu.ts), runs first boot, and serves the API on the LAN port
 * with the certificate whose fingerprint the console shows. (smoke.test.ts covers the rest on the direct-boot
 * artefacts, which hold the same root file system.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from '../helpers/daemon.ts';
import { BOOT_MS, bootImage, call, firstApiReply, type Guest, type Reply } from './qemu.ts';

let guest: Guest;

test.before(async () => {
  guest = await bootImage('disk');
});

test.after(async () => {
  await guest?.stop();
});

test('UEFI boot from the raw disk: systemd-boot entry, first boot, API on the LAN port', async () => {
  const started = Date.now();
  await waitFor(() => /first-login user admin, password: \S+/.test(guest.console()) || !guest.alive(), BOOT_MS, 'the first-boot banner').catch(guest.fail);
  const text = guest.console();
  assert.match(text, /Rampart \d+\.\d+\.\d+\+\d{12}/, 'the systemd-boot menu shows the image version');
  const password = /rampart: first-login user admin, password: (\S+)/.exec(text)?.[1];
  if (!password) guest.fail(new Error('qemu ended before the first-boot banner'));
  const fingerprint = /TLS certificate\s+SHA-256 ([0-9A-F:]{95})/.exec(text)?.[1];
  const last: Reply | undefined = await firstApiReply(guest);
  console.log(`raw disk: API up after ${Math.round((Date.now() - started) / 1000)} s`);
  assert.is(last!.status, 401);
  assert.is(last!.fingerprint, fingerprint);
  const login = await call(guest.lanPort, 'POST', '/api/v1/auth/login', { json: { username: 'admin', password } });
  assert.is(login.status, 200, JSON.stringify(login.body));
});

test.run();
