#!/bin/bash
# Self-check of a Rampart appliance (installed as /usr/lib/rampart/selfcheck): waits for rampartd, then prints what
# the box runs, one "selfcheck: ..." line each: the image release, rampartd's state and `systemd-analyze security`
# exposure, router sysctls, `rampart status` and the nftables tables. Run by rampart-selfcheck.service (the image
# smoke test boots with systemd.wants=rampart-selfcheck.service); `--console` writes to /dev/console instead.
set -uo pipefail
[ "${1:-}" = --console ] && exec >/dev/console 2>&1 # else: stdout (the unit sends it to the journal and console)
say() { printf 'selfcheck: %s\n' "$*"; }
say begin
. /etc/rampart-release 2>/dev/null && say "release ${IMAGE_VERSION:-unknown}"
for _ in $(seq 1 900); do systemctl is-active -q rampartd.service && break; sleep 1; done
say "rampartd $(systemctl is-active rampartd.service) restarts=$(systemctl show -P NRestarts rampartd.service)"
for _ in $(seq 1 900); do rampart status >/dev/null 2>&1 && break; sleep 1; done
rampart status 2>&1 | while IFS= read -r line; do say "status $line"; done
for k in net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.rp_filter net.ipv4.tcp_syncookies; do
  say "sysctl $k=$(sysctl -n "$k" 2>&1)"
done
say "security $(systemd-analyze security --no-pager rampartd.service 2>&1 | grep -o 'exposure level for rampartd.service: .*' || echo unavailable)"
say "caps $(grep CapBnd "/proc/$(systemctl show -P MainPID rampartd.service)/status" 2>&1 | tr -s '\t ' ' ')"
nft list tables 2>&1 | while IFS= read -r line; do say "nft $line"; done
say "rampartd $(systemctl is-active rampartd.service) restarts=$(systemctl show -P NRestarts rampartd.service) (at the end)"
say end
