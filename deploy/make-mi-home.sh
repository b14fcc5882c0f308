#!/usr/bin/env bash
# make-mi-home.sh VERSION DEST [--profile source|target] [--fixtures DIR] [--hostname NAME] [--force] [-v]
#
# Builds a test/demo WSO2 Micro Integrator home (MI_HOME) in DEST from the real MI files in
# FIXTURES/mi/VERSION (VERSION = 1.2.0, 4.0.0 or 4.2.0). It is NOT a runnable MI: there is no Java
# runtime in it (no wso2/ directory); bin/micro-integrator.sh is a stand-in that only imitates what
# mimic can observe of a server (pid file, start-up log line).
#
#   --profile target   (default) a fresh install, as unzipped from WSO2's distribution: the fixture's
#                      conf/, dbscripts/, repository/, updates/, the stand-in bin/micro-integrator.sh,
#                      empty dropins/, lib/, registry/{config,governance,local}/,
#                      repository/deployment/server/carbonapps/, and the shipped keystores made with
#                      keytool: wso2carbon.jks (alias wso2carbon, password wso2carbon, RSA 2048,
#                      CN=localhost), client-truststore.jks (password wso2carbon, holds the wso2carbon
#                      certificate), publickey.pem (wso2carbon's public key).
#   --profile source   the same, customised the way an operator customises an old server:
#                      CApps (the Data Mapper sample from FIXTURES/mi/samples/carbonapps + two small
#                      ones built here), a custom API and a changed default main sequence, a custom
#                      PKCS12 keystore and a partner certificate, jars in lib/ and dropins/, a file
#                      registry resource, and a customised conf/deployment.toml (server hostname and
#                      offset, datasources, HTTP and JMS transports, management API, an internal API
#                      user and [secrets]; the shipped keystore tables and all comments kept).
#   --fixtures DIR     the fixtures directory holding mi/VERSION (DIR/VERSION is accepted too).
#                      Default: "$(dirname "$0")/../../shared/fixtures".
#   --hostname NAME    source profile: [server] hostname becomes "mi-NAME.example.com".
#                      Default: $HOSTNAME (so each demo host differs), else "localhost".
#   --force            replace DEST if it is an MI home (has updates/product.txt) made earlier.
#   -v                 say what is being made.
#
# DEST must not exist or be an empty directory (unless --force). Output is the same on every run
# for the same arguments, except the bytes of the generated keys, keystores and publickey.pem.
# Needs: bash, coreutils, openssl, keytool (JDK), zip.
set -euo pipefail

prog=make-mi-home
usage() {
  sed -n '2,2p' "$0" | sed 's/^# /usage: /' >&2
  echo "       (see the comment at the top of $0)" >&2
  exit 2
}
die() { echo "$prog: $*" >&2; exit 1; }

VERSION='' DEST='' PROFILE=target FIXTURES='' HOSTNAME_OPT='' FORCE=0 VERBOSE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage; PROFILE=$2; shift 2 ;;
    --profile=*) PROFILE=${1#*=}; shift ;;
    --fixtures) [ $# -ge 2 ] || usage; FIXTURES=$2; shift 2 ;;
    --fixtures=*) FIXTURES=${1#*=}; shift ;;
    --hostname) [ $# -ge 2 ] || usage; HOSTNAME_OPT=$2; shift 2 ;;
    --hostname=*) HOSTNAME_OPT=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    -v|--verbose) VERBOSE=1; shift ;;
    -h|--help) usage ;;
    -*) echo "$prog: unknown option $1" >&2; usage ;;
    *)
      if [ -z "$VERSION" ]; then VERSION=$1
      elif [ -z "$DEST" ]; then DEST=$1
      else echo "$prog: unexpected argument $1" >&2; usage
      fi
      shift ;;
  esac
done
if [ -z "$VERSION" ] || [ -z "$DEST" ]; then usage; fi
case "$PROFILE" in source|target) ;; *) die "--profile must be source or target, not '$PROFILE'" ;; esac
case "$VERSION" in *[!0-9.]*|'') die "VERSION must look like 4.2.0, not '$VERSION'" ;; esac

say() { [ "$VERBOSE" = 0 ] || echo "$prog: $*"; }

# ---------------------------------------------------------------- inputs
[ -n "$FIXTURES" ] || FIXTURES="$(dirname "$0")/../../shared/fixtures"
if [ -f "$FIXTURES/mi/$VERSION/updates/product.txt" ]; then
  SRC="$FIXTURES/mi/$VERSION"; SAMPLES="$FIXTURES/mi/samples"
elif [ -f "$FIXTURES/$VERSION/updates/product.txt" ]; then
  SRC="$FIXTURES/$VERSION"; SAMPLES="$FIXTURES/samples"
else
  die "no MI $VERSION fixture under $FIXTURES (looked for mi/$VERSION/updates/product.txt)"
fi
for d in conf dbscripts repository updates; do
  [ -d "$SRC/$d" ] || die "fixture $SRC has no $d/"
done
SRC=$(cd "$SRC" && pwd -P)
SAMPLES=$(cd "$SAMPLES" 2>/dev/null && pwd -P || echo "$SAMPLES")

H=${HOSTNAME_OPT:-${HOSTNAME:-localhost}}
[[ $H =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "hostname '$H' is not a valid host name"

command -v openssl >/dev/null || die "openssl not found"
command -v keytool >/dev/null || die "keytool not found (install a JDK, e.g. openjdk-17-jdk-headless)"
if [ "$PROFILE" = source ]; then command -v zip >/dev/null || die "zip not found"; fi

# ---------------------------------------------------------------- destination
if [ -e "$DEST" ] || [ -L "$DEST" ]; then
  [ -d "$DEST" ] && [ ! -L "$DEST" ] || die "$DEST exists and is not a directory"
  if [ -n "$(ls -A "$DEST")" ]; then
    if [ "$FORCE" = 1 ] && [ -f "$DEST/updates/product.txt" ]; then
      say "removing the old MI home $DEST"
      rm -rf "$DEST"
    else
      die "$DEST exists and is not empty (use --force to replace an MI home made earlier)"
    fi
  fi
fi
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd -P)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mimic-mi-home.XXXXXX")
pids=() names=()
# On any exit: stop keytool jobs still running (after an error), then remove the scratch folder.
# After a failure, DEST (absent or empty when we started) is removed again: no half-made homes.
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
  if [ "$rc" != 0 ] && [ -n "$DEST" ] && [ -d "$DEST/conf" ]; then
    rm -rf "$DEST"
    echo "$prog: removed the unfinished $DEST" >&2
  fi
}
trap cleanup EXIT

# Fixed time stamps and zone, so zip archives come out byte-identical on every run.
export TZ=UTC
STAMP=202401010000
SEC=$DEST/repository/resources/security

# ---------------------------------------------------------------- shipped files
say "copying MI $VERSION files from $SRC"
cp -R "$SRC/conf" "$SRC/dbscripts" "$SRC/repository" "$SRC/updates" "$DEST/"
# Fixture files are read-only; an installed MI's files are not.
chmod -R u+w,go-w,a+rX "$DEST"
mkdir -p "$DEST/bin" "$DEST/dropins" "$DEST/lib" \
  "$DEST/registry/config" "$DEST/registry/governance" "$DEST/registry/local" \
  "$DEST/repository/deployment/server/carbonapps" "$SEC"

# ---------------------------------------------------------------- keystores (started first: keytool is slow)
# The key and certificate are made with openssl (fast); keytool then writes the Java keystores.
# The keytool calls are independent and run in parallel.
KT_OPTS=(-J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -J-Xshare:auto)
say "making keystores (wso2carbon.jks, client-truststore.jks, publickey.pem)"
(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/wso2carbon.key" 2>"$TMP/err") ||
  { cat "$TMP/err" >&2; die "openssl genpkey failed"; }
printf '[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n[dn]\n[v3]\nsubjectKeyIdentifier = hash\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\nsubjectAltName = DNS:localhost\n' >"$TMP/req.cnf"
openssl req -new -x509 -config "$TMP/req.cnf" -key "$TMP/wso2carbon.key" -days 3650 -sha256 \
  -subj "/C=US/ST=CA/L=Mountain View/O=WSO2/CN=localhost" -out "$TMP/wso2carbon.crt" 2>"$TMP/err" ||
  { cat "$TMP/err" >&2; die "openssl req failed"; }
openssl pkcs12 -export -name wso2carbon -inkey "$TMP/wso2carbon.key" -in "$TMP/wso2carbon.crt" \
  -passout pass:wso2carbon -out "$TMP/wso2carbon.p12" 2>"$TMP/err" ||
  { cat "$TMP/err" >&2; die "openssl pkcs12 failed"; }
openssl pkey -in "$TMP/wso2carbon.key" -pubout -out "$SEC/publickey.pem" 2>"$TMP/err" ||
  { cat "$TMP/err" >&2; die "openssl pkey failed"; }

keytool "${KT_OPTS[@]}" -importkeystore -noprompt \
  -srckeystore "$TMP/wso2carbon.p12" -srcstoretype PKCS12 -srcstorepass wso2carbon -srcalias wso2carbon \
  -destkeystore "$SEC/wso2carbon.jks" -deststoretype JKS -deststorepass wso2carbon \
  -destalias wso2carbon -destkeypass wso2carbon >"$TMP/kt1.log" 2>&1 &
pids+=($!) names+=("wso2carbon.jks:kt1")
keytool "${KT_OPTS[@]}" -importcert -noprompt -trustcacerts -alias wso2carbon -file "$TMP/wso2carbon.crt" \
  -keystore "$SEC/client-truststore.jks" -storetype JKS -storepass wso2carbon >"$TMP/kt2.log" 2>&1 &
pids+=($!) names+=("client-truststore.jks:kt2")
if [ "$PROFILE" = source ]; then
  keytool "${KT_OPTS[@]}" -genkeypair -noprompt -alias custom -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=mi-$H.example.com, OU=Integration, O=Example Corp, C=US" \
    -ext "SAN=dns:mi-$H.example.com" \
    -keystore "$SEC/custom-keystore.p12" -storetype PKCS12 -storepass custom123 -keypass custom123 \
    >"$TMP/kt3.log" 2>&1 &
  pids+=($!) names+=("custom-keystore.p12:kt3")
fi

# ---------------------------------------------------------------- bin/micro-integrator.sh (stand-in)
cat >"$DEST/bin/micro-integrator.sh" <<'STANDIN'
#!/bin/sh
# micro-integrator.sh -- STAND-IN made by mimic's deploy/make-mi-home.sh for tests and demos.
# This is NOT WSO2 Micro Integrator and starts no Java. It imitates only what mimic observes of a
# real server:
#   start|--start   starts a background `sleep`, writes its pid to $CARBON_HOME/wso2carbon.pid and
#                   logs "WSO2 Micro Integrator started in 1.00 seconds" to repository/logs/wso2carbon.log
#   stop|--stop     kills (SIGTERM) the process in wso2carbon.pid and removes the pid file
#   restart, status, version
#   (no argument)   runs in the foreground like the real script (pid file = this process)
CARBON_HOME=$(cd "$(dirname "$0")/.." && pwd -P)
PID_FILE="$CARBON_HOME/wso2carbon.pid"
LOG_DIR="$CARBON_HOME/repository/logs"
PRODUCT=$(cat "$CARBON_HOME/updates/product.txt" 2>/dev/null || echo wso2mi)

log() {
  mkdir -p "$LOG_DIR"
  printf '[%s]  INFO {%s} - %s\n' "$(date '+%Y-%m-%d %H:%M:%S,000')" "$1" "$2" >>"$LOG_DIR/wso2carbon.log"
}
# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  case "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" in Z|X|'') return 1 ;; esac
}
running() { [ -s "$PID_FILE" ] && alive "$(cat "$PID_FILE")"; }

do_start() {
  echo "micro-integrator.sh: stand-in for $PRODUCT (no real server; made by mimic make-mi-home.sh)"
  if running; then
    echo "micro-integrator.sh: already running as process $(cat "$PID_FILE")"
    return 0
  fi
  log StartupFinalizer "Starting WSO2 Micro Integrator (stand-in for $PRODUCT)"
  nohup sleep 2147483647 </dev/null >/dev/null 2>&1 &
  echo $! >"$PID_FILE"
  log StartupFinalizer "WSO2 Micro Integrator started in 1.00 seconds"
}

do_stop() {
  if ! running; then
    echo "micro-integrator.sh: stand-in for $PRODUCT is not running"
    rm -f "$PID_FILE"
    return 0
  fi
  pid=$(cat "$PID_FILE")
  kill -TERM "$pid" 2>/dev/null
  n=0
  while alive "$pid" && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  ! alive "$pid" || kill -KILL "$pid" 2>/dev/null
  rm -f "$PID_FILE"
  log CarbonServerManager "Shutdown complete (stand-in for $PRODUCT)"
  echo "micro-integrator.sh: stopped process $pid"
}

case "${1:-}" in
  start|--start) do_start ;;
  stop|--stop) do_stop ;;
  restart|--restart) do_stop; do_start ;;
  status|--status)
    if running; then echo "running as process $(cat "$PID_FILE")"; else echo "not running"; exit 3; fi ;;
  version|--version) echo "$PRODUCT (stand-in)" ;;
  "")
    echo "micro-integrator.sh: stand-in for $PRODUCT, running in the foreground"
    echo $$ >"$PID_FILE"
    log StartupFinalizer "WSO2 Micro Integrator started in 1.00 seconds"
    exec sleep 2147483647 ;;
  *) echo "usage: $0 [start|stop|restart|status|version]" >&2; exit 1 ;;
esac
STANDIN
chmod 755 "$DEST/bin/micro-integrator.sh"

# ---------------------------------------------------------------- source profile: operator customisations
# mkzip ARCHIVE DIR ENTRY... -- a zip of DIR's ENTRYs, in that order, with fixed time stamps and no
# extra fields, so the archive is byte-identical on every run.
mkzip() {
  local archive=$1 dir=$2
  shift 2
  find "$dir" -exec touch -h -t "$STAMP" {} +
  (cd "$dir" && zip -q -X "$archive.tmp" "$@") || die "zip $archive failed"
  mv -f "$archive.tmp" "$archive"
}

# capp NAME ARTIFACT TYPE XMLFILE -- writes NAME_1.0.0.car holding one synapse artifact (from stdin).
capp() {
  local name=$1 art=$2 type=$3 d="$TMP/capp-$1"
  mkdir -p "$d/${art}_1.0.0"
  cat >"$d/artifacts.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?><artifacts>
    <artifact name="$name" version="1.0.0" type="carbon/application">
        <dependency artifact="$art" version="1.0.0" include="true" serverRole="EnterpriseServiceBus"/>
    </artifact>
</artifacts>
EOF
  cat >"$d/${art}_1.0.0/artifact.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?><artifact name="$art" version="1.0.0" type="$type" serverRole="EnterpriseServiceBus">
    <file>$art-1.0.0.xml</file>
</artifact>
EOF
  cat >"$d/${art}_1.0.0/$art-1.0.0.xml"
  mkzip "$DEST/repository/deployment/server/carbonapps/${name}_1.0.0.car" "$d" \
    artifacts.xml "${art}_1.0.0/" "${art}_1.0.0/artifact.xml" "${art}_1.0.0/$art-1.0.0.xml"
}

# mkjar FILE MANIFEST_LINES [PATH CONTENT]... -- a tiny real jar: META-INF/MANIFEST.MF (+ extra files).
mkjar() {
  local out=$1 manifest=$2 d
  shift 2
  d="$TMP/jar-$(basename "$out")"
  mkdir -p "$d/META-INF"
  printf 'Manifest-Version: 1.0\r\n%sCreated-By: mimic make-mi-home.sh (test jar, no classes)\r\n\r\n' \
    "$manifest" >"$d/META-INF/MANIFEST.MF"
  local entries=("META-INF/" "META-INF/MANIFEST.MF")
  while [ $# -ge 2 ]; do
    mkdir -p "$d/$(dirname "$1")"
    printf '%s\n' "$2" >"$d/$1"
    entries+=("$1")
    shift 2
  done
  mkzip "$out" "$d" "${entries[@]}"
}

if [ "$PROFILE" = source ]; then
  say "customising: CApps"
  CAPPS=$DEST/repository/deployment/server/carbonapps
  if [ -d "$SAMPLES/carbonapps" ]; then
    for car in "$SAMPLES"/carbonapps/*.car; do
      [ -e "$car" ] || continue
      cp "$car" "$CAPPS/"
      chmod 644 "$CAPPS/$(basename "$car")"
    done
  else
    die "no sample CApps in $SAMPLES/carbonapps"
  fi

  capp GreetingServiceCompositeExporter GreetingAPI synapse/api <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<api xmlns="http://ws.apache.org/ns/synapse" name="GreetingAPI" context="/greeting">
    <resource methods="GET" uri-template="/{name}">
        <inSequence>
            <payloadFactory media-type="json">
                <format>{"greeting": "Hello, $1"}</format>
                <args>
                    <arg evaluator="xml" expression="$ctx:uri.var.name"/>
                </args>
            </payloadFactory>
            <respond/>
        </inSequence>
        <outSequence/>
        <faultSequence/>
    </resource>
</api>
EOF

  capp OrderProxyCompositeExporter OrderProxy synapse/proxy-service <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<proxy xmlns="http://ws.apache.org/ns/synapse" name="OrderProxy" startOnLoad="true" transports="http https">
    <target>
        <inSequence>
            <log level="custom">
                <property name="OrderProxy" value="order received"/>
            </log>
            <send>
                <endpoint>
                    <address uri="http://orders.backend.example.com:8080/orders"/>
                </endpoint>
            </send>
        </inSequence>
        <outSequence>
            <send/>
        </outSequence>
        <faultSequence/>
    </target>
</proxy>
EOF

  say "customising: synapse-configs (api/HelloApi.xml, sequences/main.xml)"
  SYN=$DEST/repository/deployment/server/synapse-configs/default
  mkdir -p "$SYN/api"
  cat >"$SYN/api/HelloApi.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Added by ops: a custom API deployed as a loose synapse file, not in a CApp. -->
<api xmlns="http://ws.apache.org/ns/synapse" name="HelloApi" context="/hello">
    <resource methods="GET" uri-template="/">
        <inSequence>
            <payloadFactory media-type="json">
                <format>{"message": "Hello from the operator's custom API"}</format>
                <args/>
            </payloadFactory>
            <respond/>
        </inSequence>
        <outSequence/>
        <faultSequence/>
    </resource>
</api>
EOF
  # "An operator changed a shipped file": one log line added to the default main sequence.
  grep -q '^    <in>$' "$SYN/sequences/main.xml" || die "$SYN/sequences/main.xml has no '<in>' line"
  sed -i '0,/^    <in>$/s//    <in>\n        <log level="custom"><property name="ops" value="unmatched request reached main (added by ops)"\/><\/log>/' \
    "$SYN/sequences/main.xml"

  say "customising: resources/security (custom-keystore.p12, partner.pem)"
  # A partner's certificate the operator added (fixed text, so it is the same on every run).
  cat >"$SEC/partner.pem" <<'EOF'
-----BEGIN CERTIFICATE-----
MIICIjCCAcigAwIBAgIIWjwPF9LpS2EwCgYIKoZIzj0EAwIwUTELMAkGA1UEBhMC
TkwxHDAaBgNVBAoME0V4YW1wbGUgUGFydG5lciBMdGQxJDAiBgNVBAMMG3BhcnRu
ZXItZ2F0ZXdheS5leGFtcGxlLm9yZzAgFw0yNDAxMDEwMDAwMDBaGA8yMTI0MDEw
MTAwMDAwMFowUTELMAkGA1UEBhMCTkwxHDAaBgNVBAoME0V4YW1wbGUgUGFydG5l
ciBMdGQxJDAiBgNVBAMMG3BhcnRuZXItZ2F0ZXdheS5leGFtcGxlLm9yZzBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABA1IJjSwYg+OwOekef44owhtYvVD6vmTuVH5
K0SuVCzBOpBb86TyqJC6nbCxXE0UCGZxfhy1mLOJGUwFsZs3iDGjgYcwgYQwDAYD
VR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwHQYDVR0lBBYwFAYIKwYBBQUHAwEG
CCsGAQUFBwMCMB0GA1UdDgQWBBQC0c4OMZlDENDuvnkCs5fAOdtMVjAmBgNVHREE
HzAdghtwYXJ0bmVyLWdhdGV3YXkuZXhhbXBsZS5vcmcwCgYIKoZIzj0EAwIDSAAw
RQIgT/mPtiBEou0ks0EeDK9oErvh2bAdCXegeR+B8YiifqwCIQD75Sug1LVovaCz
4hdJw4FHP6LQ0+GhV79XBi6yssuDvg==
-----END CERTIFICATE-----
EOF

  say "customising: lib/ and dropins/ jars"
  mkjar "$DEST/lib/postgresql-42.5.4.jar" \
    $'Implementation-Title: PostgreSQL JDBC Driver\r\nImplementation-Vendor: PostgreSQL Global Development Group\r\nImplementation-Version: 42.5.4\r\nBundle-ManifestVersion: 2\r\nBundle-SymbolicName: org.postgresql.jdbc\r\nBundle-Version: 42.5.4\r\n' \
    META-INF/services/java.sql.Driver org.postgresql.Driver
  mkjar "$DEST/lib/custom-mediator-1.0.jar" \
    $'Implementation-Title: custom-mediator\r\nImplementation-Vendor: Example Corp\r\nImplementation-Version: 1.0\r\n'
  mkjar "$DEST/dropins/custom-handler_1.0.0.jar" \
    $'Bundle-ManifestVersion: 2\r\nBundle-Name: Custom Synapse Handler\r\nBundle-SymbolicName: custom-handler\r\nBundle-Version: 1.0.0\r\nBundle-Vendor: Example Corp\r\n'

  say "customising: registry/governance/custom/endpoint-config.xml"
  mkdir -p "$DEST/registry/governance/custom"
  cat >"$DEST/registry/governance/custom/endpoint-config.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<endpoint xmlns="http://ws.apache.org/ns/synapse" name="PartnerEndpoint">
    <address uri="https://partner-gateway.example.org/orders">
        <timeout>
            <duration>30000</duration>
            <responseAction>fault</responseAction>
        </timeout>
    </address>
</endpoint>
EOF

  say "customising: conf/deployment.toml (hostname mi-$H.example.com)"
  TOML=$DEST/conf/deployment.toml
  [ "$(grep -c '^hostname = "localhost"$' "$TOML")" = 1 ] || die "$TOML: no single 'hostname = \"localhost\"' line"
  grep -q '^# offset  = 10$' "$TOML" || die "$TOML: no '# offset  = 10' line"
  sed -i -e "s/^hostname = \"localhost\"\$/hostname = \"mi-$H.example.com\"   # set by ops (was \"localhost\")/" \
    -e 's/^# offset  = 10$/offset = 10   # set by ops/' "$TOML"
  # The shipped 4.0.0 file does not end with a newline.
  [ -z "$(tail -c 1 "$TOML")" ] || echo >>"$TOML"
  cat >>"$TOML" <<'EOF'

## ---------------------------------------------------------------------------------------------
## Settings added by ops (this server's own configuration on top of the shipped defaults).
## ---------------------------------------------------------------------------------------------

[transport.http]
socket_timeout = 120000   # timeout in milliseconds; the partner backend is slow
disable_connection_keepalive = false
connection_timeout = 60000 # in milliseconds

[transport.jms]
listener_enable = true

[[transport.jms.listener]]
name = "myQueueConnectionFactory"
parameter.initial_naming_factory = "org.apache.activemq.jndi.ActiveMQInitialContextFactory"
parameter.provider_url = "tcp://activemq.example.com:61616"
parameter.connection_factory_name = "QueueConnectionFactory"
parameter.connection_factory_type = "queue"

# Coordination database for the cluster (PostgreSQL); the password is an encrypted secret.
[[datasource]]
id = "WSO2_COORDINATION_DB"
url = "jdbc:postgresql://db.example.com:5432/mi_coordination"
username = "mi_coord"
password = "$secret{db_password}"
driver = "org.postgresql.Driver"
pool_options.maxActive = 50
pool_options.maxWait = 60000
pool_options.testOnBorrow = true
pool_options.validationQuery = "SELECT 1"

# Reporting database used by the OrderProxy flows; still a plain-text password (to be moved to [secrets]).
[[datasource]]
id = "REPORTING_DB"
url = "jdbc:postgresql://reporting.example.com:5432/reports"
username = "reporter"
password = "Rep0rt-Plain-Pw"
driver = "org.postgresql.Driver"

[management_api]
protocols = "https"

[[internal_apis.users]]
user.name = "ops"
user.password = "$secret{ops_pw}"

# Encrypted with bin/ciphertool.sh -Dconfigure (values in [brackets] are encrypted on first run).
[secrets]
db_password = "[secret]"
ops_pw = "[secret]"
EOF
fi

# ---------------------------------------------------------------- wait for keytool
fail=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    log=${names[$i]#*:}
    echo "$prog: keytool failed making ${names[$i]%%:*}:" >&2
    cat "$TMP/$log.log" >&2
    fail=1
  fi
done
pids=()
[ "$fail" = 0 ] || exit 1
chmod 644 "$SEC"/*.jks "$SEC"/*.pem
[ "$PROFILE" != source ] || chmod 644 "$SEC/custom-keystore.p12"

say "made $PROFILE MI $VERSION home in $DEST"
