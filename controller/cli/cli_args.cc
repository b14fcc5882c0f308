#include "controller/cli/cli_args.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/config/controller_config.h"

namespace mimic::controller {
namespace {

struct FlagSpec {
  const char* name;
  const char* value;  // "" for a switch
  const char* help;
};

// Every flag once; a command lists the names it takes.
const std::vector<FlagSpec>& Flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"--inventory", "FILE",
       "hosts, groups, TLS files, state dir and audit (default:\n"
       "$MIMIC_INVENTORY, the settings file's inventory, else inventory.toml)"},
      {"--plan", "FILE", "migration path, steps, stages"},
      {"--check", "", "dry run: every host reports the exact changes; nothing is written"},
      {"--diff", "",
       "show a unified diff of every text file changed (or, with --check, that\n"
       "would change), secrets redacted; kept in the audit and the reports"},
      {"-v", "", "more output: the steps' info log lines"},
      {"-vv", "", "even more: debug log lines and every file changed, listed"},
      {"--stage", "NAME", "only this stage (approve: the stage to approve)"},
      {"--limit", "PATTERN",
       "hosts as Ansible patterns: all, host/group/environment names,\n"
       "globs (mi-prod-*), ~regex, !exclude, &intersect, lists with , or :,\n"
       "@file (one per line, e.g. a .retry file)"},
      {"--output", "text|json", "output format (default text, or the settings file's output)"},
      {"--audit", "URL",
       "sqlite:PATH, PATH or postgresql://user:pass@host:port/db (default:\n"
       "$MIMIC_AUDIT, the settings file's audit, the inventory's [audit] url,\n"
       "else <state_dir>/audit.db)"},
      {"--force", "",
       "resume with a changed plan; run --stage past the digest rule\n"
       "(recorded); rollback files changed since the run"},
      {"--format", "json|junit|html", "report format"},
      {"-o", "FILE", "write to FILE (never overwrites an existing file)"},
      {"--host", "H", "only runs on host H"},
      {"--since", "T",
       "only runs since T: an ISO date/time (2026-11-21T08:00:00Z)\n"
       "or a duration back from now (90m, 24h, 7d)"},
      {"--status", "S",
       "only runs with status S: pending, running, ok, changed, failed, cancelled,\n"
       "interrupted, unreachable, refused"},
      {"--port", "N", "agent port for hosts without mimic_agent_port (default 7443)"},
      {"--group", "G", "only the hosts of group G (and of its child groups)"},
      {"--rollout", "R", "only rollout R (its rows, chain and ledger entries)"},
      {"--against", "FILE",
       "also check the audit still extends a head written by `mimic audit export`"},
      {"--public-key", "FILE",
       "with --against: check the head's Ed25519 signature with this public key\n"
       "alone (the head key's .pub file); no audit or signing key needed"},
      {"--signing-key", "FILE",
       "the audit's signing key (default: the inventory's [audit] signing_key, else\n"
       "audit.key next to a SQLite audit, <state_dir>/audit.key for PostgreSQL)"},
      {"--help", "", "this help"},
  };
  return kFlags;
}

const FlagSpec* FindFlag(const std::string& name) {
  for (const FlagSpec& f : Flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"run",
       "--plan plan.toml [--inventory FILE] [--check] [--diff] [--stage NAME]\n"
       "          [--limit PATTERN] [--output text|json] [--audit URL] [--force] [-v|-vv]",
       "Rolls the plan out over the inventory's hosts, stage by stage, in batches, within the\n"
       "failure budgets and approval gates of the plan. --check is an exact dry run. When a host\n"
       "fails or is unreachable, a retry file names those hosts and the recap prints the commands\n"
       "that resume, rerun or roll them back.",
       {"--plan", "--inventory", "--check", "--diff", "--stage", "--limit", "--output", "--audit",
        "--force", "-v", "-vv"}},
      {"resume",
       "ROLLOUT [--inventory FILE] [--plan FILE] [--audit URL] [--output text|json] [--force]\n"
       "          [--diff] [-v|-vv]",
       "Finishes a rollout that stopped (a failure, a budget, a gate, a crash) inside the scope it\n"
       "started with: the same stage, limit and hosts. A changed plan is refused without --force.\n"
       "--limit and --stage, when given, must equal the rollout's own (widening needs a new run).",
       {"--inventory", "--plan", "--limit", "--stage", "--audit", "--output", "--force", "--diff",
        "-v", "-vv"}},
      {"rollback",
       "ROLLOUT [--inventory FILE] [--limit PATTERN] [--check] [--diff] [--force]\n"
       "          [--audit URL] [--output text|json] [-v|-vv]",
       "Restores every host of the rollout (or those --limit selects, inside its scope) to the\n"
       "bytes, owners and modes its snapshot holds. A file changed since the run is refused\n"
       "without --force. --check says what would be restored and writes nothing (every line\n"
       "says so); --diff shows each text file's diff back to the snapshot's bytes.",
       {"--inventory", "--limit", "--check", "--diff", "--force", "--audit", "--output", "-v",
        "-vv"}},
      {"approve", "ROLLOUT [--stage NAME] [--inventory FILE] [--audit URL]",
       "Records the operator's approval of the stage waiting at its gate (the first one waiting\n"
       "when no stage is named).",
       {"--stage", "--inventory", "--audit"}},
      {"status", "[ROLLOUT] [--inventory FILE | --audit URL] [--output text|json]",
       "Without ROLLOUT: the latest rollouts. With it: its stages, batches and every host's runs\n"
       "(--output json: the report's JSON document).",
       {"--inventory", "--audit", "--output"}},
      {"report", "ROLLOUT --format json|junit|html [-o FILE] [--inventory FILE | --audit URL]",
       "A rollout's report from the audit.", {"--format", "-o", "--inventory", "--audit"}},
      {"audit",
       "[--host H] [--since T] [--status S] [--inventory FILE | --audit URL] [--output text|json]",
       "Every run across rollouts, oldest first: time, rollout, host, stage, mode, status.",
       {"--host", "--since", "--status", "--inventory", "--audit", "--output"}},
      {"audit verify",
       "[ROLLOUT | --rollout R] [--against FILE] [--inventory FILE | --audit URL]\n"
       "          [--signing-key FILE] | --against FILE --public-key FILE",
       "Checks the signed ledger, every rollout's hash chain and every table the reports read:\n"
       "exit 0 intact, 2 when something was edited, added or deleted (the first finding is\n"
       "named), 1 when it cannot be checked (no key, another key, a bad head file).\n"
       "With --public-key: checks only the exported head's Ed25519 signature, with the public\n"
       "key alone (an auditor's check): exit 0 genuine, 2 forged, edited or another key's.",
       {"--rollout", "--against", "--public-key", "--inventory", "--audit", "--signing-key"}},
      {"audit export", "[-o FILE] [--inventory FILE | --audit URL] [--signing-key FILE]",
       "Writes the ledger head (count, time, key ids, HMAC, Ed25519 signature) for an auditor\n"
       "to keep elsewhere; `audit verify --against FILE` later proves nothing was cut off\n"
       "since, and `--public-key` checks the head with the head key's public key alone. The\n"
       "head key (audit-head.key beside the signing key, 0600) is made on the first export;\n"
       "its public key is audit-head.key.pub, and its id is recorded in the audit.",
       {"-o", "--inventory", "--audit", "--signing-key"}},
      {"logs", "ROLLOUT HOST [STEP] [--inventory FILE | --audit URL]",
       "The host's log lines and step results in the rollout, with their times.",
       {"--inventory", "--audit"}},
      {"cancel", "ROLLOUT [--inventory FILE] [--audit URL]",
       "Asks each agent to cancel the rollout's unfinished runs; exit 2 when one cannot be asked.",
       {"--inventory", "--audit"}},
      {"facts", "[--inventory FILE] [--limit PATTERN] [--output text|json]",
       "Asks each agent what it found: agent version, Java, disk, MI homes and their versions.",
       {"--inventory", "--limit", "--output"}},
      {"inventory import", "hosts.ini|hosts.yml|list.json [--group G] [--port N] [-o FILE]",
       "Turns an Ansible inventory (INI, YAML, or the JSON of `ansible-inventory --list`) into a\n"
       "mimic inventory: groups, children, vars, ansible_host, mimic_agent_port,\n"
       "mimic_environment, mimic_tls_server_name. The header lists what was left out.",
       {"--group", "--port", "-o"}},
      {"inventory list", "[--inventory FILE] [--limit PATTERN] [--output text|json]",
       "The hosts a pattern selects, one per line (like ansible --list-hosts).",
       {"--inventory", "--limit", "--output"}},
      {"plan new", "[--inventory FILE] [--limit PATTERN] [-o plan.toml]",
       "Asks the agents for their facts and writes a complete, commented plan for what they\n"
       "found: the path, every step the path and the homes' features need, in order.",
       {"--inventory", "--limit", "-o"}},
      {"inventory graph", "[--inventory FILE]",
       "The inventory's environments, groups and hosts as a tree (like ansible-inventory --graph).",
       {"--inventory"}},
  };
  return kCommands;
}

std::string CommandHelp(const CommandSpec& c) {
  std::string out = absl::StrCat("usage: mimic ", c.name, " ", c.synopsis, "\n\n", c.summary,
                                 "\n\nflags:\n");
  std::vector<std::string> names = c.flags;
  names.push_back("--help");
  for (const std::string& n : names) {
    const FlagSpec* f = FindFlag(n);
    std::string left = absl::StrCat("  ", f->name, *f->value ? " " : "", f->value);
    std::string help = f->help;
    std::string indent(22, ' ');
    size_t pos = 0;
    while ((pos = help.find('\n', pos)) != std::string::npos) {
      help.replace(pos, 1, "\n" + indent);
      pos += indent.size() + 1;
    }
    if (left.size() < indent.size()) {
      absl::StrAppend(&out, left, std::string(indent.size() - left.size(), ' '), help, "\n");
    } else {
      absl::StrAppend(&out, left, "\n", indent, help, "\n");
    }
  }
  return out;
}

std::string Usage() {
  std::string out = "mimic - migrate fleets of WSO2 Micro Integrator servers\n\nusage:\n";
  for (const CommandSpec& c : Commands()) {
    absl::StrAppend(&out, "  mimic ", c.name, " ", c.synopsis, "\n");
  }
  absl::StrAppend(
      &out,
      "  mimic --version\n\n"
      "`mimic COMMAND --help` explains a command and its flags.\n\n"
      "environment:\n"
      "  MIMIC_INVENTORY   default for --inventory\n"
      "  MIMIC_AUDIT       default for --audit\n"
      "  MIMIC_CONFIG      the settings file (else ./mimic.toml, ~/.mimic.toml,\n"
      "                    /etc/mimic/mimic.toml): inventory = ..., audit = ..., output = ...\n"
      "  MIMIC_LOG_LEVEL   info (default), warning or error: mimic's own log lines on\n"
      "                    stderr (the agents' step log lines are -v and -vv)\n\n"
      "exit codes: 0 every host succeeded, 2 a host failed or the rollout stopped at a failure\n"
      "budget, 1 bad input or a local configuration error (the message names file, line and\n"
      "key).\n");
  return out;
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(
    const std::vector<std::string>& args, const std::function<const char*(const char*)>& getenv) {
  ParsedCommandLine p;
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      (args[0] == "help" && args.size() == 1)) {
    p.help = true;
    return p;
  }
  if (args[0] == "--version" || args[0] == "version") {
    p.version = true;
    return p;
  }
  size_t i = 0;
  bool help_form = false;
  if (args[0] == "help") {  // mimic help COMMAND [SUBCOMMAND]
    help_form = true;
    i = 1;
  }
  // The longest command name that the words spell: "audit verify" before "audit".
  for (const CommandSpec& c : Commands()) {
    if (c.name.find(' ') == std::string::npos) continue;
    if (i + 1 < args.size() && c.name == args[i] + " " + args[i + 1]) p.command = &c;
  }
  if (p.command == nullptr) {
    for (const CommandSpec& c : Commands()) {
      if (c.name == args[i]) p.command = &c;
    }
  }
  if (p.command == nullptr) {
    std::vector<std::string> sub;
    for (const CommandSpec& c : Commands()) {
      if (c.name.rfind(args[i] + " ", 0) == 0) sub.push_back(c.name.substr(args[i].size() + 1));
    }
    if (!sub.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mimic ", args[i], " needs one of: ", absl::StrJoin(sub, ", "), " (see mimic ", args[i],
          " ", sub[0], " --help)"));
    }
    std::vector<std::string> names;
    for (const CommandSpec& c : Commands()) {
      if (c.name.find(' ') == std::string::npos) names.push_back(c.name);
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", args[i],
                                                   "' (commands: ", absl::StrJoin(names, ", "),
                                                   "; see mimic --help)"));
  }
  i += p.command->name.find(' ') == std::string::npos ? 1 : 2;
  if (help_form) {
    p.help = true;
    return p;
  }
  CommandOptions& o = p.options;
  bool output_set = false, audit_set = false;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      p.help = true;
      return p;
    }
    if (a.size() < 2 || a[0] != '-') {
      o.args.push_back(a);
      continue;
    }
    std::string name = a, inline_value;
    bool has_inline = false;
    if (size_t eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
      has_inline = true;
    }
    const FlagSpec* f = FindFlag(name);
    bool takes = f != nullptr && std::find(p.command->flags.begin(), p.command->flags.end(),
                                           name) != p.command->flags.end();
    if (!takes) {
      return absl::InvalidArgumentError(absl::StrCat(
          p.command->name, ": ", f == nullptr ? "unknown flag " : "", name,
          f == nullptr ? "" : " is not a flag of this command", " (its flags: ",
          absl::StrJoin(p.command->flags, " "), "; see mimic ", p.command->name, " --help)"));
    }
    std::string value;
    if (*f->value) {
      if (has_inline) {
        value = inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(p.command->name, ": ", name, " needs a value (", f->value, ")"));
      }
    } else if (has_inline) {
      return absl::InvalidArgumentError(
          absl::StrCat(p.command->name, ": ", name, " takes no value"));
    }
    if (name == "--inventory") {
      o.inventory_path = value;
      o.inventory_set = true;
    } else if (name == "--plan") o.plan_path = value;
    else if (name == "--audit") {
      o.audit_url = value;
      audit_set = true;
    } else if (name == "--limit") o.limit = value;
    else if (name == "--stage") o.stage = value;
    else if (name == "--format") o.format = value;
    else if (name == "--output") {
      o.output = value;
      output_set = true;
    } else if (name == "-o") o.out_file = value;
    else if (name == "--host") o.host = value;
    else if (name == "--since") o.since = value;
    else if (name == "--status") o.status = value;
    else if (name == "--group") o.group = value;
    else if (name == "--rollout") o.rollout = value;
    else if (name == "--against") o.against = value;
    else if (name == "--signing-key") o.signing_key = value;
    else if (name == "--public-key") o.public_key = value;
    else if (name == "--check") o.check = true;
    else if (name == "--diff") o.diff = true;
    else if (name == "-v") o.verbosity = std::max(o.verbosity, 1);
    else if (name == "-vv") o.verbosity = 2;
    else if (name == "--force") o.force = true;
    else if (name == "--port") {
      char* end = nullptr;
      long port = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || port < 1 || port > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat(p.command->name, ": --port '", value, "' must be 1..65535"));
      }
      o.port = static_cast<int>(port);
    }
  }
  // Defaults from the environment, then the settings file, for what the flags left unset.
  ASSIGN_OR_RETURN(common::ControllerConfig settings, common::FindControllerConfig(getenv));
  if (!o.inventory_set) {
    if (const char* env = getenv("MIMIC_INVENTORY"); env && *env) {
      o.inventory_path = env;
      o.inventory_set = true;
    } else if (!settings.inventory.empty()) {
      o.inventory_path = settings.inventory;
      o.inventory_set = true;
    }
  }
  if (!audit_set) {
    if (const char* env = getenv("MIMIC_AUDIT"); env && *env) {
      o.audit_url = env;
    } else if (!settings.audit.empty()) {
      o.audit_url = settings.audit;
    }
  }
  if (!output_set && !settings.output.empty()) o.output = settings.output;
  if (o.output != "text" && o.output != "json") {
    return absl::InvalidArgumentError(absl::StrCat(p.command->name, ": --output '",
                                                   o.output, "': use text or json"));
  }
  return p;
}

}  // namespace mimic::controller
