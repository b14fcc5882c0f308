// `mimic audit` (listing), `mimic logs` and `mimic cancel`: reading the audit back, and asking
// the agents to stop a rollout's runs.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/fs.h"
#include "common/base/ids.h"
#include "common/base/text.h"
#include "common/config/catalogue.h"
#include "common/config/inventory.h"
#include "common/base/status_macros.h"
#include "common/base/text.h"
#include "controller/rollout/agent_client.h"
#include "controller/audit/audit.h"
#include "controller/cli/commands.h"

namespace mimic::controller {
namespace {

// One line of free text: newlines and tabs become spaces.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

std::string TimeOrDash(int64_t us) { return us > 0 ? common::FormatTimeMicros(us) : "-"; }

// "24h", "90m", "1h30m", "45s", "7d", "2w" back from `now`; or an ISO date or date-time, UTC
// unless it carries an offset ("Z", "+02:00").
absl::StatusOr<int64_t> ParseSince(const std::string& text, absl::Time now) {
  std::string t = std::string(absl::StripAsciiWhitespace(text));
  if (t.empty()) return absl::InvalidArgumentError("--since needs a time or a duration");
  if (std::isdigit(static_cast<unsigned char>(t[0])) && t.find('-') == std::string::npos) {
    // A duration: absl's units plus d (days) and w (weeks).
    char unit = t.back();
    int64_t n = 0;
    absl::Duration d;
    if ((unit == 'd' || unit == 'w') && absl::SimpleAtoi(t.substr(0, t.size() - 1), &n) &&
        n >= 0) {
      d = absl::Hours(24 * n * (unit == 'w' ? 7 : 1));
    } else if (!absl::ParseDuration(t, &d) || d < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--since '", text, "': use an ISO date/time (2026-11-21T08:00:00Z) or a duration ",
          "(90m, 24h, 7d)"));
    }
    return absl::ToUnixMicros(now - d);
  }
  static const char* const kFormats[] = {
      "%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M:%E*S", "%Y-%m-%d %H:%M:%E*S%Ez",
      "%Y-%m-%d %H:%M:%E*S",      "%Y-%m-%d%ET%H:%M%Ez",  "%Y-%m-%d%ET%H:%M",
      "%Y-%m-%d %H:%M",           "%Y-%m-%d",
  };
  std::string s = t;
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s = s.substr(0, s.size() - 1) + "+00:00";
  for (const char* f : kFormats) {
    absl::Time at;
    std::string err;
    if (absl::ParseTime(f, s, absl::UTCTimeZone(), &at, &err)) return absl::ToUnixMicros(at);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--since '", text, "': use an ISO date/time (2026-11-21T08:00:00Z) or a duration ",
      "(90m, 24h, 7d)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Audit>> OpenAuditFor(const CommandOptions& o) {
  AuditOptions options;
  options.signing_key_path = o.signing_key;
  std::string url = o.audit_url;
  std::string state_dir;
  // The inventory names the audit (unless --audit does) and its key; with --audit it is read
  // only when it exists, for the key.
  if (url.empty() || (options.signing_key_path.empty() && common::PathExists(o.inventory_path))) {
    ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(o.inventory_path));
    if (url.empty()) url = inv.audit_url;
    if (options.signing_key_path.empty()) options.signing_key_path = inv.audit_signing_key;
    state_dir = inv.controller.state_dir;
  }
  if (options.signing_key_path.empty()) {
    options.signing_key_path = DefaultSigningKeyPath(url, state_dir);
  }
  return Audit::Open(url, options);
}

absl::StatusOr<int> CmdAuditVerify(const CommandOptions& o, std::FILE* out) {
  if (o.args.size() > 2 || (o.args.size() == 2 && !o.rollout.empty())) {
    return absl::InvalidArgumentError(
        "usage: mimic audit verify [ROLLOUT | --rollout R] [--against FILE]");
  }
  const std::string rollout = o.args.size() == 2 ? o.args[1] : o.rollout;
  std::optional<AuditHead> head;
  if (!o.against.empty()) {
    ASSIGN_OR_RETURN(std::string text, common::ReadFile(o.against));
    ASSIGN_OR_RETURN(head, ParseAuditHead(text, o.against));
  }
  if (!o.public_key.empty()) {
    // The auditor's check: the head file and the public key, nothing of the controller's.
    if (!head || !rollout.empty()) {
      return absl::InvalidArgumentError(
          "usage: mimic audit verify --against HEAD_FILE --public-key PUBLIC_KEY_FILE");
    }
    ASSIGN_OR_RETURN(std::string pem, common::ReadFile(o.public_key));
    ASSIGN_OR_RETURN(std::string problem, CheckHeadSignature(*head, pem, o.public_key));
    if (!problem.empty()) {
      std::fprintf(out, "head %s: FORGED: %s\n", o.against.c_str(), problem.c_str());
      return 2;
    }
    std::fprintf(out,
                 "head %s: genuine: signed by head key %s (Ed25519); the audit held %lld ledger "
                 "entries (head %s) and %d rollouts at %s\n",
                 o.against.c_str(), head->head_key_id.c_str(),
                 static_cast<long long>(head->entries), head->head.substr(0, 16).c_str(),
                 head->rollouts, common::FormatTimeMicros(head->at_us).c_str());
    return 0;
  }
  ASSIGN_OR_RETURN(auto audit, OpenAuditFor(o));
  ASSIGN_OR_RETURN(AuditVerifyResult v, audit->VerifyAudit(rollout, head ? &*head : nullptr));
  const std::string what = rollout.empty() ? "audit" : absl::StrCat("rollout ", rollout);
  if (!v.ok) {
    std::fprintf(out, "%s: TAMPERED: %s\n", what.c_str(), v.problem.c_str());
    return 2;
  }
  std::fprintf(out,
               "%s: intact: %d rollout%s, %lld events, ledger of %lld entries (head %s), "
               "signing key %s\n",
               what.c_str(), v.rollouts, v.rollouts == 1 ? "" : "s",
               static_cast<long long>(v.events), static_cast<long long>(v.ledger_entries),
               v.ledger_head.substr(0, 16).c_str(), v.key_id.c_str());
  if (head) {
    std::fprintf(out, "it extends the head exported at %s (%lld entries)\n",
                 common::FormatTimeMicros(head->at_us).c_str(),
                 static_cast<long long>(head->entries));
  } else {
    std::fputs("(a cut-off tail is found only against a head kept elsewhere: mimic audit export)\n",
               out);
  }
  for (const std::string& id : v.legacy_rollouts) {
    std::fprintf(out,
                 "note: rollout %s was written before the keyed ledger: it is vouched for as it "
                 "was when this mimic first sealed it, not before\n",
                 id.c_str());
  }
  return 0;
}

absl::StatusOr<int> CmdAuditExport(const CommandOptions& o, std::FILE* out) {
  if (o.args.size() != 1) return absl::InvalidArgumentError("usage: mimic audit export [-o FILE]");
  ASSIGN_OR_RETURN(auto audit, OpenAuditFor(o));
  ASSIGN_OR_RETURN(AuditHead head, audit->ExportHead());
  const std::string text = FormatAuditHead(head);
  if (o.out_file.empty()) {
    std::fputs(text.c_str(), out);
    return 0;
  }
  RETURN_IF_ERROR(common::WriteFileAtomic(o.out_file, text, 0644));
  std::fprintf(out,
               "audit head (%lld ledger entries, %d rollouts, signing key %s, head key %s) "
               "written to %s\nan auditor checks it with the public key %s.pub alone: mimic "
               "audit verify --against %s --public-key %s.pub\n",
               static_cast<long long>(head.entries), head.rollouts, head.key_id.c_str(),
               head.head_key_id.c_str(), o.out_file.c_str(), audit->HeadKeyPath().c_str(),
               o.out_file.c_str(), audit->HeadKeyPath().c_str());
  return 0;
}

absl::StatusOr<int> CmdAuditList(const CommandOptions& o, std::FILE* out) {
  if (!o.args.empty()) {
    return absl::InvalidArgumentError(
        "usage: mimic audit [--host H] [--since T] [--status S] | mimic audit verify [ROLLOUT] | "
        "mimic audit export [-o FILE]");
  }
  static const std::vector<std::string> kStatuses = {
      "pending", "running", "ok", "changed", "failed", "cancelled", "interrupted", "unreachable",
      "refused"};
  if (!o.status.empty() &&
      std::find(kStatuses.begin(), kStatuses.end(), o.status) == kStatuses.end()) {
    return absl::InvalidArgumentError(absl::StrCat("--status '", o.status, "': use one of ",
                                                   absl::StrJoin(kStatuses, ", ")));
  }
  int64_t since_us = 0;
  if (!o.since.empty()) {
    ASSIGN_OR_RETURN(since_us, ParseSince(o.since, absl::Now()));
  }
  ASSIGN_OR_RETURN(auto audit, OpenAuditFor(o));
  ASSIGN_OR_RETURN(std::vector<RolloutSummary> rollouts, audit->ListRollouts(0));
  std::vector<RunRecord> rows;
  for (const RolloutSummary& r : rollouts) {
    ASSIGN_OR_RETURN(RolloutDetail d, audit->GetRollout(r.rollout.id));
    for (RunRecord& run : d.runs) {
      if (!o.host.empty() && run.host != o.host) continue;
      if (!o.status.empty() && run.status != o.status) continue;
      int64_t at = run.started_at_us > 0 ? run.started_at_us : run.created_at_us;
      if (since_us > 0 && at < since_us) continue;
      rows.push_back(std::move(run));
    }
  }
  auto when = [](const RunRecord& r) {
    return r.started_at_us > 0 ? r.started_at_us : r.created_at_us;
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const RunRecord& a, const RunRecord& b) { return when(a) < when(b); });
  if (o.output == "json") {
    std::string json = "{\"schema_version\":1,\"runs\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const RunRecord& r = rows[i];
      absl::StrAppend(&json, i ? "," : "", "{\"time\":", common::JsonQuote(TimeOrDash(when(r))),
                      ",\"rollout\":", common::JsonQuote(r.rollout_id),
                      ",\"run_id\":", common::JsonQuote(r.run_id),
                      ",\"host\":", common::JsonQuote(r.host),
                      ",\"stage\":", common::JsonQuote(r.stage),
                      ",\"mode\":", common::JsonQuote(r.mode),
                      ",\"status\":", common::JsonQuote(r.status),
                      ",\"message\":", common::JsonQuote(r.message), "}");
    }
    absl::StrAppend(&json, "]}\n");
    std::fputs(json.c_str(), out);
    return 0;
  }
  if (rows.empty()) {
    std::fputs("no runs match\n", out);
    return 0;
  }
  size_t wr = 7, wh = 4, ws = 5, wm = 8;
  for (const RunRecord& r : rows) {
    wr = std::max(wr, r.rollout_id.size());
    wh = std::max(wh, r.host.size());
    ws = std::max(ws, r.stage.size());
    wm = std::max(wm, r.mode.size());  // "rollback-check": a dry rollback
  }
  std::fprintf(out, "%-24s  %-*s  %-*s  %-*s  %-*s  %-11s  %s\n", "TIME", static_cast<int>(wr),
               "ROLLOUT", static_cast<int>(wh), "HOST", static_cast<int>(ws), "STAGE",
               static_cast<int>(wm), "MODE", "STATUS", "MESSAGE");
  for (const RunRecord& r : rows) {
    std::string line = absl::StrFormat(
        "%-24s  %-*s  %-*s  %-*s  %-*s  %-11s  %s", TimeOrDash(when(r)), static_cast<int>(wr),
        r.rollout_id, static_cast<int>(wh), r.host, static_cast<int>(ws),
        r.stage.empty() ? "-" : r.stage, static_cast<int>(wm), r.mode.empty() ? "-" : r.mode,
        r.status, OneLine(r.message));
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::fprintf(out, "%s\n", line.c_str());
  }
  return 0;
}

absl::StatusOr<int> CmdLogs(const CommandOptions& o, std::FILE* out) {
  if (o.args.size() != 2 && o.args.size() != 3) {
    return absl::InvalidArgumentError("usage: mimic logs ROLLOUT HOST [STEP]");
  }
  const std::string& rollout = o.args[0];
  const std::string& host = o.args[1];
  const std::string step = o.args.size() == 3 ? o.args[2] : "";
  ASSIGN_OR_RETURN(auto audit, OpenAuditFor(o));
  ASSIGN_OR_RETURN(RolloutDetail d, audit->GetRollout(rollout));
  bool known = false;
  for (const RunRecord& r : d.runs) known = known || r.host == host;
  if (!known) {
    return absl::NotFoundError(absl::StrCat("rollout ", rollout, " has no run on host ", host));
  }
  if (!step.empty()) {
    const std::vector<std::string>& steps = common::StepCatalogue();
    if (std::find(steps.begin(), steps.end(), step) == steps.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no step '", step, "' (steps: ",
                                                     absl::StrJoin(steps, ", "), ")"));
    }
  }
  ASSIGN_OR_RETURN(std::vector<mimic::v1::Event> events, audit->Events(rollout, host, step));
  if (events.empty()) {
    std::fprintf(out, "no events for host %s%s in rollout %s yet\n", host.c_str(),
                 step.empty() ? "" : (" step " + step).c_str(), rollout.c_str());
    return 0;
  }
  for (const mimic::v1::Event& e : events) {
    std::string t = TimeOrDash(e.time_unix_micros());
    std::string line;
    if (e.has_run_started()) {
      const auto& s = e.run_started();
      line = absl::StrCat("run ", e.run_id(), " started (", ModeName(s.plan().mode(), s.plan().rollback_check()), ", agent ",
                          s.agent_version(), s.source_version().empty() ? "" : ", source MI ",
                          s.source_version(), s.target_version().empty() ? "" : ", target MI ",
                          s.target_version(), ")");
    } else if (e.has_step_started()) {
      line = absl::StrCat("step ", e.step_started().step(), " started");
    } else if (e.has_log()) {
      line = absl::StrCat("[", LogLevelName(e.log().level()), "] ",
                          e.log().step().empty() ? "" : e.log().step() + ": ",
                          e.log().text());
    } else if (e.has_step_finished()) {
      const auto& f = e.step_finished();
      line = absl::StrCat("step ", f.step(), " ", StepStatusName(f.status()),
                          absl::StrFormat(" (%.3f s", f.duration_micros() / 1e6),
                          f.changes_size() > 0 ? absl::StrCat(", ", f.changes_size(), " files")
                                               : "",
                          f.config_changes_size() > 0
                              ? absl::StrCat(", ", f.config_changes_size(), " config keys")
                              : "",
                          ")", f.message().empty() ? "" : ": ", f.message());
    } else if (e.has_run_finished()) {
      const auto& f = e.run_finished();
      line = absl::StrCat("run finished: ", RunStatusName(f.status()),
                          absl::StrFormat(" (%.3f s; %d ok, %d changed, %d skipped, %d failed)",
                                          f.duration_micros() / 1e6, f.steps_ok(),
                                          f.steps_changed(), f.steps_skipped(), f.steps_failed()),
                          f.message().empty() ? "" : ": ", f.message());
    } else {
      continue;
    }
    // Step names, messages and file names come from the host: their control characters are
    // shown escaped (\n, \x1B), as in `mimic run` and `mimic status`, so none can forge a line
    // or move the cursor.
    std::fprintf(out, "%s  %s\n", t.c_str(), common::EscapeControl(line).c_str());
  }
  return 0;
}

absl::StatusOr<int> CmdCancel(const CommandOptions& o, std::FILE* out) {
  if (o.args.size() != 1) {
    return absl::InvalidArgumentError("usage: mimic cancel ROLLOUT [--inventory FILE]");
  }
  const std::string& rollout = o.args[0];
  ASSIGN_OR_RETURN(auto audit, OpenAuditFor(o));
  ASSIGN_OR_RETURN(RolloutDetail d, audit->GetRollout(rollout));
  // The inventory: --inventory when given, else the one the rollout recorded (relative paths
  // are as the controller saw them), else the default.
  std::string inv_path = o.inventory_path;
  if (!o.inventory_set && !d.rollout.inventory_path.empty() &&
      common::PathExists(d.rollout.inventory_path)) {
    inv_path = d.rollout.inventory_path;
  }
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(inv_path));
  ASSIGN_OR_RETURN(auto creds, ControllerCredentials(inv));
  std::vector<const RunRecord*> open;
  for (const RunRecord& r : d.runs) {
    if (r.finished_at_us == 0 && !IsSuccessStatus(r.status) && !IsFailureStatus(r.status)) {
      open.push_back(&r);
    }
  }
  if (open.empty()) {
    std::fprintf(out, "rollout %s (%s): no unfinished runs; nothing to cancel\n", rollout.c_str(),
                 d.rollout.status.c_str());
    return 0;
  }
  // The cancels go out at once, one thread per run, so a slow or unreachable agent does not
  // hold back the others (each call is bounded by its own deadline); the lines are printed in
  // the audit's order.
  int code = 0;
  std::vector<std::string> lines(open.size());
  std::vector<char> failed(open.size(), 0);  // not vector<bool>: written by several threads
  std::vector<std::thread> calls;
  for (size_t i = 0; i < open.size(); ++i) {
    const RunRecord* r = open[i];
    const common::Host* h = inv.FindHost(r->host);
    if (h == nullptr) {
      lines[i] = absl::StrFormat("%-16s %s: not in %s; not cancelled", r->host, r->run_id,
                                 inv.path);
      failed[i] = 1;
      continue;
    }
    calls.emplace_back([&, i, r, h] {
      auto stub = mimic::v1::Agent::NewStub(MakeAgentChannel(*h, creds));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      mimic::v1::CancelRequest req;
      req.set_run_id(r->run_id);
      mimic::v1::CancelResponse resp;
      grpc::Status s = stub->Cancel(&ctx, req, &resp);
      if (s.ok()) {
        lines[i] = absl::StrFormat("%-16s %s: %s (%s)", h->name, r->run_id,
                                   resp.accepted() ? "cancel accepted" : "not cancelled",
                                   resp.state());
      } else if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        // Registered by the controller, not started on the agent yet.
        lines[i] = absl::StrFormat("%-16s %s: the agent has no such run (not started): %s",
                                   h->name, r->run_id, s.error_message());
      } else {
        lines[i] = absl::StrFormat("%-16s %s: cancel failed: %s", h->name, r->run_id,
                                   s.error_message());
        failed[i] = 1;
      }
    });
  }
  for (std::thread& t : calls) t.join();
  for (size_t i = 0; i < open.size(); ++i) {
    std::fprintf(out, "%s\n", lines[i].c_str());
    if (failed[i]) code = 2;
  }
  return code;
}

}  // namespace mimic::controller
