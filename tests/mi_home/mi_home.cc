#include "tests/mi_home/mi_home.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/fs.h"
#include "common/mi/capp.h"
#include "common/mi/shipped_defaults.h"
#include "tests/mi_home/fixtures.h"

extern char** environ;

namespace mimic::mi_home {
namespace {

namespace fs = std::filesystem;

constexpr char kCapps[] = "repository/deployment/server/carbonapps";
constexpr char kSynapse[] = "repository/deployment/server/synapse-configs/default";
constexpr char kSecurity[] = "repository/resources/security";

// ------------------------------------------------------------------ fixed texts

// bin/mimic-standin.sh: the stand-in server that bin/micro-integrator.sh hands over to (the text
// deploy/make-mi-home.sh wrote).
constexpr char kStandIn[] = R"STANDIN(#!/bin/sh
# mimic-standin.sh -- STAND-IN made by mimic's MI home generator for tests and demos; the
# version's real bin/micro-integrator.sh runs it (its second line) instead of starting Java.
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
)STANDIN";

// The second line of the generated bin/micro-integrator.sh (after "#!/bin/sh"): the version's real
// script, as operators edit it, whose run is handed to the stand-in. The same line in every
// version, so a three-way merge of an operator's edits takes it once.
constexpr char kStandInHook[] =
    "[ -f \"$(dirname \"$0\")/mimic-standin.sh\" ] && exec sh \"$(dirname \"$0\")/mimic-standin.sh\" "
    "\"$@\"  # mimic test home: run the stand-in, not Java\n";

constexpr char kGreetingApi[] = R"(<?xml version="1.0" encoding="UTF-8"?>
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
)";

constexpr char kOrderProxy[] = R"(<?xml version="1.0" encoding="UTF-8"?>
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
)";

constexpr char kHelloApi[] = R"(<?xml version="1.0" encoding="UTF-8"?>
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
)";

constexpr char kMainXmlOpsLine[] =
    R"x(        <log level="custom"><property name="ops" value="unmatched request reached main (added by ops)"/></log>)x";

// A partner's certificate the operator added (fixed text, so it is the same on every run).
constexpr char kPartnerPem[] = R"(-----BEGIN CERTIFICATE-----
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
)";

constexpr char kEndpointConfig[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<endpoint xmlns="http://ws.apache.org/ns/synapse" name="PartnerEndpoint">
    <address uri="https://partner-gateway.example.org/orders">
        <timeout>
            <duration>30000</duration>
            <responseAction>fault</responseAction>
        </timeout>
    </address>
</endpoint>
)";

constexpr char kOpsToml[] = R"(
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
)";

// HL7 as an EI 7.1 operator set it up (Options::old_hl7), with the Carbon class names.
constexpr char kOldHl7Toml[] = R"(
# HL7 for the lab systems (EI 7.1 docs).
[[custom_transport.listener]]
class = "org.wso2.carbon.business.messaging.hl7.transport.HL7TransportListener"
protocol = "hl7"
parameter.'transport.hl7.TimeOut' = 10000

[[custom_transport.sender]]
class = "org.wso2.carbon.business.messaging.hl7.transport.HL7TransportSender"
protocol = "hl7"

[[custom_message_builders]]
class = "org.wso2.carbon.business.messaging.hl7.message.HL7MessageBuilder"
content_type = "application/edi-hl7"

[[custom_message_formatters]]
class = "org.wso2.carbon.business.messaging.hl7.message.HL7MessageFormatter"
content_type = "application/edi-hl7"
)";

constexpr char kOldHl7Store[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<messageStore xmlns="http://ws.apache.org/ns/synapse" name="Hl7Store"
              class="org.wso2.carbon.business.messaging.hl7.store.jpa.JPAStore">
    <parameter name="store.jpa.driver">org.h2.Driver</parameter>
    <parameter name="store.jpa.url">jdbc:h2:repository/database/hl7store</parameter>
</messageStore>
)";

// ------------------------------------------------------------------ zips

// 2024-01-01 00:00 in local time: libzip stores local DOS times, so every zone stores the same.
std::time_t FixedZipTime() {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 1;
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

common::ZipEntry FileEntry(const std::string& name, const std::string& data) {
  common::ZipEntry e;
  e.name = name;
  e.data = data;
  e.opsys = 3;  // UNIX
  e.external_attributes = 0100644u << 16;
  e.mtime = FixedZipTime();
  e.compression = common::kZipDeflate;
  return e;
}

common::ZipEntry DirEntry(const std::string& name) {
  common::ZipEntry e = FileEntry(name, "");
  e.is_dir = true;
  e.external_attributes = (040755u << 16) | 0x10;
  return e;
}

// A CApp holding one synapse artifact `art` of `type` (`xml` its file).
absl::StatusOr<std::string> SimpleCapp(const std::string& name, const std::string& art,
                                       const std::string& type, const std::string& xml) {
  const std::string dir = art + "_1.0.0/";
  return common::WriteZip({
      FileEntry("artifacts.xml",
                absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><artifacts>\n"
                             "    <artifact name=\"",
                             name,
                             "\" version=\"1.0.0\" type=\"carbon/application\">\n"
                             "        <dependency artifact=\"",
                             art,
                             "\" version=\"1.0.0\" include=\"true\" "
                             "serverRole=\"EnterpriseServiceBus\"/>\n"
                             "    </artifact>\n</artifacts>\n")),
      DirEntry(dir),
      FileEntry(dir + "artifact.xml",
                absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><artifact name=\"", art,
                             "\" version=\"1.0.0\" type=\"", type,
                             "\" serverRole=\"EnterpriseServiceBus\">\n    <file>", art,
                             "-1.0.0.xml</file>\n</artifact>\n")),
      FileEntry(dir + art + "-1.0.0.xml", xml),
  });
}

// ------------------------------------------------------------------ the Data Mapper CApp

constexpr char kDmCapp[] = "1_1_3_synapse-configCompositeApplication";
constexpr char kDmProxy[] = "OrdersDataMapperProxy";
constexpr char kDmEndpoint[] = "ORDERS_JSON_EP";
// The two mappings: name, input type, output type, input root, output root.
struct Mapping {
  const char* name;
  const char* in_type;
  const char* out_type;
  const char* in_root;
  const char* out_root;
};
constexpr Mapping kMappings[] = {
    {"config_orders_xml_to_json", "XML", "JSON", "orders", "orderSummary"},
    {"config_orders_json_to_xml", "JSON", "XML", "orderSummary", "orderReceipt"},
};

std::string Stylesheet(const Mapping& m) {
  return absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><xsl:stylesheet "
      "xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" xmlns:firstElementOfTheInput=\"",
      m.in_root,
      "\" xmlns:notXSLTCompatible=\"false\" xmlns:own=\"http://ownfunction.org\" "
      "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
      "extension-element-prefixes=\"xs own notXSLTCompatible firstElementOfTheInput\" "
      "version=\"2.0\"><xsl:template match=\"/\"><",
      m.out_root, "><xsl:for-each select=\"", m.in_root,
      "/order\"><line><id><xsl:value-of select=\"id\"/></id><total><xsl:value-of "
      "select=\"number( quantity ) * number( price )\"/></total></line></xsl:for-each></",
      m.out_root, "></xsl:template></xsl:stylesheet>");
}

std::string Schema(const std::string& root) {
  return absl::StrCat(
      "{\n  \"$schema\" : \"http://wso2.org/json-schema/wso2-data-mapper-v5.0.0/schema#\",\n"
      "  \"id\" : \"http://wso2jsonschema.org\",\n  \"title\" : \"",
      root,
      "\",\n  \"type\" : \"object\",\n  \"properties\" : {\n"
      "    \"order\" : {\n      \"type\" : \"array\",\n      \"items\" : [ {\n"
      "        \"type\" : \"object\",\n        \"properties\" : {\n"
      "          \"id\" : { \"type\" : \"string\" },\n"
      "          \"quantity\" : { \"type\" : \"number\" },\n"
      "          \"price\" : { \"type\" : \"number\" }\n"
      "        }\n      } ]\n    }\n  }\n}\n");
}

std::string Dmc(const Mapping& m) {
  return absl::StrCat("map_S_", m.in_root, "_S_", m.out_root, " = function(){ \nvar output",
                      m.out_root, "={};\n\noutput", m.out_root, ".line = [];\nfor(i_order in input",
                      m.in_root, ".order){\noutput", m.out_root, ".line[i_order] = {};\noutput",
                      m.out_root, ".line[i_order].id = input", m.in_root,
                      ".order[i_order].id;\n}\nreturn output", m.out_root, ";\n};\n");
}

std::string ArtifactXml(const std::string& name, const std::string& type, const std::string& file) {
  return absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><artifact name=\"", name,
                      "\" version=\"1.0.0\" type=\"", type,
                      "\" serverRole=\"EnterpriseServiceBus\">\n    <file>", file,
                      "</file>\n</artifact>");
}

// One registry/resource artifact `name` holding resources/`file` under the governance
// registry's datamapper/ collection.
void AddRegistryResource(const std::string& name, const std::string& file,
                         const std::string& content, std::vector<common::ZipEntry>* entries) {
  const std::string dir = name + "_1.0.0/";
  entries->push_back(DirEntry(dir));
  entries->push_back(FileEntry(
      dir + "registry-info.xml",
      absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><resources>\n    <item>\n"
                   "        <file>",
                   file,
                   "</file>\n        <path>/_system/governance/datamapper</path>\n"
                   "        <mediaType>text/plain</mediaType>\n    </item>\n</resources>")));
  entries->push_back(DirEntry(dir + "resources/"));
  entries->push_back(FileEntry(dir + "resources/" + file, content));
  entries->push_back(
      FileEntry(dir + "artifact.xml", ArtifactXml(name, "registry/resource", "registry-info.xml")));
}

std::string DmProxyXml() {
  std::string out =
      absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<proxy name=\"", kDmProxy,
                   "\" startOnLoad=\"true\" transports=\"http https\" "
                   "xmlns=\"http://ws.apache.org/ns/synapse\">\n    <target>\n");
  for (int i = 0; i < 2; ++i) {
    const Mapping& m = kMappings[i];
    const std::string g = absl::StrCat("gov:datamapper/", m.name);
    absl::StrAppend(&out, i == 0 ? "        <inSequence>\n" : "        <outSequence>\n",
                    "            <datamapper config=\"", g, ".dmc\" inputSchema=\"", g,
                    "_inputSchema.json\" inputType=\"", m.in_type, "\" outputSchema=\"", g,
                    "_outputSchema.json\" outputType=\"", m.out_type, "\" xsltStyleSheet=\"", g,
                    "_xsltStyleSheet.xml\"/>\n");
    if (i == 0) {
      absl::StrAppend(&out, "            <send>\n                <endpoint key=\"", kDmEndpoint,
                      "\"/>\n            </send>\n        </inSequence>\n");
    } else {
      absl::StrAppend(&out, "            <respond/>\n        </outSequence>\n");
    }
  }
  absl::StrAppend(&out, "        <faultSequence/>\n    </target>\n</proxy>\n");
  return out;
}

// ------------------------------------------------------------------ files and tools

absl::Status WriteText(const fs::path& path, const std::string& text, fs::perms mode) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  fs::permissions(path, mode, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot chmod ", path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status Write(const fs::path& path, const std::string& text) {
  return WriteText(path, text, fs::perms(0644));
}

absl::Status MakeDir(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", path.string(), ": ", ec.message()));
  fs::permissions(path, fs::perms(0755), ec);
  return absl::OkStatus();
}

bool InPath(const std::string& tool) {
  const char* path = ::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    if (::access(absl::StrCat(dir, "/", tool).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// A started tool: its pid and the log file holding its stdout and stderr.
struct Job {
  std::string what;
  pid_t pid = -1;
  std::string log;
};

absl::StatusOr<Job> Start(const std::string& what, const std::vector<std::string>& argv,
                          const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot start ", argv[0], " (", what, "): ", std::strerror(rc)));
  }
  return Job{what, pid, log};
}

absl::Status Finish(Job* job) {
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(job->pid, &st, 0);
  } while (r < 0 && errno == EINTR);
  job->pid = -1;
  if (r >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return absl::OkStatus();
  absl::StatusOr<std::string> out = common::ReadFile(job->log);
  return absl::InternalError(absl::StrCat(job->what, " failed:\n", out.ok() ? *out : ""));
}

absl::Status RunTool(const std::string& what, const std::vector<std::string>& argv,
                     const std::string& log) {
  absl::StatusOr<Job> job = Start(what, argv, log);
  if (!job.ok()) return job.status();
  return Finish(&*job);
}

// Jobs still running when the generator returns early are stopped and reaped.
class Jobs {
 public:
  Jobs() = default;
  Jobs(const Jobs&) = delete;  // owns child processes
  Jobs& operator=(const Jobs&) = delete;
  ~Jobs() {
    for (Job& j : jobs_) {
      if (j.pid > 0) {
        ::kill(j.pid, SIGTERM);
        int st;
        ::waitpid(j.pid, &st, 0);
      }
    }
  }
  std::vector<Job>& jobs() { return jobs_; }

 private:
  std::vector<Job> jobs_;
};

// A scratch directory removed (recursively) when it goes out of scope.
class Scratch {
 public:
  Scratch() {
    const char* tmp = ::getenv("TMPDIR");
    std::string t = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/mimic-mi-home.XXXXXX");
    if (::mkdtemp(t.data()) != nullptr) path_ = t;
  }
  Scratch(const Scratch&) = delete;  // owns a directory
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::vector<std::string> kKeytoolOpts = {"-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC",
                                               "-J-Xshare:auto"};

std::vector<std::string> Keytool(std::vector<std::string> args) {
  std::vector<std::string> argv = {"keytool"};
  argv.insert(argv.end(), kKeytoolOpts.begin(), kKeytoolOpts.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// ------------------------------------------------------------------ the home

class Generator {
 public:
  Generator(const Options& o, const fs::path& dest) : o_(o), dest_(dest) {}

  absl::Status Run() {
    const std::string& v = o_.version;
    Say(absl::StrCat("writing MI ", v, " files from mimic's own knowledge"));
    for (const char* d : {"bin", "conf", "dropins", "lib", "registry/config", "registry/governance",
                          "registry/local", kCapps, kSecurity, "updates"}) {
      if (absl::Status st = MakeDir(dest_ / d); !st.ok()) return st;
    }
    if (o_.keystores) {
      if (absl::Status st = StartKeystores(); !st.ok()) return st;
    }
    if (absl::Status st = Write(dest_ / "updates/product.txt", "wso2mi-" + v); !st.ok()) return st;
    for (const auto& [path, text] : *common::ShippedDeploymentFiles(v)) {
      if (absl::Status st = Write(dest_ / path, text); !st.ok()) return st;
    }
    if (absl::Status st = WriteShippedStartAndConf(); !st.ok()) return st;
    if (absl::Status st = ShippedPlugins(); !st.ok()) return st;
    if (o_.profile == Profile::kSource) {
      if (absl::Status st = Customise(); !st.ok()) return st;
      if (absl::Status st = EditStartAndConf(); !st.ok()) return st;
      if (absl::Status st = OperatorBundles(); !st.ok()) return st;
      if (o_.unresolvable_dropin) {
        if (absl::Status st = UnresolvableDropin(); !st.ok()) return st;
      }
      if (o_.old_hl7) {
        if (absl::Status st = OldHl7Config(); !st.ok()) return st;
      }
    }
    return FinishKeystores();
  }

 private:
  void Say(const std::string& what) const {
    if (o_.say) o_.say(what);
  }
  std::string Host() const { return absl::StrCat("mi-", o_.hostname, ".example.com"); }

  // The key and certificate are made with openssl (fast); keytool (slow: a JVM each) then writes
  // the Java keystores, in parallel, while the rest of the home is written.
  absl::Status StartKeystores() {
    if (!InPath("openssl")) return absl::FailedPreconditionError("openssl not found");
    if (!InPath("keytool")) {
      return absl::FailedPreconditionError(
          "keytool not found (install a JDK, e.g. openjdk-17-jdk-headless)");
    }
    if (scratch_.path().empty()) return absl::InternalError("cannot create a scratch directory");
    Say("making keystores (wso2carbon.jks, client-truststore.jks, publickey.pem)");
    const std::string t = scratch_.path();
    const std::string sec = (dest_ / kSecurity).string();
    const std::string key = t + "/wso2carbon.key", crt = t + "/wso2carbon.crt",
                      p12 = t + "/wso2carbon.p12", cnf = t + "/req.cnf", err = t + "/err";
    if (absl::Status st = RunTool("openssl genpkey",
                                  {"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                   "rsa_keygen_bits:2048", "-out", key},
                                  err);
        !st.ok()) {
      return st;
    }
    if (absl::Status st = WriteText(cnf,
                                    "[req]\ndistinguished_name = dn\nprompt = no\n"
                                    "x509_extensions = v3\n[dn]\n[v3]\n"
                                    "subjectKeyIdentifier = hash\nbasicConstraints = CA:FALSE\n"
                                    "keyUsage = digitalSignature, keyEncipherment\n"
                                    "subjectAltName = DNS:localhost\n",
                                    fs::perms(0600));
        !st.ok()) {
      return st;
    }
    if (absl::Status st = RunTool(
            "openssl req",
            {"openssl", "req", "-new", "-x509", "-config", cnf, "-key", key, "-days", "3650",
             "-sha256", "-subj", "/C=US/ST=CA/L=Mountain View/O=WSO2/CN=localhost", "-out", crt},
            err);
        !st.ok()) {
      return st;
    }
    if (absl::Status st = RunTool("openssl pkcs12",
                                  {"openssl", "pkcs12", "-export", "-name", "wso2carbon", "-inkey",
                                   key, "-in", crt, "-passout", "pass:wso2carbon", "-out", p12},
                                  err);
        !st.ok()) {
      return st;
    }
    if (absl::Status st = RunTool(
            "openssl pkey",
            {"openssl", "pkey", "-in", key, "-pubout", "-out", sec + "/publickey.pem"}, err);
        !st.ok()) {
      return st;
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> tools = {
        {"keytool making wso2carbon.jks",
         Keytool({"-importkeystore", "-noprompt",  "-srckeystore",   p12,
                  "-srcstoretype",   "PKCS12",     "-srcstorepass",  "wso2carbon",
                  "-srcalias",       "wso2carbon", "-destkeystore",  sec + "/wso2carbon.jks",
                  "-deststoretype",  "JKS",        "-deststorepass", "wso2carbon",
                  "-destalias",      "wso2carbon", "-destkeypass",   "wso2carbon"})},
        {"keytool making client-truststore.jks",
         Keytool({"-importcert", "-noprompt", "-trustcacerts", "-alias", "wso2carbon", "-file", crt,
                  "-keystore", sec + "/client-truststore.jks", "-storetype", "JKS", "-storepass",
                  "wso2carbon"})}};
    if (o_.profile == Profile::kSource) {
      tools.push_back(
          {"keytool making custom-keystore.p12",
           Keytool({"-genkeypair",
                    "-noprompt",
                    "-alias",
                    "custom",
                    "-keyalg",
                    "RSA",
                    "-keysize",
                    "2048",
                    "-validity",
                    "3650",
                    "-dname",
                    absl::StrCat("CN=", Host(), ", OU=Integration, O=Example Corp, C=US"),
                    "-ext",
                    "SAN=dns:" + Host(),
                    "-keystore",
                    sec + "/custom-keystore.p12",
                    "-storetype",
                    "PKCS12",
                    "-storepass",
                    "custom123",
                    "-keypass",
                    "custom123"})});
    }
    for (size_t i = 0; i < tools.size(); ++i) {
      absl::StatusOr<Job> job =
          Start(tools[i].first, tools[i].second, absl::StrCat(t, "/kt", i + 1, ".log"));
      if (!job.ok()) return job.status();
      jobs_.jobs().push_back(*std::move(job));
    }
    return absl::OkStatus();
  }

  absl::Status FinishKeystores() {
    absl::Status first;
    for (Job& j : jobs_.jobs()) {
      if (absl::Status st = Finish(&j); !st.ok() && first.ok()) first = st;
    }
    if (!first.ok()) return first;
    if (!o_.keystores) return absl::OkStatus();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dest_ / kSecurity, ec)) {
      fs::permissions(e.path(), fs::perms(0644), ec);
    }
    return absl::OkStatus();
  }

  absl::Status Customise() {
    const fs::path capps = dest_ / kCapps;
    Say("customising: CApps");
    absl::StatusOr<std::string> dm = DataMapperCapp();
    if (!dm.ok()) return dm.status();
    if (absl::Status st = Write(capps / kDataMapperCappName, *dm); !st.ok()) return st;
    absl::StatusOr<std::string> greeting =
        SimpleCapp("GreetingServiceCompositeExporter", "GreetingAPI", "synapse/api", kGreetingApi);
    if (!greeting.ok()) return greeting.status();
    if (absl::Status st = Write(capps / "GreetingServiceCompositeExporter_1.0.0.car", *greeting);
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::string> order = SimpleCapp("OrderProxyCompositeExporter", "OrderProxy",
                                                   "synapse/proxy-service", kOrderProxy);
    if (!order.ok()) return order.status();
    if (absl::Status st = Write(capps / "OrderProxyCompositeExporter_1.0.0.car", *order);
        !st.ok()) {
      return st;
    }

    Say("customising: synapse-configs (api/HelloApi.xml, sequences/main.xml)");
    const fs::path syn = dest_ / kSynapse;
    if (absl::Status st = Write(syn / "api/HelloApi.xml", kHelloApi); !st.ok()) return st;
    // "An operator changed a shipped file": one log line added to the default main sequence.
    const std::string main_rel = absl::StrCat(kSynapse, "/sequences/main.xml");
    std::string main = common::ShippedDeploymentFiles(o_.version)->at(main_rel);
    const size_t in = main.find("\n    <in>\n");
    if (in == std::string::npos) {
      return absl::InternalError(
          absl::StrCat(main_rel, " of MI ", o_.version, " has no '    <in>' line"));
    }
    main.insert(in + 10, absl::StrCat(kMainXmlOpsLine, "\n"));
    if (absl::Status st = Write(dest_ / main_rel, main); !st.ok()) return st;

    Say("customising: resources/security (custom-keystore.p12, partner.pem)");
    if (absl::Status st = Write(dest_ / kSecurity / "partner.pem", kPartnerPem); !st.ok()) {
      return st;
    }

    Say("customising: lib/ and dropins/ jars");
    const std::vector<
        std::tuple<std::string, std::string, std::vector<std::pair<std::string, std::string>>>>
        jars = {{"lib/postgresql-42.5.4.jar",
                 "Implementation-Title: PostgreSQL JDBC Driver\r\n"
                 "Implementation-Vendor: PostgreSQL Global Development Group\r\n"
                 "Implementation-Version: 42.5.4\r\nBundle-ManifestVersion: 2\r\n"
                 "Bundle-SymbolicName: org.postgresql.jdbc\r\nBundle-Version: 42.5.4\r\n",
                 {{"META-INF/services/java.sql.Driver", "org.postgresql.Driver"}}},
                {"lib/custom-mediator-1.0.jar",
                 "Implementation-Title: custom-mediator\r\nImplementation-Vendor: Example Corp\r\n"
                 "Implementation-Version: 1.0\r\n",
                 {}},
                {"dropins/custom-handler_1.0.0.jar",
                 "Bundle-ManifestVersion: 2\r\nBundle-Name: Custom Synapse Handler\r\n"
                 "Bundle-SymbolicName: custom-handler\r\nBundle-Version: 1.0.0\r\n"
                 "Bundle-Vendor: Example Corp\r\n",
                 {}}};
    for (const auto& [path, manifest, extra] : jars) {
      absl::StatusOr<std::string> jar = MakeJar(manifest, extra);
      if (!jar.ok()) return jar.status();
      if (absl::Status st = Write(dest_ / path, *jar); !st.ok()) return st;
    }

    Say("customising: registry/governance/custom/endpoint-config.xml");
    if (absl::Status st =
            Write(dest_ / "registry/governance/custom/endpoint-config.xml", kEndpointConfig);
        !st.ok()) {
      return st;
    }

    if (absl::Status st = AddFileDropProxy(); !st.ok()) return st;
    if (absl::Status st = AddEmptyDeploymentFolder(); !st.ok()) return st;
    if (absl::Status st = AddUpdateLevel(); !st.ok()) return st;
    Say(absl::StrCat("customising: conf/deployment.toml (hostname ", Host(), ")"));
    return Write(dest_ / "conf/deployment.toml", WithOldHomePath(WithTicketComments(CustomToml())));
  }

  // A proxy that reads files from a folder under this MI home, named by its absolute path (as
  // operators write VFS URIs): a carried file with a path to the old home.
  absl::Status AddFileDropProxy() {
    Say("customising: synapse-configs (proxy-services/FileDropProxy.xml, absolute paths)");
    return Write(dest_ / kSynapse / "proxy-services/FileDropProxy.xml",
                 absl::StrCat(
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<proxy xmlns=\"http://ws.apache.org/ns/synapse\" name=\"FileDropProxy\" "
                     "transports=\"vfs\" startOnLoad=\"true\">\n"
                     "    <target>\n        <inSequence>\n            <log level=\"full\"/>\n"
                     "            <drop/>\n        </inSequence>\n    </target>\n"
                     "    <parameter name=\"transport.vfs.FileURI\">file://",
                     dest_.string(),
                     "/file-drop/in</parameter>\n"
                     "    <parameter name=\"transport.vfs.MoveAfterProcess\">file://",
                     dest_.string(),
                     "/file-drop/done</parameter>\n"
                     "    <parameter name=\"transport.vfs.FileNamePattern\">.*\\.xml</parameter>\n"
                     "    <parameter name=\"transport.vfs.ContentType\">application/xml"
                     "</parameter>\n"
                     "</proxy>\n"));
  }

  // An empty folder under repository/deployment/server (an operator's drop folder).
  absl::Status AddEmptyDeploymentFolder() {
    Say("customising: repository/deployment/server/file-drop/ (empty)");
    return MakeDir(dest_ / "repository/deployment/server/file-drop");
  }

  // updates/config.json as WSO2 Updates 2.0 leaves it, with an update level.
  absl::Status AddUpdateLevel() {
    const std::string level = o_.version == "1.2.0" ? "36" : o_.version == "4.0.0" ? "57" : "12";
    Say("customising: updates/config.json (update level " + level + ")");
    return Write(dest_ / "updates/config.json",
                 absl::StrCat("{\n  \"update-level\": \"", level,
                              "\",\n  \"channel\": \"full\"\n}\n"));
  }

  // Change-ticket comments above a table and above a key of the operator's deployment.toml.
  static std::string WithTicketComments(std::string toml) {
    const std::string host = "\nhostname = ";
    if (size_t p = toml.find(host); p != std::string::npos) {
      toml.insert(p + 1, "# CHG-20240117: the name clients use behind the load balancer\n");
    }
    const std::string http = "\n[transport.http]\n";
    if (size_t p = toml.find(http); p != std::string::npos) {
      toml.insert(p + 1, "# CHG-20231102: slow partner backend\n");
    }
    return toml;
  }

  // A deployment.toml value that is an absolute path under this MI home.
  std::string WithOldHomePath(std::string toml) const {
    return absl::StrCat(toml,
                        "\n[transport.vfs]\n"
                        "listener.parameter.'transport.vfs.FailedRecordsFileDestination' = "
                        "\"file://",
                        dest_.string(), "/file-drop/failed\"\n");
  }

  // A few of the OSGi bundles the version ships in wso2/components/plugins (Carbon's
  // <symbolic name>_<version>.jar names), at the versions of its pom.xml (common/mi/osgi.cc has
  // the sources): what copy_custom_components compares the operator's lib/ jars with.
  absl::Status ShippedPlugins() {
    struct Plugin {
      const char* name;
      const char* version[3];  // 1.2.0, 4.0.0, 4.2.0
    };
    static constexpr Plugin kPlugins[] = {
        {"synapse-core", {"2.1.7.wso2v182", "2.1.7.wso2v227", "4.0.0.wso2v20"}},
        {"axis2", {"1.6.1.wso2v54", "1.6.1.wso2v63", "1.6.1.wso2v85"}},
        {"commons-lang3", {"3.4.0.wso2v1", "3.4.0.wso2v1", "3.12.0.wso2v1"}},
    };
    const int i = o_.version == "1.2.0" ? 0 : o_.version == "4.0.0" ? 1 : 2;
    Say("writing wso2/components/plugins (a few shipped bundles)");
    for (const Plugin& p : kPlugins) {
      absl::StatusOr<std::string> jar =
          MakeJar(absl::StrCat("Bundle-ManifestVersion: 2\r\nBundle-SymbolicName: ", p.name,
                               "\r\nBundle-Version: ", p.version[i], "\r\n"),
                  {});
      if (!jar.ok()) return jar.status();
      const fs::path path =
          dest_ / "wso2/components/plugins" / absl::StrCat(p.name, "_", p.version[i], ".jar");
      if (absl::Status st = Write(path, *jar); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // The operator's bundles with imports: a dropins/ bundle every version satisfies (its Synapse
  // import is optional: preflight warns on 4.2.0), and a lib/ jar of an artifact the versions
  // ship in another version (commons-lang3 3.9 against the plugins' 3.4.0 / 3.12.0).
  absl::Status OperatorBundles() {
    Say("customising: dropins/org.example.audit.handler_1.0.0.jar, lib/commons-lang3-3.9.jar");
    absl::StatusOr<std::string> handler = MakeJar(
        "Bundle-ManifestVersion: 2\r\nBundle-SymbolicName: org.example.audit.handler\r\n"
        "Bundle-Version: 1.0.0\r\n"
        "Import-Package: org.apache.axis2.context;version=\"[1.6.1,1.7.0)\",org.a\r\n"
        " pache.synapse.rest;version=\"[2.1,3)\";resolution:=optional,org.apache.\r\n"
        " commons.logging\r\n",
        {});
    if (!handler.ok()) return handler.status();
    if (absl::Status st = Write(dest_ / "dropins/org.example.audit.handler_1.0.0.jar", *handler);
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::string> lang3 =
        MakeJar("Bundle-ManifestVersion: 2\r\nBundle-SymbolicName: org.apache.commons.lang3\r\n"
                "Bundle-Version: 3.9.0\r\nImplementation-Title: Apache Commons Lang\r\n"
                "Implementation-Version: 3.9\r\n",
                {});
    if (!lang3.ok()) return lang3.status();
    return Write(dest_ / "lib/commons-lang3-3.9.jar", *lang3);
  }

  // Options::unresolvable_dropin: a bundle built against Synapse 2.1 ("[2.1,3)"), which MI
  // 4.2.0 (Synapse 4.0.0) cannot resolve.
  absl::Status UnresolvableDropin() {
    Say("customising: dropins/org.example.legacy.mediator_1.0.0.jar (Synapse [2.1,3))");
    absl::StatusOr<std::string> jar = MakeJar(
        "Bundle-ManifestVersion: 2\r\nBundle-SymbolicName: org.example.legacy.mediator\r\n"
        "Bundle-Version: 1.0.0\r\n"
        "Import-Package: org.apache.synapse;version=\"[2.1,3)\",org.apache.synap\r\n"
        " se.mediators;version=\"[2.1,3)\",org.apache.axis2.context;version=\"[1.\r\n"
        " 6,2)\"\r\n",
        {});
    if (!jar.ok()) return jar.status();
    return Write(dest_ / "dropins/org.example.legacy.mediator_1.0.0.jar", *jar);
  }

  // Options::old_hl7: HL7 set up the way EI 7.1's docs show it, with the Carbon class names
  // (org.wso2.carbon.business.messaging.hl7.*): message builder and formatter in
  // deployment.toml, the HL7 transport tables, and a message store with the old JPAStore class.
  absl::Status OldHl7Config() {
    Say("customising: HL7 with the EI 7.1 class names");
    const fs::path toml = dest_ / "conf/deployment.toml";
    std::ifstream in(toml, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text += kOldHl7Toml;
    if (absl::Status st = Write(toml, text); !st.ok()) return st;
    return Write(dest_ / kSynapse / "message-stores/Hl7Store.xml", kOldHl7Store);
  }

  // The shipped deployment.toml with the operator's hostname and offset set and ops' tables
  // appended; the shipped keystore tables and all comments kept.
  std::string CustomToml() const {
    std::vector<std::string> lines =
        absl::StrSplit(*common::ShippedDeploymentToml(o_.version), '\n');
    for (std::string& line : lines) {
      if (line == "hostname = \"localhost\"") {
        line = absl::StrCat("hostname = \"", Host(), "\"   # set by ops (was \"localhost\")");
      } else if (line == "# offset  = 10") {
        line = "offset = 10   # set by ops";
      }
    }
    std::string text = absl::StrJoin(lines, "\n");
    // The shipped 4.0.0 file does not end with a newline.
    if (!text.empty() && text.back() != '\n') text += '\n';
    return text + kOpsToml;
  }

  // The version's start scripts (bin/micro-integrator.sh with the stand-in hook as its second
  // line, bin/yajsw/wrapper.conf), bin/mimic-standin.sh, and its shipped conf/ files: those MI
  // does not regenerate at start, conf/carbon.xml (mimic reads the version there) and
  // conf/deployment.toml. Not conf/security/ (the secure vault's files: tests that need them
  // write them), nor the other templated files (MI writes them from deployment.toml at start).
  absl::Status WriteShippedStartAndConf() {
    Say("writing bin/ start scripts and conf/ files as MI " + o_.version + " ships them");
    for (const auto& [path, f] : *common::ShippedConfigFiles(o_.version)) {
      if (absl::StartsWith(path, "conf/security/")) continue;
      if (f.templated && path != "conf/carbon.xml") continue;
      std::string text = f.text;
      if (path == "bin/micro-integrator.sh") {
        const size_t eol = text.find('\n');
        if (eol == std::string::npos) return absl::InternalError("empty micro-integrator.sh");
        text.insert(eol + 1, kStandInHook);
      }
      if (absl::Status st = WriteText(dest_ / path, text,
                                      fs::perms(absl::StartsWith(path, "bin/") &&
                                                        absl::EndsWith(path, ".sh")
                                                    ? 0755
                                                    : 0644));
          !st.ok()) {
        return st;
      }
    }
    return WriteText(dest_ / "bin/mimic-standin.sh", kStandIn, fs::perms(0755));
  }

  // What an operator changes outside deployment.toml: the heap raised and a -D property added in
  // bin/micro-integrator.sh, a log4j2 logger's level, an endpoint in conf/file.properties.
  absl::Status EditStartAndConf() {
    Say("customising: bin/micro-integrator.sh (-Xmx, -D), conf/log4j2.properties, "
        "conf/file.properties");
    const std::vector<std::tuple<std::string, std::string, std::string>> edits = {
        {"bin/micro-integrator.sh", "JVM_MEM_OPTS=\"-Xms256m -Xmx1024m\"",
         "JVM_MEM_OPTS=\"-Xms256m -Xmx4096m\""},
        {"bin/micro-integrator.sh", "    -Dcom.sun.management.jmxremote \\\n",
         "    -Dcom.sun.management.jmxremote \\\n    -Dcom.example.ops.tracing=true \\\n"},
        {"conf/log4j2.properties", "logger.ModuleDeployer.level = WARN\n",
         "logger.ModuleDeployer.level = INFO\n"},
        {"conf/file.properties", "stockQuoteEP=http://localhost:9000/",
         "stockQuoteEP=http://quotes.example.com:9000/"}};
    for (const auto& [path, from, to] : edits) {
      absl::StatusOr<std::string> read = common::ReadFile((dest_ / path).string());
      if (!read.ok()) return read.status();
      std::string text = *std::move(read);
      const size_t at = text.find(from);
      if (at == std::string::npos) {
        return absl::InternalError(absl::StrCat(path, " of MI ", o_.version, " has no '", from, "'"));
      }
      text.replace(at, from.size(), to);
      if (absl::Status st = WriteText(dest_ / path, text,
                                      fs::perms(common::FileMode((dest_ / path).string())));
          !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  }

  const Options& o_;
  const fs::path dest_;
  Scratch scratch_;
  Jobs jobs_;
};

}  // namespace

std::vector<std::string> Versions() { return {"1.2.0", "4.0.0", "4.2.0"}; }

absl::StatusOr<std::string> MakeJar(const std::string& manifest_lines,
                                    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<common::ZipEntry> entries = {
      DirEntry("META-INF/"),
      FileEntry("META-INF/MANIFEST.MF",
                absl::StrCat("Manifest-Version: 1.0\r\n", manifest_lines,
                             "Created-By: mimic make-mi-home (test jar, no classes)\r\n\r\n"))};
  for (const auto& [path, content] : extra) entries.push_back(FileEntry(path, content + "\n"));
  return common::WriteZip(entries);
}

std::vector<std::string> DataMapperStylesheetEntries() {
  std::vector<std::string> out;
  for (const Mapping& m : kMappings) {
    out.push_back(
        absl::StrCat(m.name, "_xsltStyleSheet_1.0.0/resources/", m.name, "_xsltStyleSheet.xml"));
  }
  return out;
}

std::string DataMapperStylesheet(int i) { return Stylesheet(kMappings[i]); }

absl::StatusOr<std::string> DataMapperCapp() {
  std::vector<common::ZipEntry> entries;
  std::vector<std::string> deps;
  // The proxy using both mappings, and its endpoint.
  const std::string proxy_dir = absl::StrCat(kDmProxy, "_1.0.0/");
  entries.push_back(DirEntry(proxy_dir));
  entries.push_back(FileEntry(proxy_dir + kDmProxy + "-1.0.0.xml", DmProxyXml()));
  entries.push_back(FileEntry(
      proxy_dir + "artifact.xml",
      ArtifactXml(kDmProxy, "synapse/proxy-service", absl::StrCat(kDmProxy, "-1.0.0.xml"))));
  deps.push_back(kDmProxy);
  const std::string ep_dir = absl::StrCat(kDmEndpoint, "_1.0.0/");
  entries.push_back(DirEntry(ep_dir));
  entries.push_back(FileEntry(
      ep_dir + "artifact.xml",
      ArtifactXml(kDmEndpoint, "synapse/endpoint", absl::StrCat(kDmEndpoint, "-1.0.0.xml"))));
  entries.push_back(FileEntry(
      ep_dir + kDmEndpoint + "-1.0.0.xml",
      absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<endpoint name=\"", kDmEndpoint,
                   "\" xmlns=\"http://ws.apache.org/ns/synapse\">\n    <http method=\"post\" "
                   "uri-template=\"http://orders.backend.example.com:8080/orders/json\"/>\n"
                   "</endpoint>\n")));
  deps.push_back(kDmEndpoint);
  // Each mapping: its .dmc, input and output schemas and stylesheet, as registry resources.
  for (const Mapping& m : kMappings) {
    const std::string n = m.name;
    AddRegistryResource(n, n + ".dmc", Dmc(m), &entries);
    AddRegistryResource(n + "_inputSchema", n + "_inputSchema.json", Schema(m.in_root), &entries);
    AddRegistryResource(n + "_outputSchema", n + "_outputSchema.json", Schema(m.out_root),
                        &entries);
    AddRegistryResource(n + "_xsltStyleSheet", n + "_xsltStyleSheet.xml", Stylesheet(m), &entries);
    for (const char* suffix : {"", "_inputSchema", "_outputSchema", "_xsltStyleSheet"}) {
      deps.push_back(n + suffix);
    }
  }
  std::string artifacts =
      absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><artifacts>\n    <artifact name=\"",
                   kDmCapp, "\" version=\"1.0.0\" type=\"carbon/application\">\n");
  for (const std::string& d : deps) {
    absl::StrAppend(
        &artifacts, "        <dependency artifact=\"", d,
        "\" version=\"1.0.0\" include=\"true\" serverRole=\"EnterpriseServiceBus\"/>\n");
  }
  absl::StrAppend(&artifacts, "    </artifact>\n</artifacts>");
  entries.push_back(FileEntry("artifacts.xml", artifacts));
  return common::WriteZip(entries);
}

absl::Status MakeMiHome(const Options& o) {
  if (common::ShippedDeploymentToml(o.version) == nullptr ||
      common::ShippedDeploymentFiles(o.version) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown MI version '", o.version, "' (known: ", absl::StrJoin(Versions(), ", "), ")"));
  }
  static const std::regex kHost(R"(^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$)");
  if (!std::regex_match(o.hostname, kHost)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hostname '", o.hostname, "' is not a valid host name"));
  }
  if (o.dest.empty()) return absl::InvalidArgumentError("no destination given");
  std::error_code ec;
  fs::path dest(o.dest);
  const fs::file_status fst = fs::symlink_status(dest, ec);
  if (fs::exists(fst)) {
    if (!fs::is_directory(fst)) {
      return absl::InvalidArgumentError(absl::StrCat(o.dest, " exists and is not a directory"));
    }
    if (!fs::is_empty(dest, ec)) {
      if (o.force && fs::exists(dest / "updates/product.txt")) {
        if (o.say) o.say(absl::StrCat("removing the old MI home ", o.dest));
        fs::remove_all(dest, ec);
        if (ec) {
          return absl::InternalError(absl::StrCat("cannot remove ", o.dest, ": ", ec.message()));
        }
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            o.dest, " exists and is not empty (use --force to replace an MI home made earlier)"));
      }
    }
  }
  if (absl::Status st = MakeDir(dest); !st.ok()) return st;
  dest = fs::canonical(dest, ec);
  absl::Status st;
  {
    Generator g(o, dest);
    st = g.Run();
  }  // keytool jobs reaped, scratch removed
  if (!st.ok()) {
    fs::remove_all(dest, ec);
    return absl::Status(
        st.code(), absl::StrCat(st.message(), "\n(removed the unfinished ", dest.string(), ")"));
  }
  if (o.say) {
    o.say(absl::StrCat("made ", o.profile == Profile::kSource ? "source" : "target", " MI ",
                       o.version, " home in ", dest.string()));
  }
  return absl::OkStatus();
}

std::string FixturesDir() { return MIMIC_FIXTURES_DIR; }

bool HaveFixtures() {
  const fs::path mi = fs::path(FixturesDir()) / "mi";
  std::error_code ec;
  for (const std::string& v : Versions()) {
    if (!fs::is_regular_file(mi / v / "updates/product.txt", ec)) return false;
  }
  return fs::is_regular_file(
      mi / "samples/carbonapps/1_1_3_synapse-configCompositeApplication_1.0.0.car", ec);
}

}  // namespace mimic::mi_home
