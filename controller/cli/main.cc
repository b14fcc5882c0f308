// mimic: the controller. argv -> ParseCommandLine (controller/cli/cli_args.h) -> one command ->
// exit code.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "controller/cli/cli_args.h"
#include "controller/cli/commands.h"
#include "controller/cli/commands_plan.h"
#include "mimic/version.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  // Debian's Abseil is built with lock-order checking on: every lock of every absl::Mutex
  // (gRPC's and mimic's) updated a graph of lock orders, 2-3 % of the controller's CPU at
  // 2,000 hosts. The tests keep it (their own main).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using namespace mimic::controller;
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<ParsedCommandLine> parsed = ParseCommandLine(args, ::getenv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "mimic: %s\n", std::string(parsed.status().message()).c_str());
    return 1;
  }
  if (parsed->help) {
    // Bare `mimic` is a mistake (usage on stderr, exit 1); asking for help is not.
    std::string text = parsed->command ? CommandHelp(*parsed->command) : Usage();
    std::fputs(text.c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 1 : 0;
  }
  if (parsed->version) {
    std::printf("mimic %s (commit %s)\n", MIMIC_VERSION, MIMIC_GIT_COMMIT);
    return 0;
  }
  CommandOptions o = parsed->options;
  const std::string& cmd = parsed->command->name;
  absl::StatusOr<int> rc;
  if (cmd == "run") rc = CmdRun(o, stdout);
  else if (cmd == "resume") rc = CmdResume(o, stdout);
  else if (cmd == "rollback") rc = CmdRollback(o, stdout);
  else if (cmd == "status") rc = CmdStatus(o, stdout);
  else if (cmd == "report") rc = CmdReport(o, stdout);
  else if (cmd == "audit verify") {
    o.args.insert(o.args.begin(), "verify");
    rc = CmdAuditVerify(o, stdout);
  } else if (cmd == "audit export") {
    o.args.insert(o.args.begin(), "export");
    rc = CmdAuditExport(o, stdout);
  } else if (cmd == "audit") rc = CmdAuditList(o, stdout);
  else if (cmd == "logs") rc = CmdLogs(o, stdout);
  else if (cmd == "cancel") rc = CmdCancel(o, stdout);
  else if (cmd == "approve") rc = CmdApprove(o, stdout);
  else if (cmd == "inventory import") {
    o.args.insert(o.args.begin(), "import");
    rc = CmdInventory(o, stdout);
  } else if (cmd == "inventory list") rc = CmdInventoryList(o, stdout);
  else if (cmd == "inventory graph") rc = CmdInventoryGraph(o, stdout);
  else if (cmd == "facts") rc = CmdFacts(o, stdout);
  else if (cmd == "plan new") {
    o.args.insert(o.args.begin(), "new");
    rc = CmdPlan(o, stdout);
  }
  else {
    std::fprintf(stderr, "mimic: command '%s' has no handler\n", cmd.c_str());
    return 1;
  }
  if (!rc.ok()) {
    std::fprintf(stderr, "mimic: %s\n", std::string(rc.status().message()).c_str());
    return 1;
  }
  return *rc;
}
