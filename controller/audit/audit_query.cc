// The audit's read queries and name helpers (the writes are in audit.cc).
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/base/text.h"
#include "controller/audit/audit.h"
#include "controller/audit/sql_db.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

constexpr char kRolloutSelect[] =
    "SELECT r.id, r.plan_path, r.plan_sha256, r.inventory_path, o.os_user, o.cert_subject, "
    "r.check_mode, r.started_at, r.finished_at, r.status, r.message "
    "FROM rollouts r LEFT JOIN operators o ON o.id = r.operator_id";

constexpr char kRunSelect[] =
    "SELECT run_id, rollout_id, host, stage, batch_idx, mode, status, created_at, started_at, "
    "finished_at, last_seq, message, agent_version, source_version, target_version FROM runs";

RolloutRecord RolloutFromRow(const SqlRow& row) {
  RolloutRecord r;
  r.id = row[0].AsText();
  r.plan_path = row[1].AsText();
  r.plan_sha256 = row[2].AsText();
  r.inventory_path = row[3].AsText();
  r.os_user = row[4].AsText();
  r.cert_subject = row[5].AsText();
  r.check_mode = row[6].AsInt() != 0;
  r.started_at_us = row[7].AsInt();
  r.finished_at_us = row[8].AsInt();
  r.status = row[9].AsText();
  r.message = row[10].AsText();
  return r;
}

RunRecord RunFromRow(const SqlRow& row) {
  RunRecord r;
  r.run_id = row[0].AsText();
  r.rollout_id = row[1].AsText();
  r.host = row[2].AsText();
  r.stage = row[3].AsText();
  r.batch_idx = static_cast<int>(row[4].AsInt());
  r.mode = row[5].AsText();
  r.status = row[6].AsText();
  r.created_at_us = row[7].AsInt();
  r.started_at_us = row[8].AsInt();
  r.finished_at_us = row[9].AsInt();
  r.last_seq = static_cast<uint64_t>(row[10].AsInt());
  r.message = row[11].AsText();
  r.agent_version = row[12].AsText();
  r.source_version = row[13].AsText();
  r.target_version = row[14].AsText();
  return r;
}

}  // namespace

std::string ModeName(v1::Mode mode, bool rollback_check) {
  if (mode == v1::MODE_ROLLBACK && rollback_check) return kRollbackCheckMode;
  return common::EnumWord(v1::Mode_Name(mode), "MODE_");
}

std::string StepStatusName(v1::StepStatus status) {
  return common::EnumWord(v1::StepStatus_Name(status), "STEP_");
}

std::string RunStatusName(v1::RunStatus status) {
  return common::EnumWord(v1::RunStatus_Name(status), "RUN_");
}

std::string ActionName(v1::Action action) {
  return common::EnumWord(v1::Action_Name(action), "ACTION_");
}

std::string LogLevelName(v1::LogLevel level) {
  return common::EnumWord(v1::LogLevel_Name(level), "LOG_");
}

bool IsSuccessStatus(const std::string& s) { return s == "ok" || s == "changed"; }
bool IsFailureStatus(const std::string& s) {
  return s == "failed" || s == "cancelled" || s == "interrupted";
}

bool IsRolledBack(const RunRecord& run) {
  return run.mode == ModeName(v1::MODE_ROLLBACK) && IsSuccessStatus(run.status);
}

std::vector<RunRecord> LatestRunPerHost(const std::vector<RunRecord>& runs) {
  std::vector<RunRecord> out;
  std::map<std::string, size_t> pos;
  for (const RunRecord& r : runs) {
    auto [it, inserted] = pos.emplace(r.host, out.size());
    if (inserted) {
      out.push_back(r);
      continue;
    }
    const bool dry = r.mode == kRollbackCheckMode;
    const bool held_dry = out[it->second].mode == kRollbackCheckMode;
    if (dry && !held_dry) continue;
    if ((held_dry && !dry) || r.created_at_us >= out[it->second].created_at_us) {
      out[it->second] = r;
    }
  }
  return out;
}

absl::StatusOr<std::vector<RunRecord>> Audit::RunsOf(const std::string& rollout_id) {
  ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db_->Query(absl::StrCat(kRunSelect, " WHERE rollout_id = ? ORDER BY created_at, run_id"),
                 {rollout_id}));
  std::vector<RunRecord> runs;
  runs.reserve(rows.size());
  for (const SqlRow& row : rows) runs.push_back(RunFromRow(row));
  return runs;
}

absl::StatusOr<std::vector<RolloutSummary>> Audit::ListRollouts(int limit) {
  common::MutexLock l(&db_mu_);
  std::string sql = absl::StrCat(kRolloutSelect, " ORDER BY r.started_at DESC, r.id DESC");
  std::vector<SqlValue> params;
  if (limit > 0) {
    sql += " LIMIT ?";
    params.push_back(limit);
  }
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows, db_->Query(sql, params));
  std::vector<RolloutSummary> out;
  out.reserve(rows.size());
  for (const SqlRow& row : rows) {
    RolloutSummary s;
    s.rollout = RolloutFromRow(row);
    ASSIGN_OR_RETURN(std::vector<RunRecord> runs, RunsOf(s.rollout.id));
    for (const RunRecord& run : LatestRunPerHost(runs)) {
      ++s.hosts;
      if (IsRolledBack(run)) {
        ++s.hosts_rolled_back;
      } else if (IsSuccessStatus(run.status)) {
        ++s.hosts_ok;
      } else if (IsFailureStatus(run.status)) {
        ++s.hosts_failed;
      } else {
        ++s.hosts_pending;
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<RolloutDetail> Audit::GetRollout(const std::string& rollout_id) {
  common::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query(absl::StrCat(kRolloutSelect, " WHERE r.id = ?"), {rollout_id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("no rollout ", rollout_id));
  RolloutDetail d;
  d.rollout = RolloutFromRow(rows[0]);

  ASSIGN_OR_RETURN(rows, db_->Query("SELECT stage, host_limit, hosts FROM rollout_scopes "
                                    "WHERE rollout_id = ?",
                                    {rollout_id}));
  if (!rows.empty()) {
    RolloutScope& scope = d.rollout.scope;
    d.rollout.has_scope = true;
    scope.stage = rows[0][0].AsText();
    scope.limit = rows[0][1].AsText();
    if (std::string hosts = rows[0][2].AsText(); !hosts.empty()) {
      scope.hosts = absl::StrSplit(hosts, ',');
    }
    ASSIGN_OR_RETURN(rows, db_->Query("SELECT stage, idx, hosts FROM rollout_scope_batches "
                                      "WHERE rollout_id = ? ORDER BY ord",
                                      {rollout_id}));
    for (const SqlRow& row : rows) {
      BatchRecord b{rollout_id, row[0].AsText(), static_cast<int>(row[1].AsInt()), {}};
      if (std::string hosts = row[2].AsText(); !hosts.empty()) b.hosts = absl::StrSplit(hosts, ',');
      scope.batches.push_back(std::move(b));
    }
  }

  ASSIGN_OR_RETURN(rows, db_->Query("SELECT rollout_id, name, idx, status, started_at, "
                                    "finished_at FROM stages WHERE rollout_id = ? "
                                    "ORDER BY idx, name",
                                    {rollout_id}));
  for (const SqlRow& row : rows) {
    d.stages.push_back(StageRecord{row[0].AsText(), row[1].AsText(),
                                   static_cast<int>(row[2].AsInt()), row[3].AsText(),
                                   row[4].AsInt(), row[5].AsInt()});
  }

  ASSIGN_OR_RETURN(rows, db_->Query("SELECT b.rollout_id, b.stage, b.idx, b.hosts "
                                    "FROM batches b LEFT JOIN stages s "
                                    "ON s.rollout_id = b.rollout_id AND s.name = b.stage "
                                    "WHERE b.rollout_id = ? "
                                    "ORDER BY COALESCE(s.idx, 0), b.stage, b.idx",
                                    {rollout_id}));
  for (const SqlRow& row : rows) {
    BatchRecord b{row[0].AsText(), row[1].AsText(), static_cast<int>(row[2].AsInt()), {}};
    std::string hosts = row[3].AsText();
    if (!hosts.empty()) b.hosts = absl::StrSplit(hosts, ',');
    d.batches.push_back(std::move(b));
  }

  ASSIGN_OR_RETURN(d.runs, RunsOf(rollout_id));

  ASSIGN_OR_RETURN(rows, db_->Query("SELECT rollout_id, stage, who, at, forced FROM approvals "
                                    "WHERE rollout_id = ? ORDER BY at, stage",
                                    {rollout_id}));
  for (const SqlRow& row : rows) {
    d.approvals.push_back(ApprovalRecord{row[0].AsText(), row[1].AsText(), row[2].AsText(),
                                         row[3].AsInt(), row[4].AsInt() != 0});
  }
  return d;
}

absl::StatusOr<RunRecord> Audit::GetRun(const std::string& run_id) {
  common::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query(absl::StrCat(kRunSelect, " WHERE run_id = ?"), {run_id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  return RunFromRow(rows[0]);
}

absl::StatusOr<uint64_t> Audit::LastSeq(const std::string& run_id) {
  // db_mu_ first: the writer holds it from taking a batch off the queue until the batch is
  // committed, so every event is either in the database or in the queue here.
  common::MutexLock db_lock(&db_mu_);
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT MAX(seq) FROM events WHERE run_id = ?", {run_id}));
  uint64_t last = rows.empty() ? 0 : static_cast<uint64_t>(rows[0][0].AsInt());
  common::MutexLock l(&mu_);
  for (const Pending& p : queue_) {
    if (p.event.run_id() == run_id) last = std::max<uint64_t>(last, p.event.seq());
  }
  return last;
}

absl::StatusOr<std::vector<v1::Event>> Audit::Events(const std::string& rollout_id,
                                                     const std::string& host,
                                                     const std::string& step) {
  common::MutexLock l(&db_mu_);
  std::string sql = "SELECT idx, payload FROM events WHERE rollout_id = ?";
  std::vector<SqlValue> params = {rollout_id};
  if (!host.empty()) {
    sql += " AND run_id IN (SELECT run_id FROM runs WHERE host = ?)";
    params.push_back(host);
  }
  if (!step.empty()) {
    sql += " AND step = ?";
    params.push_back(step);
  }
  sql += " ORDER BY idx";
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows, db_->Query(sql, params));
  std::vector<v1::Event> events;
  events.reserve(rows.size());
  for (const SqlRow& row : rows) {
    v1::Event e;
    if (!e.ParseFromString(row[1].raw_text())) {
      return absl::DataLossError(absl::StrCat("audit event #", row[0].AsInt(), " of rollout ",
                                              rollout_id, " does not decode"));
    }
    events.push_back(std::move(e));
  }
  return events;
}

absl::StatusOr<int64_t> Audit::EventCount(const std::string& rollout_id) {
  common::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT COUNT(*) FROM events WHERE rollout_id = ?", {rollout_id}));
  return rows.empty() ? 0 : rows[0][0].AsInt();
}

absl::StatusOr<std::vector<StepRecord>> Audit::Steps(const std::string& run_id) {
  common::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT run_id, idx, name, status, message, duration_us "
                              "FROM steps WHERE run_id = ? ORDER BY idx",
                              {run_id}));
  std::vector<StepRecord> out;
  out.reserve(rows.size());
  for (const SqlRow& row : rows) {
    out.push_back(StepRecord{row[0].AsText(), static_cast<int>(row[1].AsInt()), row[2].AsText(),
                             row[3].AsText(), row[4].AsText(), row[5].AsInt()});
  }
  return out;
}

absl::StatusOr<std::vector<FileChangeRecord>> Audit::FileChanges(const std::string& run_id) {
  common::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db_->Query("SELECT c.run_id, c.seq, c.step_idx, c.step, c.path, c.action, c.size, "
                 "c.sha256_before, c.sha256_after, c.note, COALESCE(d.diff, '') "
                 "FROM file_changes c LEFT JOIN file_diffs d "
                 "ON d.run_id = c.run_id AND d.seq = c.seq AND d.ord = c.ord "
                 "WHERE c.run_id = ? ORDER BY c.seq, c.ord",
                 {run_id}));
  std::vector<FileChangeRecord> out;
  out.reserve(rows.size());
  for (const SqlRow& row : rows) {
    out.push_back(FileChangeRecord{
        row[0].AsText(), static_cast<uint64_t>(row[1].AsInt()), static_cast<int>(row[2].AsInt()),
        row[3].AsText(), row[4].AsText(), row[5].AsText(), static_cast<uint64_t>(row[6].AsInt()),
        row[7].AsText(), row[8].AsText(), row[9].AsText(), row[10].AsText()});
  }
  return out;
}

absl::StatusOr<std::vector<ConfigChangeRecord>> Audit::ConfigChanges(const std::string& run_id) {
  common::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db_->Query("SELECT run_id, seq, step_idx, step, file, key, action, "
                 "old_value, new_value, redacted, note FROM config_changes WHERE run_id = ? "
                 "ORDER BY seq, ord",
                 {run_id}));
  std::vector<ConfigChangeRecord> out;
  out.reserve(rows.size());
  for (const SqlRow& row : rows) {
    out.push_back(ConfigChangeRecord{
        row[0].AsText(), static_cast<uint64_t>(row[1].AsInt()), static_cast<int>(row[2].AsInt()),
        row[3].AsText(), row[4].AsText(), row[5].AsText(), row[6].AsText(), row[7].AsText(),
        row[8].AsText(), row[9].AsInt() != 0, row[10].AsText()});
  }
  return out;
}

}  // namespace mimic::controller
