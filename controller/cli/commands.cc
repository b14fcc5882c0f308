#include "controller/cli/commands.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/text.h"
#include "common/base/fs.h"
#include "common/base/ids.h"
#include "common/config/host_pattern.h"
#include "common/config/inventory.h"
#include "common/base/status_macros.h"
#include "common/rpc/tls.h"
#include "controller/rollout/agent_client.h"
#include "controller/audit/audit.h"
#include "controller/cli/ansible_import.h"
#include "controller/report/report.h"
#include "controller/report/report_formats.h"
#include "controller/rollout/rollout.h"

namespace mimic::controller {
namespace {

absl::StatusOr<std::unique_ptr<Audit>> AuditFor(const CommandOptions& o) {
  return OpenAuditFor(o);
}

absl::Status NeedArg(const CommandOptions& o, size_t n, const char* usage) {
  if (o.args.size() != n) return absl::InvalidArgumentError(absl::StrCat("usage: ", usage));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> CmdRun(const CommandOptions& o, std::FILE* out) {
  if (o.plan_path.empty()) return absl::InvalidArgumentError("mimic run needs --plan plan.toml");
  RolloutOptions r;
  r.inventory_path = o.inventory_path;
  r.plan_path = o.plan_path;
  r.check = o.check;
  r.force = o.force;
  r.limit = o.limit;
  r.stage = o.stage;
  r.audit_url = o.audit_url;
  r.json = o.output == "json";
  r.diff = o.diff;
  r.verbosity = o.verbosity;
  return RunRollout(r, out);
}

absl::StatusOr<int> CmdResume(const CommandOptions& o, std::FILE* out) {
  RETURN_IF_ERROR(NeedArg(o, 1, "mimic resume ROLLOUT [--inventory FILE] [--force]"));
  RolloutOptions r;
  r.inventory_path = o.inventory_path;
  r.plan_path = o.plan_path;
  r.limit = o.limit;  // refused when it differs from the rollout's scope
  r.stage = o.stage;  // likewise
  r.audit_url = o.audit_url;
  r.resume_rollout_id = o.args[0];
  r.force = o.force;
  r.json = o.output == "json";
  r.diff = o.diff;
  r.verbosity = o.verbosity;
  return RunRollout(r, out);
}

absl::StatusOr<int> CmdRollback(const CommandOptions& o, std::FILE* out) {
  RETURN_IF_ERROR(NeedArg(o, 1, "mimic rollback ROLLOUT [--limit HOSTS] [--check] [--force]"));
  RollbackOptions r;
  r.rollout_id = o.args[0];
  r.inventory_path = o.inventory_path;
  r.audit_url = o.audit_url;
  r.limit = o.limit;
  r.check = o.check;
  r.force = o.force;
  r.json = o.output == "json";
  r.diff = o.diff;
  r.verbosity = o.verbosity;
  return RollbackRollout(r, out);
}

absl::StatusOr<int> CmdStatus(const CommandOptions& o, std::FILE* out) {
  ASSIGN_OR_RETURN(auto audit, AuditFor(o));
  if (o.args.empty()) {
    ASSIGN_OR_RETURN(auto rollouts, audit->ListRollouts(20));
    std::fputs(
        (o.output == "json" ? StatusListingJson(rollouts) : StatusListing(rollouts)).c_str(), out);
    return 0;
  }
  if (o.output == "json") {  // one rollout: the report's JSON document
    ASSIGN_OR_RETURN(std::string json, ReportJson(*audit, o.args[0]));
    std::fprintf(out, "%s\n", json.c_str());
    return 0;
  }
  ASSIGN_OR_RETURN(RolloutDetail d, audit->GetRollout(o.args[0]));
  std::fputs(RolloutStatusText(d).c_str(), out);
  return 0;
}

namespace {

// Writes `text` to o.out_file (refusing to overwrite) or to `out`.
absl::Status Emit(const CommandOptions& o, const std::string& text, std::FILE* out) {
  if (o.out_file.empty()) {
    std::fputs(text.c_str(), out);
    return absl::OkStatus();
  }
  if (common::PathExists(o.out_file)) {
    return absl::AlreadyExistsError(o.out_file + " exists; not overwritten");
  }
  return common::WriteFileAtomic(o.out_file, text);
}

}  // namespace

absl::StatusOr<int> CmdReport(const CommandOptions& o, std::FILE* out) {
  RETURN_IF_ERROR(NeedArg(o, 1, "mimic report ROLLOUT --format json|junit|html [-o FILE]"));
  if (o.format != "json" && o.format != "junit" && o.format != "html") {
    return absl::InvalidArgumentError(
        absl::StrCat("report format '", o.format, "': use json, junit or html"));
  }
  ASSIGN_OR_RETURN(auto audit, AuditFor(o));
  std::string text;
  if (o.format == "json") {
    ASSIGN_OR_RETURN(text, ReportJson(*audit, o.args[0]));
    text += "\n";
  } else if (o.format == "junit") {
    ASSIGN_OR_RETURN(text, ReportJunit(*audit, o.args[0]));
  } else {
    ASSIGN_OR_RETURN(text, ReportHtml(*audit, o.args[0]));
  }
  RETURN_IF_ERROR(Emit(o, text, out));
  return 0;
}

absl::StatusOr<int> CmdInventory(const CommandOptions& o, std::FILE* out) {
  if (o.args.size() != 2 || o.args[0] != "import") {
    return absl::InvalidArgumentError(
        "usage: mimic inventory import hosts.ini|hosts.yml|list.json [--group G] [--port N] [-o FILE]");
  }
  ImportOptions io;
  io.agent_port = o.port;
  io.group = o.group;
  ASSIGN_OR_RETURN(std::string text, ImportAnsibleInventory(o.args[1], io));
  // The result must load as a mimic inventory before anyone relies on it.
  RETURN_IF_ERROR(
      common::LoadInventoryFromString(text, o.out_file.empty() ? "inventory.toml" : o.out_file)
          .status());
  RETURN_IF_ERROR(Emit(o, text, out));
  return 0;
}

absl::StatusOr<int> CmdInventoryList(const CommandOptions& o, std::FILE* out) {
  if (!o.args.empty()) return absl::InvalidArgumentError("usage: mimic inventory list [--limit PATTERN]");
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(o.inventory_path));
  ASSIGN_OR_RETURN(auto hosts, common::SelectHosts(inv, o.limit));
  if (o.output == "json") {
    std::string json = "{\"schema_version\":1,\"hosts\":[";
    for (size_t i = 0; i < hosts.size(); ++i) {
      const common::Host* h = hosts[i];
      std::vector<std::string> groups;
      for (const std::string& g : h->all_groups) groups.push_back(common::JsonQuote(g));
      absl::StrAppend(&json, i ? "," : "", "{\"name\":", common::JsonQuote(h->name),
                      ",\"address\":", common::JsonQuote(h->address),
                      ",\"environment\":", common::JsonQuote(h->environment), ",\"groups\":[",
                      absl::StrJoin(groups, ","), "]}");
    }
    absl::StrAppend(&json, "]}\n");
    std::fputs(json.c_str(), out);
    return 0;
  }
  for (const common::Host* h : hosts) std::fprintf(out, "%s\n", h->name.c_str());
  return 0;
}

namespace {

void GraphGroup(const common::Inventory& inv, const common::Group& g, const std::string& indent,
                std::string* out) {
  absl::StrAppend(out, indent, "|--@", g.name, ":\n");
  for (const std::string& child : g.children) {
    if (const common::Group* c = inv.FindGroup(child)) GraphGroup(inv, *c, indent + "|  ", out);
  }
  for (const common::Host& h : inv.hosts) {
    if (std::find(h.groups.begin(), h.groups.end(), g.name) != h.groups.end()) {
      absl::StrAppend(out, indent, "|  |--", h.name, "\n");
    }
  }
}

}  // namespace

absl::StatusOr<int> CmdInventoryGraph(const CommandOptions& o, std::FILE* out) {
  if (!o.args.empty()) return absl::InvalidArgumentError("usage: mimic inventory graph");
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(o.inventory_path));
  std::string text = "@all:\n  |--@environments:\n";
  std::vector<std::string> envs;
  for (const common::Host& h : inv.hosts) {
    if (std::find(envs.begin(), envs.end(), h.environment) == envs.end()) envs.push_back(h.environment);
  }
  for (const std::string& e : envs) {
    absl::StrAppend(&text, "  |  |--@", e, ":\n");
    for (const common::Host& h : inv.hosts) {
      if (h.environment == e) absl::StrAppend(&text, "  |  |  |--", h.name, "\n");
    }
  }
  absl::StrAppend(&text, "  |--@groups:\n");
  for (const common::Group& g : inv.groups) {
    bool is_child = false;
    for (const common::Group& p : inv.groups) {
      is_child = is_child || std::find(p.children.begin(), p.children.end(), g.name) != p.children.end();
    }
    if (!is_child) GraphGroup(inv, g, "  |  ", &text);
  }
  std::vector<std::string> ungrouped;
  for (const common::Host& h : inv.hosts) {
    if (h.groups.empty()) ungrouped.push_back(h.name);
  }
  if (!ungrouped.empty()) {
    absl::StrAppend(&text, "  |--@ungrouped:\n");
    for (const std::string& n : ungrouped) absl::StrAppend(&text, "  |  |--", n, "\n");
  }
  std::fputs(text.c_str(), out);
  return 0;
}

absl::StatusOr<int> CmdApprove(const CommandOptions& o, std::FILE* out) {
  RETURN_IF_ERROR(NeedArg(o, 1, "mimic approve ROLLOUT [--stage NAME]"));
  ASSIGN_OR_RETURN(auto audit, AuditFor(o));
  ASSIGN_OR_RETURN(RolloutDetail d, audit->GetRollout(o.args[0]));
  std::string stage = o.stage;
  if (!stage.empty()) {
    std::vector<std::string> names;
    for (const StageRecord& s : d.stages) names.push_back(s.name);
    if (std::find(names.begin(), names.end(), stage) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("rollout ", o.args[0], " has no stage '",
                                                     stage, "' (its stages: ",
                                                     absl::StrJoin(names, ", "), ")"));
    }
  }
  if (stage.empty()) {
    for (const StageRecord& s : d.stages) {
      if (s.status == "waiting_approval") {
        stage = s.name;
        break;
      }
    }
  }
  if (stage.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rollout ", o.args[0], " has no stage waiting for approval; name one with --stage"));
  }
  std::string who = common::OsUser();
  if (!o.inventory_path.empty()) {
    if (auto inv = common::LoadInventory(o.inventory_path);
        inv.ok() && !inv->controller.cert.empty()) {
      if (auto subj = common::CertificateSubject(inv->controller.cert); subj.ok()) {
        who += " (" + *subj + ")";
      }
    }
  }
  RETURN_IF_ERROR(audit->RecordApproval({o.args[0], stage, who, 0, false}));
  std::fprintf(out, "stage %s of rollout %s approved by %s\n", stage.c_str(), o.args[0].c_str(),
               who.c_str());
  return 0;
}

absl::StatusOr<int> CmdFacts(const CommandOptions& o, std::FILE* out) {
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(o.inventory_path));
  ASSIGN_OR_RETURN(auto hosts, common::SelectHosts(inv, o.limit));
  ASSIGN_OR_RETURN(auto creds, ControllerCredentials(inv));
  int code = 0;
  std::string json = "{\"schema_version\":1,\"hosts\":[";
  bool first = true;
  for (const common::Host* h : hosts) {
    auto stub = mimic::v1::Agent::NewStub(MakeAgentChannel(*h, creds));
    auto facts = GetFactsBlocking(stub.get(), 10000);
    if (o.output == "json") {
      absl::StrAppend(&json, first ? "" : ",", "{\"name\":", common::JsonQuote(h->name),
                      ",\"reachable\":", facts.ok() ? "true" : "false");
      first = false;
      if (!facts.ok()) {
        absl::StrAppend(&json, ",\"error\":",
                        common::JsonQuote(std::string(facts.status().message())), "}");
        code = 2;
        continue;
      }
      absl::StrAppend(&json, ",\"agent_version\":", common::JsonQuote(facts->agent_version()),
                      ",\"hostname\":", common::JsonQuote(facts->hostname()),
                      ",\"java_version\":", common::JsonQuote(facts->java_version()),
                      ",\"disk_free_bytes\":", facts->disk_free_bytes(), ",\"mi_homes\":[");
      for (int i = 0; i < facts->mi_homes_size(); ++i) {
        const auto& mi = facts->mi_homes(i);
        absl::StrAppend(&json, i ? "," : "", "{\"version\":", common::JsonQuote(mi.version()),
                        ",\"path\":", common::JsonQuote(mi.path()),
                        ",\"detected_by\":", common::JsonQuote(mi.detected_by()),
                        ",\"update_level\":", common::JsonQuote(mi.update_level()),
                        ",\"running\":", mi.running() ? "true" : "false", "}");
      }
      absl::StrAppend(&json, "]}");
      continue;
    }
    if (!facts.ok()) {
      std::fprintf(out, "%-16s unreachable: %s\n", h->name.c_str(),
                   std::string(facts.status().message()).c_str());
      code = 2;
      continue;
    }
    std::fprintf(out, "%-16s agent %s on %s, java %s, %.1f GiB free\n", h->name.c_str(),
                 facts->agent_version().c_str(), facts->hostname().c_str(),
                 facts->java_version().empty() ? "none" : facts->java_version().c_str(),
                 facts->disk_free_bytes() / 1073741824.0);
    for (const auto& mi : facts->mi_homes()) {
      std::fprintf(out, "%-16s   MI %s at %s (%s), update level %s%s\n", "", mi.version().c_str(),
                   mi.path().c_str(), mi.detected_by().c_str(),
                   mi.update_level().empty() ? "none" : mi.update_level().c_str(),
                   mi.running() ? " RUNNING" : "");
    }
  }
  if (o.output == "json") std::fprintf(out, "%s]}\n", json.c_str());
  return code;
}

}  // namespace mimic::controller
