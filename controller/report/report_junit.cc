// `mimic report --format junit`: JUnit XML for Jenkins and GitLab (see report_formats.h).
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/base/status_macros.h"
#include "controller/report/report.h"
#include "controller/report/report_formats.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

std::string Seconds(int64_t micros) {
  return absl::StrFormat("%.3f", static_cast<double>(std::max<int64_t>(micros, 0)) / 1e6);
}

// Jenkins and GitLab read the ant format: ISO-8601 without a zone (ours is UTC).
std::string Timestamp(int64_t micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixMicros(micros), absl::UTCTimeZone());
}

std::string Attr(const std::string& name, std::string_view value) {
  return absl::StrCat(" ", name, "=\"", XmlEscape(value, true), "\"");
}

std::string LogLine(const v1::Event& e) {
  return absl::StrCat(FormatTimeUtc(e.time_unix_micros()), " ", LogLevelName(e.log().level()), " ",
                      e.log().text(), "\n");
}

struct Case {
  std::string name;
  int64_t micros = 0;
  std::string outcome;  // "", "failure", "error", "skipped"
  std::string type;     // failure/error type
  std::string message;
  std::string body;        // failure/error text
  std::string system_out;  // the step's log when it did not fail
};

struct Suite {
  std::string name;
  std::string classname;
  const RunRecord* run = nullptr;
  std::vector<Case> cases;
  int failures = 0, errors = 0, skipped = 0;
  int64_t micros = 0;
  std::string system_out;  // log lines outside the steps, when no "run" case holds them
};

// Log text by step name ("" for lines outside a step), in event order.
using StepLogs = std::map<std::string, std::string>;

// "create /opt/mi/x.car (4096 bytes)" lines of a step's file changes, each followed by its
// diff (--diff runs) indented.
std::string FileLines(const std::vector<FileChangeRecord>& files, int step_idx) {
  std::string out;
  for (const FileChangeRecord& f : files) {
    if (f.step_idx != step_idx) continue;
    absl::StrAppend(&out, f.action, " ", f.path, " (", f.size, " bytes)\n");
    absl::StrAppend(&out, common::IndentLines(f.diff, "    "));
  }
  return out;
}

Suite BuildSuite(const RolloutRecord& rollout, const RunRecord& run, const std::string& name,
                 const std::vector<StepRecord>& steps, const std::vector<FileChangeRecord>& files,
                 StepLogs& logs) {
  const std::string stage = run.stage.empty() ? "none" : run.stage;
  Suite s;
  s.name = name;
  s.classname = absl::StrCat("mimic.", stage, ".", run.host);
  s.run = &run;
  const bool run_active = run.status == "running" || run.status == "pending";
  bool step_failed = false;
  for (const StepRecord& st : steps) {
    Case c;
    c.name = st.name;
    c.micros = st.duration_us;
    const std::string& log = logs[st.name];
    if (st.status == "failed") {
      step_failed = true;
      c.outcome = "failure";
      c.type = "failed";
      c.message = st.message.empty() ? "step failed" : st.message;
      c.body = absl::StrCat(c.message, "\n", log.empty() ? "" : "\n", log);
    } else if (st.status == "skipped") {
      c.outcome = "skipped";
      c.message = st.message;
      c.system_out = log;
    } else if (st.status == "running" && run_active) {
      c.outcome = "skipped";
      c.message = "still running";
      c.system_out = log;
    } else if (st.status == "running") {
      c.outcome = "error";
      c.type = "unfinished";
      c.message = absl::StrCat("the step did not finish (run ", run.status, ")");
      c.body = absl::StrCat(c.message, "\n", log.empty() ? "" : "\n", log);
    } else {
      c.system_out =
          absl::StrCat(st.message.empty() ? "" : st.message + "\n", FileLines(files, st.idx), log);
    }
    s.cases.push_back(std::move(c));
  }
  // What went wrong outside the steps.
  Case run_case;
  run_case.name = "run";
  run_case.micros = run.started_at_us != 0 && run.finished_at_us != 0
                        ? run.finished_at_us - run.started_at_us
                        : 0;
  if (steps.empty() && run.status == "pending") {
    if (RolloutEnded(rollout)) {
      run_case.outcome = "error";
      run_case.type = "no_events";
      run_case.message = "no events from the agent: host unreachable, run refused, or not started";
    } else {
      run_case.outcome = "skipped";
      run_case.message = "not started yet";
    }
  } else if (IsFailureStatus(run.status) && !step_failed) {
    run_case.outcome = "error";
    run_case.type = run.status;
    run_case.message = run.message.empty() ? absl::StrCat("run ", run.status) : run.message;
  } else if (steps.empty()) {
    run_case.outcome = run_active ? "skipped" : "";
    run_case.message = run_active ? "no step yet" : "";
  } else {
    run_case.name.clear();
  }
  if (!run_case.name.empty()) {
    run_case.body = run_case.message;
    if (!run.message.empty() && run.message != run_case.message) {
      absl::StrAppend(&run_case.body, "\n", run.message);
    }
    std::string run_log = logs[""];
    if (!run_log.empty()) absl::StrAppend(&run_case.body, "\n\n", run_log);
    s.cases.push_back(std::move(run_case));
  } else {
    s.system_out = logs[""];
  }
  for (const Case& c : s.cases) {
    s.micros += c.name == "run" ? 0 : c.micros;
    s.failures += c.outcome == "failure";
    s.errors += c.outcome == "error";
    s.skipped += c.outcome == "skipped";
  }
  if (run.started_at_us != 0 && run.finished_at_us != 0) {
    s.micros = run.finished_at_us - run.started_at_us;
  }
  return s;
}

void WriteSuite(std::string& out, const Suite& s, const RolloutRecord& rollout, int id) {
  const RunRecord& run = *s.run;
  absl::StrAppend(
      &out, "  <testsuite", Attr("name", s.name), Attr("tests", absl::StrCat(s.cases.size())),
      Attr("failures", absl::StrCat(s.failures)), Attr("errors", absl::StrCat(s.errors)),
      Attr("skipped", absl::StrCat(s.skipped)), Attr("time", Seconds(s.micros)));
  const int64_t start = run.started_at_us != 0 ? run.started_at_us : run.created_at_us;
  if (start != 0) absl::StrAppend(&out, Attr("timestamp", Timestamp(start)));
  absl::StrAppend(&out, Attr("hostname", run.host), Attr("id", absl::StrCat(id)),
                  Attr("package", absl::StrCat("mimic.", run.stage.empty() ? "none" : run.stage)),
                  ">\n");
  out += "    <properties>\n";
  const std::pair<const char*, std::string> props[] = {
      {"rollout", rollout.id},
      {"plan_sha256", rollout.plan_sha256},
      {"check_mode", rollout.check_mode ? "true" : "false"},
      {"run_id", run.run_id},
      {"stage", run.stage},
      {"batch", absl::StrCat(run.batch_idx)},
      {"mode", run.mode},
      {"status", run.status},
      {"message", run.message},
      {"agent_version", run.agent_version},
      {"source_version", run.source_version},
      {"target_version", run.target_version},
  };
  for (const auto& [name, value] : props) {
    absl::StrAppend(&out, "      <property", Attr("name", name), Attr("value", value), "/>\n");
  }
  out += "    </properties>\n";
  for (const Case& c : s.cases) {
    absl::StrAppend(&out, "    <testcase", Attr("name", c.name), Attr("classname", s.classname),
                    Attr("time", Seconds(c.micros)));
    if (c.outcome.empty() && c.system_out.empty()) {
      out += "/>\n";
      continue;
    }
    out += ">\n";
    if (c.outcome == "skipped") {
      absl::StrAppend(&out, "      <skipped", c.message.empty() ? "" : Attr("message", c.message),
                      "/>\n");
    } else if (!c.outcome.empty()) {
      absl::StrAppend(&out, "      <", c.outcome, Attr("message", c.message), Attr("type", c.type),
                      ">", XmlEscape(c.body), "</", c.outcome, ">\n");
    }
    if (!c.system_out.empty()) {
      absl::StrAppend(&out, "      <system-out>", XmlEscape(c.system_out), "</system-out>\n");
    }
    out += "    </testcase>\n";
  }
  if (!s.system_out.empty()) {
    absl::StrAppend(&out, "    <system-out>", XmlEscape(s.system_out), "</system-out>\n");
  }
  out += "  </testsuite>\n";
}

}  // namespace

bool RolloutEnded(const RolloutRecord& r) {
  return r.finished_at_us != 0 ||
         (!r.status.empty() && r.status != "running" && r.status != "waiting_approval");
}

absl::StatusOr<std::string> ReportJunit(Audit& audit, const std::string& rollout_id) {
  RETURN_IF_ERROR(audit.Flush());
  ASSIGN_OR_RETURN(RolloutDetail d, audit.GetRollout(rollout_id));
  std::map<std::string, StepLogs> logs;  // by run id
  {
    ASSIGN_OR_RETURN(std::vector<v1::Event> events, audit.Events(rollout_id));
    for (const v1::Event& e : events) {
      if (e.has_log()) logs[e.run_id()][e.log().step()] += LogLine(e);
    }
  }
  const std::vector<RunRecord> runs = RunsInPlanOrder(d);
  std::map<std::pair<std::string, std::string>, int> runs_per_stage_host;
  for (const RunRecord& run : runs) ++runs_per_stage_host[{run.stage, run.host}];

  std::vector<Suite> suites;
  suites.reserve(runs.size());
  for (const RunRecord& run : runs) {
    ASSIGN_OR_RETURN(std::vector<StepRecord> steps, audit.Steps(run.run_id));
    ASSIGN_OR_RETURN(std::vector<FileChangeRecord> files, audit.FileChanges(run.run_id));
    std::string name = absl::StrCat(run.stage.empty() ? "none" : run.stage, "/", run.host);
    if (runs_per_stage_host[{run.stage, run.host}] > 1) {
      absl::StrAppend(&name, " [", run.mode.empty() ? "run" : run.mode, " ", run.run_id, "]");
    }
    suites.push_back(BuildSuite(d.rollout, run, name, steps, files, logs[run.run_id]));
  }

  int tests = 0, failures = 0, errors = 0;
  int64_t micros = 0;
  for (const Suite& s : suites) {
    tests += static_cast<int>(s.cases.size());
    failures += s.failures;
    errors += s.errors;
  }
  const RolloutRecord& r = d.rollout;
  if (r.started_at_us != 0 && r.finished_at_us != 0) {
    micros = r.finished_at_us - r.started_at_us;
  } else {
    for (const Suite& s : suites) micros += s.micros;
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  const std::string name = absl::StrCat("mimic rollout ", r.id, r.check_mode ? " (check)" : "");
  absl::StrAppend(&out, "<testsuites", Attr("name", name), Attr("tests", absl::StrCat(tests)),
                  Attr("failures", absl::StrCat(failures)), Attr("errors", absl::StrCat(errors)),
                  Attr("time", Seconds(micros)), ">\n");
  int id = 0;
  for (const Suite& s : suites) WriteSuite(out, s, r, id++);
  out += "</testsuites>\n";
  return out;
}

}  // namespace mimic::controller
