// The `mimic` sub-commands. Each returns the process exit code (0 ok, 2 a host failed or the
// rollout stopped) or a non-OK status for bad input (exit 1), its message naming file, line, key.
#ifndef MIMIC_CONTROLLER_CLI_COMMANDS_H_
#define MIMIC_CONTROLLER_CLI_COMMANDS_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::controller {

class Audit;

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
  bool diff = false;   // --diff: unified diffs of the files changed
  int verbosity = 0;   // -v 1, -vv 2
  std::string out_file;  // -o: report / inventory import output
  int port = 7443;       // inventory import: agent port when a host has none
  bool inventory_set = false;  // --inventory was given (cancel: else the rollout's own)
  std::string host;            // audit: only this host's runs
  std::string since;           // audit: ISO date/time (UTC unless an offset is given) or "24h"
  std::string status;          // audit: only runs with this status
  std::string group;           // inventory import: only this group
  std::string rollout;         // audit verify: only this rollout
  std::string against;         // audit verify: an exported head file to check against
  std::string signing_key;     // the audit's signing key file (default: see AuditOptions)
  std::string public_key;      // audit verify: the head key's public key (PEM) to check with
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
// controller/commands_audit.cc:
// The audit of --audit URL or of the inventory, with the signing key of --signing-key, the
// inventory's [audit] signing_key, or the default place.
absl::StatusOr<std::unique_ptr<Audit>> OpenAuditFor(const CommandOptions& o);
// `mimic audit verify [ROLLOUT | --rollout R] [--against FILE]`: 0 when the ledger, every
// rollout's chain and every table agree (and the audit extends the exported head), 2 when
// something was edited, added or deleted (the first finding is named), 1 when it cannot be
// checked (no key, another key, unknown rollout, a bad head file).
// `mimic audit verify --against FILE --public-key PEM`: only the head's Ed25519 signature,
// with the public key alone (no audit, no signing key): 0 genuine, 2 forged, edited or signed
// by another key, 1 when a file cannot be read or is not a head or a public key.
absl::StatusOr<int> CmdAuditVerify(const CommandOptions& o, std::FILE* out);
// `mimic audit export [-o FILE]`: the signed ledger head (to stdout, or FILE).
absl::StatusOr<int> CmdAuditExport(const CommandOptions& o, std::FILE* out);
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
