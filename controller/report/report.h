// Reports built from the audit: the JSON document of `mimic report --format json`, the recap
// table printed at the end of `mimic run`, and the listings of `mimic status [ROLLOUT]`.
// The text functions take query results and do no I/O, so they are testable without a database.
#ifndef MIMIC_CONTROLLER_REPORT_REPORT_H_
#define MIMIC_CONTROLLER_REPORT_REPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/text.h"
#include "controller/audit/audit.h"

namespace mimic::controller {

// `s` as a JSON string literal (common/base/text.h).
using ::mimic::common::JsonQuote;

// Builds one JSON document, pretty-printed with two-space indentation. The caller nests
// Begin/End calls correctly and calls Key() before each value inside an object; misuse is a
// programming error (checked with CHECK).
class JsonWriter {
 public:
  JsonWriter() = default;

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Bool(bool value);
  void Null();

  // Key() followed by the value.
  void StringField(std::string_view key, std::string_view value);
  void IntField(std::string_view key, int64_t value);
  void UintField(std::string_view key, uint64_t value);
  void BoolField(std::string_view key, bool value);
  // A time as ISO-8601 UTC text ("2026-11-21T22:44:23.123Z"), or null when 0.
  void TimeField(std::string_view key, int64_t unix_micros);

  // The document so far (complete once every Begin has its End).
  const std::string& str() const { return out_; }

 private:
  void BeforeValue();
  void Open(char c, bool is_object);
  void Close(char c, bool is_object);

  struct Level {
    bool is_object;
    bool empty = true;
  };
  std::string out_;
  std::vector<Level> stack_;
  bool after_key_ = false;
};

// The report of one rollout as a JSON document:
//   {"rollout": {id, plan_path, plan_sha256, inventory_path, operator {os_user, cert_subject},
//                check_mode, status, message, started_at, finished_at, duration_ms},
//    "stages": [{name, idx, status, started_at, finished_at}],
//    "approvals": [{stage, who, at, forced}],
//    "hosts": [{host, stage, batch, run_id, mode, status, message, source_version,
//               target_version, started_at, finished_at, duration_ms,
//               steps: [{name, status, message, duration_ms,
//                        changes: [{path, action, size, sha256_before, sha256_after,
//                                   note (when any), diff (--diff runs: the unified diff,
//                                   redacted; absent otherwise)}],
//                        config_changes: [{file, key, action, old_value, new_value,
//                                          redacted, note}]}],
//               summary: {ok, changed, skipped, failed, files, config_changes}}],
//    "summary": {hosts, hosts_ok, hosts_failed, hosts_pending, steps_ok, steps_changed,
//                steps_skipped, steps_failed, files, config_changes},
//    "audit": {events, chain_ok, chain_head, chain_problem, verified, verify_problem |
//              verify_note}}
// "hosts" holds every run (a host retried or rolled back appears once per run), ordered by
// stage, batch and host; "summary" counts each host's latest run. Times are ISO-8601 UTC text
// or null. Calls Flush() first. NOT_FOUND for an unknown rollout; database errors as is.
absl::StatusOr<std::string> ReportJson(Audit& audit, const std::string& rollout_id);

// The rollout checked against the audit's signed ledger (Audit::VerifyAudit: every table the
// reports read). Without the signing key it is not checked, and `text` says why.
struct AuditCheck {
  bool checked = false;   // the key was at hand
  bool verified = false;  // checked and intact
  std::string text;       // the problem found, or why it was not checked
};
absl::StatusOr<AuditCheck> CheckAudit(Audit& audit, const std::string& rollout_id);

// One line of the recap table: a host's latest run, its step counts and changed files.
struct HostRecap {
  std::string host;
  std::string stage;
  std::string status;
  int ok = 0;
  int changed = 0;
  int skipped = 0;
  int failed = 0;
  int files = 0;
  int64_t duration_us = 0;
  std::string run_id;   // set by the rollout engine; "" from the audit
  std::string message;  // why a host did not succeed (shown under the table); "" for none
};

// The recap of one run from its steps and file changes. Duration: finished - started when the
// run has both times, else the sum of the step durations.
HostRecap MakeHostRecap(const RunRecord& run, const std::vector<StepRecord>& steps,
                        const std::vector<FileChangeRecord>& files);

// The recap of each host's latest run in a rollout, by stage, batch and host. Calls Flush()
// first. NOT_FOUND for an unknown rollout.
absl::StatusOr<std::vector<HostRecap>> BuildRecap(Audit& audit, const std::string& rollout_id);

// The recap table, the one `mimic rollout` prints at its end and `mimic report` shows:
// HOST STAGE STATUS OK CHANGED SKIPPED FAILED FILES DURATION (FormatTable, numbers to the right,
// FormatDuration), a header line, one line per host; then "<host>: <message>" for each host
// whose status is neither ok nor changed and that has a message. Each line ends in '\n'.
std::string RecapTable(const std::vector<HostRecap>& rows);

// The hosts of `rows` that did not succeed (status other than ok/changed), in order.
std::vector<std::string> HostsToRetry(const std::vector<HostRecap>& rows);

// What to type next after a rollout some hosts of which did not succeed: resume it (inside its
// scope), rerun just those hosts in a new rollout (--limit @retry_file), or roll them back.
// "" when every host succeeded.
std::string NextCommands(const std::string& rollout_id, const std::vector<HostRecap>& rows,
                         const std::string& retry_file, bool check);

// What to type after `mimic rollback`: after a dry run (`check`), the command that restores for
// real (with `limit` when one was given); after hosts that were not restored, the commands that
// try them again (--limit naming them), with and without --force. "" when nothing is left.
std::string NextRollbackCommands(const std::string& rollout_id,
                                 const std::vector<HostRecap>& rows, bool check,
                                 const std::string& limit);

// `mimic status`: one line per rollout, in the given order (ListRollouts gives newest first):
// ID STARTED OPERATOR PLAN (sha256, 12 characters) MODE HOSTS OK FAILED PENDING ROLLED_BACK
// STATUS (RolloutStatusWord).
std::string StatusListing(const std::vector<RolloutSummary>& rollouts);
// The same as JSON (`mimic status --output json`): {"schema_version":1,"rollouts":[{"id",
// "started_at","operator","plan_sha256","mode","hosts","ok","failed","pending","rolled_back",
// "status"}]} (status as RolloutStatusWord).
std::string StatusListingJson(const std::vector<RolloutSummary>& rollouts);

// `mimic status ROLLOUT`: the rollout's header lines, then one line per run (each host's runs
// together, oldest first, hosts in plan order: a rollback shows under the run it undid):
// HOST STAGE BATCH RUN MODE STATUS SEQ STARTED DURATION VERSIONS MESSAGE. STATUS says
// "rolled back" for a rollback that succeeded and adds " (dry run)" to a rollback --check's.
std::string RolloutStatusText(const RolloutDetail& detail);

// A rollout's STATUS in `mimic status`: its own status, "rolled back" when a rollback put every
// host back, "<status>, partly rolled back" when only some.
std::string RolloutStatusWord(const RolloutSummary& summary);

// Aligned plain-text table: columns separated by two spaces, each as wide as its widest cell
// (in UTF-8 code points); columns flagged in `right_align` are right-aligned; no trailing
// spaces. `right_align` may be shorter than the header (missing entries: left).
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right_align = {});

// "850ms", "12.3s", "4m05s", "1h02m"; "-" for a negative duration.
std::string FormatDuration(int64_t micros);
// "2026-11-21T22:44:23Z" (seconds precision), "-" for 0.
std::string FormatTimeUtc(int64_t unix_micros);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_REPORT_REPORT_H_
