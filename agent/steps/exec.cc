// exec: the operator's own command, e.g. applying WSO2 Updates to the target ("Use WSO2 Updates
// to get the latest available updates", both guides). Params:
//
//   command          run with /bin/sh -c (required)
//   chdir            working directory (absolute, inside the allowed roots); default: target home
//   creates          a path: when it exists the command is not run (skipped)
//   removes          a path: when it does NOT exist the command is not run (skipped)
//   timeout_seconds  default 600; on expiry the command's process group gets SIGTERM, then
//                    SIGKILL 5 s later, and the step fails
//
// creates / removes may be relative to the working directory; like chdir they must pass the
// path guard. The command gets stdin from /dev/null, no file descriptor of the agent, and
// MIMIC_SOURCE_HOME / MIMIC_TARGET_HOME in its environment. Every line it prints is logged,
// redacted by common::RedactText.
//
// A command's effect cannot be written as a change set, so this step departs from the contract
// of step.h in one way: with ctx.check false, Plan() itself runs the command and returns an empty
// change set with forced_status STEP_CHANGED (or an error naming the exit code and the last
// output lines). Check mode NEVER runs it: it reports "would run: <command>" (changed) or the
// guard that skips it (skipped), so a check is exact whenever creates / removes decide.
// What the command does is OUTSIDE the run's snapshot: a rollback cannot undo it (logged as a
// warning each time).
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"

namespace mimic::agent {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxLoggedLines = 5000;  // the rest is counted, not logged
constexpr size_t kTailLines = 10;         // output lines quoted in a failure

// `p` made absolute against `cwd` and confined.
absl::StatusOr<std::string> GuardedPath(const StepContext& ctx, const std::string& param,
                                        const std::string& p, const std::string& cwd) {
  absl::StatusOr<std::string> r =
      ctx.guard->Resolve(p.front() == '/' ? p : common::JoinPath(cwd, p));
  if (!r.ok()) {
    return common::Annotate(r.status(), absl::StrCat("exec: ", param));
  }
  return r;
}

class ExecStep final : public Step {
 public:
  std::string name() const override { return "exec"; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(const std::string command, ctx.StringParam("command"));
    const std::string shown = common::RedactText(command);

    ASSIGN_OR_RETURN(const int64_t timeout, ctx.IntParam("timeout_seconds"));
    std::string cwd = homes.target;
    if (ctx.HasParam("chdir")) {
      ASSIGN_OR_RETURN(const std::string chdir, ctx.StringParam("chdir"));
      ASSIGN_OR_RETURN(cwd, GuardedPath(ctx, "chdir", chdir, cwd));
    }

    StepPlan plan;
    std::string skip;
    if (const std::string creates = ctx.Param("creates"); !creates.empty()) {
      ASSIGN_OR_RETURN(std::string p, GuardedPath(ctx, "creates", creates, cwd));
      if (common::PathExists(p)) skip = absl::StrCat("creates: ", p, " exists");
    }
    if (const std::string removes = ctx.Param("removes"); skip.empty() && !removes.empty()) {
      ASSIGN_OR_RETURN(std::string p, GuardedPath(ctx, "removes", removes, cwd));
      if (!common::PathExists(p)) skip = absl::StrCat("removes: ", p, " does not exist");
    }
    if (!skip.empty()) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = absl::StrCat("not run (", skip, "): ", shown);
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }

    constexpr char kOutsideSnapshot[] =
        "the command's effects are outside the run's snapshot: a rollback cannot undo them";
    if (ctx.check) {
      plan.forced_status = mimic::v1::STEP_CHANGED;
      plan.message = absl::StrCat("would run: ", shown, " (in ", cwd, ", timeout ", timeout, " s)");
      if (!common::IsDirectory(cwd))
        absl::StrAppend(&plan.message, "; ", cwd, " does not exist now");
      StepLog(ctx, LogLevel::kInfo, plan.message);
      StepLog(ctx, LogLevel::kWarning, kOutsideSnapshot);
      return plan;
    }

    if (!common::IsDirectory(cwd)) {
      return absl::FailedPreconditionError(
          absl::StrCat("exec: working directory ", cwd, " is not a directory"));
    }
    StepLog(ctx, LogLevel::kWarning, kOutsideSnapshot);
    StepLog(ctx, LogLevel::kInfo, absl::StrCat("running: ", shown, " (in ", cwd, ")"));
    size_t lines = 0, dropped = 0;
    auto on_line = [&](bool is_err, const std::string& line) {
      if (++lines > kMaxLoggedLines) {
        ++dropped;
        return;
      }
      StepLog(ctx, LogLevel::kInfo, is_err ? absl::StrCat("[stderr] ", line) : line);
    };
    const auto t0 = Clock::now();
    std::deque<std::string> tail_lines;  // the last kTailLines lines, redacted
    common::SubprocessOptions opts;
    opts.argv = {"/bin/sh", "-c", command};
    opts.env = {absl::StrCat("MIMIC_SOURCE_HOME=", homes.source),
                absl::StrCat("MIMIC_TARGET_HOME=", homes.target)};
    opts.cwd = cwd;
    opts.timeout = absl::Seconds(timeout);
    opts.cancel = ctx.cancel;  // a cancel or an agent stop ends the command's process group
    opts.stdout_limit = opts.stderr_limit = {0, false};  // lines are logged, not kept
    opts.on_line = [&](common::OutStream s, const std::string& line) {
      std::string red = common::RedactText(std::string(line));
      tail_lines.push_back(red);
      if (tail_lines.size() > kTailLines) tail_lines.pop_front();
      on_line(s == common::OutStream::kStderr, red);
    };
    ASSIGN_OR_RETURN(common::SubprocessResult r, common::RunSubprocess(opts));
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dropped > 0) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(dropped, " more output lines not logged (limit ", kMaxLoggedLines, ")"));
    }
    const std::string tail =
        tail_lines.empty()
            ? "no output"
            : absl::StrCat("last output: ", absl::StrJoin(tail_lines, " | "));
    if (r.cancelled) {
      return absl::CancelledError(absl::StrCat(
          "exec: cancelled; the command's process group was ended (SIGTERM, then SIGKILL): ",
          shown, "; ", tail));
    }
    if (r.timed_out) {
      return absl::DeadlineExceededError(
          absl::StrCat("exec: timed out after ", timeout, " s and killed: ", shown, "; ", tail));
    }
    if (r.signal != 0) {
      return absl::AbortedError(
          absl::StrCat("exec: killed by signal ", r.signal, ": ", shown, "; ", tail));
    }
    plan.facts["exec.exit_code"] = absl::StrCat(r.exit_code);
    if (r.exit_code != 0) {
      return absl::AbortedError(
          absl::StrCat("exec: exit code ", r.exit_code, ": ", shown, "; ", tail));
    }
    plan.forced_status = mimic::v1::STEP_CHANGED;
    plan.message = absl::StrFormat("ran: %s (exit code 0 in %.1f s)", shown, secs);
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewExecStep() { return std::make_unique<ExecStep>(); }

}  // namespace mimic::agent
