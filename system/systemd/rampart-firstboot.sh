#!/bin/bash
# First boot of a Rampart appliance (installed as /usr/lib/rampart/firstboot, run by rampart-firstboot.service).
# 1. machine identity: /etc/machine-id and a host name derived from it (rampart-XXXXXX);
# 2. the API's TLS certificate (self-signed, EC P-256) in /var/lib/rampart/tls, its fingerprint on the console;
# 3. the first administrator "admin" with a random password that must be changed at first login, shown on the
#    console and at the login prompt until the next reboot; never written to the journal or to disk in clear.
# 4. the size of the root file system (grown to fill the disk before this runs) in the console banner.
# rampartd then seeds its first configuration version from /etc/rampart/appliance.json (management from the LAN only).
set -euo pipefail
umask 077

DATA=/var/lib/rampart
DONE="$DATA/.firstboot-done"
CONFIG=/etc/rampart/appliance.json
RAMPART=(/usr/local/bin/node /opt/rampart/build/services/cli.js --data "$DATA")

[ -e "$DONE" ] && exit 0
mkdir -p "$DATA"
chmod 0700 "$DATA"

# 1. Identity.
if ! grep -qE '^[0-9a-f]{32}$' /etc/machine-id 2>/dev/null; then
  systemd-machine-id-setup
fi
machine_id=$(cat /etc/machine-id)
host="rampart-${machine_id:0:6}"
if [ "$(cat /etc/hostname 2>/dev/null)" = rampart ] || [ ! -s /etc/hostname ]; then
  echo "$host" >/etc/hostname
  hostname "$host"
  sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$host/" /etc/hosts
fi
host=$(hostname)
echo "firstboot: machine id ${machine_id:0:8}..., host name $host"

# 2. TLS certificate (rampartd keeps using a valid pair it finds in DATA/tls).
mkdir -p "$DATA/tls"
if [ ! -s "$DATA/tls/cert.pem" ] || [ ! -s "$DATA/tls/key.pem" ]; then
  lan_ip=$(node -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const i=(c.interfaces||[]).find(x=>x.management)||{};const a=(i.addresses||[])[0]||"";process.stdout.write(a.split("/")[0])' "$CONFIG" 2>/dev/null || true)
  san="DNS:$host"
  [[ "$lan_ip" =~ ^[0-9.]+$ ]] && san="$san,IP:$lan_ip"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=$host" \
    -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" -keyout "$DATA/tls/key.pem.new" -out "$DATA/tls/cert.pem.new" 2>/dev/null
  chmod 0600 "$DATA/tls/key.pem.new"
  mv "$DATA/tls/key.pem.new" "$DATA/tls/key.pem"
  mv "$DATA/tls/cert.pem.new" "$DATA/tls/cert.pem"
fi
fingerprint=$(openssl x509 -in "$DATA/tls/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
echo "firstboot: TLS certificate SHA-256 $fingerprint"

# 3. The first administrator, unique to this unit; it must be changed at first login.
password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
if "${RAMPART[@]}" user list --json | node -e 'process.exit(JSON.parse(require("fs").readFileSync(0,"utf8")).some(u=>u.username==="admin")?0:1)'; then
  printf '%s\n' "$password" | "${RAMPART[@]}" user passwd admin --must-change --password-stdin >/dev/null
else
  printf '%s\n' "$password" | "${RAMPART[@]}" user add admin --role admin --must-change --password-stdin >/dev/null
fi
echo "firstboot: administrator \"admin\" created (password on the console)"

# 4. Storage: systemd-repart and systemd-growfs have grown the root partition and its file system to fill the disk
# before this runs (/usr/lib/repart.d/50-rampart-root.conf, x-systemd.growfs in /etc/fstab); show what there is.
root_dev=$(findmnt -no SOURCE / || echo /)
root_fs=$(df -BM --output=size / | tail -1 | tr -dc 0-9)
root_size=$(( $(blockdev --getsize64 "$root_dev" 2>/dev/null || echo 0) / 1048576 ))
echo "firstboot: root file system ${root_fs} MiB on $root_dev (${root_size} MiB)"

lan=${lan_ip:-the LAN address}
banner=$(cat <<MSG

==================== Rampart appliance: first boot ====================
 host name             $host
 web UI and API        https://${lan}/  (from the LAN port only)
 TLS certificate       SHA-256 $fingerprint
 root file system      ${root_fs} MiB on $root_dev (${root_size} MiB)
rampart: first-login user admin, password: $password
 Change it at first login. It is shown here until the next reboot.
========================================================================

MSG
)
printf '%s\n' "$banner" >/dev/console 2>/dev/null || true
mkdir -p /run/issue.d
printf '%s\n' "$banner" >/run/issue.d/50-rampart-firstboot.issue
chmod 0644 /run/issue.d/50-rampart-firstboot.issue

touch "$DONE"
