// Every step's parameters, written once: the controller checks a plan's [[steps]] params against
// this schema before a rollout starts (LoadPlan, then ValidatePlanAgainstInventory for values
// that hold {{vars}}), and the agent's steps read their params through the same schema
// (StepContext::IntParam ...), so a value one side accepts the other never refuses.
//
// A parameter is a name ("conflict") or a family ending in '.' ("command." for
// "command.<datasource id>"). Its kind says which values are valid:
//   kString        any non-empty text (a command, a java binary)
//   kEnum          one of `values`
//   kInt           a whole number in [min, max]
//   kBool          "true" or "false" (TOML true/false arrive as those strings)
//   kAbsolutePath  an absolute path without NUL
//   kEnvVarName    an environment variable name: [A-Za-z_][A-Za-z0-9_]*
// No value may hold a NUL byte or a newline (a kString command may hold newlines).
#ifndef MIMIC_COMMON_CONFIG_STEP_PARAMS_H_
#define MIMIC_COMMON_CONFIG_STEP_PARAMS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mimic::common {

enum class StepParamKind { kString, kEnum, kInt, kBool, kAbsolutePath, kEnvVarName };

struct StepParamSpec {
  std::string name;  // "conflict", or a family "command." (the rest is a datasource id)
  StepParamKind kind = StepParamKind::kString;
  std::vector<std::string> values;  // kEnum
  int64_t min = 0, max = 0;         // kInt
  std::string default_value;        // "" = none
  bool required = false;
};

struct StepSchema {
  std::string step;
  std::vector<StepParamSpec> params;
  bool settings = false;  // [steps.settings] allowed (merge_config's overrides)
};

// The schema of catalogue step `step`; nullptr for a name not in the catalogue.
const StepSchema* FindStepSchema(const std::string& step);

// The spec `key` matches in `schema` (a name, or a family by prefix); nullptr when none.
const StepParamSpec* FindStepParam(const StepSchema& schema, const std::string& key);

// "one of: source, target, fail", "a whole number from 1 to 604800", ... for messages.
std::string DescribeStepParam(const StepParamSpec& spec);

// INVALID_ARGUMENT when `key` is not a parameter of `step` (the message lists the step's
// parameters) or `value` is not valid for it (the message says what is). The message names
// neither file nor step key: callers prefix it (plan.toml:12: key 'steps[1].params.conflict').
// OK for a step without a schema.
absl::Status CheckStepParam(const std::string& step, const std::string& key, const std::string& value);

// Only the name: INVALID_ARGUMENT when `key` is not a parameter of `step` (for a value that
// holds {{vars}}, checked once expanded). OK for a step without a schema.
absl::Status CheckStepParamName(const std::string& step, const std::string& key);

// Every required parameter of `step` is in `params`, and every entry passes CheckStepParam;
// `has_settings`: the step has [steps.settings]. The message names the step and the key.
absl::Status CheckStepParams(const std::string& step, const std::map<std::string, std::string>& params,
                             bool has_settings);

// Typed reads for the agent's steps: `value` is the param's value, nullptr when absent (the
// schema's default is then used). INVALID_ARGUMENT "STEP: param KEY = \"V\": must be ..." for
// an invalid value (or an absent required one).
absl::StatusOr<std::string> StepParamString(const std::string& step, const std::string& key,
                                            const std::string* value);
absl::StatusOr<int64_t> StepParamInt(const std::string& step, const std::string& key,
                                     const std::string* value);
absl::StatusOr<bool> StepParamBool(const std::string& step, const std::string& key,
                                   const std::string* value);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_STEP_PARAMS_H_
