// The merge_config core: carries an old MI's conf/deployment.toml into a new MI's, key by key,
// with the version rules between MI 1.2.0, 4.0.0 and 4.2.0 applied, the target's comments and
// layout kept, and every source key accounted for in a redacted change list.
#ifndef MIMIC_COMMON_MI_TOML_MERGE_H_
#define MIMIC_COMMON_MI_TOML_MERGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::common {

struct MergeOptions {
  // Source and target MI versions: 1.2.0 -> 4.0.0, 4.0.0 -> 4.2.0, or 1.2.0 -> 4.2.0 (both rule
  // sets, in order). Any other pair is INVALID_ARGUMENT.
  std::string from_version;
  std::string to_version;
  // What happens when the target already holds a different value that the operator changed
  // (see target_default_text): "source" (the old MI's value wins), "target" (the target's value is
  // kept; the source key is reported "drop"), "fail" (FAILED_PRECONDITION naming the key).
  std::string conflict = "source";
  // Optional TOML from the plan, overlaid on the source after the version rules (the same rules
  // are applied to it). Its keys always win, whatever `conflict` says.
  std::string overrides_toml;
  // Optional: the target version's shipped default deployment.toml. A target value that differs
  // from it was changed by the operator, so a different source value is a conflict. Without it,
  // every differing target value counts as a conflict.
  std::string target_default_text;
  // 1.2.0 sources only. The source's WSO2 update level (updates/config.json "update-level";
  // "" when none) and the first level whose server reads [keystore.primary]: WSO2's update of
  // 2020-09-17 made MI 1.2.0 read [keystore.primary] (a path) instead of [keystore.tls] (a bare
  // file name). That update predates WSO2 Updates 2.0 (October 2020), whose levels start at 1
  // and are reached only through the last WUM update, so every Updates 2.0 level holds it: the
  // default is 1. Below it (or without a level: a pack never updated with Updates 2.0 is assumed
  // not to have it) [keystore.tls] is what the server read and becomes [keystore.primary]; at or
  // above it [keystore.tls] was ignored and is not carried. Notes and warnings say which and why.
  std::string source_update_level;
  int64_t keystore_primary_update_level = 1;
  // 1.2.0 sources only: the target holds repository/resources/security/wso2carbon.jks. MI 1.2.0
  // fixed its internal keystore to wso2carbon.jks; 4.x makes it follow [keystore.primary]. With
  // a custom primary keystore and no [keystore.internal], the merge then adds [keystore.internal]
  // = wso2carbon.jks with 1.2.0's fixed alias and passwords (without it: a warning saying what
  // to do).
  bool target_has_wso2carbon_jks = false;
};

struct MergeResult {
  std::string merged_text;
  // One entry per source (and override) key, in source order, actions "add", "change", "keep",
  // "rename", "drop" (not carried: no equivalent, or the target's value kept), plus "remove" for
  // keys of the target's [[array]] blocks replaced by the source's. Secret values are
  // kRedacted with redacted = true. Keys inside arrays of tables read "datasource[0].url".
  std::vector<mimic::v1::ConfigChange> changes;
  std::vector<std::string> warnings;  // human-readable, never holding secret values
};

// Merges `source_text` (the old MI's deployment.toml, called `source_name` in messages) into
// `target_text` (the new MI's, `target_name`) by editing the target's text in place:
//  * a changed key gets the source's value text (formatting and quoting kept); a missing key is
//    inserted after the last key of its table; a missing table is appended at the end, preceded by
//    the comments directly above it in the source;
//  * an array of tables ([[datasource]], [[internal_apis.users]], ...) is one unit: appended when
//    the target has none, kept when equal, replaced or kept per `conflict` when different;
//  * inline tables and arrays of values are leaf values.
// The result is re-parsed and every value the merge decided is verified; a mismatch is INTERNAL
// and no text is returned. Merging the same source into the result again yields the same text
// and only "keep" (and "drop") changes.
// Errors: INVALID_ARGUMENT for unparsable input ("NAME:LINE:COL: message") or bad options;
// FAILED_PRECONDITION for a conflict with conflict = "fail".
absl::StatusOr<MergeResult> MergeDeploymentToml(const std::string& source_text,
                                                const std::string& source_name,
                                                const std::string& target_text,
                                                const std::string& target_name,
                                                const MergeOptions& opts);

// A config change safe to report: old/new values through RedactValue(key, value) and
// RedactText ("" stays ""), `redacted` set when that hid anything, the note through RedactText.
mimic::v1::ConfigChange RedactConfigChange(mimic::v1::ConfigChange c);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_TOML_MERGE_H_
