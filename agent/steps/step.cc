#include "agent/steps/step.h"

#include "agent/steps/catalog_extra.h"
#include "agent/steps/db_steps.h"
#include "agent/steps/late_steps.h"
#include "agent/steps/more_steps.h"

#include <utility>

#include "agent/steps/file_steps.h"

namespace mimic::agent {
namespace {

struct CatalogueEntry {
  const char* name;
  std::unique_ptr<Step> (*make)();
};

// Catalogue order (DESIGN.md, "The step catalogue"); steps not implemented yet are absent.
constexpr CatalogueEntry kCatalogue[] = {
    {"preflight", &NewPreflightStep},
    {"backup_databases", &NewBackupDatabasesStep},
    {"snapshot_target", &NewSnapshotTargetStep},
    {"migrate_userstore_db", &NewMigrateUserstoreDbStep},
    {"migrate_userstore_config", &NewMigrateUserstoreConfigStep},
    {"copy_secondary_userstores", &NewCopySecondaryUserstoresStep},
    {"copy_carbonapps", &NewCopyCarbonappsStep},
    {"copy_registry", &NewCopyRegistryStep},
    {"copy_deployment", &NewCopyDeploymentStep},
    {"migrate_datamapper", &NewMigrateDatamapperStep},
    {"copy_custom_components", &NewCopyCustomComponentsStep},
    {"copy_keystores", &NewCopyKeystoresStep},
    {"merge_config", &NewMergeConfigStep},
    {"hl7_transport", &NewHl7TransportStep},
    {"verify", &NewVerifyStep},
    {"exec", &NewExecStep},
};

}  // namespace

std::string StepContext::Param(const std::string& key, const std::string& def) const {
  if (spec == nullptr) return def;
  auto it = spec->params().find(key);
  return it == spec->params().end() ? def : it->second;
}

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
