// mimic: the controller. Flags -> CommandOptions -> one command -> exit code.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "controller/cli/commands.h"
#include "controller/cli/commands_plan.h"

namespace {

constexpr char kUsage[] = R"(mimic - migrate fleets of WSO2 Micro Integrator servers

usage:
  mimic run --inventory inventory.toml --plan plan.toml [--check] [--stage NAME]
            [--limit HOSTS] [--output text|json] [--audit URL]
  mimic resume ROLLOUT [--inventory inventory.toml] [--force]
  mimic rollback ROLLOUT [--inventory inventory.toml] [--limit HOSTS] [--check] [--force]
  mimic approve ROLLOUT [--stage NAME] [--inventory inventory.toml]
  mimic status [ROLLOUT] [--inventory inventory.toml | --audit URL]
  mimic report ROLLOUT --format json|junit|html [-o FILE] [--inventory inventory.toml | --audit URL]
  mimic audit verify ROLLOUT [--inventory inventory.toml | --audit URL]
  mimic audit [--host H] [--since T] [--status S] [--inventory inventory.toml | --audit URL]
  mimic logs ROLLOUT HOST [STEP] [--inventory inventory.toml | --audit URL]
  mimic cancel ROLLOUT [--inventory inventory.toml] [--audit URL]
  mimic facts [--inventory inventory.toml] [--limit HOSTS]
  mimic plan new [--inventory inventory.toml] [--limit HOSTS] [-o plan.toml]
  mimic inventory import hosts.ini|hosts.yml [--port N] [-o inventory.toml]

  --inventory FILE  hosts, groups, TLS files, state dir and audit (default inventory.toml)
  --plan FILE       migration path, steps, stages
  --check           dry run: every host reports the exact changes; nothing is written
  --limit HOSTS     comma-separated host, group or environment names
  --stage NAME      run only this stage
  --audit URL       sqlite:PATH, PATH or postgresql://user:pass@host:port/db (default: the
                    inventory's [audit] url, else <state_dir>/audit.db)
  --force           resume with a changed plan; run --stage past the digest rule (recorded);
                    rollback files changed since the run
  --host H          audit: only runs on host H
  --since T         audit: runs since T, an ISO date/time (2026-11-21, 2026-11-21T08:00:00Z)
                    or a duration back from now (90m, 24h, 7d)
  --status S        audit: only runs with status S (ok, changed, failed, cancelled, ...)

exit codes: 0 every host succeeded, 2 a host failed or the rollout stopped at a failure
budget, 1 bad input (the message names file, line and key).
)";

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  std::string cmd = argv[1];
  mimic::controller::CommandOptions o;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mimic: %s needs a value\n", a.c_str());
        return false;
      }
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--inventory") ok = o.inventory_set = value(&o.inventory_path);
    else if (a == "--plan") ok = value(&o.plan_path);
    else if (a == "--audit") ok = value(&o.audit_url);
    else if (a == "--limit") ok = value(&o.limit);
    else if (a == "--stage") ok = value(&o.stage);
    else if (a == "--format") ok = value(&o.format);
    else if (a == "--output") ok = value(&o.output);
    else if (a == "-o") ok = value(&o.out_file);
    else if (a == "--host") ok = value(&o.host);
    else if (a == "--since") ok = value(&o.since);
    else if (a == "--status") ok = value(&o.status);
    else if (a == "--port") {
      std::string p;
      ok = value(&p);
      o.port = ok ? std::atoi(p.c_str()) : 0;
      if (ok && (o.port < 1 || o.port > 65535)) {
        std::fprintf(stderr, "mimic: --port must be 1..65535\n");
        return 1;
      }
    }
    else if (a == "--check") o.check = true;
    else if (a == "--force") o.force = true;
    else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "mimic: unknown flag %s (see mimic --help)\n", a.c_str());
      return 1;
    } else {
      o.args.push_back(a);
    }
    if (!ok) return 1;
  }
  if (o.output != "text" && o.output != "json") {
    std::fprintf(stderr, "mimic: --output must be text or json\n");
    return 1;
  }
  absl::StatusOr<int> rc;
  if (cmd == "run") rc = mimic::controller::CmdRun(o, stdout);
  else if (cmd == "resume") rc = mimic::controller::CmdResume(o, stdout);
  else if (cmd == "rollback") rc = mimic::controller::CmdRollback(o, stdout);
  else if (cmd == "status") rc = mimic::controller::CmdStatus(o, stdout);
  else if (cmd == "report") rc = mimic::controller::CmdReport(o, stdout);
  else if (cmd == "audit" && !o.args.empty() && o.args[0] == "verify")
    rc = mimic::controller::CmdAudit(o, stdout);
  else if (cmd == "audit") rc = mimic::controller::CmdAuditList(o, stdout);
  else if (cmd == "logs") rc = mimic::controller::CmdLogs(o, stdout);
  else if (cmd == "cancel") rc = mimic::controller::CmdCancel(o, stdout);
  else if (cmd == "approve") rc = mimic::controller::CmdApprove(o, stdout);
  else if (cmd == "inventory") rc = mimic::controller::CmdInventory(o, stdout);
  else if (cmd == "facts") rc = mimic::controller::CmdFacts(o, stdout);
  else if (cmd == "plan") rc = mimic::controller::CmdPlan(o, stdout);
  else {
    std::fprintf(stderr, "mimic: unknown command '%s' (see mimic --help)\n", cmd.c_str());
    return 1;
  }
  if (!rc.ok()) {
    std::fprintf(stderr, "mimic: %s\n", std::string(rc.status().message()).c_str());
    return 1;
  }
  return *rc;
}
