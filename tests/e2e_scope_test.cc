// End to end: a rollout keeps its scope, and the controller's guards hold, through the real
// `mimic` binary and real mimic-agent processes on 127.0.0.1 (mutual TLS).
//
// Four hosts: d1 (dev), p1, p2, p3 (prod). A host FAILS by having a target_home that is not
// an MI home (preflight fails).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/rpc/tls.h"
#include "controller/audit/audit.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kHosts = {"d1", "p1", "p2", "p3"};
std::string EnvOf(const std::string& h) { return h[0] == 'd' ? "dev" : "prod"; }

std::string* g_pristine = nullptr;  // certificates and one source/target pair, built once

class ScopeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_pristine = new std::string(MakeTempDir("scope-pristine"));
    MakeCerts(*g_pristine + "/certs", kHosts);
    MakeMiHome("4.0.0", *g_pristine + "/src", "source", "fleet");
    MakeMiHome("4.2.0", *g_pristine + "/dst", "target");
  }

  void SetUp() override {
    dir_ = MakeTempDir("scope");
    std::string cmd = "set -e; mkdir -p " + ShellQuote(dir_ + "/agent-state") + "; cp -a " +
                      ShellQuote(*g_pristine + "/certs") + " " + ShellQuote(dir_) + "; ";
    for (const std::string& h : kHosts) {
      absl::StrAppend(&cmd, "mkdir -p ", ShellQuote(Root(h) + "/not-mi"), "; cp -a ",
                      ShellQuote(*g_pristine + "/src"), " ", ShellQuote(Source(h)), "; cp -a ",
                      ShellQuote(*g_pristine + "/dst"), " ", ShellQuote(Target(h)), "; ");
    }
    CommandResult r = RunCommand(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void TearDown() override { agents_.clear(); }

  std::string Root(const std::string& h) { return dir_ + "/mi/" + h; }
  std::string Source(const std::string& h) { return Root(h) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& h) { return Root(h) + "/wso2mi-4.2.0"; }

  // Starts every agent; hosts in `holds` run the testing agent, held before the given step.
  // p1's agent may also serve p2's home (`p1_serves_p2`), with `threads` step threads.
  void StartAgents(const std::map<std::string, int>& holds = {}, int threads = 2,
                   bool p1_serves_p2 = false) {
    for (const std::string& h : kHosts) {
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = dir_ + "/agent-state/" + h;
      o.allowed_roots = {Root(h)};
      if (h == "p1" && p1_serves_p2) o.allowed_roots.push_back(Root("p2"));
      o.executor_threads = threads;
      if (auto it = holds.find(h); it != holds.end()) {
        o.gate = true;
        o.hold_steps = {it->second};
      }
      agents_[h] = std::make_unique<AgentProcess>(o);
      if (!agents_[h]->Start()) FAIL() << "agent " << h << " did not start";
    }
  }
  AgentProcess& Agent(const std::string& h) { return *agents_.at(h); }

  // `failing` hosts get a target that is not an MI home; with `p2_via_p1`, host p2 is served
  // by p1's agent.
  void WriteInventory(const std::vector<std::string>& failing = {}, bool p2_via_p1 = false) {
    std::string inv =
        "[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
        "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n";
    for (const std::string& h : kHosts) {
      bool fail = std::find(failing.begin(), failing.end(), h) != failing.end();
      const std::string agent = h == "p2" && p2_via_p1 ? "p1" : h;
      absl::StrAppend(&inv, "\n[hosts.", h, "]\naddress = \"", Agent(agent).address(),
                      "\"\ntls_server_name = \"", agent, "\"\nenvironment = \"", EnvOf(h),
                      "\"\nvars = { source_home = \"", Source(h), "\", target_home = \"",
                      fail ? Root(h) + "/not-mi" : Target(h), "\" }\n");
    }
    WriteText(dir_ + "/inventory.toml", inv);
  }

  // Cheap steps; `prod_extra` is appended to the prod stage.
  void WritePlan(const std::string& prod_extra = "", const std::string& comment = "") {
    WriteText(dir_ + "/plan.toml",
              absl::StrCat(comment,
                           "[migration]\npath = \"4.0.0->4.2.0\"\n\n"
                           "[[steps]]\nname = \"preflight\"\n"
                           "[[steps]]\nname = \"copy_carbonapps\"\n"
                           "[[steps]]\nname = \"copy_keystores\"\n\n",
                           CheapPlanSkips(), "\n"
                           "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\n\n"
                           "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\n",
                           prod_extra));
  }

  CommandResult Mimic(const std::string& args) { return RunMimic(dir_, args); }

  controller::RolloutDetail Detail(const std::string& rollout) {
    auto a = controller::Audit::Open(dir_ + "/controller-state/audit.db");
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return {};
    auto d = (*a)->GetRollout(rollout);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : controller::RolloutDetail{};
  }
  std::vector<controller::FileChangeRecord> FileChanges(const std::string& run_id) {
    auto a = controller::Audit::Open(dir_ + "/controller-state/audit.db");
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return {};
    auto c = (*a)->FileChanges(run_id);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : std::vector<controller::FileChangeRecord>{};
  }
  // host -> its latest run's status in the rollout ("" when it has none).
  std::map<std::string, std::string> RunStatus(const std::string& rollout) {
    std::map<std::string, std::string> m;
    for (const auto& r : controller::LatestRunPerHost(Detail(rollout).runs)) m[r.host] = r.status;
    return m;
  }

  std::string dir_;
  std::map<std::string, std::unique_ptr<AgentProcess>> agents_;
};

// `run --stage prod --limit p1`, then `resume`: only p1 is ever touched. The scope is in the
// audit and `mimic status` shows it; a resume that asks for more is refused.
TEST_F(ScopeTest, ResumeKeepsTheRolloutsScope) {
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  WriteInventory();
  WritePlan();
  const auto d1_before = TreeHash(Target("d1"));
  const auto p2_before = TreeHash(Target("p2"));
  CommandResult run = Mimic("run --inventory inventory.toml --plan plan.toml --stage prod "
                            "--limit p1 --force");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string id = RolloutIdFrom(run.output);
  ASSERT_FALSE(id.empty()) << run.output;

  const controller::RolloutDetail d = Detail(id);
  EXPECT_EQ(d.rollout.scope.stage, "prod");
  EXPECT_EQ(d.rollout.scope.limit, "p1");
  EXPECT_EQ(d.rollout.scope.hosts, std::vector<std::string>{"p1"});
  ASSERT_EQ(d.rollout.scope.batches.size(), 1u);
  EXPECT_EQ(d.rollout.scope.batches[0].stage, "prod");
  EXPECT_EQ(d.rollout.scope.batches[0].hosts, std::vector<std::string>{"p1"});

  CommandResult resume = Mimic("resume " + id + " --inventory inventory.toml");
  EXPECT_EQ(resume.exit_code, 0) << resume.output;
  auto runs = RunStatus(id);
  EXPECT_EQ(runs.count("d1"), 0u) << "resume ran d1 (dev), outside the rollout's stage";
  EXPECT_EQ(runs.count("p2"), 0u) << "resume ran p2, outside the rollout's limit";
  EXPECT_EQ(runs.count("p3"), 0u) << "resume ran p3, outside the rollout's limit";
  EXPECT_TRUE(controller::IsSuccessStatus(runs["p1"])) << runs["p1"];
  EXPECT_EQ(TreeHash(Target("d1")), d1_before);
  EXPECT_EQ(TreeHash(Target("p2")), p2_before);

  // Widening needs a new rollout.
  CommandResult wider = Mimic("resume " + id + " --inventory inventory.toml --limit p1,p2");
  EXPECT_EQ(wider.exit_code, 1) << wider.output;
  EXPECT_THAT(wider.output, HasSubstr("new rollout"));
  EXPECT_EQ(RunStatus(id).count("p2"), 0u);
  CommandResult other_stage = Mimic("resume " + id + " --inventory inventory.toml --stage dev");
  EXPECT_EQ(other_stage.exit_code, 1) << other_stage.output;
  EXPECT_THAT(other_stage.output, HasSubstr("new rollout"));
  EXPECT_EQ(RunStatus(id).count("d1"), 0u);

  CommandResult status = Mimic("status " + id + " --inventory inventory.toml");
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("Scope      stage prod, limit p1, hosts p1"));

  // Rollback acts inside the scope too: only p1.
  CommandResult rb = Mimic("rollback " + id + " --inventory inventory.toml");
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_EQ(TreeHash(Target("d1")), d1_before);
  EXPECT_EQ(TreeHash(Target("p2")), p2_before);
}

// The agent reports the versions preflight found; the audit stores them and the report and
// `mimic status` show them.
TEST_F(ScopeTest, RunCarriesTheVersionsPreflightFound) {
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  WriteInventory();
  WritePlan();
  CommandResult run = Mimic("run --inventory inventory.toml --plan plan.toml --stage dev");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string id = RolloutIdFrom(run.output);
  const controller::RolloutDetail d = Detail(id);
  ASSERT_EQ(d.runs.size(), 1u);
  EXPECT_EQ(d.runs[0].source_version, "4.0.0");
  EXPECT_EQ(d.runs[0].target_version, "4.2.0");
  CommandResult report = Mimic("report " + id + " --format json --inventory inventory.toml");
  EXPECT_EQ(report.exit_code, 0) << report.output;
  EXPECT_THAT(report.output, HasSubstr("\"source_version\": \"4.0.0\""));
  EXPECT_THAT(report.output, HasSubstr("\"target_version\": \"4.2.0\""));
  CommandResult status = Mimic("status " + id + " --inventory inventory.toml");
  EXPECT_THAT(status.output, HasSubstr("4.0.0->4.2.0"));
}

// `resume` with a plan changed since the rollout started refuses without --force.
TEST_F(ScopeTest, ResumeWithAChangedPlanRefusesWithoutForce) {
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  WriteInventory();
  WritePlan();
  CommandResult run = Mimic("run --inventory inventory.toml --plan plan.toml --stage dev");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string id = RolloutIdFrom(run.output);
  WritePlan("", "# edited after the rollout started\n");
  CommandResult refused = Mimic("resume " + id + " --inventory inventory.toml");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("changed since rollout " + id));
  EXPECT_THAT(refused.output, HasSubstr("--force"));
  EXPECT_EQ(Detail(id).rollout.status, "ok") << "a refused resume must not touch the rollout";
  CommandResult forced = Mimic("resume " + id + " --inventory inventory.toml --force");
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
}

// `rollback` of a file edited since the run wrote it refuses without --force (the edit is
// kept); with --force the target is restored byte for byte.
TEST_F(ScopeTest, RollbackOfAFileEditedSinceTheRunRefusesWithoutForce) {
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  WriteInventory();
  WritePlan();
  const auto before = TreeHash(Target("d1"));
  CommandResult run = Mimic("run --inventory inventory.toml --plan plan.toml --stage dev");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string id = RolloutIdFrom(run.output);
  const controller::RolloutDetail d = Detail(id);
  ASSERT_EQ(d.runs.size(), 1u);
  std::string written;
  for (const auto& c : FileChanges(d.runs[0].run_id)) {
    if (c.action == "create" || c.action == "update") written = c.path;
  }
  ASSERT_FALSE(written.empty()) << "the run wrote no file";
  WriteText(written, "edited by hand after the run\n");

  CommandResult refused = Mimic("rollback " + id + " --inventory inventory.toml");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("changed since the run wrote them"));
  EXPECT_EQ(ReadText(written), "edited by hand after the run\n");
  EXPECT_NE(TreeHash(Target("d1")), before);

  CommandResult forced = Mimic("rollback " + id + " --inventory inventory.toml --force");
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_EQ(TreeHash(Target("d1")), before);
}

// A failure budget stops the rollout: no new host starts, and the host in flight when it
// stopped runs to its end (its run finishes, audited), not abandoned.
TEST_F(ScopeTest, HostsInFlightFinishWhenABudgetStopsTheRollout) {
  // p2 is held before its step 1 while p1 (same batch, window 2) fails in preflight.
  ASSERT_NO_FATAL_FAILURE(StartAgents({{"p2", 1}}));
  WriteInventory({"p1"});
  WritePlan("batch = 3\nconcurrency = 2\nmax_failures = 0\n");
  const std::string out_path = dir_ + "/run.out";
  pid_t pid = StartMimic(dir_, {"run", "--inventory", "inventory.toml", "--plan", "plan.toml",
                                "--stage", "prod", "--force"},
                         out_path);
  ASSERT_FALSE(Agent("p2").WaitReached(1).empty()) << ReadText(out_path);
  // p1's failure reached the controller while p2 is still held (in flight).
  ASSERT_TRUE(WaitForText(out_path, "FAILED")) << ReadText(out_path);
  Agent("p2").Release(1);
  ASSERT_EQ(WaitExit(pid), 2) << ReadText(out_path);
  const std::string out = ReadText(out_path);
  EXPECT_THAT(out, HasSubstr("max_failures 0"));
  const std::string id = RolloutIdFrom(out);
  EXPECT_EQ(Detail(id).rollout.status, "stopped");
  auto runs = RunStatus(id);
  EXPECT_EQ(runs["p1"], "failed");
  EXPECT_TRUE(controller::IsSuccessStatus(runs["p2"]))
      << "p2 was in flight when the budget stopped the rollout and must finish: " << runs["p2"];
  EXPECT_TRUE(runs.count("p3") == 0 || runs["p3"] == "pending") << runs["p3"];
}

// GetFacts is served from its own thread: it answers while every step thread is held by a run.
TEST_F(ScopeTest, FactsAnswerWhileRunsHoldEveryStepThread) {
  ASSERT_NO_FATAL_FAILURE(StartAgents({{"p1", 0}}, /*threads=*/1));
  WriteInventory();
  WritePlan();
  const std::string out_path = dir_ + "/run.out";
  pid_t pid = StartMimic(dir_, {"run", "--inventory", "inventory.toml", "--plan", "plan.toml",
                                "--stage", "prod", "--limit", "p1", "--force"},
                         out_path);
  ASSERT_FALSE(Agent("p1").WaitReached(0).empty()) << ReadText(out_path);
  CommandResult facts = Mimic("facts --inventory inventory.toml --limit p1");
  EXPECT_EQ(facts.exit_code, 0) << facts.output;
  EXPECT_THAT(facts.output, HasSubstr("MI 4.2.0 at " + Target("p1")));
  // The WSO2 update level of each home (the generated source has updates/config.json).
  EXPECT_THAT(facts.output, HasSubstr("MI 4.0.0 at " + Source("p1") +
                                      " (updates/product.txt), update level 57"));
  EXPECT_THAT(facts.output, HasSubstr("MI 4.2.0 at " + Target("p1") +
                                      " (updates/product.txt), update level none"));
  Agent("p1").Release(0);
  EXPECT_EQ(WaitExit(pid), 0) << ReadText(out_path);
}

// An agent told to stop does not run what is queued after its server stopped: the queued run
// ends INTERRUPTED (journaled, so a controller is told after the restart) and its target is
// untouched; the run already in its steps completes.
TEST_F(ScopeTest, AgentShutdownDropsQueuedRunsAndReportsThem) {
  // One step thread on p1's agent, which also serves p2: one run held, the other queued.
  ASSERT_NO_FATAL_FAILURE(StartAgents({{"p1", 0}}, /*threads=*/1, /*p1_serves_p2=*/true));
  WriteInventory({}, /*p2_via_p1=*/true);
  WritePlan("concurrency = 2\n");
  const auto p1_before = TreeHash(Target("p1"));
  const auto p2_before = TreeHash(Target("p2"));
  const std::string out_path = dir_ + "/run.out";
  pid_t pid = StartMimic(dir_, {"run", "--inventory", "inventory.toml", "--plan", "plan.toml",
                                "--stage", "prod", "--limit", "p1,p2", "--force"},
                         out_path);
  const std::string held = Agent("p1").WaitReached(0);
  ASSERT_FALSE(held.empty()) << ReadText(out_path);
  const std::string id = RolloutIdFrom(ReadText(out_path));
  ASSERT_FALSE(id.empty());
  const std::string queued = held == id + ".p1" ? id + ".p2" : id + ".p1";
  ASSERT_TRUE(WaitForText(Agent("p1").log_path(), "started run " + queued))
      << ReadText(Agent("p1").log_path());
  kill(pid, SIGKILL);  // the controller goes away; `mimic resume` picks the results up
  WaitExit(pid);

  Agent("p1").Signal(SIGTERM);
  ASSERT_TRUE(WaitForText(Agent("p1").log_path(), "1 queued run(s) will not run"))
      << ReadText(Agent("p1").log_path());
  Agent("p1").Release(0);  // the held run completes; the queued one must not run
  Agent("p1").Kill(SIGTERM);
  const std::string queued_host = queued.substr(id.size() + 1);
  const std::string held_host = held.substr(id.size() + 1);
  EXPECT_EQ(TreeHash(Target(queued_host)), queued_host == "p1" ? p1_before : p2_before)
      << "the queued run changed its target after the agent was told to stop";

  ASSERT_TRUE(Agent("p1").Start());
  Agent("p1").ReleaseAll();
  WriteInventory({}, /*p2_via_p1=*/true);  // the restarted agent's port
  CommandResult resume = Mimic("resume " + id + " --inventory inventory.toml");
  EXPECT_EQ(resume.exit_code, 2) << resume.output;
  auto runs = RunStatus(id);
  EXPECT_EQ(runs[queued_host], "interrupted");
  EXPECT_TRUE(controller::IsSuccessStatus(runs[held_host])) << runs[held_host];
  bool told = false;
  for (const auto& r : Detail(id).runs) {
    if (r.run_id == queued) told = r.message.find("agent shut down before the run started") !=
                                   std::string::npos;
  }
  EXPECT_TRUE(told) << "the interrupted run does not say why";
}

// An agent told to stop answers health NOT_SERVING (both service names) while the run in its
// steps completes, and that run's last events still reach the controller.
TEST_F(ScopeTest, StoppingAgentIsNotServingWhileItsRunCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartAgents({{"p1", 0}}));
  WriteInventory();
  WritePlan();
  const std::string out_path = dir_ + "/run.out";
  pid_t pid = StartMimic(dir_, {"run", "--inventory", "inventory.toml", "--plan", "plan.toml",
                                "--stage", "prod", "--limit", "p1", "--force"},
                         out_path);
  ASSERT_FALSE(Agent("p1").WaitReached(0).empty()) << ReadText(out_path);
  Agent("p1").Signal(SIGTERM);
  ASSERT_TRUE(WaitForText(Agent("p1").log_path(), "queued run(s) will not run"))
      << ReadText(Agent("p1").log_path());
  auto creds = common::MakeChannelCredentials(dir_ + "/certs/ca.pem",
                                              dir_ + "/certs/controller.pem",
                                              dir_ + "/certs/controller.key");
  ASSERT_TRUE(creds.ok()) << creds.status();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("p1");
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateCustomChannel(Agent("p1").address(), *creds, args));
  for (const char* service : {"", "mimic.v1.Agent"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = health->Check(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << service << ": " << st.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING) << service;
  }
  Agent("p1").Release(0);
  EXPECT_EQ(WaitExit(pid), 0) << ReadText(out_path);
  Agent("p1").Kill(SIGTERM);
}

}  // namespace
}  // namespace mimic::testing
