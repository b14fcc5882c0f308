// What a source MI home uses that makes steps of the migration required (see
// common/config/required_steps.h): Data Mapper stylesheets to migrate, HL7, a JDBC user store,
// the secure vault. Read only; preflight checks the plan against it (CheckPlanForFeatures).
#ifndef MIMIC_AGENT_STEPS_MIGRATION_FEATURES_H_
#define MIMIC_AGENT_STEPS_MIGRATION_FEATURES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/step.h"
#include "agent/steps/file_steps.h"
#include "common/config/required_steps.h"

namespace mimic::agent {

// The HL7 signals of hl7_transport's heuristics (defined in hl7_transport.cc): each "where:
// what" means the HL7 jars are needed. HL7 inbound endpoints (built into MI) are not counted.
absl::StatusOr<std::vector<std::string>> DetectHl7Signals(const StepContext& ctx,
                                                          const Homes& homes);

// How many Data Mapper stylesheets of the CApp at `file` the 4.0 -> 4.2 rewrite changes
// (common::MigrateCappEntries), read from its central directory and stylesheet entries only.
// Once a run per file (ctx.memo, keyed by the path and the file's device, inode, size, mtime
// and ctime): preflight's detection and migrate_datamapper read the same source CApps.
absl::StatusOr<int> CappStyleSheetsToMigrate(const StepContext& ctx, const std::string& file);

// The features of homes.source, with the versions preflight detected. Evidence names files
// relative to the source home and never holds a secret value.
absl::StatusOr<common::MigrationFeatures> DetectMigrationFeatures(
    const StepContext& ctx, const Homes& homes, const std::string& source_version,
    const std::string& target_version);

// FAILED_PRECONDITION naming the first step `f` requires that ctx.plan neither runs nor skips
// (or a broken order); logs each skipped required step with the operator's reason.
absl::Status CheckPlanForFeatures(const StepContext& ctx, const common::MigrationFeatures& f);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_MIGRATION_FEATURES_H_
