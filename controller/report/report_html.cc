// `mimic report --format html`: one self-contained page (see report_formats.h). Only HTML 4
// elements, so libxml2's HTML parser (xmllint --html) reads it without a complaint; inline CSS,
// no script, no link, no image, no URL.
#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "controller/report/report.h"
#include "controller/report/report_formats.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

constexpr char kStyle[] = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:24px;color:#1d2330;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 8px;
 border-bottom:1px solid #d5d9e0;padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}
table{border-collapse:collapse;margin:4px 0}th,td{border:1px solid #d5d9e0;padding:3px 7px;
 text-align:left;vertical-align:top}th{background:#f1f3f6;font-weight:600}
table.kv th{width:140px}td.num{text-align:right}code,pre{font-family:ui-monospace,Menlo,
 Consolas,monospace;font-size:12px}pre{background:#f7f7f9;border:1px solid #e1e4e8;
 padding:8px;white-space:pre-wrap;word-break:break-all;margin:4px 0}
.ok{background:#d4f4dd;color:#0b5d1e}.changed{background:#fff1c2;color:#7a4d00}
.skipped{background:#eceef1;color:#59606b}.failed{background:#ffd6d6;color:#8a0f0f}
.running{background:#d8e8ff;color:#0b3d91}.pending,.none{background:#fff;color:#9aa1ab}
.other{background:#f3e8ff;color:#5b2491}
span.badge{padding:1px 7px;border-radius:9px;font-weight:600;font-size:12px}
table.grid td.step{text-align:center;font-size:12px;min-width:64px}
div.track{position:relative;background:#f1f3f6;height:14px;width:420px;border-radius:3px}
div.bar{position:absolute;top:0;height:14px;border-radius:3px;min-width:2px}
tr.batch td{font-size:12px;color:#464d59}tr.batch td.name{padding-left:22px}
div.failure{border-left:4px solid #d93636;padding:2px 0 2px 12px;margin:12px 0}
p.legend span{display:inline-block;padding:1px 10px;margin-right:6px;border:1px solid #d5d9e0}
p.muted{color:#6b7280}
details.diff summary{cursor:pointer;font-size:12px;color:#464d59}
pre.diff span.add{background:#e6ffec;color:#0b5d1e}pre.diff span.del{background:#ffebe9;
 color:#8a0f0f}pre.diff span.hunk{color:#0b3d91}
)css";

std::string H(std::string_view s) { return XmlEscape(s); }
std::string A(std::string_view s) { return XmlEscape(s, true); }

// One of the class names the style defines.
std::string StatusClass(const std::string& status) {
  static const std::set<std::string> kKnown = {"ok",     "changed", "skipped",
                                               "failed", "running", "pending"};
  if (kKnown.count(status) > 0) return status;
  if (status == "waiting_approval") return "running";
  if (IsFailureStatus(status) || status == "stopped" || status == "unreachable") return "failed";
  return status.empty() ? "none" : "other";
}

std::string Badge(const std::string& status) {
  return absl::StrCat("<span class=\"badge ", StatusClass(status), "\">",
                      H(status.empty() ? "-" : status), "</span>");
}

std::string Short(const std::string& sha) { return sha.empty() ? "-" : sha.substr(0, 12); }

std::string Duration(int64_t start, int64_t end) {
  return start != 0 && end != 0 ? FormatDuration(end - start) : "-";
}

struct RunData {
  RunRecord run;
  std::vector<StepRecord> steps;
  std::vector<FileChangeRecord> files;
  std::vector<ConfigChangeRecord> configs;
  std::map<std::string, std::string> logs;  // by step ("" outside steps)
};

// The time span the timeline shows.
struct Span {
  int64_t begin = 0, end = 0;
  void Add(int64_t t) {
    if (t == 0) return;
    begin = begin == 0 ? t : std::min(begin, t);
    end = std::max(end, t);
  }
  // A bar from `from` to `to` (to 0: a sliver at `from`).
  std::string Bar(int64_t from, int64_t to, const std::string& cls) const {
    if (from == 0 || end <= begin) return "<div class=\"track\"></div>";
    const double total = static_cast<double>(end - begin);
    const double left = 100.0 * static_cast<double>(from - begin) / total;
    const double width = to > from ? 100.0 * static_cast<double>(to - from) / total : 0;
    return absl::StrFormat(
        "<div class=\"track\"><div class=\"bar %s\" style=\"left:%.2f%%;width:%.2f%%\">"
        "</div></div>",
        cls, std::clamp(left, 0.0, 100.0), std::clamp(width, 0.0, 100.0 - left));
  }
};

void Header(std::string& out, const RolloutDetail& d, const VerifyResult& verify,
            const AuditCheck& check, int64_t events) {
  const RolloutRecord& r = d.rollout;
  absl::StrAppend(&out, "<h1>mimic rollout ", H(r.id), " ", Badge(r.status),
                  r.check_mode ? " <span class=\"badge other\">check mode</span>" : "", "</h1>\n");
  out += "<table class=\"kv\">\n";
  const auto row = [&](const char* key, const std::string& html) {
    absl::StrAppend(&out, "<tr><th>", key, "</th><td>", html, "</td></tr>\n");
  };
  row("Plan", absl::StrCat(H(r.plan_path), "<br><code>sha256 ", H(r.plan_sha256), "</code>"));
  row("Inventory", H(r.inventory_path));
  row("Operator", absl::StrCat(H(r.os_user.empty() ? "-" : r.os_user),
                               r.cert_subject.empty() ? "" : " (" + H(r.cert_subject) + ")"));
  row("Mode", r.check_mode ? "check (nothing written)" : "apply");
  row("Started", H(FormatTimeUtc(r.started_at_us)));
  row("Finished", H(FormatTimeUtc(r.finished_at_us)));
  row("Duration", H(Duration(r.started_at_us, r.finished_at_us)));
  row("Status", Badge(r.status));
  if (!r.message.empty()) row("Message", H(r.message));
  row("Audit chain",
      verify.ok
          ? absl::StrCat(events, " events, intact, head <code>", Short(verify.head_hash), "</code>")
          : absl::StrCat("<span class=\"badge failed\">broken</span> at event #", verify.bad_index,
                         ": ", H(verify.reason)));
  row("Audit verify",
      check.verified ? std::string("intact: every table agrees with the signed ledger")
      : check.checked
          ? absl::StrCat("<span class=\"badge failed\">tampered</span> ", H(check.text))
          : H(check.text));
  out += "</table>\n";
}

void Summary(std::string& out, const RolloutDetail& d, const std::vector<RunData>& runs) {
  std::set<std::string> latest;
  int ok = 0, failed = 0, pending = 0;
  for (const RunRecord& run : LatestRunPerHost(d.runs)) {
    latest.insert(run.run_id);
    ok += IsSuccessStatus(run.status);
    failed += IsFailureStatus(run.status);
    pending += !IsSuccessStatus(run.status) && !IsFailureStatus(run.status);
  }
  std::map<std::string, int> steps;
  int files = 0;
  for (const RunData& rd : runs) {
    if (latest.count(rd.run.run_id) == 0) continue;
    for (const StepRecord& s : rd.steps) ++steps[s.status];
    files += static_cast<int>(rd.files.size());
  }
  absl::StrAppend(&out, "<h2>Summary</h2>\n<table>\n<tr><th>Hosts</th><th>Succeeded</th>",
                  "<th>Failed</th><th>Pending</th><th>Steps ok</th><th>Changed</th>",
                  "<th>Skipped</th><th>Failed</th><th>Files changed</th></tr>\n");
  absl::StrAppend(&out, "<tr><td class=\"num\">", latest.size(), "</td><td class=\"num ok\">", ok,
                  "</td><td class=\"num failed\">", failed, "</td><td class=\"num\">", pending,
                  "</td><td class=\"num ok\">", steps["ok"], "</td><td class=\"num changed\">",
                  steps["changed"], "</td><td class=\"num skipped\">", steps["skipped"],
                  "</td><td class=\"num failed\">", steps["failed"], "</td><td class=\"num\">",
                  files, "</td></tr>\n</table>\n");
  out += "<p class=\"muted\">Counts are of each host's latest run.</p>\n";
}

void Timeline(std::string& out, const RolloutDetail& d, const std::vector<RunData>& runs) {
  Span span;
  span.Add(d.rollout.started_at_us);
  span.Add(d.rollout.finished_at_us);
  for (const StageRecord& s : d.stages) {
    span.Add(s.started_at_us);
    span.Add(s.finished_at_us);
  }
  for (const RunData& rd : runs) {
    span.Add(rd.run.started_at_us);
    span.Add(rd.run.finished_at_us);
  }
  out += "<h2>Timeline</h2>\n";
  if (d.stages.empty()) {
    out += "<p class=\"muted\">No stage recorded.</p>\n";
    return;
  }
  absl::StrAppend(&out, "<table class=\"timeline\">\n<tr><th>Stage / batch</th><th>Status</th>",
                  "<th>Hosts</th><th>Started</th><th>Duration</th><th>",
                  H(FormatTimeUtc(span.begin)), " &ndash; ", H(FormatTimeUtc(span.end)),
                  "</th></tr>\n");
  for (const StageRecord& s : d.stages) {
    int hosts = 0;
    for (const BatchRecord& b : d.batches) {
      if (b.stage == s.name) hosts += static_cast<int>(b.hosts.size());
    }
    Span stage_span;  // a stage that never recorded its end: up to its last run's end
    stage_span.Add(s.started_at_us);
    stage_span.Add(s.finished_at_us);
    for (const RunData& rd : runs) {
      if (rd.run.stage == s.name) stage_span.Add(rd.run.finished_at_us);
    }
    absl::StrAppend(
        &out, "<tr class=\"stage\"><td><b>", H(s.name), "</b></td><td>", Badge(s.status),
        "</td><td class=\"num\">", hosts, "</td><td>", H(FormatTimeUtc(s.started_at_us)),
        "</td><td>", H(Duration(s.started_at_us, s.finished_at_us)), "</td><td>",
        span.Bar(s.started_at_us, s.finished_at_us != 0 ? s.finished_at_us : stage_span.end,
                 StatusClass(s.status)),
        "</td></tr>\n");
    for (const BatchRecord& b : d.batches) {
      if (b.stage != s.name) continue;
      Span bs;
      std::map<std::string, int> by_status;
      for (const RunData& rd : runs) {
        if (rd.run.stage != b.stage || rd.run.batch_idx != b.idx) continue;
        bs.Add(rd.run.started_at_us);
        bs.Add(rd.run.finished_at_us);
        ++by_status[rd.run.status];
      }
      std::string statuses;
      for (const auto& [status, n] : by_status) {
        absl::StrAppend(&statuses, statuses.empty() ? "" : " ", n, "&times;", Badge(status));
      }
      std::string hosts_list;
      for (const std::string& h : b.hosts) {
        absl::StrAppend(&hosts_list, hosts_list.empty() ? "" : ", ", H(h));
      }
      std::string cls = "ok";
      for (const auto& [status, n] : by_status) {
        if (IsFailureStatus(status)) {
          cls = "failed";
        } else if (!IsSuccessStatus(status) && cls == "ok") {
          cls = "running";
        }
      }
      absl::StrAppend(&out, "<tr class=\"batch\"><td class=\"name\">batch ", b.idx + 1,
                      "<br><small>", hosts_list, "</small></td><td>",
                      statuses.empty() ? "-" : statuses, "</td><td class=\"num\">", b.hosts.size(),
                      "</td><td>", H(FormatTimeUtc(bs.begin)), "</td><td>",
                      H(Duration(bs.begin, bs.end)), "</td><td>", span.Bar(bs.begin, bs.end, cls),
                      "</td></tr>\n");
    }
  }
  out += "</table>\n";
  if (!d.approvals.empty()) {
    out += "<h3>Approvals</h3>\n<table>\n<tr><th>Stage</th><th>Who</th><th>At</th></tr>\n";
    for (const ApprovalRecord& a : d.approvals) {
      absl::StrAppend(&out, "<tr><td>", H(a.stage), "</td><td>", H(a.who),
                      a.forced ? " (forced)" : "", "</td><td>", H(FormatTimeUtc(a.at_us)),
                      "</td></tr>\n");
    }
    out += "</table>\n";
  }
}

void Grid(std::string& out, const std::vector<RunData>& runs) {
  // Step columns in plan order: by the lowest index a step has, then first appearance.
  std::vector<std::pair<int, std::string>> columns;
  for (const RunData& rd : runs) {
    for (const StepRecord& s : rd.steps) {
      auto it = std::find_if(columns.begin(), columns.end(),
                             [&](const auto& c) { return c.second == s.name; });
      if (it == columns.end()) {
        columns.emplace_back(s.idx, s.name);
      } else {
        it->first = std::min(it->first, s.idx);
      }
    }
  }
  std::stable_sort(columns.begin(), columns.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out += "<h2>Hosts &times; steps</h2>\n<p class=\"legend\">";
  for (const char* s : {"ok", "changed", "skipped", "failed", "running"}) {
    absl::StrAppend(&out, "<span class=\"", s, "\">", s, "</span>");
  }
  out += "<span class=\"none\">not run</span></p>\n";
  absl::StrAppend(&out, "<table class=\"grid\">\n<tr><th>Host</th><th>Stage</th><th>Batch</th>",
                  "<th>Mode</th><th>Run</th><th>Status</th>");
  for (const auto& c : columns) absl::StrAppend(&out, "<th>", H(c.second), "</th>");
  out += "</tr>\n";
  for (const RunData& rd : runs) {
    const RunRecord& run = rd.run;
    const std::string batch = run.batch_idx < 0 ? "-" : absl::StrCat(run.batch_idx + 1);
    absl::StrAppend(&out, "<tr><td><b>", H(run.host), "</b></td><td>", H(run.stage),
                    "</td><td class=\"num\">", batch, "</td><td>", H(run.mode), "</td><td><code>",
                    H(run.run_id), "</code></td><td title=\"", A(run.message), "\">",
                    Badge(run.status), "</td>");
    for (const auto& c : columns) {
      auto it = std::find_if(rd.steps.begin(), rd.steps.end(),
                             [&](const StepRecord& s) { return s.name == c.second; });
      if (it == rd.steps.end()) {
        out += "<td class=\"none\">&ndash;</td>";
        continue;
      }
      std::string title = FormatDuration(it->duration_us);
      if (!it->message.empty()) absl::StrAppend(&title, ": ", it->message);
      absl::StrAppend(&out, "<td class=\"step ", StatusClass(it->status), "\" title=\"", A(title),
                      "\">", H(it->status), "</td>");
    }
    out += "</tr>\n";
  }
  out += "</table>\n";
}

void Failures(std::string& out, const RolloutRecord& rollout, const std::vector<RunData>& runs) {
  const bool finished = RolloutEnded(rollout);
  std::string body;
  for (const RunData& rd : runs) {
    const RunRecord& run = rd.run;
    const std::string where = absl::StrCat(H(run.host), " &middot; stage ", H(run.stage),
                                           " &middot; run <code>", H(run.run_id), "</code>");
    bool step_failed = false;
    for (const StepRecord& s : rd.steps) {
      if (s.status != "failed") continue;
      step_failed = true;
      auto log = rd.logs.find(s.name);
      absl::StrAppend(&body, "<div class=\"failure\">\n<h3>", where, " &middot; step <b>",
                      H(s.name), "</b></h3>\n<p>", H(s.message.empty() ? "failed" : s.message),
                      "</p>\n<pre>", log == rd.logs.end() ? "(no log lines)" : H(log->second),
                      "</pre>\n</div>\n");
    }
    const bool unreached = rd.steps.empty() && run.status == "pending" && finished;
    if (step_failed || (!unreached && !IsFailureStatus(run.status))) continue;
    auto log = rd.logs.find("");
    absl::StrAppend(
        &body, "<div class=\"failure\">\n<h3>", where, " &middot; ", Badge(run.status),
        "</h3>\n<p>",
        H(unreached ? "no events from the agent: host unreachable, run refused, or not started"
          : run.message.empty() ? "run " + run.status
                                : run.message),
        "</p>\n");
    if (log != rd.logs.end()) absl::StrAppend(&body, "<pre>", H(log->second), "</pre>\n");
    body += "</div>\n";
  }
  out += "<h2>Failures</h2>\n";
  out += body.empty() ? "<p class=\"muted\">None.</p>\n" : body;
}

// A --diff change's diff, folded under its path: added lines green, removed red.
std::string DiffBlock(std::string_view diff) {
  if (diff.empty()) return "";
  std::string out = "<details class=\"diff\"><summary>diff</summary><pre class=\"diff\">";
  for (size_t b = 0; b < diff.size();) {
    size_t e = diff.find('\n', b);
    if (e == std::string_view::npos) e = diff.size();
    std::string_view line = diff.substr(b, e - b);
    const bool header = line.starts_with("--- ") || line.starts_with("+++ ");
    const char* cls = header                     ? nullptr
                      : line.starts_with("@@")   ? "hunk"
                      : line.starts_with("+")    ? "add"
                      : line.starts_with("-")    ? "del"
                                                 : nullptr;
    if (cls != nullptr) {
      absl::StrAppend(&out, "<span class=\"", cls, "\">", H(line), "</span>\n");
    } else {
      absl::StrAppend(&out, H(line), "\n");
    }
    b = e + 1;
  }
  return out + "</pre></details>";
}

void Changes(std::string& out, const std::vector<RunData>& runs) {
  out += "<h2>Changes per host</h2>\n";
  bool any = false;
  for (const RunData& rd : runs) {
    if (rd.files.empty() && rd.configs.empty()) continue;
    any = true;
    absl::StrAppend(&out, "<h3>", H(rd.run.host), " <small>(stage ", H(rd.run.stage), ", ",
                    H(rd.run.mode), " run <code>", H(rd.run.run_id), "</code>)</small></h3>\n");
    if (!rd.files.empty()) {
      out +=
          "<table class=\"files\">\n<tr><th>Step</th><th>Action</th><th>Path</th>"
          "<th>Size</th><th>sha256 before</th><th>sha256 after</th></tr>\n";
      for (const FileChangeRecord& f : rd.files) {
        absl::StrAppend(
            &out, "<tr><td>", H(f.step), "</td><td>", H(f.action), "</td><td><code>", H(f.path),
            "</code>", f.note.empty() ? "" : "<br><small>" + H(f.note) + "</small>",
            DiffBlock(f.diff), "</td><td class=\"num\">", f.size, "</td><td><code>",
            H(Short(f.sha256_before)), "</code></td><td><code>", H(Short(f.sha256_after)),
            "</code></td></tr>\n");
      }
      out += "</table>\n";
    }
    if (!rd.configs.empty()) {
      out +=
          "<table class=\"config\">\n<tr><th>Step</th><th>File</th><th>Key</th>"
          "<th>Action</th><th>Old</th><th>New</th><th>Note</th></tr>\n";
      for (const ConfigChangeRecord& c : rd.configs) {
        absl::StrAppend(&out, "<tr><td>", H(c.step), "</td><td>", H(c.file), "</td><td><code>",
                        H(c.key), "</code></td><td>", H(c.action), "</td><td><code>",
                        H(c.old_value), "</code></td><td><code>", H(c.new_value),
                        "</code></td><td>", H(c.note), "</td></tr>\n");
      }
      out += "</table>\n";
    }
  }
  if (!any) out += "<p class=\"muted\">No file or config change recorded.</p>\n";
}

}  // namespace

absl::StatusOr<std::string> ReportHtml(Audit& audit, const std::string& rollout_id) {
  RETURN_IF_ERROR(audit.Flush());
  ASSIGN_OR_RETURN(RolloutDetail d, audit.GetRollout(rollout_id));
  ASSIGN_OR_RETURN(VerifyResult verify, audit.VerifyChain(rollout_id));
  ASSIGN_OR_RETURN(AuditCheck check, CheckAudit(audit, rollout_id));
  ASSIGN_OR_RETURN(int64_t event_count, audit.EventCount(rollout_id));
  std::vector<RunData> runs;
  std::map<std::string, size_t> by_run_id;
  for (RunRecord& run : RunsInPlanOrder(d)) {
    RunData rd;
    ASSIGN_OR_RETURN(rd.steps, audit.Steps(run.run_id));
    ASSIGN_OR_RETURN(rd.files, audit.FileChanges(run.run_id));
    ASSIGN_OR_RETURN(rd.configs, audit.ConfigChanges(run.run_id));
    rd.run = std::move(run);
    by_run_id[rd.run.run_id] = runs.size();
    runs.push_back(std::move(rd));
  }
  {
    ASSIGN_OR_RETURN(std::vector<v1::Event> events, audit.Events(rollout_id));
    for (const v1::Event& e : events) {
      auto it = by_run_id.find(e.run_id());
      if (!e.has_log() || it == by_run_id.end()) continue;
      absl::StrAppend(&runs[it->second].logs[e.log().step()], FormatTimeUtc(e.time_unix_micros()),
                      " ", LogLevelName(e.log().level()), " ", e.log().text(), "\n");
    }
  }

  std::string out;
  absl::StrAppend(&out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n",
                  "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n",
                  "<title>mimic rollout ", H(d.rollout.id), "</title>\n<style>", kStyle,
                  "</style>\n</head>\n<body>\n");
  Header(out, d, verify, check, event_count);
  Summary(out, d, runs);
  Timeline(out, d, runs);
  Grid(out, runs);
  Failures(out, d.rollout, runs);
  Changes(out, runs);
  out += "<p class=\"muted\">Generated by mimic from the audit.</p>\n</body>\n</html>\n";
  return out;
}

}  // namespace mimic::controller
