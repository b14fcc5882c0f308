#include "agent/steps/steps.h"

#include "common/config/catalogue.h"

namespace mimic::agent {
namespace {

struct CatalogueEntry {
  const char* name;
  std::unique_ptr<Step> (*make)();
};

constexpr CatalogueEntry kCatalogue[] = {
#define MIMIC_CATALOGUE_ENTRY(name, factory) {#name, &New##factory##Step},
    MIMIC_STEP_CATALOGUE(MIMIC_CATALOGUE_ENTRY)
#undef MIMIC_CATALOGUE_ENTRY
};

}  // namespace

std::unique_ptr<Step> MakeStep(const std::string& name) {
  for (const CatalogueEntry& e : kCatalogue) {
    if (name == e.name) return e.make();
  }
  return nullptr;
}

std::vector<std::string> KnownSteps() {
  std::vector<std::string> names;
  for (const CatalogueEntry& e : kCatalogue) names.push_back(e.name);
  return names;
}

}  // namespace mimic::agent
