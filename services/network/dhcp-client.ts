/**
 * The DHCPv4 client of a WAN interface: Debian's ISC `dhclient`, run in the managed namespace with its own pid
 * file, lease file and request script in DATA/network/. Lease values come from whoever answers on the wire and are
 * hostile input: the script (written here, below) never evaluates them, checks every value it uses against a strict
 * pattern, passes each as one argument to `ip`, and reports what it applied in a state file Rampart reads.
 */
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RampartError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Host } from '../host/exec.ts';
import { parseAddress } from '../core/net.ts';
import { pidAlive, stopPidFile } from './process.ts';

const DEVICE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/**
 * The request script. dhclient calls it with `reason` and `new_*` / `old_*` variables in its environment;
 * RAMPART_DEVICE and RAMPART_STATE come from Rampart (`-e`), never from the lease.
 */
export const DHCLIENT_SCRIPT = `#!/bin/sh
# Written by Rampart. Lease values are untrusted: each one is checked before use and passed to ip as one argument.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# No file name expansion anywhere: a "*" in a lease value stays a "*" (and is refused).
set -f

is_ipv4() {
  case "$1" in ''|*[!0-9.]*) return 1 ;; esac
  saved_ifs=$IFS
  IFS=.
  # shellcheck disable=SC2086
  set -- $1
  IFS=$saved_ifs
  [ $# -eq 4 ] || return 1
  for octet in "$@"; do
    case "$octet" in
      [0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]) ;;
      *) return 1 ;;
    esac
  done
  return 0
}

is_number() {
  case "$1" in ''|*[!0-9]*) return 1 ;; esac
  [ \${#1} -le 9 ]
}

# Hex digits and colons only (ip parses the rest): nothing else can reach its argument.
is_ipv6() {
  case "$1" in ''|*[!0-9A-Fa-f:]*) return 1 ;; esac
  case "$1" in *:*) ;; *) return 1 ;; esac
  [ \${#1} -le 39 ]
}

is_prefixlen6() {
  is_number "$1" && [ "$1" -ge 1 ] && [ "$1" -le 128 ]
}

dev=\${RAMPART_DEVICE:-}
state=\${RAMPART_STATE:-}
case "$dev" in ''|*[!A-Za-z0-9_.-]*) exit 1 ;; esac
[ -n "$state" ] || exit 1

report() {
  # report STATE ADDRESS MASK ROUTER LEASE_SECONDS (all checked already)
  printf 'state=%s\\naddress=%s\\nmask=%s\\nrouter=%s\\nlease=%s\\nreason=%s\\n' "$1" "$2" "$3" "$4" "$5" "$reason_ok" > "$state.tmp" && mv -f "$state.tmp" "$state"
}

case "\${reason:-}" in
  PREINIT|MEDIUM|ARPCHECK|ARPSEND|BOUND|RENEW|REBIND|REBOOT|EXPIRE|FAIL|RELEASE|STOP|TIMEOUT) reason_ok=$reason ;;
  PREINIT6|BOUND6|RENEW6|REBIND6|REBOOT6|DEPREF6|EXPIRE6|RELEASE6|STOP6) reason_ok=$reason ;;
  *) exit 0 ;;
esac

old_gw=
for r in \${old_routers:-}; do is_ipv4 "$r" && old_gw=$r && break; done
new_gw=
for r in \${new_routers:-}; do is_ipv4 "$r" && new_gw=$r && break; done

remove_old() {
  gone_ip=\${old_ip_address:-}
  gone_mask=\${old_subnet_mask:-}
  gone_gw=$old_gw
  # Without old_ values (FAIL after a restart), what this script applied last, from its own state file.
  if ! is_ipv4 "$gone_ip" && [ -f "$state" ]; then
    while IFS='=' read -r key value; do
      case "$key" in
        address) gone_ip=$value ;;
        mask) gone_mask=$value ;;
        router) gone_gw=$value ;;
      esac
    done < "$state"
  fi
  if is_ipv4 "$gone_ip" && is_ipv4 "$gone_mask"; then
    if is_ipv4 "$gone_gw"; then ip -4 route del default via "$gone_gw" dev "$dev" proto dhcp 2>/dev/null; fi
    ip -4 addr del "$gone_ip/$gone_mask" dev "$dev" 2>/dev/null
  fi
  return 0
}

remove_old6() {
  gone_ip=\${old_ip6_address:-}
  gone_len=\${old_ip6_prefixlen:-128}
  if ! is_ipv6 "$gone_ip" && [ -f "$state" ]; then
    while IFS='=' read -r key value; do
      case "$key" in
        address) gone_ip=$value ;;
        mask) gone_len=$value ;;
      esac
    done < "$state"
  fi
  if is_ipv6 "$gone_ip" && is_prefixlen6 "$gone_len"; then
    ip -6 addr del "$gone_ip/$gone_len" dev "$dev" 2>/dev/null
  fi
  return 0
}

case "$reason" in
  PREINIT|PREINIT6)
    ip link set dev "$dev" up
    exit 0 ;;
  MEDIUM|ARPCHECK|ARPSEND|DEPREF6)
    exit 0 ;;
  BOUND6|RENEW6|REBIND6|REBOOT6)
    is_ipv6 "\${new_ip6_address:-}" || exit 1
    len=\${new_ip6_prefixlen:-128}
    is_prefixlen6 "$len" || exit 1
    valid=\${new_max_life:-}
    is_number "$valid" || valid=forever
    preferred=\${new_preferred_life:-}
    is_number "$preferred" || preferred=$valid
    if [ "\${old_ip6_address:-}" != "$new_ip6_address" ]; then remove_old6; fi
    ip -6 addr replace "$new_ip6_address/$len" dev "$dev" valid_lft "$valid" preferred_lft "$preferred" || exit 1
    report bound "$new_ip6_address" "$len" "" "$valid"
    exit 0 ;;
  EXPIRE6|RELEASE6|STOP6)
    remove_old6
    report none "" "" "" ""
    exit 0 ;;
  BOUND|RENEW|REBIND|REBOOT)
    is_ipv4 "\${new_ip_address:-}" || exit 1
    is_ipv4 "\${new_subnet_mask:-}" || exit 1
    lease=\${new_dhcp_lease_time:-}
    is_number "$lease" || lease=forever
    if [ "\${old_ip_address:-}" != "$new_ip_address" ] || [ "\${old_subnet_mask:-}" != "$new_subnet_mask" ]; then remove_old; fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$dev" valid_lft "$lease" preferred_lft "$lease" || exit 1
    if [ -n "$old_gw" ] && [ "$old_gw" != "$new_gw" ]; then ip -4 route del default via "$old_gw" dev "$dev" proto dhcp 2>/dev/null; fi
    if [ -n "$new_gw" ]; then ip -4 route replace default via "$new_gw" dev "$dev" proto dhcp || exit 1; fi
    report bound "$new_ip_address" "$new_subnet_mask" "$new_gw" "$lease"
    exit 0 ;;
  EXPIRE|FAIL|RELEASE|STOP)
    remove_old
    report none "" "" "" ""
    exit 0 ;;
  TIMEOUT)
    # A remembered lease is not used without a server to confirm it (FAIL follows and removes what was applied).
    exit 1 ;;
esac
exit 0
`;

export interface DhcpClientState {
  state: 'bound' | 'none' | 'starting';
  address?: string;
  mask?: string;
  router?: string;
  leaseSeconds?: number;
  reason?: string;
  running: boolean;
}

/** Parse the state file the script writes (every value is checked again). */
export function parseClientState(text: string): Omit<DhcpClientState, 'running'> {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const addr = (k: string) => {
    const a = parseAddress(kv.get(k) ?? '');
    return a ? a.address : undefined;
  };
  // IPv4: a dotted mask; IPv6: a prefix length.
  const mask = addr('mask') ?? (/^\d{1,3}$/.test(kv.get('mask') ?? '') && Number(kv.get('mask')) <= 128 ? kv.get('mask') : undefined);
  const lease = /^\d{1,9}$/.test(kv.get('lease') ?? '') ? Number(kv.get('lease')) : undefined;
  const reason = /^[A-Z0-9]{1,16}$/.test(kv.get('reason') ?? '') ? kv.get('reason') : undefined;
  return {
    state: kv.get('state') === 'bound' ? 'bound' : 'none',
    ...(addr('address') ? { address: addr('address') } : {}),
    ...(mask ? { mask } : {}),
    ...(addr('router') ? { router: addr('router') } : {}),
    ...(lease !== undefined ? { leaseSeconds: lease } : {}),
    ...(reason ? { reason } : {}),
  };
}

/** One dhclient for one device. */
export class DhcpClient {
  readonly pidFile: string;
  readonly leaseFile: string;
  readonly stateFile: string;
  readonly script: string;
  readonly conf: string;

  constructor(
    private readonly host: Host,
    private readonly dir: string,
    readonly device: string,
    private readonly log: Logger,
    /** 4: DHCPv4 (address, mask, default route); 6: DHCPv6 (an address; the default route comes from RAs). */
    readonly family: 4 | 6 = 4,
  ) {
    if (!DEVICE_RE.test(device)) throw new RampartError('invalid_input', `not a device name: ${JSON.stringify(device)}`);
    const base = family === 4 ? 'dhclient' : 'dhclient6';
    this.pidFile = join(dir, `${base}-${device}.pid`);
    this.leaseFile = join(dir, `${base}-${device}.leases`);
    this.stateFile = join(dir, `${base}-${device}.state`);
    this.script = join(dir, 'dhclient-script');
    this.conf = join(dir, `${base}.conf`);
  }

  private args(extra: string[]): string[] {
    return [`-${this.family}`, ...extra, '-cf', this.conf, '-pf', this.pidFile, '-lf', this.leaseFile, '-sf', this.script, '-e', `RAMPART_DEVICE=${this.device}`, '-e', `RAMPART_STATE=${this.stateFile}`, this.device];
  }

  pid(): number | undefined {
    return pidAlive(this.pidFile, this.leaseFile);
  }

  /** Start the client unless it runs; it works in the background from here (`-nw`). */
  async ensure(): Promise<boolean> {
    if (this.pid()) return false;
    writeFileSync(this.script, DHCLIENT_SCRIPT, { mode: 0o700 });
    chmodSync(this.script, 0o700);
    // Only what a WAN uplink needs; nothing the server sends can name a file or a command here.
    const conf = this.family === 4 ? 'request subnet-mask, broadcast-address, routers, dhcp-lease-time;\nreboot 5;\ntimeout 10;\nretry 10;\n' : 'timeout 10;\nretry 10;\n';
    writeFileSync(this.conf, conf, { mode: 0o600 });
    // What the script applied last stays (after a restart, FAIL removes it if no server confirms the lease).
    if (!existsSync(this.stateFile)) writeFileSync(this.stateFile, 'state=starting\n', { mode: 0o600 });
    await this.host.run('dhclient', this.args(['-nw']), { timeoutMs: 15_000 });
    this.log.info({ device: this.device, family: this.family, pid: this.pid() }, 'DHCP client started');
    return true;
  }

  /**
   * Stop the client. `release` gives the lease back first (the script removes the address and the default route);
   * without it the address stays until its lifetime ends.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (opts.release && this.pid()) {
      await this.host.run('dhclient', this.args(['-r']), { allowFailure: true, timeoutMs: 15_000 });
    }
    await stopPidFile(this.pidFile, this.leaseFile);
    if (opts.release) rmSync(this.stateFile, { force: true });
  }

  state(): DhcpClientState {
    const running = this.pid() !== undefined;
    if (!existsSync(this.stateFile)) return { state: 'none', running };
    const text = readFileSync(this.stateFile, 'utf8');
    if (/^state=starting$/m.test(text)) return { state: 'starting', running };
    return { ...parseClientState(text), running };
  }
}
