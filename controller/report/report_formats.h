// The other formats of `mimic report ROLLOUT --format junit|html` (JSON lives in report.h).
//
// JUnit XML (Jenkins junit/xunit, GitLab `artifacts:reports:junit`): one <testsuite> per run,
// named "<stage>/<host>" (a host with several runs in one stage, e.g. apply then rollback, gets
// " [<mode> <run_id>]" added), one <testcase> per step (classname "mimic.<stage>.<host>", time
// in seconds), <failure> for a failed step with its message and log lines, <skipped/> for a
// skipped step, and a testcase "run" with <error> for what went wrong outside the steps: no
// events from the agent (unreachable, refused, not started) or a failed, cancelled or
// interrupted run with no failed step. Suites carry the run's facts as <properties>.
//
// HTML: one self-contained page (inline CSS, no script, no external reference at all): the
// rollout's header, a timeline of stages and batches, a grid of runs x steps coloured by status
// with a legend, every failure with its log, and the file and config changes of each run.
//
// Both call Audit::Flush() first, read only what the audit holds (already redacted) and escape
// every text; invalid UTF-8 and characters XML forbids become U+FFFD. NOT_FOUND for an unknown
// rollout; database errors as is.
#ifndef MIMIC_CONTROLLER_REPORT_REPORT_FORMATS_H_
#define MIMIC_CONTROLLER_REPORT_REPORT_FORMATS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/text.h"
#include "controller/audit/audit.h"

namespace mimic::controller {

absl::StatusOr<std::string> ReportJunit(Audit& audit, const std::string& rollout_id);
absl::StatusOr<std::string> ReportHtml(Audit& audit, const std::string& rollout_id);

// `s` escaped for XML and HTML (common/base/text.h).
using ::mimic::common::XmlEscape;

// Helpers the formats share. The runs (all of the rollout's, or `runs`) by the stage's position
// in the plan, batch, host, then creation; true once the rollout ended (finished, or a status
// other than running/waiting).
std::vector<RunRecord> RunsInPlanOrder(const RolloutDetail& detail);
std::vector<RunRecord> RunsInPlanOrder(const RolloutDetail& detail,
                                       const std::vector<RunRecord>& runs);
bool RolloutEnded(const RolloutRecord& rollout);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_REPORT_REPORT_FORMATS_H_
