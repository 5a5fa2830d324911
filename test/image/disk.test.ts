/**
 * The raw disk image as it is flashed (`dd` to the appliance's disk), on a disk 2 GiB larger than the image (a
 * sparse copy of it, enlarged the way `qemu-img resize` enlarges a raw file): boots through UEFI firmware (OVMF)
 * and systemd-boot in qemu under software emulation (see qemu.ts), grows the root partition and file system to
 * fill the disk, runs first boot, and serves the API on the LAN port with the certificate whose fingerprint the
 * console shows. (smoke.test.ts covers the rest on the direct-boot artefacts, which hold the same root file system.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/daemon.ts';
import { BOOT_MS, OUT, bootImage, call, firstApiReply, type Guest, type Reply } from './qemu.ts';

const MIB = 1024 * 1024;
const GROW_MIB = 2048;
let guest: Guest;
const dir = mkdtempSync(join(tmpdir(), 'rampart-disk-'));
const bigDisk = join(dir, 'disk.img');
const rootMib = statSync(join(OUT, 'rootfs.ext4')).size / MIB; // the image's root partition is this file

test.before(async () => {
  const manifest = JSON.parse(readFileSync(join(OUT, 'manifest.json'), 'utf8'));
  const image = join(OUT, `${manifest.image.name}.img`);
  await execa('cp', ['--sparse=always', '--reflink=auto', image, bigDisk]);
  truncateSync(bigDisk, statSync(image).size + GROW_MIB * MIB);
  guest = await bootImage('disk', [], { diskImage: bigDisk });
});

test.after(async () => {
  await guest?.stop();
  rmSync(dir, { recursive: true, force: true });
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

test('first boot grew the root partition and its file system to fill the larger disk', () => {
  const m = /root file system\s+(\d+) MiB on (\S+) \((\d+) MiB\)/.exec(guest.console());
  assert.ok(m, 'the first-boot banner reports the root file system');
  const [fsMib, device, partMib] = [Number(m![1]), m![2], Number(m![3])];
  console.log(`root: image partition ${rootMib} MiB, disk +${GROW_MIB} MiB -> partition ${device} ${partMib} MiB, file system ${fsMib} MiB`);
  assert.is(device, '/dev/vda2', 'the root partition, behind the EFI system partition');
  // To the end of the disk, less the backup GPT and alignment (systemd-repart rounds to 4 KiB).
  assert.ok(partMib > rootMib + GROW_MIB - 4 && partMib <= rootMib + GROW_MIB, `partition ${partMib} MiB`);
  // ext4 keeps a few percent for its own metadata; ungrown, the file system would be smaller than rootMib.
  assert.ok(fsMib > rootMib + GROW_MIB * 0.9, `file system ${fsMib} MiB`);
});

test.run();
