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
# Readiness came through sd_notify (Type=notify: "active" only after READY=1; StatusText only from STATUS=).
say "notify type=$(systemctl show -P Type rampartd.service) access=$(systemctl show -P NotifyAccess rampartd.service) watchdog=$(systemctl show -P WatchdogUSec rampartd.service) status=$(systemctl show -P StatusText rampartd.service)"
root_dev=$(findmnt -no SOURCE /)
say "root fs=$(df -BM --output=size / | tail -1 | tr -dc 0-9)MiB device=$root_dev size=$(( $(blockdev --getsize64 "$root_dev") / 1048576 ))MiB"
nft list tables 2>&1 | while IFS= read -r line; do say "nft $line"; done
say "rampartd $(systemctl is-active rampartd.service) restarts=$(systemctl show -P NRestarts rampartd.service) (at the end)"
say end

# With `rampart.selfcheck=watchdog` on the kernel command line: once the running ruleset's rule with the id
# "selfcheck-watchdog" has counted a packet (the smoke test applies one and sends it traffic when it is done with
# the API), freeze rampartd with SIGSTOP and see systemd's watchdog restart it: the pings stop, systemd aborts the
# frozen process and starts a new one.
if grep -qw 'rampart.selfcheck=watchdog' /proc/cmdline; then
  until nft list counter inet rampart r_selfcheck-watchdog 2>/dev/null | grep -q 'packets [1-9]'; do sleep 3; done
  pid=$(systemctl show -P MainPID rampartd.service)
  restarts=$(systemctl show -P NRestarts rampartd.service)
  say "watchdog: SIGSTOP to rampartd (pid $pid, restarts=$restarts)"
  start=$(date +%s)
  kill -STOP "$pid"
  for _ in $(seq 1 600); do
    now_pid=$(systemctl show -P MainPID rampartd.service)
    [ "$(systemctl show -P NRestarts rampartd.service)" -gt "$restarts" ] && [ "$now_pid" != "$pid" ] && [ "$now_pid" != 0 ] &&
      systemctl is-active -q rampartd.service && break
    sleep 1
  done
  say "watchdog: rampartd $(systemctl is-active rampartd.service) pid $(systemctl show -P MainPID rampartd.service) restarts=$(systemctl show -P NRestarts rampartd.service) result=$(systemctl show -P Result rampartd.service) after $(( $(date +%s) - start )) s"
  journalctl -b -u rampartd.service --no-pager -o cat 2>/dev/null | grep -i -m1 'watchdog timeout' | while IFS= read -r line; do say "watchdog: journal $line"; done
  say "watchdog: end"
fi
