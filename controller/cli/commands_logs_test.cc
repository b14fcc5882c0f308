// `mimic logs` against an audit holding text a host sent: step names, messages and file names
// with control characters are printed escaped, so none can forge a line of the output.
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "controller/audit/audit.h"
#include "controller/cli/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(CmdLogsTest, ControlCharactersAreEscaped) {
  char tmpl[] = "/tmp/mimic_logs_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string url = dir + "/audit.db";
  const std::string rollout = "R1";
  {
    auto audit = Audit::Open(url);
    ASSERT_TRUE(audit.ok()) << audit.status();
    ASSERT_TRUE((*audit)->BeginRollout({.id = rollout, .os_user = "alice"}).ok());
    ASSERT_TRUE((*audit)
                    ->RegisterRun("R1.h1", rollout, "h1", "prod", 0, mimic::v1::MODE_APPLY)
                    .ok());
    uint64_t seq = 0;
    auto event = [&](mimic::v1::Event e) {
      e.set_run_id("R1.h1");
      e.set_host("h1");
      e.set_seq(++seq);
      e.set_time_unix_micros(1700000000000000 + seq);
      ASSERT_TRUE((*audit)->AppendEvent(rollout, e).ok());
    };
    mimic::v1::Event started;
    started.mutable_run_started()->mutable_plan()->set_mode(mimic::v1::MODE_APPLY);
    started.mutable_run_started()->set_agent_version("0.1.0");
    event(started);
    const std::string evil_step = "copy\nFAILED step x";
    mimic::v1::Event ss;
    ss.mutable_step_started()->set_step(evil_step);
    event(ss);
    mimic::v1::Event log;
    log.mutable_log()->set_step(evil_step);
    log.mutable_log()->set_level(mimic::v1::LOG_INFO);
    log.mutable_log()->set_text("copied a\x1B[2K.car\r\nrun finished: ok");
    event(log);
    mimic::v1::Event sf;
    sf.mutable_step_finished()->set_step(evil_step);
    sf.mutable_step_finished()->set_status(mimic::v1::STEP_CHANGED);
    sf.mutable_step_finished()->set_message("1 file: x\n.car\ttab");
    event(sf);
    mimic::v1::Event fin;
    fin.mutable_run_finished()->set_status(mimic::v1::RUN_CHANGED);
    fin.mutable_run_finished()->set_message("done\x1B]0;title\x07");
    event(fin);
    ASSERT_TRUE((*audit)->Flush().ok());
  }
  CommandOptions o;
  o.audit_url = url;
  o.args = {rollout, "h1"};
  const std::string out_path = dir + "/out.txt";
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  ASSERT_NE(out, nullptr);
  absl::StatusOr<int> rc = CmdLogs(o, out);
  std::fclose(out);
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(*rc, 0);
  std::string text;
  {
    std::FILE* in = std::fopen(out_path.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0) text.append(buf, n);
    std::fclose(in);
  }
  EXPECT_THAT(text, HasSubstr("step copy\\nFAILED step x started"));
  EXPECT_THAT(text, HasSubstr("copied a\\x1B[2K.car\\r\\nrun finished: ok"));
  EXPECT_THAT(text, HasSubstr("1 file: x\\n.car\\ttab"));
  EXPECT_THAT(text, HasSubstr("done\\x1B]0;title\\x07"));
  EXPECT_THAT(text, Not(HasSubstr("\x1B")));
  EXPECT_THAT(text, Not(HasSubstr("\r")));
  // One line per event, each starting with its time: no line was forged.
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++lines;
    EXPECT_EQ(line.substr(0, 2), "20") << line;
  }
  EXPECT_EQ(lines, 5) << text;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mimic::controller
