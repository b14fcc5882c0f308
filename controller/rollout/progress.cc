#include "controller/rollout/progress.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/ids.h"
#include "common/base/text.h"
#include "controller/audit/audit.h"
#include "controller/report/report.h"

namespace mimic::controller {
namespace {

std::string Clock(int64_t us) { return common::FormatTimeMicros(us).substr(11, 8); }

// The audit's word, FAILED in capitals so it stands out in the scroll; "?" when unknown.
std::string StepStatusWord(mimic::v1::StepStatus s) {
  if (s == mimic::v1::STEP_FAILED) return "FAILED";
  const std::string word = StepStatusName(s);
  return word.empty() ? "?" : word;
}

// Agent-sent text on one line: a newline in a file name cannot print a fake "FAILED" line.
std::string Safe(std::string_view s) { return common::EscapeControl(s); }

// What happened (or, in a dry run, would happen) to one file.
std::string FileVerb(mimic::v1::Action a, bool dry_run, bool rollback) {
  std::string verb;
  switch (a) {
    case mimic::v1::ACTION_CREATE: verb = rollback ? "restore" : "create"; break;
    case mimic::v1::ACTION_DELETE: verb = "delete"; break;
    case mimic::v1::ACTION_MKDIR: verb = "make dir"; break;
    case mimic::v1::ACTION_RMDIR: verb = "remove dir"; break;
    default: verb = rollback ? "restore" : "update"; break;
  }
  if (dry_run) return "would " + verb;
  if (verb == "make dir") return "made dir";
  if (verb == "remove dir") return "removed dir";
  return verb.back() == 'e' ? verb + "d" : verb + "ed";
}

}  // namespace

void Progress::Event(const std::string& stage, const mimic::v1::Event& e) {
  if (json_) {
    std::string body;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(e, &body, o);
    common::MutexLock l(&mu_);
    std::fprintf(out_, "{\"stage\":%s,\"event\":%s}\n", JsonQuote(stage).c_str(), body.c_str());
    std::fflush(out_);
    return;
  }
  common::MutexLock l(&mu_);
  if (hosts_.count(e.host())) {
    if (e.has_step_started()) hosts_[e.host()] = Safe(e.step_started().step());
    if (e.has_run_finished()) {
      auto st = e.run_finished().status();
      hosts_[e.host()] =
          (st == mimic::v1::RUN_OK || st == mimic::v1::RUN_CHANGED) ? "done" : "failed";
    }
  }
  const bool log_shown =
      e.has_log() && e.log().level() >= (verbosity_ >= 2   ? mimic::v1::LOG_DEBUG
                                         : verbosity_ == 1 ? mimic::v1::LOG_INFO
                                                           : mimic::v1::LOG_WARNING);
  if (!e.has_step_finished() && !log_shown && !e.has_run_finished()) {
    if (live_) PrintLocked("");  // the running step changed: redraw the status line
    return;  // nothing printed: no line made (most events of a large rollout)
  }
  std::string line;
  const std::string prefix =
      absl::StrFormat("%s %-8s %-16s", Clock(e.time_unix_micros()), Safe(stage), Safe(e.host()));
  if (e.has_step_finished()) {
    const auto& f = e.step_finished();
    line = absl::StrFormat("%s %-24s %-8s %s", prefix, Safe(f.step()),
                           StepStatusWord(f.status()), Safe(f.message()));
    if (f.changes_size() > 0) absl::StrAppend(&line, " [", f.changes_size(), " files]");
    if (dry_run_) absl::StrAppend(&line, " (dry run: nothing written)");
    const std::string indent(prefix.size() + 3, ' ');
    const bool all = verbosity_ >= 2;
    int listed = 0;
    for (const auto& c : f.changes()) {
      if (!dry_run_ && !all && c.diff().empty()) continue;
      if (!all && ++listed > kMaxListedFiles) {
        absl::StrAppend(&line, "\n", indent, "... and ", f.changes_size() - kMaxListedFiles,
                        " more (mimic report ROLLOUT --format json lists every file)");
        break;
      }
      absl::StrAppend(&line, "\n", indent, FileVerb(c.action(), dry_run_, rollback_), " ",
                      Safe(c.path()));
      if (!c.diff().empty()) {
        std::string diff = common::IndentLines(c.diff(), indent + "  ");
        diff.pop_back();  // PrintLocked ends the line
        absl::StrAppend(&line, "\n", diff);
      }
    }
  } else if (log_shown) {
    line = absl::StrFormat("%s %-24s %-8s %s", prefix, Safe(e.log().step()),
                           LogLevelName(e.log().level()), Safe(e.log().text()));
    if (dry_run_) absl::StrAppend(&line, " (dry run)");
  } else if (e.has_run_finished()) {
    line = absl::StrFormat("%s %-24s %-8s %s", prefix, "(run)",
                           mimic::v1::RunStatus_Name(e.run_finished().status()).substr(4),
                           Safe(e.run_finished().message()));
    if (dry_run_) absl::StrAppend(&line, " (dry run: nothing written)");
  }
  PrintLocked(line);
}

void Progress::PrintLocked(const std::string& line) {
  if (live_) std::fputs("\r\033[K", out_);
  if (!line.empty()) std::fprintf(out_, "%s\n", line.c_str());
  if (live_) std::fputs(StatusLineLocked().c_str(), out_);
  std::fflush(out_);
}

void Progress::BeginBatch(const std::string& stage, int batch, int batches,
                          const std::vector<std::string>& hosts) {
  common::MutexLock l(&mu_);
  stage_ = stage;
  batch_ = batch;
  batches_ = batches;
  hosts_.clear();
  for (const auto& h : hosts) hosts_[h] = "";
  if (live_) PrintLocked("");
}

std::string Progress::StatusLine() {
  common::MutexLock l(&mu_);
  return live_ ? StatusLineLocked() : "";
}

std::string Progress::StatusLineLocked() {
  if (stage_.empty()) return "";
  int done = 0, failed = 0, waiting = 0;
  std::string running;
  int n_running = 0;
  for (const auto& [h, st] : hosts_) {
    if (st == "done") {
      ++done;
    } else if (st == "failed") {
      ++failed;
    } else if (st.empty()) {
      ++waiting;
    } else {
      ++n_running;
      if (n_running <= 4) absl::StrAppend(&running, " ", h, ":", st);
    }
  }
  if (n_running > 4) absl::StrAppend(&running, " +", n_running - 4, " more");
  return absl::StrFormat("[%s batch %d/%d] %d done, %d failed, %d running, %d waiting%s%s",
                         stage_, batch_ + 1, batches_, done, failed, n_running, waiting,
                         running.empty() ? "" : " |", running);
}

void Progress::Note(const std::string& text) {
  common::MutexLock l(&mu_);
  if (json_) {
    std::fprintf(out_, "{\"note\":%s}\n", JsonQuote(text).c_str());
    std::fflush(out_);
  } else {
    PrintLocked(text);
  }
}

void Progress::HostDone(const HostOutcome& o) {
  if (o.status != "unreachable" && o.status != "refused") return;  // the events said the rest
  Note(absl::StrFormat("%s %-8s %-16s %-24s %-8s %s", Clock(common::NowMicros()), Safe(o.stage),
                       Safe(o.host), "(run)", o.status, Safe(o.message)));
}

}  // namespace mimic::controller
