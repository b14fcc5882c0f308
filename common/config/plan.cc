#include "common/config/plan.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/config/step_params.h"
#include "common/config/toml_load.h"

namespace mimic::common {
namespace {

bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// One batch size: an integer count >= 1 or a string "N%" with N in 1..100.
absl::StatusOr<BatchSpec> ParseBatchSpec(const toml::node& node, const std::string& file,
                                         const std::string& key) {
  const std::string kUsage = "must be a count >= 1, a percentage such as \"25%\", or a list";
  if (const auto* i = node.as_integer()) {
    if (i->get() < 1 || i->get() > 1000000) {
      return ConfigError(file, &node, key, "a batch count must be at least 1");
    }
    return BatchSpec{false, static_cast<int>(i->get())};
  }
  if (const auto* s = node.as_string()) {
    std::string text(absl::StripAsciiWhitespace(s->get()));
    int pct = 0;
    if (!absl::EndsWith(text, "%") || !absl::SimpleAtoi(text.substr(0, text.size() - 1), &pct) ||
        pct < 1 || pct > 100) {
      return ConfigError(file, &node, key,
                         absl::StrCat("'", s->get(),
                                      "' is not a percentage from 1% to 100% such as \"25%\" "
                                      "(write a count without quotes)"));
    }
    return BatchSpec{true, pct};
  }
  return ConfigError(file, &node, key, absl::StrCat(kUsage, ", not ", TomlTypeName(node)));
}

absl::Status LoadMigration(const toml::table& root, Plan& plan) {
  const toml::table* m = nullptr;
  RETURN_IF_ERROR(GetTable(root, "migration", plan.path, "", false, &m));
  if (m == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(CheckKnownKeys(*m, plan.path, "migration",
                                 {"path", "source_home", "target_home", "timeout"}));
  RETURN_IF_ERROR(GetString(*m, "path", plan.path, "migration", false, &plan.migration_path));
  const std::vector<std::string>& allowed = AllowedMigrationPaths();
  if (std::find(allowed.begin(), allowed.end(), plan.migration_path) == allowed.end()) {
    return ConfigError(plan.path, m->get("path"), "migration.path",
                       absl::StrCat("unsupported migration path '", plan.migration_path,
                                    "' (allowed: ", absl::StrJoin(allowed, ", "), ")"));
  }
  for (std::string_view key : {"source_home", "target_home"}) {
    std::string* out = key == "source_home" ? &plan.source_home : &plan.target_home;
    RETURN_IF_ERROR(GetString(*m, key, plan.path, "migration", false, out));
    if (out->empty()) {
      return ConfigError(plan.path, m->get(key), JoinKey("migration", key), "must not be empty");
    }
  }
  RETURN_IF_ERROR(
      GetDurationSeconds(*m, "timeout", plan.path, "migration", false, &plan.timeout_seconds));
  if (plan.timeout_seconds < 1) {
    return ConfigError(plan.path, m->get("timeout"), "migration.timeout",
                       "must be at least one second");
  }
  return absl::OkStatus();
}

absl::Status LoadSteps(const toml::table& root, const std::vector<std::string>& known_steps,
                       Plan& plan) {
  const toml::node* node = root.get("steps");
  if (node == nullptr) {
    return ConfigError(plan.path, nullptr, "steps",
                       "the plan has no steps; add [[steps]] tables with name = \"...\"");
  }
  const toml::array* steps = node->as_array();
  if (steps == nullptr || steps->empty() || !steps->is_array_of_tables()) {
    return ConfigError(plan.path, node, "steps",
                       "must be an array of tables: [[steps]] with name = \"...\"");
  }
  for (size_t i = 0; i < steps->size(); ++i) {
    const toml::table& t = *steps->get(i)->as_table();
    const std::string prefix = absl::StrCat("steps[", i, "]");
    RETURN_IF_ERROR(CheckKnownKeys(t, plan.path, prefix, {"name", "params", "settings"}));
    StepConfig step;
    step.line = NodeLine(&t);
    RETURN_IF_ERROR(GetString(t, "name", plan.path, prefix, true, &step.name));
    if (!known_steps.empty() &&
        std::find(known_steps.begin(), known_steps.end(), step.name) == known_steps.end()) {
      return ConfigError(plan.path, t.get("name"), JoinKey(prefix, "name"),
                         absl::StrCat("unknown step '", step.name,
                                      "' (known steps: ", absl::StrJoin(known_steps, ", "), ")"));
    }
    RETURN_IF_ERROR(GetScalarMap(t, "params", plan.path, prefix, false, &step.params));
    const toml::table* settings = nullptr;
    RETURN_IF_ERROR(GetTable(t, "settings", plan.path, prefix, false, &settings));
    // The step's schema (common/config/step_params.h), the one the agent's steps read with:
    // a value with {{vars}} is checked per host once expanded (ValidatePlanAgainstInventory).
    const toml::table* params = t.get("params") ? t.get("params")->as_table() : nullptr;
    for (const auto& [key, value] : step.params) {
      const std::string dotted = JoinKey(JoinKey(prefix, "params"), key);
      const toml::node* at = params != nullptr ? params->get(key) : nullptr;
      absl::Status s = absl::StrContains(value, "{{") ? CheckStepParamName(step.name, key)
                                                      : CheckStepParam(step.name, key, value);
      if (!s.ok()) return ConfigError(plan.path, at, dotted, std::string(s.message()), &t);
    }
    if (const StepSchema* schema = FindStepSchema(step.name); schema != nullptr) {
      for (const StepParamSpec& p : schema->params) {
        if (p.required && !step.params.contains(p.name)) {
          return ConfigError(plan.path, t.get("params"), JoinKey(prefix, "params"),
                             absl::StrCat(step.name, " needs param ", p.name, " (",
                                          DescribeStepParam(p), ")"),
                             &t);
        }
      }
      if (settings != nullptr && !schema->settings) {
        return ConfigError(plan.path, settings, JoinKey(prefix, "settings"),
                           absl::StrCat(step.name, " takes no [steps.settings] (only ",
                                        "merge_config does)"),
                           &t);
      }
    }
    if (settings != nullptr) {
      std::ostringstream text;
      text << toml::toml_formatter(*settings);
      step.params_toml = text.str();
    }
    plan.steps.push_back(std::move(step));
  }
  return absl::OkStatus();
}

absl::Status LoadStage(const toml::table& t, const std::string& prefix, Plan& plan, Stage& stage) {
  const std::string& file = plan.path;
  RETURN_IF_ERROR(CheckKnownKeys(
      t, file, prefix,
      {"name", "environments", "groups", "batch", "concurrency", "max_fail_percentage",
       "max_failures", "unreachable_is_failure", "pause", "approval"}));
  stage.line = NodeLine(&t);
  RETURN_IF_ERROR(GetString(t, "name", file, prefix, true, &stage.name));
  if (!IsValidName(stage.name)) {
    return ConfigError(file, t.get("name"), JoinKey(prefix, "name"),
                       "stage names may use only A-Z a-z 0-9 . _ -");
  }
  for (const Stage& other : plan.stages) {
    if (other.name == stage.name) {
      return ConfigError(
          file, t.get("name"), JoinKey(prefix, "name"),
          absl::StrCat("duplicate stage name '", stage.name, "' (first on line ", other.line, ")"));
    }
  }
  RETURN_IF_ERROR(GetStringArray(t, "environments", file, prefix, false, &stage.environments));
  RETURN_IF_ERROR(GetStringArray(t, "groups", file, prefix, false, &stage.groups));

  if (const toml::node* batch = t.get("batch")) {
    const std::string key = JoinKey(prefix, "batch");
    stage.batches.clear();
    if (const toml::array* list = batch->as_array()) {
      if (list->empty()) return ConfigError(file, batch, key, "must not be an empty list");
      for (size_t i = 0; i < list->size(); ++i) {
        ASSIGN_OR_RETURN(BatchSpec spec,
                         ParseBatchSpec(*list->get(i), file, absl::StrCat(key, "[", i, "]")));
        stage.batches.push_back(spec);
      }
    } else {
      ASSIGN_OR_RETURN(BatchSpec spec, ParseBatchSpec(*batch, file, key));
      stage.batches.push_back(spec);
    }
  }

  int64_t value = stage.concurrency;
  RETURN_IF_ERROR(GetInt(t, "concurrency", file, prefix, false, &value));
  if (value < 0 || value > 10000) {
    return ConfigError(file, t.get("concurrency"), JoinKey(prefix, "concurrency"),
                       "must be between 1 and 10000 (0 = the controller's)");
  }
  stage.concurrency = static_cast<int>(value);

  value = stage.max_fail_percentage;
  RETURN_IF_ERROR(GetInt(t, "max_fail_percentage", file, prefix, false, &value));
  if (t.contains("max_fail_percentage") && (value < 0 || value > 100)) {
    return ConfigError(file, t.get("max_fail_percentage"), JoinKey(prefix, "max_fail_percentage"),
                       "must be between 0 and 100");
  }
  stage.max_fail_percentage = static_cast<int>(value);

  value = stage.max_fail_percentage >= 0 ? -1 : 0;
  RETURN_IF_ERROR(GetInt(t, "max_failures", file, prefix, false, &value));
  if (value < -1 || value > 1000000) {
    return ConfigError(file, t.get("max_failures"), JoinKey(prefix, "max_failures"),
                       "must be -1 (unlimited) or a count >= 0");
  }
  stage.max_failures = static_cast<int>(value);

  RETURN_IF_ERROR(
      GetBool(t, "unreachable_is_failure", file, prefix, false, &stage.unreachable_is_failure));
  RETURN_IF_ERROR(GetDurationSeconds(t, "pause", file, prefix, false, &stage.pause_seconds));
  RETURN_IF_ERROR(GetBool(t, "approval", file, prefix, false, &stage.approval));
  return absl::OkStatus();
}

absl::Status LoadStages(const toml::table& root, Plan& plan) {
  const toml::node* node = root.get("stages");
  if (node == nullptr) {
    Stage all;
    all.name = "all";
    plan.stages.push_back(std::move(all));
    return absl::OkStatus();
  }
  const toml::array* stages = node->as_array();
  if (stages == nullptr || stages->empty() || !stages->is_array_of_tables()) {
    return ConfigError(plan.path, node, "stages",
                       "must be an array of tables: [[stages]] with name = \"...\"");
  }
  for (size_t i = 0; i < stages->size(); ++i) {
    Stage stage;
    RETURN_IF_ERROR(
        LoadStage(*stages->get(i)->as_table(), absl::StrCat("stages[", i, "]"), plan, stage));
    plan.stages.push_back(std::move(stage));
  }
  return absl::OkStatus();
}

absl::Status LoadRollout(const toml::table& root, Plan& plan) {
  const toml::table* r = nullptr;
  RETURN_IF_ERROR(GetTable(root, "rollout", plan.path, "", false, &r));
  if (r == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(CheckKnownKeys(*r, plan.path, "rollout", {"max_failures"}));
  int64_t value = plan.rollout_max_failures;
  RETURN_IF_ERROR(GetInt(*r, "max_failures", plan.path, "rollout", false, &value));
  if (value < -1 || value > 1000000) {
    return ConfigError(plan.path, r->get("max_failures"), "rollout.max_failures",
                       "must be -1 (unlimited) or a count >= 0");
  }
  plan.rollout_max_failures = static_cast<int>(value);
  return absl::OkStatus();
}

// Expands `templ` for `host`; errors name the plan's file, line and key, and the host.
absl::StatusOr<std::string> ExpandForHost(const Plan& plan, const Inventory& inventory,
                                          const Host& host, const std::string& key,
                                          const std::string& templ) {
  absl::StatusOr<std::string> out = ExpandVars(templ, host.vars);
  if (!out.ok()) {
    return ConfigErrorAtLine(plan.path, plan.LineOf(key), key,
                             absl::StrCat("for host '", host.name, "' (", inventory.path, ":",
                                          host.line, "): ", out.status().message()));
  }
  return out;
}

}  // namespace

int Plan::LineOf(const std::string& dotted_key) const {
  auto it = key_lines.find(dotted_key);
  return it == key_lines.end() ? 0 : it->second;
}

const std::vector<std::string>& AllowedMigrationPaths() {
  static const std::vector<std::string> kPaths = {"auto", "1.2.0->4.0.0", "4.0.0->4.2.0",
                                                  "1.2.0->4.2.0"};
  return kPaths;
}

absl::StatusOr<Plan> LoadPlanFromString(const std::string& text, const std::string& path,
                                        const std::vector<std::string>& known_steps) {
  ASSIGN_OR_RETURN(toml::table root, ParseTomlString(text, path));
  Plan plan;
  plan.path = path;
  plan.sha256 = Sha256Hex(text);
  plan.key_lines = KeyLines(root);
  RETURN_IF_ERROR(CheckKnownKeys(root, path, "", {"migration", "steps", "skip", "stages", "rollout"}));
  RETURN_IF_ERROR(LoadMigration(root, plan));
  RETURN_IF_ERROR(LoadSteps(root, known_steps, plan));
  RETURN_IF_ERROR(LoadSkips(root, known_steps, plan));
  RETURN_IF_ERROR(LoadStages(root, plan));
  RETURN_IF_ERROR(LoadRollout(root, plan));
  return plan;
}

absl::StatusOr<Plan> LoadPlan(const std::string& path,
                              const std::vector<std::string>& known_steps) {
  ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return LoadPlanFromString(text, path, known_steps);
}

std::vector<const Host*> SelectStageHosts(const Stage& stage,
                                          const std::vector<const Host*>& hosts) {
  std::vector<const Host*> out;
  for (const Host* h : hosts) {
    bool env_ok = stage.environments.empty() ||
                  std::find(stage.environments.begin(), stage.environments.end(), h->environment) !=
                      stage.environments.end();
    bool group_ok =
        stage.groups.empty() || std::any_of(stage.groups.begin(), stage.groups.end(),
                                            [h](const std::string& g) { return h->InGroup(g); });
    if (env_ok && group_ok) out.push_back(h);
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<const Host*>>> MakeBatches(
    const Stage& stage, const std::vector<const Host*>& hosts) {
  if (stage.batches.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("stage '", stage.name, "' has no batch sizes"));
  }
  const size_t total = hosts.size();
  std::vector<std::vector<const Host*>> batches;
  size_t next = 0;
  for (size_t b = 0; next < total; ++b) {
    const BatchSpec& spec = stage.batches[std::min(b, stage.batches.size() - 1)];
    if (spec.value < 1 || (spec.percent && spec.value > 100)) {
      return absl::InvalidArgumentError(absl::StrCat("stage '", stage.name, "': batch size ",
                                                     spec.value, spec.percent ? "%" : "",
                                                     " is out of range"));
    }
    size_t size = spec.percent ? (total * spec.value + 99) / 100 : spec.value;
    size = std::clamp<size_t>(size, 1, total - next);
    batches.emplace_back(hosts.begin() + next, hosts.begin() + next + size);
    next += size;
  }
  return batches;
}

absl::StatusOr<std::string> ExpandVars(const std::string& templ,
                                       const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = templ.find("{{", pos);
    if (open == std::string::npos) break;
    size_t close = templ.find("}}", open + 2);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("'{{' without a closing '}}' in \"", templ, "\""));
    }
    std::string name(absl::StripAsciiWhitespace(templ.substr(open + 2, close - open - 2)));
    if (!IsValidName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'{{", name, "}}' in \"", templ, "\" is not a variable name"));
    }
    auto it = vars.find(name);
    if (it == vars.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown variable '", name, "' in \"", templ,
                                                     "\" (set it in the inventory's vars)"));
    }
    out.append(templ, pos, open - pos);
    out += it->second;
    pos = close + 2;
  }
  out.append(templ, pos, std::string::npos);
  return out;
}

absl::Status ValidatePlanAgainstInventory(const Plan& plan, const Inventory& inventory) {
  std::vector<const Host*> all;
  for (const Host& h : inventory.hosts) all.push_back(&h);
  std::map<const Host*, size_t> stage_of;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const Stage& stage = plan.stages[i];
    const std::string prefix = absl::StrCat("stages[", i, "]");
    for (const std::string& env : stage.environments) {
      if (inventory.HasEnvironment(env)) continue;
      std::set<std::string> envs;
      for (const Host& h : inventory.hosts) envs.insert(h.environment);
      const std::string key = JoinKey(prefix, "environments");
      return ConfigErrorAtLine(
          plan.path, plan.LineOf(key), key,
          absl::StrCat("no host of ", inventory.path, " is in environment '", env,
                       "' (environments: ", absl::StrJoin(envs, ", "), ")"));
    }
    for (const std::string& group : stage.groups) {
      if (inventory.FindGroup(group) != nullptr) continue;
      const std::string key = JoinKey(prefix, "groups");
      return ConfigErrorAtLine(
          plan.path, plan.LineOf(key), key,
          absl::StrCat("group '", group, "' is not defined in ", inventory.path));
    }
    for (const Host* h : SelectStageHosts(stage, all)) {
      auto [it, inserted] = stage_of.emplace(h, i);
      if (!inserted) {
        const Stage& first = plan.stages[it->second];
        return ConfigErrorAtLine(
            plan.path, plan.LineOf(JoinKey(prefix, "name")), JoinKey(prefix, "name"),
            absl::StrCat("host '", h->name, "' is in stage '", first.name, "' (line ", first.line,
                         ") and in stage '", stage.name, "'; a host may be in one stage only"));
      }
      ASSIGN_OR_RETURN(
          std::string source,
          ExpandForHost(plan, inventory, *h, "migration.source_home", plan.source_home));
      ASSIGN_OR_RETURN(
          std::string target,
          ExpandForHost(plan, inventory, *h, "migration.target_home", plan.target_home));
      for (const auto& [key, home] :
           {std::pair{"migration.source_home", source}, {"migration.target_home", target}}) {
        if (home.empty() || home[0] != '/') {
          return ConfigErrorAtLine(
              plan.path, plan.LineOf(key), key,
              absl::StrCat("for host '", h->name, "' (", inventory.path, ":", h->line,
                           "): must expand to an absolute path, not '", home, "'"));
        }
      }
      for (const auto& [key, home] :
           {std::pair{"migration.source_home", source}, {"migration.target_home", target}}) {
        for (absl::string_view part : absl::StrSplit(home, '/')) {
          if (part == ".." || part == ".") {
            return ConfigErrorAtLine(
                plan.path, plan.LineOf(key), key,
                absl::StrCat("for host '", h->name, "' (", inventory.path, ":", h->line,
                             "): '", home, "' holds a '", part,
                             "' component; write the home's own path"));
          }
        }
      }
      if (source == target) {
        return ConfigErrorAtLine(
            plan.path, plan.LineOf("migration.target_home"), "migration.target_home",
            absl::StrCat("for host '", h->name, "' (", inventory.path, ":", h->line,
                         "): source and target MI_HOME are the same (", source,
                         "); the source is never written, the target must differ"));
      }
      for (size_t s = 0; s < plan.steps.size(); ++s) {
        for (const auto& [name, value] : plan.steps[s].params) {
          const std::string key = JoinKey(absl::StrCat("steps[", s, "].params"), name);
          ASSIGN_OR_RETURN(std::string expanded, ExpandForHost(plan, inventory, *h, key, value));
          if (absl::Status st = CheckStepParam(plan.steps[s].name, name, expanded); !st.ok()) {
            return ConfigErrorAtLine(
                plan.path, plan.LineOf(key), key,
                absl::StrCat("for host '", h->name, "' (", inventory.path, ":", h->line,
                             "): ", st.message()));
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace mimic::common
