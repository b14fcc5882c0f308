// The journal never loses a run, end to end: `mimic-agent local` with its state directory on a
// small tmpfs that fills at seeded points; a real agent over gRPC (mutual TLS, the client's
// default 4 MiB message limit, as the controller has it) running a plan with a 5 MiB value in
// deployment.toml and an exec step printing 50 MiB and bytes that are not UTF-8; a file name
// with a newline in local mode's text output.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/text.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mimic/v1/agent.grpc.pb.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;

struct Homes {
  std::string dir, source, target, state;
};

Homes Build(const std::string& prefix) {
  Homes h;
  h.dir = MakeTempDir(prefix);
  h.source = h.dir + "/mi/wso2mi-4.0.0";
  h.target = h.dir + "/mi/wso2mi-4.2.0";
  h.state = h.dir + "/state";
  MakeMiHome("4.0.0", h.source, "source", "p1");
  MakeMiHome("4.2.0", h.target, "target", "p1");
  EXPECT_TRUE(common::MakeDirs(h.state).ok());
  return h;
}

CommandResult Local(const Homes& h, const std::string& extra = "") {
  return RunCommand(ShellQuote(AgentBinary()) + " local --state-dir " + ShellQuote(h.state) + " " +
                    extra + " 2>&1");
}

std::string RunId(const std::string& output) {
  size_t p = output.find("run local-");
  if (p == std::string::npos) return "";
  size_t e = p + 4;
  while (e < output.size() && (isalnum(static_cast<unsigned char>(output[e])) || output[e] == '-' ||
                               output[e] == '.' || output[e] == '_')) {
    ++e;
  }
  return output.substr(p + 4, e - p - 4);
}

uint64_t DiskUsage(const std::string& dir) {
  CommandResult r = RunCommand("du -sb " + ShellQuote(dir));
  return std::stoull(r.output.substr(0, r.output.find('\t')));
}

// The state disk fills at seeded points of a local run: the run fails with a message naming the
// state dir, nothing half-journaled; with space freed its rollback restores the target exactly.
TEST(JournalE2eTest, LocalRunOnAFullStateDiskFailsCleanlyAndRollsBackExactly) {
  // How much state a whole run needs, on an ordinary disk.
  uint64_t needed = 0;
  {
    Homes h = Build("jref");
    CommandResult r = Local(h, "--source " + ShellQuote(h.source) + " --target " + ShellQuote(h.target));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    needed = DiskUsage(h.state);
  }
  const uint32_t seed = 20261130;
  std::mt19937 rng(seed);
  const size_t kDisk = ((needed + (1 << 20)) / 4096 + 1) * 4096;
  for (int trial = 0; trial < 5; ++trial) {
    Homes h = Build("jfull");
    const auto before = TreeHash(h.target);
    if (::mount("tmpfs", h.state.c_str(), "tmpfs", 0, absl::StrCat("size=", kDisk).c_str()) != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs on the state dir (" << std::strerror(errno)
                   << "): this test needs root or CAP_SYS_ADMIN";
    }
    const uint64_t free_bytes = (rng() % (needed / 4096)) * 4096;
    SCOPED_TRACE(absl::StrCat("seed ", seed, " trial ", trial, ": ", free_bytes, " of the ",
                              needed, " bytes a run needs are free"));
    const std::string filler = h.state + "/filler";
    RunCommand(absl::StrCat("dd if=/dev/zero of=", ShellQuote(filler), " bs=4096 count=",
                            (kDisk - free_bytes) / 4096, " 2>/dev/null"));
    CommandResult r =
        Local(h, "--source " + ShellQuote(h.source) + " --target " + ShellQuote(h.target));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr("FAILED")) << r.output;
    EXPECT_THAT(r.output, HasSubstr("No space left on device")) << r.output;
    const std::string id = RunId(r.output);
    ASSERT_FALSE(id.empty()) << r.output;
    ASSERT_EQ(::unlink(filler.c_str()), 0);
    // Restart (a new local process recovers the state dir) and roll the run back.
    CommandResult rb = Local(h, "--rollback " + id);
    if (rb.output.find("no run " + id) != std::string::npos) {
      // The journal failed on the run's very first record: then nothing was written.
      EXPECT_EQ(TreeHash(h.target), before) << r.output << rb.output;
    } else {
      EXPECT_EQ(rb.exit_code, 0) << r.output << rb.output;
      EXPECT_EQ(TreeHash(h.target), before) << r.output << rb.output;
    }
    EXPECT_THAT(rb.output, ::testing::Not(HasSubstr("DATA_LOSS")));
    EXPECT_THAT(rb.output, ::testing::Not(HasSubstr("bad checksum")));
    ::umount2(h.state.c_str(), MNT_DETACH);
  }
}

// A CApp whose name holds a newline and a fake status line: the text output escapes it.
TEST(JournalE2eTest, LocalTextOutputEscapesControlCharacters) {
  Homes h = Build("jname");
  const std::string fake = "x\nrun local-fake finished: RUN_OK ok\n  copy_carbonapps FAILED\x1B[2K.car";
  WriteText(h.source + "/repository/deployment/server/carbonapps/" + fake, "not really a car");
  CommandResult r = Local(h, "--check --source " + ShellQuote(h.source) + " --target " +
                                 ShellQuote(h.target));
  EXPECT_THAT(r.output, HasSubstr("x\\nrun local-fake finished: RUN_OK ok\\n  copy_carbonapps FAILED\\x1B[2K.car"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("\nrun local-fake")));
  EXPECT_EQ(r.output.find('\x1B'), std::string::npos);
}

class BigEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = Build("jbig");
    MakeCerts(h_.dir + "/certs", {"mi-1"});
  }
  std::shared_ptr<grpc::Channel> Channel(const AgentProcess& a) {
    auto creds = common::MakeChannelCredentials(h_.dir + "/certs/ca.pem",
                                                h_.dir + "/certs/controller.pem",
                                                h_.dir + "/certs/controller.key");
    EXPECT_TRUE(creds.ok());
    grpc::ChannelArguments args;  // default limits: 4 MiB per received message
    args.SetSslTargetNameOverride("mi-1");
    return grpc::CreateCustomChannel(a.address(), *creds, args);
  }
  Homes h_;
};

// A 5 MiB and a 50 MiB value in deployment.toml, an exec step printing 50 MiB on one line and
// bytes cut mid-character: every event reaches the client (the controller's limits), the run's
// result with it; Attach after an agent restart replays the same events from the journal.
TEST_F(BigEventsTest, HugeValuesAndOutputReachTheControllerBounded) {
  const std::string original = ReadText(h_.source + "/conf/deployment.toml");
  for (size_t mib : {5, 50}) {
    SCOPED_TRACE(absl::StrCat(mib, " MiB"));
    std::string toml = original;
    toml += absl::StrCat("\n[custom_big]\nvalue_", mib, " = \"", std::string(mib << 20, 'v'), "\"\n");
    WriteText(h_.source + "/conf/deployment.toml", toml);

    AgentProcess::Options o;
    o.name = "mi-1";
    o.certs_dir = h_.dir + "/certs";
    o.state_dir = h_.state + "/agent";
    o.allowed_roots = {h_.dir + "/mi"};
    o.allow_exec = true;
    AgentProcess agent(o);
    ASSERT_TRUE(agent.Start());
    auto stub = mimic::v1::Agent::NewStub(Channel(agent));
    mimic::v1::HostPlan p;
    p.set_run_id(absl::StrCat("big-", mib));
    p.set_rollout_id("r-big");
    p.set_host("mi-1");
    p.set_mode(mimic::v1::MODE_APPLY);
    p.set_source_home(h_.source);
    p.set_target_home(h_.target);
    p.set_migration_path("auto");
    for (const char* s : {"migrate_datamapper", "copy_keystores"}) {
      mimic::v1::StepSkip* skip = p.add_skips();  // the source needs them; not this test
      skip->set_step(s);
      skip->set_reason("journal test");
    }
    for (const char* s : {"preflight", "snapshot_target", "merge_config", "exec"}) {
      auto* step = p.add_steps();
      step->set_name(s);
      if (std::string(s) == "exec") {
        (*step->mutable_params())["command"] = absl::StrCat(
            "printf 'caf\\303\\n\\377end\\n'; head -c ", mib << 20, " /dev/zero | tr '\\0' o; echo");
      }
    }
    std::vector<mimic::v1::Event> live;
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
      mimic::v1::RunRequest req;
      *req.mutable_plan() = p;
      auto reader = stub->Run(&ctx, req);
      mimic::v1::Event e;
      while (reader->Read(&e)) live.push_back(e);
      grpc::Status st = reader->Finish();
      ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    }
    ASSERT_FALSE(live.empty());
    ASSERT_TRUE(live.back().has_run_finished());
    EXPECT_EQ(live.back().run_finished().status(), mimic::v1::RUN_CHANGED)
        << live.back().run_finished().message();
    bool truncated = false, repaired = false;
    for (size_t i = 0; i < live.size(); ++i) {
      EXPECT_EQ(live[i].seq(), i + 1);
      const std::string bytes = live[i].SerializeAsString();
      EXPECT_LE(bytes.size(), size_t{1} << 20);
      if (bytes.find("... [truncated: ") != std::string::npos) truncated = true;
      if (live[i].has_log() && live[i].log().text() == "caf\xEF\xBF\xBD") repaired = true;
    }
    EXPECT_TRUE(truncated);
    EXPECT_TRUE(repaired);
    // The target got the whole value: only events are bounded.
    EXPECT_THAT(ReadText(h_.target + "/conf/deployment.toml"), HasSubstr(std::string(mib << 20, 'v')));

    // Restart: the journal reads back and Attach replays the same events.
    agent.Kill(SIGTERM);
    ASSERT_TRUE(agent.Start());
    stub = mimic::v1::Agent::NewStub(Channel(agent));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    mimic::v1::AttachRequest req;
    req.set_run_id(p.run_id());
    req.set_from_seq(1);
    auto reader = stub->Attach(&ctx, req);
    std::vector<mimic::v1::Event> replayed;
    mimic::v1::Event e;
    while (reader->Read(&e)) replayed.push_back(e);
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_EQ(replayed.size(), live.size());
    for (size_t i = 0; i < live.size(); ++i) {
      EXPECT_EQ(replayed[i].SerializeAsString(), live[i].SerializeAsString()) << i;
    }
    agent.Kill(SIGTERM);
    // Next size: a fresh target.
    RunCommand("rm -rf " + ShellQuote(h_.target));
    MakeMiHome("4.2.0", h_.target, "target", "p1");
  }
}

}  // namespace
}  // namespace mimic::testing
