#include "common/config/required_steps.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/config/plan.h"
#include "common/config/toml_load.h"

namespace mimic::common {
namespace {

// The steps that write files in the target: snapshot_target must come before them, verify
// (which starts the target) after them.
constexpr const char* kWritingSteps[] = {
    "migrate_userstore_config", "copy_secondary_userstores", "copy_carbonapps",
    "copy_registry",            "copy_deployment",           "migrate_datamapper",
    "copy_custom_components",   "copy_keystores",            "merge_config",
    "hl7_transport"};

int IndexOf(const std::vector<std::string>& steps, const std::string& name) {
  auto it = std::find(steps.begin(), steps.end(), name);
  return it == steps.end() ? -1 : static_cast<int>(it - steps.begin());
}
int LastIndexOf(const std::vector<std::string>& steps, const std::string& name) {
  for (int i = static_cast<int>(steps.size()) - 1; i >= 0; --i) {
    if (steps[i] == name) return i;
  }
  return -1;
}

std::string Evidence(const std::vector<std::string>& items) {
  const size_t kShown = 3;
  std::vector<std::string> shown(items.begin(), items.begin() + std::min(kShown, items.size()));
  std::string out = absl::StrJoin(shown, "; ");
  if (items.size() > kShown) absl::StrAppend(&out, "; and ", items.size() - kShown, " more");
  return out;
}

// " after copy_carbonapps" when an order rule puts `step` after a step the plan runs.
std::string Placement(const std::string& step, const std::vector<std::string>& steps) {
  std::string last;
  for (const StepOrderRule& r : StepOrderRules()) {
    if (r.after == step && IndexOf(steps, r.before) >= 0) {
      if (last.empty() || IndexOf(steps, r.before) > IndexOf(steps, last)) last = r.before;
    }
  }
  return last.empty() ? "" : absl::StrCat(" after ", last);
}

}  // namespace

const std::vector<RequiredStep>& PathRequiredSteps() {
  static const std::vector<RequiredStep> kSteps = {
      {"preflight", "it detects both versions and refuses an unsupported path, a running target "
                    "or too little disk before anything changes"},
      {"snapshot_target", "it saves what the run changes in the target, so a rollback can undo it"},
      {"migrate_userstore_config", "both guides: migrating the user store"},
      {"copy_carbonapps", "both guides: migrating the registry (CApps)"},
      {"copy_registry", "both guides: migrating the registry"},
      {"copy_deployment", "both guides: migrating artifacts"},
      {"copy_custom_components", "both guides: migrating custom components"},
      {"copy_keystores", "both guides: migrating keystores"},
      {"merge_config", "both guides: migrating configurations (deployment.toml)"},
  };
  return kSteps;
}

std::vector<RequiredStep> FeatureRequiredSteps(const MigrationFeatures& f) {
  std::vector<RequiredStep> out;
  if (f.source_version == "1.2.0" && !f.jdbc_userstore.empty()) {
    out.push_back({"migrate_userstore_db",
                   absl::StrCat("the 1.2.0 source has a JDBC user store (",
                                Evidence(f.jdbc_userstore),
                                ") whose UM_USER table needs UM_USER_ID for MI 4.x")});
  }
  const bool crosses_42 = (f.source_version == "1.2.0" || f.source_version == "4.0.0") &&
                          f.target_version == "4.2.0";
  if (crosses_42 && !f.datamapper.empty()) {
    out.push_back({"migrate_datamapper",
                   absl::StrCat("Data Mapper stylesheets need the Saxon 10 rewrite for MI 4.2.0 (",
                                Evidence(f.datamapper), ")")});
  }
  if (!f.hl7.empty()) {
    out.push_back({"hl7_transport",
                   absl::StrCat("the source uses HL7 (", Evidence(f.hl7),
                                ") and MI 4.x ships no HL7 transport")});
  }
  if (!f.secure_vault.empty()) {
    const std::string why = absl::StrCat("the source uses the secure vault (",
                                         Evidence(f.secure_vault), ")");
    out.push_back({"copy_keystores", why + ": the target needs the keystore that decrypts it"});
    out.push_back({"merge_config", why + ": the target needs the [secrets] values"});
  }
  return out;
}

const std::vector<StepOrderRule>& StepOrderRules() {
  static const std::vector<StepOrderRule> kRules = [] {
    std::vector<StepOrderRule> rules;
    for (const char* w : kWritingSteps) {
      rules.push_back({"preflight", w, "preflight refuses a bad host before anything changes"});
    }
    for (const char* w : kWritingSteps) {
      rules.push_back({"snapshot_target", w,
                       "snapshot_target saves only what the steps after it will change"});
    }
    rules.push_back({"copy_carbonapps", "migrate_datamapper",
                     "migrate_datamapper rewrites the CApps copy_carbonapps brings into the "
                     "target; before it, it finds nothing to migrate"});
    rules.push_back({"copy_registry", "migrate_datamapper",
                     "migrate_datamapper rewrites the registry stylesheets copy_registry brings"});
    rules.push_back({"backup_databases", "migrate_userstore_db",
                     "the user store database is changed only after it is backed up"});
    for (const char* w : kWritingSteps) {
      rules.push_back({w, "verify", "verify starts the target: it must see every change"});
    }
    return rules;
  }();
  return kRules;
}

absl::Status CheckRequiredSteps(const std::vector<std::string>& steps,
                                const std::vector<StepSkip>& skips,
                                const std::vector<RequiredStep>& required,
                                const std::string& where) {
  for (const RequiredStep& r : required) {
    if (IndexOf(steps, r.step) >= 0) continue;
    if (std::any_of(skips.begin(), skips.end(),
                    [&](const StepSkip& s) { return s.step == r.step; })) {
      continue;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": the plan does not run required step '", r.step, "' (", r.reason,
        "); add [[steps]] name = \"", r.step, "\"", Placement(r.step, steps),
        ", or [[skip]] step = \"", r.step, "\" with reason = \"why it is not needed\""));
  }
  for (const StepOrderRule& rule : StepOrderRules()) {
    const int after = IndexOf(steps, rule.after);
    const int before = LastIndexOf(steps, rule.before);
    if (after >= 0 && before > after) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": step '", rule.after, "' (step ", after + 1, ") runs before '",
                       rule.before, "' (step ", before + 1, "); move it after: ", rule.why));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPlanCoversPath(const Plan& plan) {
  std::vector<std::string> names;
  for (const StepConfig& s : plan.steps) names.push_back(s.name);
  absl::Status st = CheckRequiredSteps(names, plan.skips, PathRequiredSteps(), plan.path);
  if (st.ok()) return st;
  // Name the line: the misordered step's, else the first [[steps]].
  int line = plan.steps.empty() ? 0 : plan.steps.front().line;
  std::string key = "steps";
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    if (absl::StrContains(st.message(), absl::StrCat("(step ", i + 1, ") runs before"))) {
      line = plan.steps[i].line;
      key = absl::StrCat("steps[", i, "].name");
      break;
    }
  }
  std::string msg(st.message());
  msg.erase(0, plan.path.size() + 2);
  return ConfigErrorAtLine(plan.path, line, key, msg);
}

absl::Status LoadSkips(const toml::table& root, const std::vector<std::string>& known_steps,
                       Plan& plan) {
  const toml::node* node = root.get("skip");
  if (node == nullptr) return absl::OkStatus();
  const toml::array* skips = node->as_array();
  if (skips == nullptr || !skips->is_array_of_tables()) {
    return ConfigError(plan.path, node, "skip",
                       "must be an array of tables: [[skip]] with step = \"...\" and "
                       "reason = \"...\"");
  }
  for (size_t i = 0; i < skips->size(); ++i) {
    const toml::table& t = *skips->get(i)->as_table();
    const std::string prefix = absl::StrCat("skip[", i, "]");
    RETURN_IF_ERROR(CheckKnownKeys(t, plan.path, prefix, {"step", "reason"}));
    StepSkip skip;
    skip.line = NodeLine(&t);
    RETURN_IF_ERROR(GetString(t, "step", plan.path, prefix, true, &skip.step));
    RETURN_IF_ERROR(GetString(t, "reason", plan.path, prefix, true, &skip.reason));
    const std::string step_key = JoinKey(prefix, "step");
    if (!known_steps.empty() &&
        std::find(known_steps.begin(), known_steps.end(), skip.step) == known_steps.end()) {
      return ConfigError(plan.path, t.get("step"), step_key,
                         absl::StrCat("unknown step '", skip.step, "' (known steps: ",
                                      absl::StrJoin(known_steps, ", "), ")"));
    }
    if (skip.reason.find_first_not_of(" \t") == std::string::npos) {
      return ConfigError(plan.path, t.get("reason"), JoinKey(prefix, "reason"),
                         "must say why the step is not needed");
    }
    for (const StepConfig& s : plan.steps) {
      if (s.name == skip.step) {
        return ConfigError(plan.path, t.get("step"), step_key,
                           absl::StrCat("step '", skip.step, "' is skipped but also run (line ",
                                        s.line, "); remove one"));
      }
    }
    for (const StepSkip& other : plan.skips) {
      if (other.step == skip.step) {
        return ConfigError(plan.path, t.get("step"), step_key,
                           absl::StrCat("step '", skip.step, "' is skipped twice (first on line ",
                                        other.line, ")"));
      }
    }
    plan.skips.push_back(std::move(skip));
  }
  return absl::OkStatus();
}

}  // namespace mimic::common
