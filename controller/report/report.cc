#include "controller/report/report.h"

#include <algorithm>
#include <climits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/base/text.h"
#include "controller/report/report_formats.h"

namespace mimic::controller {
namespace {

size_t DisplayWidth(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// First line of `s`, at most `max` code points ("..." marks a cut).
std::string Shorten(std::string_view text, size_t max) {
  const std::string line = common::EscapeControl(text.substr(0, text.find('\n')));
  std::string_view s = line;
  if (DisplayWidth(s) <= max) return std::string(s);
  size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && ++points > max - 3) break;
  }
  return std::string(s.substr(0, i)) + "...";
}

int64_t DurationMs(int64_t micros) { return (micros + 500) / 1000; }

int64_t RunDuration(const RunRecord& run, const std::vector<StepRecord>& steps) {
  if (run.started_at_us != 0 && run.finished_at_us != 0) {
    return run.finished_at_us - run.started_at_us;
  }
  int64_t sum = 0;
  for (const StepRecord& s : steps) sum += s.duration_us;
  return sum;
}

// Runs ordered by the stage's position in the plan, batch, host, then creation.
struct Counts {
  int ok = 0, changed = 0, skipped = 0, failed = 0, files = 0, config_changes = 0;
  void AddStep(const std::string& status) {
    if (status == "ok") ++ok;
    if (status == "changed") ++changed;
    if (status == "skipped") ++skipped;
    if (status == "failed") ++failed;
  }
  void Add(const Counts& o) {
    ok += o.ok;
    changed += o.changed;
    skipped += o.skipped;
    failed += o.failed;
    files += o.files;
    config_changes += o.config_changes;
  }
};

void WriteStepCounts(JsonWriter& w, const Counts& c, std::string_view prefix) {
  const std::string p(prefix);
  w.IntField(p + "ok", c.ok);
  w.IntField(p + "changed", c.changed);
  w.IntField(p + "skipped", c.skipped);
  w.IntField(p + "failed", c.failed);
}

void WriteStep(JsonWriter& w, const StepRecord& s, const std::vector<FileChangeRecord>& files,
               const std::vector<ConfigChangeRecord>& configs) {
  w.BeginObject();
  w.StringField("name", s.name);
  w.StringField("status", s.status);
  w.StringField("message", s.message);
  w.IntField("duration_ms", DurationMs(s.duration_us));
  w.Key("changes");
  w.BeginArray();
  for (const FileChangeRecord& f : files) {
    if (f.step_idx != s.idx) continue;
    w.BeginObject();
    w.StringField("path", f.path);
    w.StringField("action", f.action);
    w.UintField("size", f.size);
    w.StringField("sha256_before", f.sha256_before);
    w.StringField("sha256_after", f.sha256_after);
    if (!f.note.empty()) w.StringField("note", f.note);
    if (!f.diff.empty()) w.StringField("diff", f.diff);
    w.EndObject();
  }
  w.EndArray();
  w.Key("config_changes");
  w.BeginArray();
  for (const ConfigChangeRecord& c : configs) {
    if (c.step_idx != s.idx) continue;
    w.BeginObject();
    w.StringField("file", c.file);
    w.StringField("key", c.key);
    w.StringField("action", c.action);
    w.StringField("old_value", c.old_value);
    w.StringField("new_value", c.new_value);
    w.BoolField("redacted", c.redacted);
    w.StringField("note", c.note);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::vector<RunRecord> RunsInPlanOrder(const RolloutDetail& d, const std::vector<RunRecord>& runs) {
  std::map<std::string, int> stage_idx;
  for (const StageRecord& s : d.stages) stage_idx[s.name] = s.idx;
  const auto idx = [&](const std::string& stage) {
    auto it = stage_idx.find(stage);
    return it == stage_idx.end() ? INT_MAX : it->second;
  };
  std::vector<RunRecord> out = runs;
  std::stable_sort(out.begin(), out.end(), [&](const RunRecord& a, const RunRecord& b) {
    return std::make_tuple(idx(a.stage), a.batch_idx, a.host) <
           std::make_tuple(idx(b.stage), b.batch_idx, b.host);
  });
  return out;
}

std::vector<RunRecord> RunsInPlanOrder(const RolloutDetail& d) {
  return RunsInPlanOrder(d, d.runs);
}

// ---- JSON ----------------------------------------------------------------------------------

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (stack_.empty()) {
    CHECK(out_.empty()) << "JsonWriter: a second top-level value";
    return;
  }
  Level& top = stack_.back();
  CHECK(!top.is_object) << "JsonWriter: a value inside an object needs Key() first";
  if (!top.empty) out_ += ',';
  top.empty = false;
  out_ += '\n';
  out_.append(2 * stack_.size(), ' ');
}

void JsonWriter::Open(char c, bool is_object) {
  BeforeValue();
  out_ += c;
  stack_.push_back(Level{is_object});
}

void JsonWriter::Close(char c, bool is_object) {
  CHECK(!stack_.empty() && stack_.back().is_object == is_object && !after_key_)
      << "JsonWriter: unbalanced " << c;
  const bool empty = stack_.back().empty;
  stack_.pop_back();
  if (!empty) {
    out_ += '\n';
    out_.append(2 * stack_.size(), ' ');
  }
  out_ += c;
}

void JsonWriter::BeginObject() { Open('{', true); }
void JsonWriter::EndObject() { Close('}', true); }
void JsonWriter::BeginArray() { Open('[', false); }
void JsonWriter::EndArray() { Close(']', false); }

void JsonWriter::Key(std::string_view key) {
  CHECK(!stack_.empty() && stack_.back().is_object && !after_key_)
      << "JsonWriter: Key() outside an object";
  Level& top = stack_.back();
  if (!top.empty) out_ += ',';
  top.empty = false;
  out_ += '\n';
  out_.append(2 * stack_.size(), ' ');
  out_ += JsonQuote(key);
  out_ += ": ";
  after_key_ = true;
}

void JsonWriter::String(std::string_view value) {
  BeforeValue();
  out_ += JsonQuote(value);
}
void JsonWriter::Int(int64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
}
void JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
}
void JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
}
void JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
}

void JsonWriter::StringField(std::string_view key, std::string_view value) {
  Key(key);
  String(value);
}
void JsonWriter::IntField(std::string_view key, int64_t value) {
  Key(key);
  Int(value);
}
void JsonWriter::UintField(std::string_view key, uint64_t value) {
  Key(key);
  Uint(value);
}
void JsonWriter::BoolField(std::string_view key, bool value) {
  Key(key);
  Bool(value);
}
void JsonWriter::TimeField(std::string_view key, int64_t unix_micros) {
  Key(key);
  if (unix_micros == 0) {
    Null();
  } else {
    String(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(unix_micros),
                            absl::UTCTimeZone()));
  }
}

absl::StatusOr<AuditCheck> CheckAudit(Audit& audit, const std::string& rollout_id) {
  AuditCheck c;
  absl::StatusOr<AuditVerifyResult> v = audit.VerifyAudit(rollout_id);
  if (!v.ok()) {
    if (v.status().code() != absl::StatusCode::kFailedPrecondition) return v.status();
    c.text = absl::StrCat("not verified against the signed ledger: ", v.status().message());
    return c;
  }
  c.checked = true;
  c.verified = v->ok;
  c.text = v->problem;
  return c;
}

absl::StatusOr<std::string> ReportJson(Audit& audit, const std::string& rollout_id) {
  RETURN_IF_ERROR(audit.Flush());
  ASSIGN_OR_RETURN(RolloutDetail d, audit.GetRollout(rollout_id));
  ASSIGN_OR_RETURN(VerifyResult verify, audit.VerifyChain(rollout_id));
  ASSIGN_OR_RETURN(AuditCheck check, CheckAudit(audit, rollout_id));
  ASSIGN_OR_RETURN(int64_t events, audit.EventCount(rollout_id));
  const RolloutRecord& r = d.rollout;

  JsonWriter w;
  w.BeginObject();
  w.Key("rollout");
  w.BeginObject();
  w.StringField("id", r.id);
  w.StringField("plan_path", r.plan_path);
  w.StringField("plan_sha256", r.plan_sha256);
  w.StringField("inventory_path", r.inventory_path);
  w.Key("operator");
  w.BeginObject();
  w.StringField("os_user", r.os_user);
  w.StringField("cert_subject", r.cert_subject);
  w.EndObject();
  w.BoolField("check_mode", r.check_mode);
  w.StringField("status", r.status);
  w.StringField("message", r.message);
  w.TimeField("started_at", r.started_at_us);
  w.TimeField("finished_at", r.finished_at_us);
  if (r.finished_at_us != 0) {
    w.IntField("duration_ms", DurationMs(r.finished_at_us - r.started_at_us));
  }
  w.EndObject();

  w.Key("stages");
  w.BeginArray();
  for (const StageRecord& s : d.stages) {
    w.BeginObject();
    w.StringField("name", s.name);
    w.IntField("idx", s.idx);
    w.StringField("status", s.status);
    w.TimeField("started_at", s.started_at_us);
    w.TimeField("finished_at", s.finished_at_us);
    w.EndObject();
  }
  w.EndArray();

  w.Key("approvals");
  w.BeginArray();
  for (const ApprovalRecord& a : d.approvals) {
    w.BeginObject();
    w.StringField("stage", a.stage);
    w.StringField("who", a.who);
    w.TimeField("at", a.at_us);
    w.BoolField("forced", a.forced);
    w.EndObject();
  }
  w.EndArray();

  std::set<std::string> latest;
  int hosts_ok = 0, hosts_failed = 0, hosts_pending = 0, hosts_rolled_back = 0;
  for (const RunRecord& run : LatestRunPerHost(d.runs)) {
    latest.insert(run.run_id);
    if (IsRolledBack(run)) {
      ++hosts_rolled_back;
    } else if (IsSuccessStatus(run.status)) {
      ++hosts_ok;
    } else if (IsFailureStatus(run.status)) {
      ++hosts_failed;
    } else {
      ++hosts_pending;
    }
  }
  Counts total;
  w.Key("hosts");
  w.BeginArray();
  for (const RunRecord& run : RunsInPlanOrder(d)) {
    ASSIGN_OR_RETURN(std::vector<StepRecord> steps, audit.Steps(run.run_id));
    ASSIGN_OR_RETURN(std::vector<FileChangeRecord> files, audit.FileChanges(run.run_id));
    ASSIGN_OR_RETURN(std::vector<ConfigChangeRecord> configs, audit.ConfigChanges(run.run_id));
    w.BeginObject();
    w.StringField("host", run.host);
    w.StringField("stage", run.stage);
    w.IntField("batch", run.batch_idx);
    w.StringField("run_id", run.run_id);
    w.StringField("mode", run.mode);
    w.StringField("status", run.status);
    w.StringField("message", run.message);
    w.StringField("source_version", run.source_version);
    w.StringField("target_version", run.target_version);
    w.TimeField("started_at", run.started_at_us);
    w.TimeField("finished_at", run.finished_at_us);
    w.IntField("duration_ms", DurationMs(RunDuration(run, steps)));
    Counts c;
    w.Key("steps");
    w.BeginArray();
    for (const StepRecord& s : steps) {
      c.AddStep(s.status);
      WriteStep(w, s, files, configs);
    }
    w.EndArray();
    c.files = static_cast<int>(files.size());
    c.config_changes = static_cast<int>(configs.size());
    w.Key("summary");
    w.BeginObject();
    WriteStepCounts(w, c, "");
    w.IntField("files", c.files);
    w.IntField("config_changes", c.config_changes);
    w.EndObject();
    w.EndObject();
    if (latest.count(run.run_id) > 0) total.Add(c);
  }
  w.EndArray();

  w.Key("summary");
  w.BeginObject();
  w.IntField("hosts", static_cast<int64_t>(latest.size()));
  w.IntField("hosts_ok", hosts_ok);
  w.IntField("hosts_failed", hosts_failed);
  w.IntField("hosts_pending", hosts_pending);
  w.IntField("hosts_rolled_back", hosts_rolled_back);
  WriteStepCounts(w, total, "steps_");
  w.IntField("files", total.files);
  w.IntField("config_changes", total.config_changes);
  w.EndObject();

  w.Key("audit");
  w.BeginObject();
  w.IntField("events", events);
  w.BoolField("chain_ok", verify.ok);
  w.StringField("chain_head", verify.head_hash);
  if (!verify.ok) {
    w.StringField("chain_problem", absl::StrCat("event #", verify.bad_index, ": ", verify.reason));
  }
  // The whole audit of the rollout against the signed ledger (every table), when the key is
  // at hand; else why not.
  w.BoolField("verified", check.verified);
  if (!check.text.empty()) {
    w.StringField(check.checked ? "verify_problem" : "verify_note", check.text);
  }
  w.EndObject();
  w.EndObject();
  return w.str() + "\n";
}

// ---- Text tables ---------------------------------------------------------------------------

std::string FormatTableLines(const std::vector<std::string>& header,
                             const std::vector<std::vector<std::string>>& rows,
                             const std::vector<bool>& right_align);

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right_align) {
  // A cell is one line: a control character in a host name or a message cannot start another.
  std::vector<std::vector<std::string>> rows_safe = rows;
  for (auto& row : rows_safe) {
    for (auto& cell : row) cell = common::EscapeControl(cell);
  }
  return FormatTableLines(header, rows_safe, right_align);
}

std::string FormatTableLines(const std::vector<std::string>& header,
                             const std::vector<std::vector<std::string>>& rows,
                             const std::vector<bool>& right_align) {
  std::vector<size_t> width(header.size(), 0);
  const auto measure = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], DisplayWidth(cells[i]));
    }
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  std::string out;
  const auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      const size_t pad = width[i] - std::min(width[i], DisplayWidth(cell));
      if (i > 0) line += "  ";
      const bool right = i < right_align.size() && right_align[i];
      if (right) line.append(pad, ' ');
      line += cell;
      if (!right) line.append(pad, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  emit(header);
  for (const auto& row : rows) emit(row);
  return out;
}

std::string FormatDuration(int64_t micros) {
  if (micros < 0) return "-";
  if (micros < 1000000) return absl::StrCat(micros / 1000, "ms");
  if (micros < 60 * 1000000LL) return absl::StrFormat("%.1fs", micros / 1e6);
  const int64_t secs = micros / 1000000;
  if (secs < 3600) return absl::StrFormat("%dm%02ds", secs / 60, secs % 60);
  return absl::StrFormat("%dh%02dm", secs / 3600, (secs % 3600) / 60);
}

std::string FormatTimeUtc(int64_t unix_micros) {
  if (unix_micros == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(unix_micros),
                          absl::UTCTimeZone());
}

HostRecap MakeHostRecap(const RunRecord& run, const std::vector<StepRecord>& steps,
                        const std::vector<FileChangeRecord>& files) {
  HostRecap h;
  h.host = run.host;
  h.stage = run.stage;
  h.status = run.status;
  Counts c;
  for (const StepRecord& s : steps) c.AddStep(s.status);
  h.ok = c.ok;
  h.changed = c.changed;
  h.skipped = c.skipped;
  h.failed = c.failed;
  h.files = static_cast<int>(files.size());
  h.duration_us = RunDuration(run, steps);
  return h;
}

absl::StatusOr<std::vector<HostRecap>> BuildRecap(Audit& audit, const std::string& rollout_id) {
  RETURN_IF_ERROR(audit.Flush());
  ASSIGN_OR_RETURN(RolloutDetail d, audit.GetRollout(rollout_id));
  std::vector<HostRecap> out;
  for (const RunRecord& run : RunsInPlanOrder(d, LatestRunPerHost(d.runs))) {
    ASSIGN_OR_RETURN(std::vector<StepRecord> steps, audit.Steps(run.run_id));
    ASSIGN_OR_RETURN(std::vector<FileChangeRecord> files, audit.FileChanges(run.run_id));
    out.push_back(MakeHostRecap(run, steps, files));
  }
  return out;
}

std::string RecapTable(const std::vector<HostRecap>& rows) {
  std::vector<std::vector<std::string>> cells;
  for (const HostRecap& h : rows) {
    cells.push_back({h.host, h.stage, h.status, absl::StrCat(h.ok), absl::StrCat(h.changed),
                     absl::StrCat(h.skipped), absl::StrCat(h.failed), absl::StrCat(h.files),
                     FormatDuration(h.duration_us)});
  }
  std::string out = FormatTable(
      {"HOST", "STAGE", "STATUS", "OK", "CHANGED", "SKIPPED", "FAILED", "FILES", "DURATION"}, cells,
      {false, false, false, true, true, true, true, true, true});
  for (const HostRecap& h : rows) {
    if (!h.message.empty() && h.status != "ok" && h.status != "changed") {
      absl::StrAppend(&out, h.host, ": ", h.message, "\n");
    }
  }
  return out;
}

std::vector<std::string> HostsToRetry(const std::vector<HostRecap>& rows) {
  std::vector<std::string> hosts;
  for (const HostRecap& h : rows) {
    if (h.status != "ok" && h.status != "changed") hosts.push_back(h.host);
  }
  return hosts;
}

std::string NextCommands(const std::string& rollout_id, const std::vector<HostRecap>& rows,
                         const std::string& retry_file, bool check) {
  std::vector<std::string> hosts = HostsToRetry(rows);
  if (hosts.empty()) return "";
  std::string out = absl::StrCat("not done: ", absl::StrJoin(hosts, ", "));
  if (!retry_file.empty()) absl::StrAppend(&out, " (listed in ", retry_file, ")");
  absl::StrAppend(&out, "\nnext:\n");
  absl::StrAppend(&out, "  mimic resume ", rollout_id,
                  "                 # finish this rollout, inside its scope\n");
  if (!retry_file.empty()) {
    absl::StrAppend(&out, "  mimic run --plan PLAN", check ? " --check" : "", " --limit @",
                    retry_file, "   # a new rollout of just these hosts\n");
    if (!check) {
      absl::StrAppend(&out, "  mimic rollback ", rollout_id, " --limit @", retry_file,
                      "   # put these hosts back as they were\n");
    }
  }
  return out;
}

std::string NextRollbackCommands(const std::string& rollout_id,
                                 const std::vector<HostRecap>& rows, bool check,
                                 const std::string& limit) {
  if (check) {
    return absl::StrCat("next:\n  mimic rollback ", rollout_id,
                        limit.empty() ? "" : absl::StrCat(" --limit '", limit, "'"),
                        "   # restore for real what this dry run listed\n");
  }
  std::vector<std::string> hosts = HostsToRetry(rows);
  if (hosts.empty()) return "";
  const std::string hosts_limit = absl::StrJoin(hosts, ",");
  return absl::StrCat("not restored: ", absl::StrJoin(hosts, ", "), "\nnext:\n",
                      "  mimic rollback ", rollout_id, " --limit ", hosts_limit,
                      "           # again, once the cause is fixed\n",
                      "  mimic rollback ", rollout_id, " --limit ", hosts_limit,
                      " --force   # also over files changed since the run\n");
}

std::string RolloutStatusWord(const RolloutSummary& s) {
  if (s.hosts_rolled_back == 0) return s.rollout.status;
  if (s.hosts_rolled_back == s.hosts) return "rolled back";
  return absl::StrCat(s.rollout.status, ", partly rolled back");
}

std::string StatusListing(const std::vector<RolloutSummary>& rollouts) {
  std::vector<std::vector<std::string>> cells;
  for (const RolloutSummary& s : rollouts) {
    const RolloutRecord& r = s.rollout;
    cells.push_back({r.id, FormatTimeUtc(r.started_at_us), r.os_user.empty() ? "-" : r.os_user,
                     r.plan_sha256.empty() ? "-" : r.plan_sha256.substr(0, 12),
                     r.check_mode ? "check" : "apply", absl::StrCat(s.hosts),
                     absl::StrCat(s.hosts_ok), absl::StrCat(s.hosts_failed),
                     absl::StrCat(s.hosts_pending), absl::StrCat(s.hosts_rolled_back),
                     RolloutStatusWord(s)});
  }
  // Columns (README "Reading status and audit"): MODE check = a dry run; HOSTS in the rollout;
  // OK / FAILED / PENDING = hosts whose latest run succeeded, failed (failed, cancelled,
  // interrupted) or has not finished; ROLLED_BACK = hosts a rollback put back.
  return FormatTable({"ID", "STARTED", "OPERATOR", "PLAN", "MODE", "HOSTS", "OK", "FAILED",
                      "PENDING", "ROLLED_BACK", "STATUS"},
                     cells,
                     {false, false, false, false, false, true, true, true, true, true, false});
}

std::string StatusListingJson(const std::vector<RolloutSummary>& rollouts) {
  std::string out = "{\"schema_version\":1,\"rollouts\":[";
  for (size_t i = 0; i < rollouts.size(); ++i) {
    const RolloutSummary& s = rollouts[i];
    const RolloutRecord& r = s.rollout;
    absl::StrAppend(&out, i ? "," : "", "{\"id\":", common::JsonQuote(r.id),
                    ",\"started_at\":", common::JsonQuote(FormatTimeUtc(r.started_at_us)),
                    ",\"operator\":", common::JsonQuote(r.os_user),
                    ",\"plan_sha256\":", common::JsonQuote(r.plan_sha256),
                    ",\"mode\":\"", r.check_mode ? "check" : "apply", "\"",
                    ",\"hosts\":", s.hosts, ",\"ok\":", s.hosts_ok,
                    ",\"failed\":", s.hosts_failed, ",\"pending\":", s.hosts_pending,
                    ",\"rolled_back\":", s.hosts_rolled_back,
                    ",\"status\":", common::JsonQuote(RolloutStatusWord(s)), "}");
  }
  absl::StrAppend(&out, "]}\n");
  return out;
}

std::string RolloutStatusText(const RolloutDetail& d) {
  const RolloutRecord& r = d.rollout;
  std::string out;
  absl::StrAppend(&out, "Rollout    ", r.id, "\n");
  RolloutSummary summary;
  summary.rollout = r;
  for (const RunRecord& run : LatestRunPerHost(d.runs)) {
    ++summary.hosts;
    if (IsRolledBack(run)) ++summary.hosts_rolled_back;
  }
  absl::StrAppend(&out, "Status     ", RolloutStatusWord(summary), r.check_mode ? " (check)" : "",
                  summary.hosts_rolled_back > 0 && summary.hosts_rolled_back < summary.hosts
                      ? absl::StrCat(" (", summary.hosts_rolled_back, " of ", summary.hosts,
                                     " hosts rolled back)")
                      : "",
                  "\n");
  if (!r.message.empty()) absl::StrAppend(&out, "Message    ", Shorten(r.message, 100), "\n");
  absl::StrAppend(&out, "Plan       ", common::EscapeControl(r.plan_path), " (sha256 ",
                  r.plan_sha256, ")\n");
  absl::StrAppend(&out, "Inventory  ", common::EscapeControl(r.inventory_path), "\n");
  absl::StrAppend(&out, "Scope      ", r.has_scope ? DescribeScope(r.scope) : "(not recorded)",
                  "\n");
  absl::StrAppend(&out, "Operator   ", r.os_user.empty() ? "-" : r.os_user,
                  r.cert_subject.empty() ? "" : absl::StrCat(" (", r.cert_subject, ")"), "\n");
  absl::StrAppend(&out, "Started    ", FormatTimeUtc(r.started_at_us), "\n");
  if (r.finished_at_us != 0) {
    absl::StrAppend(&out, "Finished   ", FormatTimeUtc(r.finished_at_us), " (",
                    FormatDuration(r.finished_at_us - r.started_at_us), ")\n");
  }
  out += '\n';
  // Every run, each host's together (oldest first) where the host's first run sits in plan
  // order: a rollback never hides the run it undid.
  std::map<std::string, int> host_rank;
  for (const RunRecord& run : RunsInPlanOrder(d, d.runs)) {
    if (run.batch_idx >= 0) host_rank.emplace(run.host, static_cast<int>(host_rank.size()));
  }
  std::vector<RunRecord> runs = d.runs;
  std::stable_sort(runs.begin(), runs.end(), [&](const RunRecord& a, const RunRecord& b) {
    auto rank = [&](const RunRecord& r) {
      auto it = host_rank.find(r.host);
      return it == host_rank.end() ? INT_MAX : it->second;
    };
    return std::make_tuple(rank(a), a.host, a.created_at_us) <
           std::make_tuple(rank(b), b.host, b.created_at_us);
  });
  std::vector<std::vector<std::string>> cells;
  for (const RunRecord& run : runs) {
    int64_t duration = -1;
    if (run.started_at_us != 0) {
      duration =
          (run.finished_at_us != 0 ? run.finished_at_us : run.started_at_us) - run.started_at_us;
    }
    cells.push_back({run.host, run.stage.empty() ? "-" : run.stage,
                     run.batch_idx < 0 ? "-" : absl::StrCat(run.batch_idx), run.run_id,
                     run.mode.empty() ? "-" : run.mode,
                     IsRolledBack(run) ? "rolled back"
                     : run.mode == kRollbackCheckMode && IsSuccessStatus(run.status)
                         ? run.status + " (dry run)"
                         : run.status,
                     absl::StrCat(run.last_seq),
                     FormatTimeUtc(run.started_at_us),
                     run.finished_at_us != 0 ? FormatDuration(duration) : "-",
                     run.source_version.empty() && run.target_version.empty()
                         ? "-"
                         : absl::StrCat(run.source_version.empty() ? "?" : run.source_version,
                                        "->",
                                        run.target_version.empty() ? "?" : run.target_version),
                     Shorten(run.message, 60)});
  }
  out += FormatTable({"HOST", "STAGE", "BATCH", "RUN", "MODE", "STATUS", "SEQ", "STARTED",
                      "DURATION", "VERSIONS", "MESSAGE"},
                     cells,
                     {false, false, true, false, false, false, true, false, true, false, false});
  return out;
}

}  // namespace mimic::controller
