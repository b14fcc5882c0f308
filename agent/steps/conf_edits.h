// What the operator changed outside conf/deployment.toml, carried by merge_config: the start
// scripts (bin/micro-integrator.sh, bin/wso2server.sh when present, bin/yajsw/wrapper.conf: heap,
// -D properties, JAVA_OPTS), conf/log4j2.properties and every other file under conf/.
//
// Each source file is compared by sha256 with the file the source's MI version ships
// (common/mi/shipped_defaults.h):
//   - unchanged: nothing to do;
//   - edited, and the version has no template for it: three-way merge (common/base/text_diff.h
//     Merge3; base = the source version's shipped file, theirs = the source's, ours = the
//     target's as earlier steps leave it). A clean merge that differs from the target's file is
//     one write; a conflict fails the whole plan with every conflicting region's lines (nothing
//     is written);
//   - MI regenerates it at start from deployment.toml (a template in the version's table or in
//     the source's repository/resources/conf/templates/): never carried (an edit is lost at start
//     anyway; its setting belongs in deployment.toml, which merge_config carries); listed;
//   - not shipped by the version (added by the operator): created in the target when absent there
//     (the source's permission bits); left, and listed, when the target holds other bytes.
// conf/deployment.toml (merge_config's own merge) and conf/security/secret-conf.properties
// (copy_keystores carries it) are not looked at. A target file named in `keep_target` keeps its
// bytes: its edits are listed, a conflict does not fail. Every text logged or returned has
// passed common::RedactText.
#ifndef MIMIC_AGENT_STEPS_CONF_EDITS_H_
#define MIMIC_AGENT_STEPS_CONF_EDITS_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/engine/step.h"
#include "agent/steps/file_steps.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

struct ConfEdits {
  std::vector<FileOp> ops;  // one write per target file whose bytes change
  // One per write: file = the target path, key = the MI_HOME-relative path, action "merge"
  // (operator edits merged into the target's file) or "add" (operator's file created).
  std::vector<mimic::v1::ConfigChange> changes;
  // "path: why" for each edited or added file that is not carried (logged as warnings).
  std::vector<std::string> not_carried;
  // MI_HOME-relative paths of files that differ from the shipped ones but that MI regenerates
  // from deployment.toml at start.
  std::vector<std::string> regenerated;
  int edited = 0;     // source files that differ from what their version ships
  int unchanged = 0;  // source files equal to what their version ships
};

// Plans the carry described above for `homes` (MI versions `versions`), reading the target's
// files through ReadPlanned. `keep_target`: MI_HOME-relative paths whose target file stays as it
// is. FAILED_PRECONDITION naming each conflicting file and its lines (base, source, target) when
// a merge conflicts; the guard's error for a path outside the roots. A source version mimic has
// no table for is not an error: the result says so in `not_carried` and carries nothing.
absl::StatusOr<ConfEdits> PlanConfEdits(const StepContext& ctx, const Homes& homes,
                                        const Versions& versions,
                                        const std::set<std::string>& keep_target = {});

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_CONF_EDITS_H_
