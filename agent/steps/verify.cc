// verify: starts the migrated target MI and checks that it is healthy (MI-FACTS §7), then
// always stops it.
//  * start: `<target>/bin/micro-integrator.sh start` (environment, JAVA_HOME included, passed
//    through; its output goes to <run_dir>/verify-start.out);
//  * probe: GET http://127.0.0.1:<port>/healthz, port = 9201 + (offset - 10) with offset from the
//    target's [server] offset (default 10), or param probe_port. 200 with "status" "ready" is
//    healthy; 500 lists the "Faulty CAPPs" and fails the step. When the probe never answers, the
//    start-up line "WSO2 Micro Integrator started" appended to repository/logs/wso2carbon.log
//    counts as healthy once the probe has stayed silent for param probe_grace_seconds after it
//    (default 10; 0 takes the line alone as soon as it appears: for a server known to serve no
//    probe, or for tests). Polling ends at param start_timeout_seconds (default 120);
//  * stop: `micro-integrator.sh stop`; the pid from wso2carbon.pid is killed (SIGKILL) when still
//    alive 15 s later.
//  * before starting, refuses when anything accepts connections on 127.0.0.1 at one of the
//    target's ports (HTTP 8290, HTTPS 8253, internal HTTPS 9164, internal HTTP / probe 9201, each
//    + offset - 10, and the probe port): the source MI on the same offset would answer /healthz
//    and its health be taken for the target's;
//  * refuses when the target's artifacts hold inbound endpoints, scheduled tasks or message
//    processors (loose in synapse-configs or in CApps): starting the target turns them on while
//    the source may still run (duplicate polling, double processing), unless param
//    allow_live_start = "true";
//  * checks that the version /healthz reports is the target's;
//  * runs the start and stop scripts as the owner (uid and gid) of the target home: an agent
//    running as root switches to that user; an agent of another user refuses.
// The effect is not a file change: the change set is always empty and forced_status says OK or
// FAILED. Check mode never starts anything: forced_status STEP_SKIPPED with "verify runs only in
// apply mode" (a dry run cannot tell whether the server would start).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <toml++/toml.h>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/base/subprocess.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"
#include "common/mi/capp.h"
#include "common/mi/mi_version.h"

namespace mimic::agent {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kScript[] = "bin/micro-integrator.sh";
constexpr char kLog[] = "repository/logs/wso2carbon.log";
constexpr char kPidFile[] = "wso2carbon.pid";
constexpr char kStartedLine[] = "WSO2 Micro Integrator started";
constexpr int kStopGraceSeconds = 15;

struct HttpAnswer {
  int status = 0;  // 0: no answer (refused, timeout, garbage)
  std::string body;
};

// A blocking HTTP/1.0 GET of `path` on 127.0.0.1:`port`; every wait bounded by `timeout`.
HttpAnswer HttpGet(int port, const std::string& path, std::chrono::milliseconds timeout) {
  HttpAnswer answer;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return answer;
  const Clock::time_point deadline = Clock::now() + timeout;
  auto wait_for = [&](short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) == 1 && (p.revents & (events | POLLHUP)) != 0;
  };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string raw;
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ||
            (errno == EINPROGRESS && wait_for(POLLOUT));
  int err = 0;
  socklen_t len = sizeof(err);
  ok = ok && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port, "\r\n\r\n");
  for (size_t sent = 0; ok && sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += n;
    } else if (n < 0 && errno == EAGAIN) {
      ok = wait_for(POLLOUT);
    } else {
      ok = false;
    }
  }
  while (ok && raw.size() < (1 << 20)) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      raw.append(buf, n);
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN) {
      ok = wait_for(POLLIN);
    } else {
      ok = false;
    }
  }
  ::close(fd);
  // "HTTP/1.x CODE ..." then headers, blank line, body.
  const size_t space = raw.find(' ');
  const size_t header_end = raw.find("\r\n\r\n");
  if (!absl::StartsWith(raw, "HTTP/") || space == std::string::npos ||
      header_end == std::string::npos ||
      !absl::SimpleAtoi(raw.substr(space + 1, 3), &answer.status)) {
    answer.status = 0;
    return answer;
  }
  answer.body = raw.substr(header_end + 4);
  return answer;
}

// The string value of "key" in a flat JSON object (enough for the probe's answers).
std::string JsonString(const std::string& json, const std::string& key) {
  size_t pos = json.find(absl::StrCat("\"", key, "\""));
  if (pos == std::string::npos) return "";
  pos = json.find(':', pos);
  const size_t open = pos == std::string::npos ? pos : json.find('"', pos);
  const size_t close = open == std::string::npos ? open : json.find('"', open + 1);
  return close == std::string::npos ? "" : json.substr(open + 1, close - open - 1);
}

// The strings of the array value of "key".
std::vector<std::string> JsonStrings(const std::string& json, const std::string& key) {
  std::vector<std::string> out;
  size_t pos = json.find(absl::StrCat("\"", key, "\""));
  if (pos == std::string::npos) return out;
  const size_t open = json.find('[', pos);
  const size_t close = open == std::string::npos ? open : json.find(']', open);
  if (close == std::string::npos) return out;
  for (size_t q = json.find('"', open); q != std::string::npos && q < close;) {
    const size_t e = json.find('"', q + 1);
    if (e == std::string::npos || e > close) break;
    out.push_back(json.substr(q + 1, e - q - 1));
    q = json.find('"', e + 1);
  }
  return out;
}

// Runs `script arg` with the agent's environment, output to `out_path`; waits at most
// `timeout`. The exit code, or -1 when it could not run or was killed at the timeout.
struct Owner {
  int64_t uid = -1;  // -1: run as the agent
  int64_t gid = -1;
};

int RunScript(const std::string& script, const std::string& arg, const std::string& out_path,
              std::chrono::seconds timeout, const Owner& owner) {
  common::SubprocessOptions o;
  o.uid = owner.uid;
  o.gid = owner.gid;
  o.argv = {script, arg};
  if (::access(script.c_str(), X_OK) != 0) o.argv = {"/bin/sh", script, arg};
  o.stdout_path = out_path;
  o.stdout_append = true;
  o.stdout_file_mode = 0640;
  o.merge_stderr = true;
  o.new_session = true;     // the server must not die with the agent's process group
  o.signal_group = false;   // nor with the script, at the timeout
  o.kill_grace = absl::ZeroDuration();
  o.drain_after_exit = absl::ZeroDuration();
  o.timeout = absl::Seconds(timeout.count());
  absl::StatusOr<common::SubprocessResult> r = common::RunSubprocess(o);
  if (!r.ok() || r->timed_out || r->signal != 0) return -1;
  return r->exit_code;
}

pid_t ReadPid(const std::string& path) {
  absl::StatusOr<std::string> text = common::ReadFile(path);
  int pid = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) return 0;
  return pid;
}

uint64_t FileSize(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  return f ? static_cast<uint64_t>(f.tellg()) : 0;
}

bool LogSaysStarted(const std::string& path, uint64_t from) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  f.seekg(static_cast<std::streamoff>(from));
  std::string tail((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return tail.find(kStartedLine) != std::string::npos;
}

// The target's [server] offset (default 10).
absl::StatusOr<int64_t> ServerOffset(const StepContext& ctx, const std::string& target) {
  ASSIGN_OR_RETURN(std::string toml_path,
                   ctx.guard->ResolveUnder(target, "conf/deployment.toml"));
  ASSIGN_OR_RETURN(toml::table root, common::ParseTomlFile(toml_path));
  int64_t offset = 10;
  const toml::node_view<toml::node> node = root["server"]["offset"];
  if (node.is_integer()) {
    offset = node.value_or<int64_t>(10);
  } else if (node.is_string() && !absl::SimpleAtoi(node.value_or(std::string()), &offset)) {
    return absl::InvalidArgumentError(absl::StrCat(toml_path, ": [server] offset is not a number"));
  }
  if (8253 + offset - 10 <= 0 || 9201 + offset - 10 > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(toml_path, ": [server] offset ", offset,
                                                   " gives no valid ports"));
  }
  return offset;
}

// 9201 + (offset - 10) from the target's [server] offset; param probe_port wins.
absl::StatusOr<int> ProbePort(const StepContext& ctx, int64_t offset) {
  if (ctx.HasParam("probe_port")) {
    ASSIGN_OR_RETURN(const int64_t port, ctx.IntParam("probe_port"));
    return static_cast<int>(port);
  }
  return static_cast<int>(9201 + offset - 10);
}

// True when something accepts a TCP connection on 127.0.0.1:`port` (within 1 s).
bool Listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    ok = ::poll(&p, 1, 1000) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
         err == 0;
  }
  ::close(fd);
  return ok;
}

// "port 9201 (internal HTTP API and /healthz)" for each of the target's ports in use.
std::vector<std::string> BusyPorts(int64_t offset, int probe_port) {
  const std::vector<std::pair<int, std::string>> ports = {
      {static_cast<int>(8290 + offset - 10), "HTTP"},
      {static_cast<int>(8253 + offset - 10), "HTTPS"},
      {static_cast<int>(9164 + offset - 10), "internal HTTPS API"},
      {static_cast<int>(9201 + offset - 10), "internal HTTP API and /healthz"}};
  std::vector<std::string> busy;
  bool probe_listed = false;
  for (const auto& [port, what] : ports) {
    probe_listed = probe_listed || port == probe_port;
    if (Listening(port)) busy.push_back(absl::StrCat("port ", port, " (", what, ")"));
  }
  if (!probe_listed && Listening(probe_port)) {
    busy.push_back(absl::StrCat("port ", probe_port, " (probe_port)"));
  }
  return busy;
}

constexpr char kDefaultDir[] = "repository/deployment/server/synapse-configs/default";
constexpr char kCarbonapps[] = "repository/deployment/server/carbonapps";

// Inbound endpoints, scheduled tasks and message processors the target would start: loose
// files in synapse-configs/default and artifacts of the CApps (artifact.xml types).
absl::StatusOr<std::vector<std::string>> LiveArtifacts(const StepContext& ctx,
                                                       const std::string& target) {
  std::vector<std::string> out;
  for (const char* dir : {"inbound-endpoints", "tasks", "message-processors"}) {
    ASSIGN_OR_RETURN(std::vector<std::string> files,
                     ListConfinedFiles(ctx, target, absl::StrCat(kDefaultDir, "/", dir)));
    for (const std::string& rel : files) {
      if (absl::EndsWith(rel, ".xml")) out.push_back(rel);
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> capps, ListConfinedFiles(ctx, target, kCarbonapps));
  for (const std::string& rel : capps) {
    if (!absl::EndsWithIgnoreCase(rel, ".car")) continue;
    ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(target, rel));
    absl::StatusOr<std::vector<common::ZipEntry>> entries = common::ReadZip(path);
    if (!entries.ok()) continue;  // the server reports it as a faulty CApp
    for (const common::ZipEntry& e : *entries) {
      if (!absl::EndsWith(e.name, "artifact.xml") || absl::EndsWith(e.name, "artifacts.xml")) {
        continue;
      }
      for (const char* type :
           {"synapse/inbound-endpoint", "synapse/task", "synapse/message-processors"}) {
        if (absl::StrContains(e.data, absl::StrCat("\"", type, "\""))) {
          out.push_back(absl::StrCat(rel, "!", e.name, " (", type, ")"));
        }
      }
    }
  }
  return out;
}

// Who runs the target: the owner of its home. An agent of another user cannot switch.
absl::StatusOr<Owner> HomeOwner(const std::string& target) {
  struct stat st;
  if (::stat(target.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot stat ", target));
  }
  const uid_t me = ::geteuid();
  if (st.st_uid == me) return Owner{};
  if (me != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the target home ", target, " is owned by uid ", st.st_uid, "; the agent runs as uid ",
        me, " and cannot start the server as its owner (run the agent as root or as uid ",
        st.st_uid, ")"));
  }
  return Owner{static_cast<int64_t>(st.st_uid), static_cast<int64_t>(st.st_gid)};
}

std::string UserName(int64_t uid) {
  if (uid < 0) uid = ::geteuid();
  const passwd* pw = ::getpwuid(static_cast<uid_t>(uid));
  return pw != nullptr ? absl::StrCat(pw->pw_name, " (uid ", uid, ")") : absl::StrCat("uid ", uid);
}

class VerifyStep final : public Step {
 public:
  std::string name() const override { return "verify"; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(int64_t offset, ServerOffset(ctx, homes.target));
    ASSIGN_OR_RETURN(int port, ProbePort(ctx, offset));
    ASSIGN_OR_RETURN(std::string script, ctx.guard->ResolveUnder(homes.target, kScript));
    const std::string url = absl::StrCat("http://127.0.0.1:", port, "/healthz");
    StepPlan plan;
    // Starting the target turns on what polls and processes by itself.
    ASSIGN_OR_RETURN(std::vector<std::string> live, LiveArtifacts(ctx, homes.target));
    if (!live.empty()) {
      const std::string what = absl::StrCat(
          "the target's artifacts hold ", live.size(),
          " inbound endpoint(s), scheduled task(s) or message processor(s) that start with the "
          "server, while the source may still run: ", absl::StrJoin(live, ", "));
      if (ctx.Param("allow_live_start", "false") != "true") {
        return absl::FailedPreconditionError(absl::StrCat(
            "refusing to start the target: ", what,
            "; stop the source first and set param allow_live_start = \"true\""));
      }
      StepLog(ctx, LogLevel::kWarning, absl::StrCat(what, " (allow_live_start = true)"));
    }
    const std::vector<std::string> busy = BusyPorts(offset, port);
    if (ctx.check) {
      for (const std::string& b : busy) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(b, " is in use now; apply refuses to start the target while it is"));
      }
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = absl::StrCat("verify runs only in apply mode (would start ", script,
                                  " and probe ", url, ")");
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    ASSIGN_OR_RETURN(const int64_t timeout_param, ctx.IntParam("start_timeout_seconds"));
    ASSIGN_OR_RETURN(const int64_t grace_param, ctx.IntParam("probe_grace_seconds"));
    const int timeout_s = static_cast<int>(timeout_param), grace_s = static_cast<int>(grace_param);
    if (!common::IsRegularFile(script)) {
      return absl::FailedPreconditionError(absl::StrCat(script, " not found"));
    }
    if (!busy.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to start the target: ", absl::StrJoin(busy, ", "),
          " already accept connections on 127.0.0.1 (the source MI on the same offset, or "
          "another server): its /healthz would be taken for the target's; stop it or give the "
          "target another [server] offset"));
    }
    ASSIGN_OR_RETURN(Owner owner, HomeOwner(homes.target));
    std::string want_version = ctx.target_version;
    if (want_version.empty()) {
      absl::StatusOr<common::MiVersion> v = common::DetectMiVersion(homes.target);
      if (v.ok()) want_version = v->version;
    }
    ASSIGN_OR_RETURN(std::string log_path, ctx.guard->ResolveUnder(homes.target, kLog));
    ASSIGN_OR_RETURN(std::string pid_path, ctx.guard->ResolveUnder(homes.target, kPidFile));
    const std::string out_dir = ctx.run_dir.empty() ? homes.target : ctx.run_dir;
    (void)common::MakeDirs(out_dir);
    const std::string out_path = common::JoinPath(out_dir, "verify-start.out");
    const uint64_t log_from = FileSize(log_path);
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(timeout_s);

    StepLog(ctx, LogLevel::kInfo, absl::StrCat("starting ", script, " as ", UserName(owner.uid),
                                               "; probing ", url));
    const int rc = RunScript(script, "start", out_path, std::chrono::seconds(timeout_s), owner);
    bool healthy = false;
    std::string result;
    if (rc != 0) {
      result = absl::StrCat(script, " start failed (exit ", rc, "; output in ", out_path, ")");
    } else {
      std::optional<Clock::time_point> log_started;
      while (true) {
        if (ctx.cancelled()) {  // the run was cancelled or the agent stops: stop the server
          result = absl::StrCat("cancelled while waiting for ", url, "; the server is stopped");
          break;
        }
        const HttpAnswer a = HttpGet(port, "/healthz", std::chrono::seconds(3));
        if (a.status == 200 && JsonString(a.body, "status") == "ready") {
          const std::string version = JsonString(a.body, "version");
          if (!want_version.empty() && version != want_version) {
            result = absl::StrCat(url, " answered ready for MI version \"", version,
                                  "\", not the target's ", want_version,
                                  ": another server answers there");
            break;
          }
          healthy = true;
          result = absl::StrCat(url, " answered 200 ready: ", a.body);
          break;
        }
        if (a.status == 500) {
          const std::vector<std::string> faulty = JsonStrings(a.body, "Faulty CAPPs");
          result = absl::StrCat(url, " answered 500 (", JsonString(a.body, "status"), ")",
                                faulty.empty() ? "" : absl::StrCat("; faulty CApps: ",
                                                                   absl::StrJoin(faulty, ", ")));
          break;
        }
        // The probe's silence only counts once the server logged its start-up line.
        if (!log_started && LogSaysStarted(log_path, log_from)) log_started = Clock::now();
        if (Clock::now() >= deadline ||
            (log_started && Clock::now() - *log_started >= std::chrono::seconds(grace_s))) {
          if (log_started) {
            healthy = true;
            result = absl::StrCat(url, " never answered ready", a.status ? absl::StrCat(
                                      " (last HTTP ", a.status, ")") : "",
                                  "; ", kLog, " says \"", kStartedLine, "\"");
          } else {
            result = absl::StrCat("no ready answer from ", url, " and no start-up line in ",
                                  kLog, " within ", timeout_s, " s");
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    const pid_t pid = ReadPid(pid_path);
    if (pid > 0) plan.facts["verify_pid"] = std::to_string(pid);
    Stop(ctx, script, out_path, pid, owner);

    plan.forced_status = healthy ? mimic::v1::STEP_OK : mimic::v1::STEP_FAILED;
    plan.message = result;
    StepLog(ctx, healthy ? LogLevel::kInfo : LogLevel::kError, plan.message);
    return plan;
  }

 private:
  static void Stop(const StepContext& ctx, const std::string& script, const std::string& out,
                   pid_t pid, const Owner& owner) {
    const int rc =
        RunScript(script, "stop", out, std::chrono::seconds(kStopGraceSeconds), owner);
    if (rc != 0) StepLog(ctx, LogLevel::kWarning, absl::StrCat(script, " stop exited ", rc));
    if (pid <= 0) return;
    if (!common::WaitProcessEnded(pid, absl::Seconds(kStopGraceSeconds))) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("pid ", pid, " still alive ", kStopGraceSeconds, " s after stop; "
                           "killing it"));
      ::kill(pid, SIGKILL);
    }
  }
};

}  // namespace

std::unique_ptr<Step> NewVerifyStep() { return std::make_unique<VerifyStep>(); }

}  // namespace mimic::agent
