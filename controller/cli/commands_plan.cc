#include "controller/cli/commands_plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/config/catalogue.h"
#include "common/config/host_pattern.h"
#include "common/config/inventory.h"
#include "common/config/plan.h"
#include "common/mi/mi_version.h"
#include "controller/rollout/agent_client.h"

namespace mimic::controller {
namespace {

// What each step does, for the comment beside it.
const std::map<std::string, std::string>& StepSummaries() {
  static const std::map<std::string, std::string> kSummaries = {
      {"preflight", "both homes, versions, the path, a stopped target, free disk, what the "
                    "host needs"},
      {"backup_databases", "dumps every database the source uses before anything changes"},
      {"snapshot_target", "saves everything later steps touch in the target (rollback)"},
      {"migrate_userstore_db", "UM_USER.UM_USER_ID for MI 4.x in the JDBC user store database"},
      {"migrate_userstore_config", "[user_store], [realm_manager] and their datasource"},
      {"copy_carbonapps", "repository/deployment/server/carbonapps/*.car"},
      {"copy_registry", "the file registry registry/{config,governance,local}"},
      {"copy_deployment", "the rest of repository/deployment"},
      {"migrate_datamapper", "Data Mapper stylesheets rewritten for Saxon 10 (MI 4.2.0)"},
      {"copy_custom_components", "dropins/ and lib/ jars"},
      {"copy_keystores", "repository/resources/security; client-truststore.jks merged"},
      {"merge_config", "the source's deployment.toml into the target's, key by key"},
      {"hl7_transport", "the HL7 transport jars into dropins/"},
  };
  return kSummaries;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out + "\"";
}

// Comment text on one line (no newline can end the comment early).
std::string OneLine(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return s;
}

}  // namespace

absl::StatusOr<std::string> PlanTextFor(const std::vector<HostFinding>& hosts) {
  std::vector<const HostFinding*> ok;
  for (const HostFinding& h : hosts) {
    if (h.problem.empty()) ok.push_back(&h);
  }
  if (ok.empty()) {
    return absl::InvalidArgumentError(
        "no host has a source and a target MI home the agent can see; nothing to plan");
  }
  std::set<std::string> paths, sources, targets;
  for (const HostFinding* h : ok) {
    paths.insert(absl::StrCat(h->features.source_version, "->", h->features.target_version));
    sources.insert(h->source_home);
    targets.insert(h->target_home);
  }

  // Required steps with the hosts that need each (empty = every host: the path needs it).
  std::map<std::string, std::vector<std::string>> reasons;
  for (const common::RequiredStep& r : common::PathRequiredSteps()) {
    reasons[r.step].push_back(r.reason);
  }
  for (const HostFinding* h : ok) {
    for (const common::RequiredStep& r : common::FeatureRequiredSteps(h->features)) {
      reasons[r.step].push_back(absl::StrCat(h->host, ": ", r.reason));
    }
  }
  if (reasons.count("migrate_userstore_db") > 0) {
    reasons["backup_databases"].push_back("the user store database is changed: back it up first");
  }

  std::string t;
  absl::StrAppend(&t,
                  "# plan.toml written by `mimic plan new` from what the agents found.\n"
                  "# Review it, then: mimic run --inventory INVENTORY --plan plan.toml --check\n"
                  "#\n# Hosts:\n");
  for (const HostFinding& h : hosts) {
    if (!h.problem.empty()) {
      absl::StrAppend(&t, "#   ", h.host, ": NOT PLANNED: ", OneLine(h.problem), "\n");
      continue;
    }
    absl::StrAppend(&t, "#   ", h.host, ": MI ", h.features.source_version, " at ", h.source_home,
                    " (update level ",
                    h.source_update_level.empty() ? "none" : h.source_update_level, ") -> MI ",
                    h.features.target_version, " at ", h.target_home, " (update level ",
                    h.target_update_level.empty() ? "none" : h.target_update_level, ")\n");
    const common::MigrationFeatures& f = h.features;
    for (const auto& [what, items] :
         {std::pair<const char*, const std::vector<std::string>*>{"Data Mapper", &f.datamapper},
          {"HL7", &f.hl7},
          {"JDBC user store", &f.jdbc_userstore},
          {"secure vault", &f.secure_vault}}) {
      if (items->empty()) continue;
      absl::StrAppend(&t, "#       uses ", what, ": ", OneLine(items->front()),
                      items->size() > 1 ? absl::StrCat(" (and ", items->size() - 1, " more)") : "",
                      "\n");
    }
  }

  absl::StrAppend(&t, "\n[migration]\n");
  if (paths.size() == 1) {
    absl::StrAppend(&t, "path = ", Quote(*paths.begin()), "  # every planned host\n");
  } else {
    absl::StrAppend(&t, "path = \"auto\"  # the hosts differ: ", absl::StrJoin(paths, ", "),
                    "; preflight detects each\n");
  }
  if (sources.size() == 1 && targets.size() == 1) {
    absl::StrAppend(&t, "source_home = ", Quote(*sources.begin()), "\n");
    absl::StrAppend(&t, "target_home = ", Quote(*targets.begin()), "\n");
  } else {
    absl::StrAppend(&t,
                    "# The homes differ between hosts: set source_home and target_home in each "
                    "host's inventory vars\n# (the paths are listed above).\n"
                    "source_home = \"{{source_home}}\"\ntarget_home = \"{{target_home}}\"\n");
  }
  absl::StrAppend(&t, "timeout = \"2h\"\n");

  for (const std::string& step : common::StepCatalogue()) {
    auto it = reasons.find(step);
    if (it == reasons.end()) continue;
    absl::StrAppend(&t, "\n[[steps]]\nname = ", Quote(step), "  # ", StepSummaries().at(step),
                    "\n");
    for (const std::string& why : it->second) {
      absl::StrAppend(&t, "# required: ", OneLine(why), "\n");
    }
    if (step == "merge_config") {
      absl::StrAppend(&t, "params = { conflict = \"source\" }  # a key set on both sides: the "
                          "source's value wins\n");
    } else if (step == "hl7_transport") {
      absl::StrAppend(&t,
                      "# Give the HL7 jars (WSO2's wso2mi-hl7-<version>.zip, or a folder holding "
                      "them), e.g.:\n# params = { hl7_zip = \"/opt/wso2/wso2mi-hl7-4.2.0.zip\" "
                      "}\n");
    } else if (step == "migrate_userstore_db" || step == "backup_databases") {
      absl::StrAppend(&t,
                      "# A $secret{} database password needs params = { \"password.<datasource "
                      "id>\" = \"ENV_VAR\" }\n");
    }
  }
  absl::StrAppend(&t,
                  "\n# [[steps]]\n# name = \"verify\"  # starts the target, waits for /healthz, "
                  "stops it; refuses while the\n#                   # source listens on its ports, "
                  "or with inbound endpoints, tasks or\n#                   # message processors "
                  "unless params = { allow_live_start = true }\n"
                  "\n# A required step the fleet does not need:\n# [[skip]]\n# step = \"...\"\n"
                  "# reason = \"...\"\n"
                  "\n# Stages (without them: one stage \"all\", every host in one batch):\n"
                  "# [[stages]]\n# name = \"dev\"\n# environments = [\"dev\"]\n# batch = 1\n");

  // The plan must pass the checks it was written for.
  ASSIGN_OR_RETURN(common::Plan plan,
                   common::LoadPlanFromString(t, "plan.toml", common::StepCatalogue()));
  RETURN_IF_ERROR(common::CheckPlanCoversPath(plan));
  std::vector<std::string> names;
  for (const common::StepConfig& s : plan.steps) names.push_back(s.name);
  for (const HostFinding* h : ok) {
    RETURN_IF_ERROR(common::CheckRequiredSteps(
        names, {}, common::FeatureRequiredSteps(h->features), h->host));
  }
  return t;
}

absl::StatusOr<int> CmdPlan(const CommandOptions& o, std::FILE* out) {
  if (o.args.size() != 1 || o.args[0] != "new") {
    return absl::InvalidArgumentError(
        "usage: mimic plan new --inventory inventory.toml [--limit HOSTS] [-o plan.toml]");
  }
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(o.inventory_path));
  ASSIGN_OR_RETURN(auto hosts, common::SelectHosts(inv, o.limit));
  ASSIGN_OR_RETURN(auto creds, ControllerCredentials(inv));
  std::vector<HostFinding> findings;
  int code = 0;
  for (const common::Host* h : hosts) {
    HostFinding f;
    f.host = h->name;
    auto stub = mimic::v1::Agent::NewStub(MakeAgentChannel(*h, creds));
    absl::StatusOr<mimic::v1::Facts> facts = GetFactsBlocking(stub.get(), 30000);
    if (!facts.ok()) {
      f.problem = absl::StrCat("unreachable: ", facts.status().message());
      code = 2;
      findings.push_back(std::move(f));
      continue;
    }
    // The homes the inventory names, else the oldest and the newest version found.
    // (MI versions 1.2.0 < 4.0.0 < 4.2.0 compare as strings.)
    const mimic::v1::MiHome *src = nullptr, *dst = nullptr;
    auto var = [&](const char* name) {
      auto it = h->vars.find(name);
      return it == h->vars.end() ? std::string() : it->second;
    };
    for (const mimic::v1::MiHome& m : facts->mi_homes()) {
      if (!var("source_home").empty() && m.path() == var("source_home")) src = &m;
      if (!var("target_home").empty() && m.path() == var("target_home")) dst = &m;
    }
    for (const mimic::v1::MiHome& m : facts->mi_homes()) {
      if (m.version().empty()) continue;
      if (var("source_home").empty() &&
          (src == nullptr || m.version() < src->version())) {
        src = &m;
      }
      if (var("target_home").empty() &&
          (dst == nullptr || m.version() > dst->version())) {
        dst = &m;
      }
    }
    if (src == nullptr || dst == nullptr || src == dst ||
        !common::MigrationChain(src->version(), dst->version()).ok()) {
      f.problem = absl::StrCat("no source and target MI home to migrate between (found ",
                               facts->mi_homes_size(), " MI homes)");
      findings.push_back(std::move(f));
      continue;
    }
    f.source_home = src->path();
    f.target_home = dst->path();
    f.source_update_level = src->update_level();
    f.target_update_level = dst->update_level();
    f.features.source_version = src->version();
    f.features.target_version = dst->version();
    const mimic::v1::MiFeatures& mf = src->features();
    f.features.datamapper.assign(mf.datamapper().begin(), mf.datamapper().end());
    f.features.hl7.assign(mf.hl7().begin(), mf.hl7().end());
    f.features.jdbc_userstore.assign(mf.jdbc_userstore().begin(), mf.jdbc_userstore().end());
    f.features.secure_vault.assign(mf.secure_vault().begin(), mf.secure_vault().end());
    findings.push_back(std::move(f));
  }
  ASSIGN_OR_RETURN(std::string text, PlanTextFor(findings));
  if (o.out_file.empty()) {
    std::fputs(text.c_str(), out);
  } else {
    RETURN_IF_ERROR(common::WriteFileAtomic(o.out_file, text));
    std::fprintf(out, "wrote %s for %zu host(s)\n", o.out_file.c_str(), findings.size());
  }
  return code;
}

}  // namespace mimic::controller
