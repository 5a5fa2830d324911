/**
 * Booting the appliance image in qemu for the image tests: software emulation (TCG), two user-mode NICs (LAN, WAN)
 * with restrict=on, so the guest reaches nothing outside qemu and the only ways in are ports forwarded from
 * 127.0.0.1; the disk opened with snapshot=on (every boot is a first boot, the built image stays untouched); the
 * serial console in a file. Not a test file itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, waitFor } from '../helpers/daemon.ts';
import { freePort } from '../helpers/ports.ts';

export const OUT = join(ROOT, 'images/out');

export interface Reply {
  status: number;
  body: any;
  cookies: string[];
  fingerprint?: string;
}

/** One HTTPS request to a forwarded port (the appliance's certificate is self-signed: checked by fingerprint). */
export function call(port: number, method: string, path: string, opts: { json?: unknown; cookie?: string; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        rejectUnauthorized: false,
        servername: 'rampart',
        headers: {
          ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
        },
        timeout: opts.timeoutMs ?? 20_000,
      },
      (res) => {
        const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.()?.fingerprint256;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: any = text;
          try {
            parsed = JSON.parse(text);
          } catch {}
          const sc = res.headers['set-cookie'] ?? [];
          resolve({ status: res.statusCode ?? 0, body: parsed, cookies: sc.map((c) => c.split(';')[0]), fingerprint });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export interface Guest {
  lanPort: number;
  wanPort: number;
  qemu: ChildProcess;
  console(): string;
  /** qemu is still running. */
  alive(): boolean;
  /** Print the console's last lines, then rethrow. */
  fail(err: unknown): never;
  stop(): Promise<void>;
}

/**
 * Boot the image: `direct` = images/out's kernel, initrd and rootfs.ext4 with `extraAppend` on the kernel command
 * line; `disk` = the raw GPT disk (images/out's, or `opts.diskImage`) through UEFI firmware (OVMF) and
 * systemd-boot, as on an appliance.
 */
export async function bootImage(kind: 'direct' | 'disk', extraAppend: string[] = [], opts: { diskImage?: string } = {}): Promise<Guest> {
  const manifest = JSON.parse(readFileSync(join(OUT, 'manifest.json'), 'utf8'));
  const diskImage = opts.diskImage ?? join(OUT, `${manifest.image.name}.img`);
  const need = kind === 'direct' ? ['vmlinuz', 'initrd.img', 'rootfs.ext4'].map((f) => join(OUT, f)) : [diskImage, '/usr/share/ovmf/OVMF.fd'];
  for (const f of need) if (!existsSync(f)) throw new Error(`${f} is missing: build the image first (npm run image)`);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-image-'));
  const consolePath = join(dir, 'console.log');
  const lanPort = await freePort();
  const wanPort = await freePort();
  const boot =
    kind === 'direct'
      ? [
          '-kernel', join(OUT, 'vmlinuz'), '-initrd', join(OUT, 'initrd.img'),
          '-append', ['root=LABEL=rampart-root ro net.ifnames=0 console=ttyS0,115200 loglevel=4 panic=-1', ...extraAppend].join(' '),
          '-drive', `file=${join(OUT, 'rootfs.ext4')},if=virtio,format=raw,snapshot=on`,
        ]
      : ['-bios', '/usr/share/ovmf/OVMF.fd', '-drive', `file=${diskImage},if=virtio,format=raw,snapshot=on`];
  const args = [
    '-accel', 'tcg', '-cpu', 'max', '-smp', '2', '-m', '1536',
    '-nodefaults', '-display', 'none', '-vga', 'none', '-no-reboot',
    '-serial', `file:${consolePath}`,
    ...boot,
    '-netdev', `user,id=lan,restrict=on,net=192.168.1.0/24,host=192.168.1.2,hostfwd=tcp:127.0.0.1:${lanPort}-192.168.1.1:443`,
    '-device', 'virtio-net-pci,netdev=lan,mac=52:54:00:00:01:01',
    '-netdev', `user,id=wan,restrict=on,net=10.0.2.0/24,dhcpstart=10.0.2.15,hostfwd=tcp:127.0.0.1:${wanPort}-10.0.2.15:443`,
    '-device', 'virtio-net-pci,netdev=wan,mac=52:54:00:00:02:01',
    '-device', 'virtio-rng-pci',
  ];
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let qemuErr = '';
  qemu.stderr!.on('data', (d) => (qemuErr += d));
  qemu.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`qemu exited ${code}: ${qemuErr.trim()}`);
  });
  console.log(`qemu (${kind}) pid ${qemu.pid}, LAN 127.0.0.1:${lanPort} -> 192.168.1.1:443, WAN 127.0.0.1:${wanPort} -> 10.0.2.15:443`);
  const text = () => (existsSync(consolePath) ? readFileSync(consolePath, 'utf8').replace(/\r/g, '') : '');
  return {
    lanPort,
    wanPort,
    qemu,
    console: text,
    alive: () => qemu.exitCode === null && qemu.signalCode === null,
    fail(err: unknown): never {
      console.error(`--- last console lines ---\n${text().split('\n').slice(-60).join('\n')}`);
      throw err;
    },
    async stop() {
      if (qemu.exitCode === null && qemu.signalCode === null && qemu.pid) {
        const gone = new Promise((r) => qemu.once('exit', r));
        process.kill(qemu.pid, 'SIGTERM');
        await gone;
      }
      if (process.env.IMAGE_KEEP_CONSOLE) console.log(`console log kept in ${consolePath}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How long a boot under software emulation may take (IMAGE_BOOT_TIMEOUT_MS, default 15 min). */
export const BOOT_MS = Number(process.env.IMAGE_BOOT_TIMEOUT_MS ?? 900_000);

/** Wait until rampartd answers `GET /api/v1/status` on the guest's forwarded LAN port; its first reply. */
export async function firstApiReply(guest: Guest): Promise<Reply> {
  let last: Reply | undefined;
  await waitFor(
    async () => {
      if (!guest.alive()) throw new Error('qemu ended');
      last = await call(guest.lanPort, 'GET', '/api/v1/status', { timeoutMs: 10_000 }).catch(() => undefined);
      return last !== undefined;
    },
    BOOT_MS,
    'rampartd to answer on the forwarded port',
  ).catch(guest.fail);
  return last!;
}
