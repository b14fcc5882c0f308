#include "agent/engine/step.h"




namespace mimic::agent {

std::string StepContext::Param(const std::string& key, const std::string& def) const {
  if (spec == nullptr) return def;
  auto it = spec->params().find(key);
  return it == spec->params().end() ? def : it->second;
}

}  // namespace mimic::agent
