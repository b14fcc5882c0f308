#!/bin/bash
# micro-integrator.sh -- STAND-IN for tests of mimic's verify step (agent/steps/verify_test.cc).
# WSO2 Micro Integrator cannot be downloaded here, so this is NOT MI and starts no Java. Tests
# copy it over <MI_HOME>/bin/micro-integrator.sh. It serves only what the verify step observes of
# a real server (MI-FACTS §7):
#   start|--start   starts, in the background, a tiny python3 HTTP server on the internal HTTP API
#                   port 9201 + (offset - 10) (offset from conf/deployment.toml [server]), writes
#                   its pid to $CARBON_HOME/wso2carbon.pid; once listening, it logs
#                   "WSO2 Micro Integrator started in 0.10 seconds" to repository/logs/wso2carbon.log.
#                   GET /healthz answers 200 {"version":"4.2.0","update_level":"-","status" : "ready"},
#                   or, when the file $CARBON_HOME/FAULTY exists,
#                   500 {"status": "not ready, faulty CAPPs detected", "Faulty CAPPs" : ["bad.car"]}.
#                   When $CARBON_HOME/NOPROBE exists, no server listens (only the log line).
#                   When $CARBON_HOME/VERSION exists, /healthz reports its text as the version.
#                   The uid it runs as goes to repository/logs/started-by-uid.
#   stop|--stop     kills (SIGTERM) the process in wso2carbon.pid and removes the pid file.
#   status          says whether it runs.
set -u
CARBON_HOME=$(cd "$(dirname "$0")/.." && pwd -P)
PID_FILE="$CARBON_HOME/wso2carbon.pid"
LOG_DIR="$CARBON_HOME/repository/logs"
mkdir -p "$LOG_DIR"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

offset() {
  awk '/^[[:space:]]*\[/ { in_server = ($0 ~ /^[[:space:]]*\[server\][[:space:]]*(#.*)?$/) }
       in_server && /^[[:space:]]*offset[[:space:]]*=/ {
         v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); gsub(/"/, "", v); sub(/[[:space:]#].*$/, "", v); print v; exit }' \
    "$CARBON_HOME/conf/deployment.toml"
}

SERVER='
import http.server, os, sys, time
home, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/healthz":
            code, body = 404, "{}"
        elif os.path.exists(os.path.join(home, "FAULTY")):
            code, body = 500, "{\"status\": \"not ready, faulty CAPPs detected\", \"Faulty CAPPs\" : [\"bad.car\"]}"
        else:
            vf = os.path.join(home, "VERSION")
            version = open(vf).read().strip() if os.path.exists(vf) else "4.2.0"
            code, body = 200, "{\"version\":\"" + version + "\",\"update_level\":\"-\",\"status\" : \"ready\"}"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
srv = None if os.path.exists(os.path.join(home, "NOPROBE")) else http.server.HTTPServer(("127.0.0.1", port), H)
with open(log, "a") as f:
    f.write(time.strftime("[%Y-%m-%d %H:%M:%S,000]") + "  INFO {StartupFinalizer} - WSO2 Micro Integrator started in 0.10 seconds\n")
if srv:
    srv.serve_forever()
else:
    while True:
        time.sleep(60)
'

case "${1:-}" in
  start|--start)
    if [ -f "$PID_FILE" ] && alive "$(cat "$PID_FILE")"; then
      echo "already running (pid $(cat "$PID_FILE"))"; exit 0
    fi
    off=$(offset); off=${off:-10}
    port=$((9201 + off - 10))
    id -u >"$LOG_DIR/started-by-uid"
    nohup python3 -c "$SERVER" "$CARBON_HOME" "$port" "$LOG_DIR/wso2carbon.log" \
      >>"$LOG_DIR/standin.out" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    echo "started (pid $!, probe port $port)"
    ;;
  stop|--stop)
    if [ -f "$PID_FILE" ]; then
      pid=$(cat "$PID_FILE")
      alive "$pid" && kill -TERM "$pid"
      rm -f "$PID_FILE"
    fi
    echo "stopped"
    ;;
  status)
    if [ -f "$PID_FILE" ] && alive "$(cat "$PID_FILE")"; then echo running; else echo stopped; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status (stand-in)" >&2; exit 2 ;;
esac
