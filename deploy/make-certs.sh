#!/usr/bin/env bash
# make-certs.sh OUTDIR HOST... -- the certificate set for mimic's mutual-TLS gRPC channel.
#
# Makes, in OUTDIR:
#   ca.pem, ca.key                   the fleet CA (10 years). Kept when it already exists.
#   controller.pem, controller.key   client certificate of the controller `mimic`
#                                    (subject CN=mimic-controller,O=mimic; extendedKeyUsage clientAuth)
#   HOST.pem, HOST.key               one server certificate per agent host (CN=HOST; subjectAltName
#                                    DNS:HOST (IP:HOST for an address), DNS:localhost, IP:127.0.0.1;
#                                    extendedKeyUsage serverAuth only: an agent's key cannot be
#                                    used as a client to drive other agents)
# With ROGUE=1 in the environment it also makes an independent second CA and a client certificate
# signed by it, with the same subject as the real controller (tests use it to prove that an agent
# refuses a client its fleet CA did not sign):
#   rogue-ca.pem, rogue-ca.key, rogue-controller.pem, rogue-controller.key
#
# Idempotent: an existing CA is kept; an existing leaf certificate is kept when it still verifies
# against the CA, matches its key and is valid for at least 30 more days; otherwise it is re-issued.
# Private keys are 0600. Prints one line per file set it made or kept.
#
# Environment (all optional):
#   KEY_TYPE=ec|rsa   key algorithm: ec = EC P-256 (default), rsa = RSA 2048
#   DAYS=825          validity of leaf certificates in days (the CA always gets 3650)
#   ROGUE=1           also make the rogue CA and rogue controller certificate
#
# Needs only the openssl command line tool.
set -euo pipefail

usage() {
  echo "usage: $0 OUTDIR HOST..." >&2
  echo "       env: KEY_TYPE=ec|rsa (default ec), DAYS=N (leaf validity, default 825), ROGUE=1" >&2
  exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
OUT=$1
shift

KEY_TYPE=${KEY_TYPE:-ec}
DAYS=${DAYS:-825}
CA_DAYS=3650
ROGUE=${ROGUE:-0}
case "$KEY_TYPE" in ec|rsa) ;; *) echo "make-certs: KEY_TYPE must be ec or rsa, not '$KEY_TYPE'" >&2; exit 2 ;; esac
case "$DAYS" in ''|*[!0-9]*) echo "make-certs: DAYS must be a number of days" >&2; exit 2 ;; esac

command -v openssl >/dev/null || { echo "make-certs: openssl not found" >&2; exit 1; }

# Validate host names before touching anything.
is_ip() {
  [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || [[ $1 == *:* && $1 =~ ^[0-9A-Fa-f:.]+$ ]]
}
for h in "$@"; do
  if ! [[ $h =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] && ! is_ip "$h"; then
    echo "make-certs: '$h' is not a valid host name or IP address" >&2
    exit 2
  fi
  case "$h" in
    ca|controller|rogue-ca|rogue-controller)
      echo "make-certs: host name '$h' would overwrite $h.pem; choose another name" >&2
      exit 2 ;;
  esac
done

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mimic-certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# A minimal config, so the system's openssl.cnf plays no part.
cat >"$TMP/req.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
EOF

cat >"$TMP/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

if [ "$KEY_TYPE" = ec ]; then
  LEAF_KU="critical, digitalSignature"
else
  LEAF_KU="critical, digitalSignature, keyEncipherment"
fi

newkey() { # newkey FILE
  (umask 077 && rm -f "$1" &&
    if [ "$KEY_TYPE" = ec ]; then
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    else
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
    fi)
  chmod 600 "$1"
}

serial() { echo "0x$(openssl rand -hex 16)"; }

subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }

# make_ca NAME SUBJECT -- NAME.pem/NAME.key; kept when both exist.
make_ca() {
  local name=$1 subj=$2 pem="$OUT/$1.pem" key="$OUT/$1.key"
  if [ -s "$pem" ] && [ -s "$key" ]; then
    chmod 600 "$key"
    echo "kept  $pem  ($(subject "$pem"))"
    return
  fi
  if [ -s "$pem" ] && [ ! -s "$key" ]; then
    echo "make-certs: $pem exists but $key does not; cannot sign with it (move $pem away to make a new CA)" >&2
    exit 1
  fi
  newkey "$key"
  openssl req -new -x509 -config "$TMP/ca.cnf" -key "$key" -subj "$subj" -days "$CA_DAYS" \
    -sha256 -set_serial "$(serial)" -out "$pem.tmp" 2>"$TMP/err" ||
    { cat "$TMP/err" >&2; exit 1; }
  chmod 644 "$pem.tmp"
  mv -f "$pem.tmp" "$pem"
  echo "made  $pem  $key  (CA: $(subject "$pem"); ${CA_DAYS} days)"
}

# eku_text EKU -- the extended key usage line `openssl x509 -ext extendedKeyUsage` prints for EKU.
eku_text() {
  echo "$1" | sed -e 's/serverAuth/TLS Web Server Authentication/' \
    -e 's/clientAuth/TLS Web Client Authentication/' -e 's/ *, */, /g'
}

# leaf_ok CANAME NAME EKU -- true when NAME.pem/.key exist, verify against the CA, match, carry
# exactly the extended key usage EKU (an older set's agent certificates with clientAuth are
# re-issued), and are not expiring.
leaf_ok() {
  local ca="$OUT/$1.pem" pem="$OUT/$2.pem" key="$OUT/$2.key" eku=$3
  [ -s "$pem" ] && [ -s "$key" ] || return 1
  [ "$(openssl x509 -in "$pem" -noout -ext extendedKeyUsage 2>/dev/null | sed -n '2{s/^ *//;p}')" = \
    "$(eku_text "$eku")" ] || return 1
  openssl verify -CAfile "$ca" "$pem" >/dev/null 2>&1 || return 1
  openssl x509 -in "$pem" -noout -checkend 2592000 >/dev/null 2>&1 || return 1
  [ "$(openssl x509 -in "$pem" -noout -pubkey 2>/dev/null)" = \
    "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ] || return 1
}

# make_leaf CANAME NAME SUBJECT EKU [SAN] -- NAME.pem/NAME.key signed by CANAME.
make_leaf() {
  local caname=$1 name=$2 subj=$3 eku=$4 san=${5:-}
  local pem="$OUT/$name.pem" key="$OUT/$name.key"
  if leaf_ok "$caname" "$name" "$eku"; then
    chmod 600 "$key"
    echo "kept  $pem  ($(subject "$pem"))"
    return
  fi
  {
    echo "[v3]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = $LEAF_KU"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    [ -z "$san" ] || echo "subjectAltName = $san"
  } >"$TMP/$name.ext"
  newkey "$key"
  openssl req -new -config "$TMP/req.cnf" -key "$key" -subj "$subj" -out "$TMP/$name.csr" 2>"$TMP/err" ||
    { cat "$TMP/err" >&2; exit 1; }
  openssl x509 -req -in "$TMP/$name.csr" -CA "$OUT/$caname.pem" -CAkey "$OUT/$caname.key" \
    -set_serial "$(serial)" -days "$DAYS" -sha256 -extfile "$TMP/$name.ext" -extensions v3 \
    -out "$pem.tmp" 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
  chmod 644 "$pem.tmp"
  mv -f "$pem.tmp" "$pem"
  echo "made  $pem  $key  ($(subject "$pem"); ${eku}${san:+; $san}; ${DAYS} days; signed by $caname.pem)"
}

make_ca ca "/O=mimic/CN=mimic fleet CA"
make_leaf ca controller "/O=mimic/CN=mimic-controller" "clientAuth"

for h in "$@"; do
  if is_ip "$h"; then
    san="IP:$h, DNS:localhost"
    [ "$h" = 127.0.0.1 ] || san="$san, IP:127.0.0.1"
  else
    san="DNS:$h"
    [ "$h" = localhost ] || san="$san, DNS:localhost"
    san="$san, IP:127.0.0.1"
  fi
  make_leaf ca "$h" "/O=mimic/CN=$h" "serverAuth" "$san"
done

case "$ROGUE" in
  1|yes|true)
    make_ca rogue-ca "/O=rogue/CN=rogue CA (not the fleet CA)"
    # Same subject as the real controller on purpose: only the signing CA differs.
    make_leaf rogue-ca rogue-controller "/O=mimic/CN=mimic-controller" "clientAuth"
    ;;
esac
