// One real mimic-agent process spoken to directly over gRPC with mutual TLS: health, facts,
// Attach replay without gaps, one run per MI home, an agent restart in the middle of a run.
#include <signal.h>

#include <chrono>

#include <grpcpp/grpcpp.h>

#include "common/base/fs.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "mimic/v1/agent.grpc.pb.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;

// Built once: certificates and pristine source/target homes, copied for each test.
std::string* g_pristine = nullptr;

class AgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_pristine = new std::string(MakeTempDir("pristine"));
    MakeCerts(*g_pristine + "/certs", {"mi-1"});
    MakeMiHome("4.0.0", *g_pristine + "/mi/wso2mi-4.0.0", "source", "mi-1");
    MakeMiHome("4.2.0", *g_pristine + "/mi/wso2mi-4.2.0", "target", "mi-1");
  }

  void SetUp() override {
    dir_ = MakeTempDir("agent");
    CommandResult r = RunCommand("cp -a " + ShellQuote(*g_pristine + "/certs") + " " +
                                 ShellQuote(*g_pristine + "/mi") + " " + ShellQuote(dir_));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // `hold_step` >= 0: the testing agent, holding every run before that step (see
  // AgentProcess::WaitReached/Release).
  std::unique_ptr<AgentProcess> StartAgent(int hold_step = -1) {
    AgentProcess::Options o;
    o.name = "mi-1";
    o.certs_dir = dir_ + "/certs";
    o.state_dir = dir_ + "/state";
    o.allowed_roots = {dir_ + "/mi"};
    if (hold_step >= 0) {
      o.gate = true;
      o.hold_steps = {hold_step};
    }
    auto a = std::make_unique<AgentProcess>(o);
    EXPECT_TRUE(a->Start());
    return a;
  }

  std::shared_ptr<grpc::Channel> Channel(const AgentProcess& a) {
    auto creds = common::MakeChannelCredentials(dir_ + "/certs/ca.pem", dir_ + "/certs/controller.pem",
                                                dir_ + "/certs/controller.key");
    EXPECT_TRUE(creds.ok());
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("mi-1");
    return grpc::CreateCustomChannel(a.address(), *creds, args);
  }

  mimic::v1::HostPlan Plan(const std::string& run_id) {
    mimic::v1::HostPlan p;
    p.set_run_id(run_id);
    p.set_rollout_id("r-test");
    p.set_host("mi-1");
    p.set_mode(mimic::v1::MODE_APPLY);
    p.set_source_home(dir_ + "/mi/wso2mi-4.0.0");
    p.set_target_home(dir_ + "/mi/wso2mi-4.2.0");
    p.set_migration_path("auto");
    for (const char* s : {"preflight", "snapshot_target", "copy_carbonapps", "copy_deployment",
                          "copy_custom_components", "copy_keystores", "merge_config"}) {
      p.add_steps()->set_name(s);
    }
    // The source has a Data Mapper CApp; these tests are about the agent, not the rewrite.
    mimic::v1::StepSkip* skip = p.add_skips();
    skip->set_step("migrate_datamapper");
    skip->set_reason("agent tests");
    return p;
  }

  // Reads a server stream to its end (bounded by a deadline).
  static std::vector<mimic::v1::Event> Drain(grpc::ClientReaderInterface<mimic::v1::Event>* r,
                                             grpc::Status* st) {
    std::vector<mimic::v1::Event> out;
    mimic::v1::Event e;
    while (r->Read(&e)) out.push_back(e);
    *st = r->Finish();
    return out;
  }

  static void ExpectContiguous(const std::vector<mimic::v1::Event>& ev, uint64_t from) {
    for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].seq(), from + i);
  }

  std::string dir_;
};

TEST_F(AgentTest, HealthFactsAndAttachReplayEveryEventOnce) {
  auto agent = StartAgent();
  auto ch = Channel(*agent);

  auto health = grpc::health::v1::Health::NewStub(ch);
  for (const char* service : {"", "mimic.v1.Agent"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }

  auto stub = mimic::v1::Agent::NewStub(ch);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    mimic::v1::Facts facts;
    ASSERT_TRUE(stub->GetFacts(&ctx, mimic::v1::GetFactsRequest(), &facts).ok());
    // The version the binary says it is (mimic-agent --version: "mimic-agent V (commit C)").
    CommandResult v = RunCommand(ShellQuote(AgentBinary()) + " --version");
    ASSERT_EQ(v.exit_code, 0) << v.output;
    EXPECT_EQ(absl::StrCat("mimic-agent ", facts.agent_version(), " (commit"),
              v.output.substr(0, v.output.find(" (commit") + 8))
        << v.output;
    std::map<std::string, std::string> homes;
    for (const auto& h : facts.mi_homes()) homes[h.path()] = h.version();
    EXPECT_EQ(homes[dir_ + "/mi/wso2mi-4.0.0"], "4.0.0");
    EXPECT_EQ(homes[dir_ + "/mi/wso2mi-4.2.0"], "4.2.0");
    EXPECT_GT(facts.disk_free_bytes(), 0u);
  }

  std::vector<mimic::v1::Event> live;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    mimic::v1::RunRequest req;
    *req.mutable_plan() = Plan("run-1");
    grpc::Status st;
    live = Drain(stub->Run(&ctx, req).get(), &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  ASSERT_GE(live.size(), 16u);
  ExpectContiguous(live, 1);
  EXPECT_TRUE(live.front().has_run_started());
  ASSERT_TRUE(live.back().has_run_finished());
  EXPECT_EQ(live.back().run_finished().status(), mimic::v1::RUN_CHANGED);

  // Attach from the middle returns exactly the rest; Run with the same id replays, never reruns.
  for (uint64_t from : {uint64_t{1}, uint64_t{5}, live.back().seq()}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    mimic::v1::AttachRequest req;
    req.set_run_id("run-1");
    req.set_from_seq(from);
    grpc::Status st;
    auto ev = Drain(stub->Attach(&ctx, req).get(), &st);
    ASSERT_TRUE(st.ok());
    ASSERT_EQ(ev.size(), live.size() - from + 1);
    ExpectContiguous(ev, from);
    for (size_t i = 0; i < ev.size(); ++i) {
      EXPECT_EQ(ev[i].SerializeAsString(), live[from - 1 + i].SerializeAsString());
    }
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    mimic::v1::RunRequest req;
    *req.mutable_plan() = Plan("run-1");
    req.set_from_seq(3);
    grpc::Status st;
    auto ev = Drain(stub->Run(&ctx, req).get(), &st);
    ASSERT_TRUE(st.ok());
    ASSERT_EQ(ev.size(), live.size() - 2);
    EXPECT_EQ(ev.back().SerializeAsString(), live.back().SerializeAsString());
  }
  {
    grpc::ClientContext ctx;
    mimic::v1::AttachRequest req;
    req.set_run_id("no-such-run");
    grpc::Status st;
    Drain(stub->Attach(&ctx, req).get(), &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(AgentTest, OneRunPerHomeAndARestartReportsInterrupted) {
  auto before = TreeHash(dir_ + "/mi/wso2mi-4.2.0");
  // The run is held before step 3 (copy_deployment): steps 0-2 have run, copy_carbonapps wrote.
  constexpr int kHeldAt = 3;
  auto agent = StartAgent(kHeldAt);
  auto stub = mimic::v1::Agent::NewStub(Channel(*agent));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  mimic::v1::RunRequest req;
  *req.mutable_plan() = Plan("run-slow");
  auto reader = stub->Run(&ctx, req);
  mimic::v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_TRUE(e.has_run_started());
  ASSERT_EQ(agent->WaitReached(kHeldAt), "run-slow");
  // Everything the run streamed before the gate: copy_carbonapps finished, having written.
  bool copied = false;
  while (!copied && reader->Read(&e)) {
    ASSERT_FALSE(e.has_run_finished());
    copied = e.has_step_finished() && e.step_finished().step() == "copy_carbonapps";
  }
  ASSERT_TRUE(copied);
  EXPECT_EQ(e.step_finished().status(), mimic::v1::STEP_CHANGED);
  EXPECT_NE(TreeHash(dir_ + "/mi/wso2mi-4.2.0"), before);

  // A second run on the same MI home is refused while the first holds it.
  {
    grpc::ClientContext c2;
    c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    mimic::v1::RunRequest r2;
    *r2.mutable_plan() = Plan("run-other");
    grpc::Status st;
    Drain(stub->Run(&c2, r2).get(), &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(st.error_message(), HasSubstr("run-slow"));
  }

  // The agent dies while the run is held before step 3, and comes back (no gate this time).
  agent->Kill(SIGKILL);
  ctx.TryCancel();
  reader->Finish();
  agent = StartAgent();
  stub = mimic::v1::Agent::NewStub(Channel(*agent));
  grpc::ClientContext c3;
  c3.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  mimic::v1::AttachRequest a;
  a.set_run_id("run-slow");
  grpc::Status st;
  auto ev = Drain(stub->Attach(&c3, a).get(), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(ev.empty());
  ExpectContiguous(ev, 1);
  ASSERT_TRUE(ev.back().has_run_finished());
  EXPECT_EQ(ev.back().run_finished().status(), mimic::v1::RUN_INTERRUPTED);
  // Exactly the steps before the gate finished; the held step never started.
  std::vector<int> finished;
  for (const auto& x : ev) {
    if (x.has_step_finished()) finished.push_back(x.step_finished().index());
    if (x.has_step_started()) {
      EXPECT_LT(x.step_started().index(), kHeldAt);
    }
  }
  EXPECT_THAT(finished, ::testing::ElementsAre(0, 1, 2));

  // The lock died with the process: a new run may start, and a rollback of the cut run
  // restores what it had written.
  grpc::ClientContext c4;
  c4.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  mimic::v1::RunRequest rb;
  rb.mutable_plan()->set_run_id("run-slow-rollback");
  rb.mutable_plan()->set_host("mi-1");
  rb.mutable_plan()->set_mode(mimic::v1::MODE_ROLLBACK);
  rb.mutable_plan()->set_rollback_run_id("run-slow");
  auto rev = Drain(stub->Run(&c4, rb).get(), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(rev.empty());
  ASSERT_TRUE(rev.back().has_run_finished());
  EXPECT_EQ(rev.back().run_finished().status(), mimic::v1::RUN_CHANGED)
      << rev.back().run_finished().message();
  EXPECT_EQ(TreeHash(dir_ + "/mi/wso2mi-4.2.0"), before);
}

// A cancel that arrives while step 2 is about to start (the run held there) stops the run
// before step 2: steps 0 and 1 finished, step 2 never started, the run is cancelled.
TEST_F(AgentTest, CancelStopsTheRunBeforeItsNextStep) {
  constexpr int kHeldAt = 2;
  auto agent = StartAgent(kHeldAt);
  auto stub = mimic::v1::Agent::NewStub(Channel(*agent));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  mimic::v1::RunRequest req;
  *req.mutable_plan() = Plan("run-cancel");
  auto reader = stub->Run(&ctx, req);
  ASSERT_EQ(agent->WaitReached(kHeldAt), "run-cancel");
  {
    grpc::ClientContext c2;
    c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    mimic::v1::CancelRequest cr;
    cr.set_run_id("run-cancel");
    mimic::v1::CancelResponse resp;
    ASSERT_TRUE(stub->Cancel(&c2, cr, &resp).ok());
    EXPECT_TRUE(resp.accepted());
    EXPECT_EQ(resp.state(), "cancelling");
  }
  agent->Release(kHeldAt);
  std::vector<mimic::v1::Event> events;
  mimic::v1::Event e;
  while (reader->Read(&e)) events.push_back(e);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_run_finished());
  EXPECT_EQ(events.back().run_finished().status(), mimic::v1::RUN_CANCELLED);
  std::vector<std::string> started, finished;
  for (const auto& ev : events) {
    if (ev.has_step_started()) started.push_back(ev.step_started().step());
    if (ev.has_step_finished()) finished.push_back(ev.step_finished().step());
  }
  EXPECT_THAT(started, ::testing::ElementsAre("preflight", "snapshot_target"));
  EXPECT_THAT(finished, ::testing::ElementsAre("preflight", "snapshot_target"));
  // A cancel of a finished run is answered, not accepted.
  grpc::ClientContext c3;
  c3.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  mimic::v1::CancelRequest cr;
  cr.set_run_id("run-cancel");
  mimic::v1::CancelResponse resp;
  ASSERT_TRUE(stub->Cancel(&c3, cr, &resp).ok());
  EXPECT_EQ(resp.state(), "finished");
}

// A refused plan's message quotes what was wrong with it: a secret value of the plan (here an
// operator pasted the database password into the wrong parameter) is scrubbed before the
// refusal is logged by the agent or sent back to the controller.
TEST_F(AgentTest, RefusalsNeitherLogNorReturnThePlansSecrets) {
  constexpr char kSecret[] = "Rf8-refused-Pw-0c3e";
  auto agent = StartAgent();
  auto stub = mimic::v1::Agent::NewStub(Channel(*agent));
  mimic::v1::RunRequest req;
  *req.mutable_plan() = Plan("run-refused");
  (*req.mutable_plan()->mutable_vars())["db_password"] = kSecret;
  for (mimic::v1::StepSpec& s : *req.mutable_plan()->mutable_steps()) {
    if (s.name() == "merge_config") (*s.mutable_params())["conflict"] = kSecret;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Status st;
  Drain(stub->Run(&ctx, req).get(), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("param conflict = \"<redacted>\""));
  EXPECT_THAT(st.error_message(), ::testing::Not(HasSubstr(kSecret)));
  agent->Kill(SIGTERM);  // its log is complete
  absl::StatusOr<std::string> log = common::ReadFile(agent->log_path());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, HasSubstr("run run-refused refused"));
  EXPECT_THAT(*log, ::testing::Not(HasSubstr(kSecret)));
}

}  // namespace
}  // namespace mimic::testing

namespace mimic::testing {
namespace {

TEST(LocalModeTest, CheckApplyRerunAndRollbackWithoutAController) {
  std::string dir = MakeTempDir("local");
  MakeMiHome("4.0.0", dir + "/wso2mi-4.0.0", "source", "solo");
  MakeMiHome("4.2.0", dir + "/wso2mi-4.2.0", "target", "solo");
  auto before = TreeHash(dir + "/wso2mi-4.2.0");
  const std::string base = ShellQuote(AgentBinary()) + " local --source " +
                           ShellQuote(dir + "/wso2mi-4.0.0") + " --target " +
                           ShellQuote(dir + "/wso2mi-4.2.0") + " --state-dir " +
                           ShellQuote(dir + "/state");
  CommandResult check = RunCommand(base + " --check --json");
  ASSERT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(TreeHash(dir + "/wso2mi-4.2.0"), before);
  EXPECT_THAT(check.output, ::testing::HasSubstr("\"summary\""));
  EXPECT_THAT(check.output, ::testing::HasSubstr("STEP_CHANGED"));

  CommandResult apply = RunCommand(base);
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_NE(TreeHash(dir + "/wso2mi-4.2.0"), before);
  size_t p = apply.output.find("run local-");
  ASSERT_NE(p, std::string::npos) << apply.output;
  std::string run_id = apply.output.substr(p + 4, apply.output.find(' ', p + 4) - p - 4);

  CommandResult again = RunCommand(base);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, ::testing::HasSubstr("RUN_OK"));

  CommandResult rb = RunCommand(ShellQuote(AgentBinary()) + " local --rollback " + run_id +
                                " --state-dir " + ShellQuote(dir + "/state"));
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_EQ(TreeHash(dir + "/wso2mi-4.2.0"), before);

  CommandResult bad = RunCommand(ShellQuote(AgentBinary()) + " local --source " +
                                 ShellQuote(dir + "/nope") + " --target " +
                                 ShellQuote(dir + "/wso2mi-4.2.0") + " --state-dir " +
                                 ShellQuote(dir + "/state"));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
}

}  // namespace
}  // namespace mimic::testing
