#include "agent/engine/step.h"

#include "absl/strings/str_cat.h"

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

}  // namespace mimic::agent
