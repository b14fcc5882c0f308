// The `mimic` sub-commands. Each returns the process exit code (0 ok, 2 a host failed or the
// rollout stopped) or a non-OK status for bad input (exit 1), its message naming file, line, key.
#ifndef MIMIC_CONTROLLER_CLI_COMMANDS_H_
#define MIMIC_CONTROLLER_CLI_COMMANDS_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::controller {

struct CommandOptions {
  std::string inventory_path = "inventory.toml";
  std::string plan_path;
  std::string audit_url;
  std::string limit;
  std::string stage;
  std::string format = "text";  // report: json
  std::string output = "text";  // run: text | json
  bool check = false;
  bool force = false;
  std::string out_file;  // -o: report / inventory import output
  int port = 7443;       // inventory import: agent port when a host has none
  bool inventory_set = false;  // --inventory was given (cancel: else the rollout's own)
  std::string host;            // audit: only this host's runs
  std::string since;           // audit: ISO date/time (UTC unless an offset is given) or "24h"
  std::string status;          // audit: only runs with this status
  std::string group;           // inventory import: only this group
  std::vector<std::string> args;  // positional arguments after the command
};

absl::StatusOr<int> CmdRun(const CommandOptions& o, std::FILE* out);
absl::StatusOr<int> CmdResume(const CommandOptions& o, std::FILE* out);
absl::StatusOr<int> CmdRollback(const CommandOptions& o, std::FILE* out);
absl::StatusOr<int> CmdStatus(const CommandOptions& o, std::FILE* out);
absl::StatusOr<int> CmdReport(const CommandOptions& o, std::FILE* out);
// `mimic approve ROLLOUT [--stage NAME]`: records the operator's approval of the stage waiting
// at its gate (the first one waiting, when no stage is named).
absl::StatusOr<int> CmdApprove(const CommandOptions& o, std::FILE* out);
// `mimic inventory import hosts.ini|hosts.yml [--port N] [-o inventory.toml]`.
absl::StatusOr<int> CmdInventory(const CommandOptions& o, std::FILE* out);
// `mimic inventory list [--limit PATTERN] [--output text|json]`: the selected hosts, one per line
// (JSON: {"schema_version":1,"hosts":[{"name","address","environment","groups"}...]}).
absl::StatusOr<int> CmdInventoryList(const CommandOptions& o, std::FILE* out);
// `mimic inventory graph`: environments, then groups (children nested), with their hosts.
absl::StatusOr<int> CmdInventoryGraph(const CommandOptions& o, std::FILE* out);
absl::StatusOr<int> CmdFacts(const CommandOptions& o, std::FILE* out);
// `mimic audit verify ROLLOUT`: 0 when the hash chain is intact, 2 when a row was edited or
// deleted.
absl::StatusOr<int> CmdAudit(const CommandOptions& o, std::FILE* out);

// controller/commands_audit.cc:
// `mimic audit [--host H] [--since T] [--status S]`: every run across rollouts (oldest first):
// time, rollout, host, stage, mode, status, message.
absl::StatusOr<int> CmdAuditList(const CommandOptions& o, std::FILE* out);
// `mimic logs ROLLOUT HOST [STEP]`: the host's log lines and step results, with their times.
absl::StatusOr<int> CmdLogs(const CommandOptions& o, std::FILE* out);
// `mimic cancel ROLLOUT`: asks each agent to cancel the rollout's runs that are not finished
// and prints each answer; exit 2 when an agent could not be asked.
absl::StatusOr<int> CmdCancel(const CommandOptions& o, std::FILE* out);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_CLI_COMMANDS_H_
