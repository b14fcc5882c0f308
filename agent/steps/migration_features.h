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
#include "common/mi/capp.h"

namespace mimic::agent {

// The HL7 signals of hl7_transport's heuristics (defined in hl7_transport.cc): each "where:
// what" means the HL7 jars are needed. HL7 inbound endpoints (built into MI) are not counted.
absl::StatusOr<std::vector<std::string>> DetectHl7Signals(const StepContext& ctx,
                                                          const Homes& homes);

// What hl7_transport's HL7 scan reads of a CApp (defined in hl7_transport.cc): the entries it
// scans (text artifacts up to 16 MiB), a binary one passed over after its head.
common::ZipLimits Hl7ScanOfCappLimits();

// How many Data Mapper stylesheets of the CApp at `file` the 4.0 -> 4.2 rewrite changes
// (common::MigrateCappEntries), read from its central directory and stylesheet entries only.
// Once a run per file (ctx.memo, keyed by the path and the file's device, inode, size, mtime
// and ctime): preflight's detection and migrate_datamapper read the same source CApps. With
// `also_for_hl7_scan` (preflight, on the source) and a memo, the same read of the file also
// takes what CappEntriesForHl7Scan gives, kept in the memo for it.
absl::StatusOr<int> CappStyleSheetsToMigrate(const StepContext& ctx, const std::string& file,
                                             bool also_for_hl7_scan = false);

// The CApp at `file` read with Hl7ScanOfCappLimits(), as common::ReadZip gives it: from the run's
// memo when CappStyleSheetsToMigrate read the same file (same identity) for it, handed out once
// (the memo then lets the entries go), else from the file.
absl::StatusOr<std::vector<common::ZipEntry>> CappEntriesForHl7Scan(const StepContext& ctx,
                                                                    const std::string& file);

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
