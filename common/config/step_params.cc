#include "common/config/step_params.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/catalogue.h"

namespace mimic::common {
namespace {

using K = StepParamKind;

StepParamSpec Str(std::string name, bool required = false) {
  return {std::move(name), K::kString, {}, 0, 0, "", required};
}
StepParamSpec Path(std::string name) { return {std::move(name), K::kAbsolutePath, {}, 0, 0, ""}; }
StepParamSpec Enum(std::string name, std::vector<std::string> values) {
  std::string def = values.front();
  return {std::move(name), K::kEnum, std::move(values), 0, 0, std::move(def)};
}
StepParamSpec Int(std::string name, int64_t min, int64_t max, std::string def = "") {
  return {std::move(name), K::kInt, {}, min, max, std::move(def)};
}
StepParamSpec Bool(std::string name, std::string def) {
  return {std::move(name), K::kBool, {}, 0, 0, std::move(def)};
}
StepParamSpec EnvVar(std::string name) { return {std::move(name), K::kEnvVarName, {}, 0, 0, ""}; }

constexpr int64_t kWeek = 7 * 24 * 3600;

// One entry per catalogue step (checked by step_params_test against catalogue.h). What each
// parameter means is in README.md ("Steps available now") and in the step's .cc file.
const std::vector<StepSchema>& Schemas() {
  static const std::vector<StepSchema> kSchemas = {
      {"preflight",
       {Bool("require_java", "false"), Int("min_free_mb", 0, int64_t{1} << 40), Str("java"),
        Str("known_unsatisfied_imports")}},
      {"backup_databases",
       {Int("timeout_seconds", 1, kWeek, "3600"), Path("backup_dir"), Str("command."),
        EnvVar("password.")}},
      {"snapshot_target", {}},
      {"migrate_userstore_db",
       {Int("timeout_seconds", 1, kWeek, "1800"), Path("script"), Str("client_command"),
        EnvVar("password.")}},
      {"migrate_userstore_config", {Enum("conflict", {"source", "target", "fail"})}},
      {"copy_secondary_userstores", {}},
      {"copy_carbonapps", {}},
      {"copy_registry", {}},
      {"copy_deployment", {Enum("overwrite_shipped", {"modified", "never"})}},
      {"migrate_datamapper",
       {Path("tool_jar"), Int("tool_timeout_seconds", 1, kWeek, "600"), Str("java")}},
      {"copy_custom_components", {}},
      {"copy_keystores", {}},
      {"merge_config",
       {Enum("conflict", {"source", "target", "fail"}), Str("keep_target"),
        // No default here: common::MergeOptions holds it, with its reasoning.
        Int("keystore_primary_update_level", 0, int64_t{1} << 30)},
       /*settings=*/true},
      {"hl7_transport", {Path("hl7_zip"), Path("hl7_dir")}},
      {"verify",
       {Int("probe_port", 1, 65535), Int("start_timeout_seconds", 1, kWeek, "120"),
        Int("probe_grace_seconds", 0, 3600, "10")}},
      {"exec",
       {Str("command", /*required=*/true), Int("timeout_seconds", 1, kWeek, "600"),
        Path("chdir"), Str("creates"), Str("removes")}},
  };
  return kSchemas;
}

bool IsFamily(const StepParamSpec& spec) { return absl::EndsWith(spec.name, "."); }

std::string ParamNames(const StepSchema& schema) {
  if (schema.params.empty()) return "it takes none";
  std::vector<std::string> names;
  for (const StepParamSpec& p : schema.params) {
    names.push_back(IsFamily(p) ? absl::StrCat(p.name, "<datasource id>") : p.name);
  }
  return absl::StrCat("its parameters: ", absl::StrJoin(names, ", "));
}

// Empty when `value` is valid for `spec`, else what is wrong.
std::string ValueProblem(const StepParamSpec& spec, const std::string& value) {
  if (value.find('\0') != std::string::npos) return "must not hold a NUL byte";
  if (spec.kind != K::kString &&
      (value.find('\n') != std::string::npos || value.find('\r') != std::string::npos)) {
    return "must not hold a line break";
  }
  switch (spec.kind) {
    case K::kString:
      if (value.empty()) return "must not be empty";
      return "";
    case K::kEnum:
      if (std::find(spec.values.begin(), spec.values.end(), value) != spec.values.end()) return "";
      break;
    case K::kInt: {
      int64_t n = 0;
      if (absl::SimpleAtoi(value, &n) && n >= spec.min && n <= spec.max &&
          !absl::StartsWith(value, "+") && !absl::StartsWith(value, " ")) {
        return "";
      }
      break;
    }
    case K::kBool:
      if (value == "true" || value == "false") return "";
      break;
    case K::kAbsolutePath:
      if (!value.empty() && value.front() == '/') return "";
      break;
    case K::kEnvVarName:
      if (!value.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(value.front())) &&
          std::all_of(value.begin(), value.end(), [](char c) {
            return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
          })) {
        return "";
      }
      break;
  }
  return absl::StrCat("must be ", DescribeStepParam(spec));
}

// "STEP: param KEY = \"VALUE\": PROBLEM" (the value shown only for kinds that hold no secret:
// a command or a path may).
absl::Status ParamError(const std::string& step, const std::string& key, const std::string& value,
                        const StepParamSpec& spec, const std::string& problem) {
  const bool show = spec.kind == K::kEnum || spec.kind == K::kInt || spec.kind == K::kBool;
  return absl::InvalidArgumentError(
      show ? absl::StrCat(step, ": param ", key, " = \"", value, "\": ", problem)
           : absl::StrCat(step, ": param ", key, ": ", problem));
}

absl::StatusOr<const StepParamSpec*> Spec(const std::string& step, const std::string& key) {
  const StepSchema* schema = FindStepSchema(step);
  if (schema == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown step '", step, "'"));
  }
  const StepParamSpec* spec = FindStepParam(*schema, key);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(step, ": no parameter '", key, "' (", ParamNames(*schema), ")"));
  }
  return spec;
}

// The value to use: `value`, or the default; an invalid one is an error.
absl::StatusOr<std::string> Checked(const std::string& step, const std::string& key,
                                    const std::string* value, const StepParamSpec** out) {
  absl::StatusOr<const StepParamSpec*> spec = Spec(step, key);
  if (!spec.ok()) return spec.status();
  *out = *spec;
  if (value == nullptr) {
    if ((*spec)->required) {
      return absl::InvalidArgumentError(absl::StrCat(step, ": param ", key, " is required"));
    }
    return (*spec)->default_value;
  }
  if (std::string problem = ValueProblem(**spec, *value); !problem.empty()) {
    return ParamError(step, key, *value, **spec, problem);
  }
  return *value;
}

}  // namespace

const StepSchema* FindStepSchema(const std::string& step) {
  for (const StepSchema& s : Schemas()) {
    if (s.step == step) return &s;
  }
  return nullptr;
}

const StepParamSpec* FindStepParam(const StepSchema& schema, const std::string& key) {
  for (const StepParamSpec& p : schema.params) {
    if (IsFamily(p) ? (absl::StartsWith(key, p.name) && key.size() > p.name.size())
                    : key == p.name) {
      return &p;
    }
  }
  return nullptr;
}

std::string DescribeStepParam(const StepParamSpec& spec) {
  switch (spec.kind) {
    case K::kString:
      return "a non-empty text";
    case K::kEnum:
      return absl::StrCat("one of: ", absl::StrJoin(spec.values, ", "));
    case K::kInt:
      return absl::StrCat("a whole number from ", spec.min, " to ", spec.max);
    case K::kBool:
      return "true or false";
    case K::kAbsolutePath:
      return "an absolute path";
    case K::kEnvVarName:
      return "the name of an environment variable of the agent ([A-Za-z_][A-Za-z0-9_]*)";
  }
  return "";
}

absl::Status CheckStepParam(const std::string& step, const std::string& key, const std::string& value) {
  if (FindStepSchema(step) == nullptr) return absl::OkStatus();
  absl::StatusOr<const StepParamSpec*> spec = Spec(step, key);
  if (!spec.ok()) return spec.status();
  if (std::string problem = ValueProblem(**spec, value); !problem.empty()) {
    return ParamError(step, key, value, **spec, problem);
  }
  return absl::OkStatus();
}

absl::Status CheckStepParamName(const std::string& step, const std::string& key) {
  if (FindStepSchema(step) == nullptr) return absl::OkStatus();
  return Spec(step, key).status();
}

absl::Status CheckStepParams(const std::string& step, const std::map<std::string, std::string>& params,
                             bool has_settings) {
  const StepSchema* schema = FindStepSchema(step);
  if (schema == nullptr) return absl::OkStatus();
  for (const auto& [key, value] : params) {
    if (absl::Status s = CheckStepParam(step, key, value); !s.ok()) return s;
  }
  for (const StepParamSpec& p : schema->params) {
    if (p.required && !params.contains(p.name)) {
      return absl::InvalidArgumentError(absl::StrCat(step, ": param ", p.name, " is required"));
    }
  }
  if (has_settings && !schema->settings) {
    return absl::InvalidArgumentError(
        absl::StrCat(step, ": takes no [steps.settings] (only merge_config does)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StepParamString(const std::string& step, const std::string& key,
                                            const std::string* value) {
  const StepParamSpec* spec = nullptr;
  return Checked(step, key, value, &spec);
}

absl::StatusOr<int64_t> StepParamInt(const std::string& step, const std::string& key,
                                     const std::string* value) {
  const StepParamSpec* spec = nullptr;
  absl::StatusOr<std::string> v = Checked(step, key, value, &spec);
  if (!v.ok()) return v.status();
  int64_t n = 0;
  if (spec->kind != K::kInt || !absl::SimpleAtoi(*v, &n)) {
    return absl::InternalError(
        absl::StrCat(step, ": param ", key, " has no whole-number value or default"));
  }
  return n;
}

absl::StatusOr<bool> StepParamBool(const std::string& step, const std::string& key,
                                   const std::string* value) {
  const StepParamSpec* spec = nullptr;
  absl::StatusOr<std::string> v = Checked(step, key, value, &spec);
  if (!v.ok()) return v.status();
  if (spec->kind != K::kBool || (*v != "true" && *v != "false")) {
    return absl::InternalError(absl::StrCat(step, ": param ", key, " is not a boolean"));
  }
  return *v == "true";
}

}  // namespace mimic::common
