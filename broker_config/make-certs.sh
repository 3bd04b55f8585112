#!/bin/sh
# hallwatch: a certificate authority of your own and a TLS server certificate for the broker.
#
#   broker_config/make-certs.sh OUTDIR HOSTNAME [HOSTNAME|IP ...]
#   e.g. broker_config/make-certs.sh var/certs chimei-hall.local 192.168.10.2
#
# Writes OUTDIR/ca.crt (give it to every client that connects with TLS: the engine's
# --ca-file, a TLS device, a township bridge as county-ca.crt), OUTDIR/ca.key (it signs
# server certificates: the broker never needs it, keep it off the server once done),
# OUTDIR/server.crt and OUTDIR/server.key (the broker's; docker-compose.yml mounts these two
# and ca.crt, one file at a time). The CA is made once and reused; the server certificate is made again on each
# run (for a new name or address). Private keys are written with mode 0600.
# Needs the openssl command (Debian: apt-get install openssl).
set -eu

if [ $# -lt 2 ]; then
  echo "usage: $0 OUTDIR HOSTNAME [HOSTNAME|IP ...]" >&2
  exit 2
fi
out=$1
shift
cn=$1
san=""
for name in "$@"; do
  case $name in
    *:*) san="$san,IP:$name" ;;          # IPv6 address
    *[!0-9.]*) san="$san,DNS:$name" ;;   # host name
    *) san="$san,IP:$name" ;;            # IPv4 address
  esac
done
san=${san#,}

umask 077
mkdir -p "$out"
chmod 711 "$out"   # the broker's user may reach the files given to it, not list the folder
if [ ! -f "$out/ca.key" ] || [ ! -f "$out/ca.crt" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 -subj "/CN=hallwatch CA $cn" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
fi
ext=$(mktemp)
trap 'rm -f "$ext" "$out/server.csr"' EXIT
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$san" > "$ext"
openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=$cn" \
  -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -sha256 -days 825 -extfile "$ext" -out "$out/server.crt" 2>/dev/null
chmod 644 "$out/ca.crt" "$out/server.crt"
chmod 600 "$out/ca.key" "$out/server.key"
echo "$out: ca.crt (give to TLS clients), ca.key (keep offline), server.crt and server.key (the broker's) for $san"
