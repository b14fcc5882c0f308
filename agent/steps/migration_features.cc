#include "agent/steps/migration_features.h"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/steps/db_discovery.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"
#include "common/mi/capp.h"

namespace mimic::agent {
namespace {

constexpr char kCarbonapps[] = "repository/deployment/server/carbonapps";
constexpr const char* kRegistryPartitions[] = {"registry/config", "registry/governance",
                                               "registry/local"};
constexpr char kDeploymentToml[] = "conf/deployment.toml";

absl::Status DetectDatamapper(const StepContext& ctx, const Homes& homes,
                              std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(std::vector<std::string> files,
                   ListConfinedFiles(ctx, homes.source, kCarbonapps));
  for (const std::string& rel : files) {
    if (rel.find('/', sizeof(kCarbonapps)) != std::string::npos ||
        !absl::EndsWithIgnoreCase(rel, ".car")) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.source, rel));
    absl::StatusOr<int> found = CappStyleSheetsToMigrate(ctx, path, /*also_for_hl7_scan=*/true);
    if (!found.ok()) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("cannot read ", rel, " for Data Mapper stylesheets: ",
                           found.status().message()));
      continue;
    }
    if (const int n = *found; n > 0) {
      out->push_back(absl::StrCat(rel, ": ", n, n == 1 ? " stylesheet" : " stylesheets"));
    }
  }
  for (const char* partition : kRegistryPartitions) {
    ASSIGN_OR_RETURN(std::vector<std::string> reg, ListConfinedFiles(ctx, homes.source, partition));
    for (const std::string& rel : reg) {
      if (!common::IsXsltStyleSheetName(common::Basename(rel))) continue;
      ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.source, rel));
      ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
      int n = 0;
      common::MigrateXsltStyleSheet(text, &n);
      if (n > 0) out->push_back(rel);
    }
  }
  return absl::OkStatus();
}

// The user store and the secure vault, from the source's deployment.toml.
absl::Status DetectInToml(const StepContext& ctx, const Homes& homes,
                          common::MigrationFeatures* f) {
  ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.source, kDeploymentToml));
  if (!common::IsRegularFile(path)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
  ASSIGN_OR_RETURN(DbDiscovery db, DiscoverDatabases(text, path, homes.source));
  if (db.jdbc_user_store) {
    f->jdbc_userstore.push_back(absl::StrCat(
        kDeploymentToml, ": [user_store] ",
        db.user_store_type.empty() ? absl::StrCat("class = \"", db.user_store_class, "\"")
                                   : absl::StrCat("type = \"", db.user_store_type, "\""),
        " on data source ", db.realm_data_source));
  }
  int line = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    ++line;
    const size_t hash = l.find('#');
    const size_t ref = l.find("$secret{");
    if (ref != absl::string_view::npos && (hash == absl::string_view::npos || hash > ref)) {
      // The alias is a name, not a value; still, only the line is named.
      f->secure_vault.push_back(absl::StrCat(kDeploymentToml, ":", line, ": a $secret{} value"));
    }
  }
  ASSIGN_OR_RETURN(toml::table root, common::ParseTomlString(text, path));
  if (const toml::table* secrets = root["secrets"].as_table(); secrets && !secrets->empty()) {
    f->secure_vault.push_back(absl::StrCat(kDeploymentToml, ":", common::NodeLine(secrets),
                                           ": [secrets] with ", secrets->size(),
                                           secrets->size() == 1 ? " alias" : " aliases"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// `file` as it is now, for the memo's keys: its path and identity (device, inode, size, mtime,
// ctime), or "" when it cannot be stat'ed (then nothing is remembered: the read reports the error).
std::string FileIdentity(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return "";
  return absl::StrCat(file, " ", st.st_dev, ":", st.st_ino, ":", st.st_size, ":",
                      st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_ctim.tv_sec, ".",
                      st.st_ctim.tv_nsec);
}

constexpr char kStyleSheetsMemo[] = "Data Mapper stylesheets";
constexpr char kHl7ScanMemo[] = "HL7 scan entries";
// Put in place of handed-out entries: Find<ZipEntries> no longer finds them.
struct HandedOut {};

using ZipEntries = absl::StatusOr<std::vector<common::ZipEntry>>;

absl::StatusOr<int> CountStyleSheets(ZipEntries entries) {
  if (!entries.ok()) return entries.status();
  return common::MigrateCappEntries(&*entries, nullptr);
}

}  // namespace

absl::StatusOr<int> CappStyleSheetsToMigrate(const StepContext& ctx, const std::string& file,
                                             bool also_for_hl7_scan) {
  const std::string identity = ctx.memo == nullptr ? "" : FileIdentity(file);
  if (identity.empty()) {
    return CountStyleSheets(common::ReadZip(file, common::StyleSheetEntriesOnly()));
  }
  const std::string key = absl::StrCat(kStyleSheetsMemo, " of ", identity);
  if (const auto* known = ctx.memo->Find<absl::StatusOr<int>>(key)) return *known;
  absl::StatusOr<int> n;
  if (also_for_hl7_scan) {
    std::vector<ZipEntries> read = common::ReadZipForEach(
        file, {common::StyleSheetEntriesOnly(), Hl7ScanOfCappLimits()});
    n = CountStyleSheets(std::move(read[0]));
    ctx.memo->Put(absl::StrCat(kHl7ScanMemo, " of ", identity), std::move(read[1]));
  } else {
    n = CountStyleSheets(common::ReadZip(file, common::StyleSheetEntriesOnly()));
  }
  ctx.memo->Put(key, n);
  return n;
}

absl::StatusOr<std::vector<common::ZipEntry>> CappEntriesForHl7Scan(const StepContext& ctx,
                                                                    const std::string& file) {
  const std::string identity = ctx.memo == nullptr ? "" : FileIdentity(file);
  if (!identity.empty()) {
    const std::string key = absl::StrCat(kHl7ScanMemo, " of ", identity);
    if (const auto* known = ctx.memo->Find<ZipEntries>(key)) {
      ZipEntries entries = *known;
      ctx.memo->Put(key, HandedOut{});
      return entries;
    }
  }
  return common::ReadZip(file, Hl7ScanOfCappLimits());
}

absl::StatusOr<common::MigrationFeatures> DetectMigrationFeatures(
    const StepContext& ctx, const Homes& homes, const std::string& source_version,
    const std::string& target_version) {
  common::MigrationFeatures f;
  f.source_version = source_version;
  f.target_version = target_version;
  RETURN_IF_ERROR(DetectDatamapper(ctx, homes, &f.datamapper));
  ASSIGN_OR_RETURN(f.hl7, DetectHl7Signals(ctx, homes));
  RETURN_IF_ERROR(DetectInToml(ctx, homes, &f));
  return f;
}

absl::Status CheckPlanForFeatures(const StepContext& ctx, const common::MigrationFeatures& f) {
  if (ctx.plan == nullptr) return absl::OkStatus();
  std::vector<std::string> steps;
  for (const mimic::v1::StepSpec& s : ctx.plan->steps()) steps.push_back(s.name());
  std::vector<common::StepSkip> skips;
  for (const mimic::v1::StepSkip& s : ctx.plan->skips()) skips.push_back({s.step(), s.reason(), 0});
  const std::vector<common::RequiredStep> required = common::FeatureRequiredSteps(f);
  for (const common::RequiredStep& r : required) {
    for (const common::StepSkip& s : skips) {
      if (s.step == r.step) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat("required step ", r.step, " (", r.reason,
                             ") is skipped by the plan: ", s.reason));
      }
    }
  }
  return common::CheckRequiredSteps(steps, skips, required, "preflight");
}

}  // namespace mimic::agent
