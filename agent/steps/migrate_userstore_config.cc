// migrate_userstore_config: carries the primary user store's configuration (MI-FACTS §3) from
// the source's conf/deployment.toml into the target's:
//  * [user_store] (and its sub-tables), [realm_manager], and for a JDBC user store the
//    [[datasource]] whose id is realm_manager.data_source ("WSO2CarbonDB" by default);
//  * [internal_apis.file_user_store] enable = false, which both WSO2 guides require once an LDAP
//    or RDBMS user store is configured, added when the target would not have it (unless the
//    source sets it itself: then merge_config carries the source's value and this step agrees).
// The source text is reduced to those tables (their lines cut out of the source, verified by
// re-parsing, else serialised by toml++; secrets stay as they are in the file and are redacted
// only in the reported changes) and merged with MergeDeploymentToml under the same rules and
// options as merge_config, so running merge_config afterwards changes none of these keys.
// The target's other [[datasource]] entries are kept: the array given to the merge is the
// target's, with the user store's entry replaced or appended.
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"
#include "common/mi/toml_merge.h"

namespace mimic::agent {
namespace {

constexpr char kToml[] = "conf/deployment.toml";
constexpr char kDefaultDataSource[] = "WSO2CarbonDB";
constexpr char kJdbcClass[] = "JDBCUserStoreManager";
constexpr char kFileUserStoreOverride[] = "[internal_apis.file_user_store]\nenable = false\n";
constexpr char kFileUserStoreKey[] = "internal_apis.file_user_store.enable";

// A TOML text cut at its table headers: each section is a header line and the lines up to the
// next header. `ds_index` is the [[datasource]] element a section belongs to (-1: none).
struct Section {
  std::string name;  // "user_store", "datasource.pool_options", "" for the preamble
  bool array = false;
  int ds_index = -1;
  std::string text;
};

std::vector<Section> SplitSections(const std::string& text) {
  std::vector<Section> out(1);
  int ds = -1;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(t, "[")) {
      const bool array = absl::StartsWith(t, "[[");
      const size_t start = array ? 2 : 1;
      const size_t end = t.find(']', start);
      if (end != absl::string_view::npos) {
        Section s;
        s.array = array;
        for (char c : t.substr(start, end - start)) {
          if (c != ' ' && c != '\t') s.name.push_back(c);
        }
        if (s.name == "datasource" && array) ++ds;
        if (s.name == "datasource" || absl::StartsWith(s.name, "datasource.")) s.ds_index = ds;
        out.push_back(std::move(s));
      }
    }
    absl::StrAppend(&out.back().text, line, "\n");
  }
  return out;
}

bool InTable(const Section& s, const std::string& table) {
  return s.name == table || absl::StartsWith(s.name, table + ".");
}

std::string TableText(const std::vector<Section>& sections, const std::string& table) {
  std::string out;
  for (const Section& s : sections) {
    if (InTable(s, table)) absl::StrAppend(&out, s.text);
  }
  return out;
}

std::string DatasourceText(const std::vector<Section>& sections, int index) {
  std::string out;
  for (const Section& s : sections) {
    if (s.ds_index == index) absl::StrAppend(&out, s.text);
  }
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  return out;
}

// Index of the [[datasource]] element whose id is `id`, -1 when none.
int FindDatasource(const toml::table& root, const std::string& id) {
  const toml::array* arr = root["datasource"].as_array();
  if (arr == nullptr) return -1;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = arr->get(i)->as_table();
    if (t != nullptr && t->get_as<std::string>("id") != nullptr &&
        **t->get_as<std::string>("id") == id) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

enum class Kind { kDefault, kLdap, kJdbc, kOther };

Kind UserStoreKind(const toml::table& root, std::string* type) {
  const toml::table* us = root["user_store"].as_table();
  if (us == nullptr) return Kind::kDefault;
  *type = us->get_as<std::string>("type") ? **us->get_as<std::string>("type") : "";
  const std::string cls =
      us->get_as<std::string>("class") ? **us->get_as<std::string>("class") : "";
  if (*type == "database" || absl::StrContains(cls, kJdbcClass)) return Kind::kJdbc;
  if (*type == "read_only_ldap" || *type == "read_write_ldap" ||
      absl::StrContains(cls, "LDAPUserStoreManager")) {
    // The shipped deployment.toml holds just [user_store] type = "read_only_ldap", which MI
    // reads as "the default file user store only".
    if (us->size() == 1 && *type == "read_only_ldap") return Kind::kDefault;
    return Kind::kLdap;
  }
  if (type->empty() && cls.empty()) return Kind::kDefault;
  return Kind::kOther;
}

// The reduced source: the user store tables of `source`, the target's [[datasource]] entries
// with the user store's one from the source. Verified against the parsed inputs; toml++
// serialisation when the cut-out lines do not parse back to the same values.
absl::StatusOr<std::string> ReducedSource(const std::string& source_text,
                                          const toml::table& source, const std::string& target_text,
                                          const toml::table& target, bool jdbc,
                                          const std::string& ds_id, int src_ds) {
  const std::vector<Section> src = SplitSections(source_text);
  const std::vector<Section> dst = SplitSections(target_text);
  std::string text = absl::StrCat(TableText(src, "user_store"), TableText(src, "realm_manager"));
  toml::array datasources;
  if (jdbc && src_ds >= 0) {
    const toml::node* ds_node = source["datasource"].as_array()->get(src_ds);
    bool replaced = false;
    if (const toml::array* arr = target["datasource"].as_array(); arr != nullptr) {
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = arr->get(i)->as_table();
        const bool mine = t != nullptr && t->get_as<std::string>("id") != nullptr &&
                          **t->get_as<std::string>("id") == ds_id && !replaced;
        absl::StrAppend(&text, mine ? DatasourceText(src, src_ds)
                                    : DatasourceText(dst, static_cast<int>(i)));
        datasources.push_back(mine ? *ds_node : *arr->get(i));
        replaced = replaced || mine;
      }
    }
    if (!replaced) {
      absl::StrAppend(&text, DatasourceText(src, src_ds));
      datasources.push_back(*ds_node);
    }
  }
  toml::table expected;
  for (const char* key : {"user_store", "realm_manager"}) {
    if (const toml::node* n = source.get(key); n != nullptr) expected.insert(key, *n);
  }
  if (!datasources.empty()) expected.insert("datasource", datasources);

  absl::StatusOr<toml::table> reparsed = common::ParseTomlString(text, "reduced source");
  if (reparsed.ok() && *reparsed == expected) return text;
  std::ostringstream out;  // a multi-line string or dotted root keys fooled the line cut
  out << toml::toml_formatter(expected) << "\n";
  return out.str();
}


class MigrateUserstoreConfigStep final : public Step {
 public:
  std::string name() const override { return "migrate_userstore_config"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(std::string source_path, ctx.guard->ResolveUnder(homes.source, kToml));
    ASSIGN_OR_RETURN(std::string target_path, ctx.guard->ResolveUnder(homes.target, kToml));
    ASSIGN_OR_RETURN(std::string source_text, ReadPlanned(ctx, source_path));
    ASSIGN_OR_RETURN(std::string target_text, ReadPlanned(ctx, target_path));
    ASSIGN_OR_RETURN(toml::table source, common::ParseTomlString(source_text, source_path));
    ASSIGN_OR_RETURN(toml::table target, common::ParseTomlString(target_text, target_path));

    StepPlan plan;
    std::string type;
    const Kind kind = UserStoreKind(source, &type);
    if (kind == Kind::kDefault) {
      plan.forced_status = mimic::v1::STEP_OK;
      plan.message = "default user store; nothing to carry";
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    if (kind == Kind::kOther) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = absl::StrCat("user store type '", type,
                                  "' is neither LDAP nor JDBC; merge_config carries it as is");
      StepLog(ctx, LogLevel::kWarning, plan.message);
      return plan;
    }
    const bool jdbc = kind == Kind::kJdbc;
    const std::string ds_id =
        source["realm_manager"]["data_source"].value_or(std::string(kDefaultDataSource));
    const int src_ds = jdbc ? FindDatasource(source, ds_id) : -1;
    ASSIGN_OR_RETURN(Versions versions, ResolveVersions(ctx, homes));
    if (jdbc && src_ds < 0) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(source_path, " has no [[datasource]] with id '", ds_id,
                           "' for the JDBC user store; only [user_store] and [realm_manager] "
                           "are carried"));
    }
    if (jdbc && versions.source == "1.2.0" && absl::StartsWith(versions.target, "4.")) {
      StepLog(ctx, LogLevel::kWarning,
              "JDBC user store from MI 1.2.0 to 4.x: migrate_userstore_db must have run on the "
              "user store database (UM_USER_ID columns, MI-FACTS §4) before the target starts");
    }
    ASSIGN_OR_RETURN(std::string reduced, ReducedSource(source_text, source, target_text, target,
                                                        jdbc, ds_id, src_ds));

    common::MergeOptions opts;
    opts.from_version = versions.source;
    opts.to_version = versions.target;
    ASSIGN_OR_RETURN(opts.conflict, ctx.StringParam("conflict"));
    if (const std::string* def = common::ShippedDeploymentToml(versions.target); def != nullptr) {
      opts.target_default_text = *def;
    }
    // The file user store: disabled unless the source decides (merge_config carries its value).
    const bool source_decides = source["internal_apis"]["file_user_store"]["enable"].is_value();
    const bool disabled =
        target["internal_apis"]["file_user_store"]["enable"].value_or(true) == false;
    if (source_decides) {
      if (source["internal_apis"]["file_user_store"]["enable"].value_or(false)) {
        StepLog(ctx, LogLevel::kWarning,
                "the source keeps the file user store enabled beside its LDAP/JDBC user store; "
                "the WSO2 guides require [internal_apis.file_user_store] enable = false");
      }
    } else if (!disabled) {
      opts.overrides_toml = kFileUserStoreOverride;
    }
    ASSIGN_OR_RETURN(common::MergeResult merged,
                     common::MergeDeploymentToml(reduced, source_path, target_text, target_path,
                                                 opts));
    for (const std::string& w : merged.warnings) {
      StepLog(ctx, LogLevel::kWarning, common::RedactText(w));
    }
    int kept = 0;
    std::vector<mimic::v1::ConfigChange> reported;
    for (const mimic::v1::ConfigChange& c : merged.changes) {
      if (c.action() == "keep") {
        ++kept;
        continue;
      }
      mimic::v1::ConfigChange r = common::RedactConfigChange(c);
      if (r.file().empty()) r.set_file(target_path);
      if (r.key() == kFileUserStoreKey) {
        r.set_note(
            "the file user store is disabled: both WSO2 guides require it with an LDAP/JDBC "
            "user store");
      }
      reported.push_back(std::move(r));
    }
    const std::string what = jdbc ? "JDBC user store" : absl::StrCat("LDAP user store (", type, ")");
    ASSIGN_OR_RETURN(std::optional<FileOp> op,
                     MakePlannedWriteOp(ctx, target_path, merged.merged_text, 0644,
                                 absl::StrCat(what, " configuration from ", source_path)));
    if (!op) {
      plan.message = absl::StrCat(what, ": up to date (", Count(kept, "key"), " unchanged)");
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    plan.changes.ops.push_back(std::move(*op));
    plan.changes.config_changes = std::move(reported);
    plan.message = absl::StrCat(what, ": ", Count(plan.changes.config_changes.size(),
                                                  "config change"), ", ", Count(kept, "key"),
                                " unchanged");
    StepLog(ctx, LogLevel::kInfo, plan.message);
    for (const mimic::v1::ConfigChange& c : plan.changes.config_changes) {
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat(c.action(), " ", c.key(),
                           c.new_value().empty() ? "" : absl::StrCat(" = ", c.new_value()),
                           c.note().empty() ? "" : absl::StrCat(" (", c.note(), ")")));
    }
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewMigrateUserstoreConfigStep() {
  return std::make_unique<MigrateUserstoreConfigStep>();
}

}  // namespace mimic::agent
