// `mimic-agent local`: one host, no controller. The same RunManager, steps, journal and
// snapshot as the daemon; events printed as text or one JSON object per line.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/engine/executor.h"
#include "agent/engine/run_manager.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/base/ids.h"
#include "common/base/text.h"
#include "common/config/plan.h"

namespace mimic::agent {
namespace {

// The generated name's word, FAILED in capitals so it stands out; "?" when unknown.
std::string StatusName(mimic::v1::StepStatus s) {
  if (s == mimic::v1::STEP_FAILED) return "FAILED";
  const std::string word = common::EnumWord(mimic::v1::StepStatus_Name(s), "STEP_");
  return word.empty() ? "?" : word;
}

// Agent text on one line: a newline in a file name cannot print a line of its own.
std::string Safe(const std::string& s) { return common::EscapeControl(s); }

void PrintText(const mimic::v1::Event& e) {
  if (e.has_run_started()) {
    std::printf("run %s started (%s)\n", e.run_id().c_str(),
                mimic::v1::Mode_Name(e.run_started().plan().mode()).c_str());
  } else if (e.has_step_started()) {
    std::printf("  %-24s ...\n", Safe(e.step_started().step()).c_str());
  } else if (e.has_log()) {
    std::printf("    %s\n", Safe(e.log().text()).c_str());
  } else if (e.has_step_finished()) {
    const auto& f = e.step_finished();
    std::printf("  %-24s %-8s %s\n", Safe(f.step()).c_str(), StatusName(f.status()).c_str(),
                Safe(f.message()).c_str());
    for (const auto& c : f.changes()) {
      std::printf("      %-7s %s\n", mimic::v1::Action_Name(c.action()).substr(7).c_str(),
                  Safe(c.path()).c_str());
      std::fputs(common::IndentLines(c.diff(), "        ").c_str(), stdout);  // --diff
    }
    for (const auto& c : f.config_changes()) {
      std::printf("      %-7s %s = %s\n", Safe(c.action()).c_str(), Safe(c.key()).c_str(),
                  Safe(c.new_value()).c_str());
    }
  } else if (e.has_run_finished()) {
    std::printf("run %s finished: %s %s\n", e.run_id().c_str(),
                mimic::v1::RunStatus_Name(e.run_finished().status()).c_str(),
                Safe(e.run_finished().message()).c_str());
  }
}

}  // namespace

int LocalMain(int argc, char** argv) {
  std::string source, target, plan_path, rollback, state_dir = "/var/lib/mimic-agent/local";
  bool check = false, json = false, force = false, diff = false;
  std::vector<std::string> extra_roots;  // --root: more trees the steps may read (jars, backups)
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--source") ok = next(&source);
    else if (a == "--target") ok = next(&target);
    else if (a == "--plan") ok = next(&plan_path);
    else if (a == "--rollback") ok = next(&rollback);
    else if (a == "--state-dir") ok = next(&state_dir);
    else if (a == "--root") {
      std::string r;
      ok = next(&r);
      if (ok) extra_roots.push_back(r);
    }
    else if (a == "--check") check = true;
    else if (a == "--json") json = true;
    else if (a == "--force") force = true;
    else if (a == "--diff") diff = true;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "mimic-agent local: bad argument '%s' (see mimic-agent --help)\n",
                   a.c_str());
      return 1;
    }
  }
  mimic::v1::HostPlan plan;
  plan.set_run_id(absl::StrCat("local-", common::FormatTimeMicros(common::NowMicros()).substr(0, 19),
                               "-", common::RandomHex(6)));
  for (char& c : *plan.mutable_run_id()) if (c == ':') c = '-';
  plan.set_host(common::Hostname());
  plan.set_operator_(common::OsUser());
  std::vector<std::string> roots;
  if (!rollback.empty()) {
    plan.set_mode(mimic::v1::MODE_ROLLBACK);
    plan.set_rollback_run_id(rollback);
    plan.set_force(force);
    roots.push_back("/");
  } else {
    if (source.empty() || target.empty()) {
      std::fprintf(stderr, "mimic-agent local: --source and --target are required\n");
      return 1;
    }
    plan.set_mode(check ? mimic::v1::MODE_CHECK : mimic::v1::MODE_APPLY);
    plan.set_source_home(source);
    plan.set_target_home(target);
    plan.set_migration_path("auto");
    roots = {source, target};
    roots.insert(roots.end(), extra_roots.begin(), extra_roots.end());
    if (!plan_path.empty()) {
      auto p = common::LoadPlan(plan_path, KnownSteps());
      if (!p.ok()) {
        std::fprintf(stderr, "mimic-agent local: %s\n", std::string(p.status().message()).c_str());
        return 1;
      }
      if (absl::Status st = common::CheckPlanCoversPath(*p); !st.ok()) {
        std::fprintf(stderr, "mimic-agent local: %s\n", std::string(st.message()).c_str());
        return 1;
      }
      plan.set_migration_path(p->migration_path);
      plan.set_plan_sha256(p->sha256);
      for (const auto& s : p->steps) {
        auto* spec = plan.add_steps();
        spec->set_name(s.name);
        for (const auto& [k, v] : s.params) (*spec->mutable_params())[k] = v;
        spec->set_params_toml(s.params_toml);
      }
      for (const common::StepSkip& s : p->skips) {
        auto* skip = plan.add_skips();
        skip->set_step(s.step);
        skip->set_reason(s.reason);
      }
    } else {
      // The detected path's default list: every catalogue step but those that need the
      // operator's input or act outside files (database credentials, the operator's command,
      // starting the target): give those with --plan.
      for (const std::string& name : KnownSteps()) {
        if (name != "exec" && name != "verify" && name != "backup_databases" &&
            name != "migrate_userstore_db") {
          plan.add_steps()->set_name(name);
        }
      }
    }
  }
  if (check && !rollback.empty()) plan.set_rollback_check(true);
  plan.set_diffs(diff);
  Executor executor(1);
  // Local mode is the operator at the host's own shell: their plan may run their commands.
  RunManagerOptions run_options;
  run_options.state_dir = state_dir;
  run_options.allowed_roots = roots;
  run_options.allow_exec = true;
  run_options.make_step = &MakeStep;
  run_options.known_steps = KnownSteps();
  RunManager runs(std::move(run_options), &executor);
  if (absl::Status st = runs.Recover(); !st.ok()) {
    std::fprintf(stderr, "mimic-agent local: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  bool existed = false;
  auto run = runs.StartOrGet(plan, &existed);
  if (!run.ok()) {
    std::fprintf(stderr, "mimic-agent local: %s\n", std::string(run.status().message()).c_str());
    return 1;
  }
  runs.WaitFinished(*run);
  std::vector<mimic::v1::Event> events;
  bool finished = false;
  (*run)->Events(1, SIZE_MAX, &events, &finished);
  mimic::v1::RunStatus status = mimic::v1::RUN_FAILED;
  for (const auto& e : events) {
    if (json) {
      std::string line;
      google::protobuf::util::JsonPrintOptions o;
      o.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(e, &line, o);
      std::printf("%s\n", line.c_str());
    } else {
      PrintText(e);
    }
    if (e.has_run_finished()) status = e.run_finished().status();
  }
  if (json) {
    std::printf("{\"summary\":{\"run_id\":\"%s\",\"status\":\"%s\",\"events\":%zu}}\n",
                (*run)->run_id().c_str(), mimic::v1::RunStatus_Name(status).c_str(),
                events.size());
  }
  return (status == mimic::v1::RUN_OK || status == mimic::v1::RUN_CHANGED) ? 0 : 2;
}

}  // namespace mimic::agent
