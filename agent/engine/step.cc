#include "agent/engine/step.h"

#include "absl/strings/str_cat.h"
#include "common/config/step_params.h"

namespace mimic::agent {

std::string StepContext::Param(const std::string& key, const std::string& def) const {
  if (spec == nullptr) return def;
  auto it = spec->params().find(key);
  return it == spec->params().end() ? def : it->second;
}

absl::Status StepContext::CheckCancelled(const std::string& what) const {
  if (!cancelled()) return absl::OkStatus();
  return absl::CancelledError(
      absl::StrCat(what, ": cancelled (the run was cancelled or the agent is stopping)"));
}

namespace {

const std::string* Lookup(const mimic::v1::StepSpec* spec, const std::string& key) {
  if (spec == nullptr) return nullptr;
  auto it = spec->params().find(key);
  return it == spec->params().end() ? nullptr : &it->second;
}

std::string StepName(const mimic::v1::StepSpec* spec) {
  return spec == nullptr ? std::string() : spec->name();
}

}  // namespace

bool StepContext::HasParam(const std::string& key) const { return Lookup(spec, key) != nullptr; }

absl::StatusOr<std::string> StepContext::StringParam(const std::string& key) const {
  return common::StepParamString(StepName(spec), key, Lookup(spec, key));
}

absl::StatusOr<int64_t> StepContext::IntParam(const std::string& key) const {
  return common::StepParamInt(StepName(spec), key, Lookup(spec, key));
}

absl::StatusOr<bool> StepContext::BoolParam(const std::string& key) const {
  return common::StepParamBool(StepName(spec), key, Lookup(spec, key));
}

}  // namespace mimic::agent
