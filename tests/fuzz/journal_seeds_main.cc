// Writes seed journals for fuzz_journal into DIR: a run's worth of events as the agent journals
// them (started, step results with file changes and log lines, finished), one per file.
#include <cstdio>
#include <string>

#include "agent/engine/journal.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_journal_seeds DIR\n");
    return 1;
  }
  const std::string dir = argv[1];
  for (int n = 1; n <= 3; ++n) {
    auto journal = mimic::agent::Journal::Open(dir + "/journal-" + std::to_string(n));
    if (!journal.ok()) {
      std::fprintf(stderr, "%s\n", std::string(journal.status().message()).c_str());
      return 1;
    }
    for (int i = 0; i < n * 4; ++i) {
      mimic::v1::Event e;
      e.set_run_id("r-seed");
      e.set_seq(i + 1);
      if (i % 2 == 0) {
        e.mutable_log()->set_step("copy_carbonapps");
        e.mutable_log()->set_text("copied repository/deployment/server/carbonapps/a.car");
      } else {
        auto* s = e.mutable_step_finished();
        s->set_step("copy_carbonapps");
        s->set_index(i);
        s->set_message("1 file");
        auto* c = s->add_changes();
        c->set_path("/opt/wso2mi-4.2.0/repository/deployment/server/carbonapps/a.car");
      }
      if (absl::Status st = (*journal)->Append(e); !st.ok()) return 1;
    }
  }
  return 0;
}
