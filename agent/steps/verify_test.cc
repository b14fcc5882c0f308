// The verify step on generated MI homes (fixtures: steps_test_fixture.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::conf_homes {
namespace {

TEST_F(VerifyTest, HealthyServerIsOkAndStopped) {
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message << "\n" << Logs();
  EXPECT_THAT(plan.message, HasSubstr(absl::StrCat("127.0.0.1:", port_, "/healthz")));
  EXPECT_THAT(plan.message, HasSubstr("ready"));
}

TEST_F(VerifyTest, FaultyCappsFail) {
  Write(dst_ / "FAULTY", "");
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_FAILED) << plan.message;
  EXPECT_THAT(plan.message, HasSubstr("bad.car"));
}

TEST_F(VerifyTest, LogLineCountsWhenProbeNeverAnswers) {
  Write(dst_ / "NOPROBE", "");
  // Grace 0: the start-up line is the event the step waits for; no 10 s of probe silence.
  StepPlan plan = Verify({{"probe_grace_seconds", "0"}});
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message;
  EXPECT_THAT(plan.message, HasSubstr("WSO2 Micro Integrator started"));
  EXPECT_THAT(plan.message, HasSubstr("never answered ready"));
}

TEST_F(VerifyTest, NegativeProbeGraceIsRefusedNamingTheParam) {
  absl::StatusOr<StepPlan> plan = PlanStep("verify", {{"probe_grace_seconds", "-1"}}, false);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("probe_grace_seconds"));
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid")) << "nothing may start on bad input";
}

TEST_F(VerifyTest, CheckModeNeverStarts) {
  absl::StatusOr<StepPlan> plan = PlanStep("verify");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("verify runs only in apply mode"));
  EXPECT_THAT(plan->message, HasSubstr(absl::StrCat(":", port_, "/healthz")));
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid"));
  EXPECT_FALSE(fs::exists(dst_ / "repository/logs/wso2carbon.log"));

  plan = PlanStep("verify", {{"probe_port", "12345"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->message, HasSubstr("127.0.0.1:12345/healthz"));
}

// A server already on the target's probe port (the source MI on the same offset) would answer
// /healthz for the target: verify refuses to start anything.
TEST_F(VerifyTest, RefusesWhileSomethingListensOnTheTargetsPorts) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  absl::StatusOr<StepPlan> plan = PlanStep("verify", {{"start_timeout_seconds", "30"}}, false);
  ::close(fd);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(plan.status().message(),
              HasSubstr(absl::StrCat("port ", port_, " (internal HTTP API and /healthz)")));
  EXPECT_THAT(plan.status().message(), HasSubstr("refusing to start the target"));
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid")) << "nothing may start";
}

TEST_F(VerifyTest, AnotherVersionAnsweringFails) {
  Write(dst_ / "VERSION", "4.0.0");
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_FAILED) << plan.message;
  EXPECT_THAT(plan.message,
              HasSubstr("answered ready for MI version \"4.0.0\", not the target's 4.2.0"));
}

TEST_F(VerifyTest, LiveArtifactsRefusedUnlessAllowed) {
  Write(dst_ / "repository/deployment/server/synapse-configs/default/tasks/PollOrders.xml",
        "<task name=\"PollOrders\"/>");
  Write(dst_ / "repository/deployment/server/synapse-configs/default/inbound-endpoints/Jms.xml",
        "<inboundEndpoint name=\"Jms\"/>");
  for (bool check : {true, false}) {
    absl::StatusOr<StepPlan> refused =
        PlanStep("verify", {{"start_timeout_seconds", "30"}}, check);
    ASSERT_FALSE(refused.ok());
    EXPECT_THAT(refused.status().message(), HasSubstr("tasks/PollOrders.xml"));
    EXPECT_THAT(refused.status().message(), HasSubstr("inbound-endpoints/Jms.xml"));
    EXPECT_THAT(refused.status().message(), HasSubstr("allow_live_start"));
    EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid"));
  }
  StepPlan plan = Verify({{"allow_live_start", "true"}});
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message;
  EXPECT_THAT(Logs(), HasSubstr("(allow_live_start = true)"));
}

// The agent runs as root here: the server runs as the owner of the target home.
TEST_F(VerifyTest, RunsAsTheOwnerOfTheTargetHome) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  for (fs::path p = dst_; p != root_.parent_path(); p = p.parent_path()) {
    fs::permissions(p, fs::perms::others_exec | fs::perms::others_read, fs::perm_options::add);
  }
  for (const auto& e : fs::recursive_directory_iterator(dst_)) {
    ASSERT_EQ(::lchown(e.path().c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  }
  ASSERT_EQ(::lchown(dst_.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message << "\n" << Logs();
  EXPECT_EQ(Read(dst_ / "repository/logs/started-by-uid"), absl::StrCat(nobody->pw_uid, "\n"));
  EXPECT_THAT(Logs(), HasSubstr(absl::StrCat("as nobody (uid ", nobody->pw_uid, ")")));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::conf_homes
