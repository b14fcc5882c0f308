#include "controller/rollout/rollout.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "common/config/plan.h"
#include "controller/rollout/progress.h"
#include "gmock/gmock.h"
#include "mimic/v1/agent.grpc.pb.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

common::Plan TestPlan() {
  auto p = common::LoadPlanFromString(
      "[migration]\npath = \"4.0.0->4.2.0\"\nsource_home = \"{{root}}/wso2mi-4.0.0\"\n"
      "target_home = \"{{root}}/wso2mi-4.2.0\"\n"
      "[[steps]]\nname = \"preflight\"\n"
      "[[steps]]\nname = \"merge_config\"\nparams = { conflict = \"{{conflict}}\" }\n",
      "plan.toml", StepCatalogue());
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

TEST(CompileHostPlanTest, ExpandsHostVarsIntoHomesAndParams) {
  common::Plan plan = TestPlan();
  common::Host h;
  h.name = "mi-1";
  h.vars = {{"root", "/opt/wso2"}, {"conflict", "target"}};
  auto hp = CompileHostPlan(plan, h, "r-1", mimic::v1::MODE_CHECK);
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->run_id(), "r-1.mi-1");
  EXPECT_EQ(hp->source_home(), "/opt/wso2/wso2mi-4.0.0");
  EXPECT_EQ(hp->target_home(), "/opt/wso2/wso2mi-4.2.0");
  EXPECT_EQ(hp->mode(), mimic::v1::MODE_CHECK);
  EXPECT_EQ(hp->plan_sha256(), plan.sha256);
  ASSERT_EQ(hp->steps_size(), 2);
  EXPECT_EQ(hp->steps(1).params().at("conflict"), "target");
}

TEST(CompileHostPlanTest, MissingVarIsAnErrorNamingTheHost) {
  common::Plan plan = TestPlan();
  common::Host h;
  h.name = "mi-2";
  auto hp = CompileHostPlan(plan, h, "r-1", mimic::v1::MODE_APPLY);
  ASSERT_FALSE(hp.ok());
  EXPECT_THAT(std::string(hp.status().message()), HasSubstr("mi-2"));
  EXPECT_THAT(std::string(hp.status().message()), HasSubstr("plan.toml"));
}

TEST(RecapTableTest, AlignsColumnsAndListsFailures) {
  std::vector<HostOutcome> rows = {
      {"mi-dev-1", "dev", "changed", 3, 4, 0, 0, 12, 1500000, "r.mi-dev-1", ""},
      {"mi-prod-long-name", "prod", "unreachable", 0, 0, 0, 0, 0, 0, "r.x",
       "after 4 attempts: refused"}};
  std::string t = RecapTable(rows);
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < t.size()) {
    size_t e = t.find('\n', at);
    lines.push_back(t.substr(at, e - at));
    at = e + 1;
  }
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0].find("STAGE"), lines[1].find(" dev ") + 1);
  EXPECT_EQ(lines[1].size(), lines[2].size());
  EXPECT_THAT(t, HasSubstr("mi-prod-long-name: after 4 attempts: refused"));
}

TEST(ProgressTest, LiveViewCountsTheBatchAndShowsEachRunningHostsStep) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress p(f, /*json=*/false, /*live=*/true);
  p.BeginBatch("prod", 1, 3, {"h1", "h2", "h3"});
  mimic::v1::Event e;
  e.set_host("h1");
  e.mutable_step_started()->set_step("copy_carbonapps");
  p.Event("prod", e);
  mimic::v1::Event fin;
  fin.set_host("h2");
  fin.mutable_run_finished()->set_status(mimic::v1::RUN_CHANGED);
  p.Event("prod", fin);
  EXPECT_EQ(p.StatusLine(),
            "[prod batch 2/3] 1 done, 0 failed, 1 running, 1 waiting | h1:copy_carbonapps");
  std::rewind(f);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  EXPECT_THAT(text, HasSubstr("\r\033[K"));  // the status line is rewritten in place
  EXPECT_THAT(text, HasSubstr("h2"));         // the finished run scrolled above it

  Progress plain(stdout, false, false);  // not a terminal: no status line at all
  plain.BeginBatch("prod", 0, 1, {"h1"});
  EXPECT_EQ(plain.StatusLine(), "");
}

// A file name or a command's output with a newline cannot print a line of its own (a fake
// "FAILED" for another host) nor move the cursor.
TEST(ProgressTest, ControlCharactersInAgentTextAreEscaped) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress p(f, /*json=*/false, /*live=*/false);
  mimic::v1::Event e;
  e.set_host("h1");
  e.mutable_step_finished()->set_step("copy_carbonapps");
  e.mutable_step_finished()->set_status(mimic::v1::STEP_CHANGED);
  e.mutable_step_finished()->set_message(
      "copied x.car\n12:00:00 prod     h2               copy_carbonapps          FAILED   boom");
  p.Event("prod", e);
  mimic::v1::Event log;
  log.set_host("h1");
  log.mutable_log()->set_level(mimic::v1::LOG_WARNING);
  log.mutable_log()->set_text("odd \x1B[2K\rname");
  p.Event("prod", log);
  std::rewind(f);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_THAT(text, HasSubstr("copied x.car\\n12:00:00 prod"));
  EXPECT_THAT(text, HasSubstr("odd \\x1B[2K\\rname"));
  EXPECT_EQ(text.find('\x1B'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
}


TEST(ProgressTest, DryRunListsTheFilesEachStepWouldChange) {
  auto render = [](bool dry_run, int files) {
    std::FILE* f = std::tmpfile();
    Progress p(f, /*json=*/false, /*live=*/false);
    p.SetDryRun(dry_run);
    mimic::v1::Event e;
    e.set_host("h1");
    auto* sf = e.mutable_step_finished();
    sf->set_step("copy_carbonapps");
    sf->set_status(mimic::v1::STEP_CHANGED);
    for (int i = 0; i < files; ++i) {
      auto* c = sf->add_changes();
      c->set_path(i == 0 ? "/opt/mi/new\nline.car" : "/opt/mi/f" + std::to_string(i));
      c->set_action(i == 1 ? mimic::v1::ACTION_DELETE : mimic::v1::ACTION_CREATE);
    }
    p.Event("prod", e);
    std::rewind(f);
    std::string text(1 << 16, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), f));
    std::fclose(f);
    return text;
  };
  std::string check = render(true, 3);
  EXPECT_THAT(check, HasSubstr("[3 files] (dry run: nothing written)"));
  EXPECT_THAT(check, HasSubstr("would create /opt/mi/new\\nline.car\n"));  // escaped
  EXPECT_THAT(check, HasSubstr("would delete /opt/mi/f1\n"));
  EXPECT_THAT(check, HasSubstr("would create /opt/mi/f2\n"));
  // An apply run prints the count only; a long list is capped.
  EXPECT_THAT(render(false, 3), Not(HasSubstr("would")));
  std::string many = render(true, Progress::kMaxListedFiles + 7);
  EXPECT_THAT(many, HasSubstr("... and 7 more"));
}

namespace {

// What `p` printed for `events` (each event of host h1 in stage prod).
std::string Render(const std::function<void(Progress&)>& setup,
                   const std::vector<mimic::v1::Event>& events) {
  std::FILE* f = std::tmpfile();
  Progress p(f, /*json=*/false, /*live=*/false);
  setup(p);
  for (const auto& e : events) p.Event("prod", e);
  std::rewind(f);
  std::string text(1 << 16, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  return text;
}

mimic::v1::Event MergeStepWithDiff() {
  mimic::v1::Event e;
  e.set_host("h1");
  auto* sf = e.mutable_step_finished();
  sf->set_step("merge_config");
  sf->set_status(mimic::v1::STEP_CHANGED);
  auto* c = sf->add_changes();
  c->set_path("/opt/mi/conf/deployment.toml");
  c->set_action(mimic::v1::ACTION_UPDATE);
  c->set_diff("--- /opt/mi/conf/deployment.toml\n+++ /opt/mi/conf/deployment.toml\n"
              "@@ -1 +1 @@\n-hostname = \"a\"\n+hostname = \"b\"\x1b[2J\n");
  auto* d = sf->add_changes();
  d->set_path("/opt/mi/conf/other.xml");
  d->set_action(mimic::v1::ACTION_CREATE);
  return e;
}

mimic::v1::Event Log(mimic::v1::LogLevel level, const std::string& text) {
  mimic::v1::Event e;
  e.set_host("h1");
  e.mutable_log()->set_step("merge_config");
  e.mutable_log()->set_level(level);
  e.mutable_log()->set_text(text);
  return e;
}

}  // namespace

TEST(ProgressTest, DiffsAreShownIndentedUnderTheirFile) {
  const std::string apply = Render([](Progress&) {}, {MergeStepWithDiff()});
  EXPECT_THAT(apply, HasSubstr("updated /opt/mi/conf/deployment.toml\n"));
  EXPECT_THAT(apply, HasSubstr("  -hostname = \"a\"\n"));
  EXPECT_THAT(apply, HasSubstr("  +hostname = \"b\"\\x1B[2J\n"));  // escaped, one line
  EXPECT_EQ(apply.find('\x1B'), std::string::npos);
  EXPECT_THAT(apply, Not(HasSubstr("other.xml")));  // no diff, not -vv, not a dry run
  const std::string check =
      Render([](Progress& p) { p.SetDryRun(true); }, {MergeStepWithDiff()});
  EXPECT_THAT(check, HasSubstr("would update /opt/mi/conf/deployment.toml\n"));
  EXPECT_THAT(check, HasSubstr("would create /opt/mi/conf/other.xml"));
  EXPECT_THAT(check, HasSubstr("@@ -1 +1 @@"));
}

TEST(ProgressTest, VerbosityAddsInfoThenDebugLinesAndEveryFile) {
  const std::vector<mimic::v1::Event> events = {
      Log(mimic::v1::LOG_DEBUG, "debug detail"), Log(mimic::v1::LOG_INFO, "info detail"),
      Log(mimic::v1::LOG_WARNING, "warning detail"), MergeStepWithDiff()};
  const std::string quiet = Render([](Progress&) {}, events);
  EXPECT_THAT(quiet, HasSubstr("warning detail"));
  EXPECT_THAT(quiet, Not(HasSubstr("info detail")));
  const std::string v = Render([](Progress& p) { p.SetVerbosity(1); }, events);
  EXPECT_THAT(v, HasSubstr("info     info detail"));
  EXPECT_THAT(v, Not(HasSubstr("debug detail")));
  EXPECT_THAT(v, Not(HasSubstr("other.xml")));
  const std::string vv = Render([](Progress& p) { p.SetVerbosity(2); }, events);
  EXPECT_THAT(vv, HasSubstr("debug    debug detail"));
  EXPECT_THAT(vv, HasSubstr("created /opt/mi/conf/other.xml"));  // every file at -vv
}

TEST(ProgressTest, RollbackCheckSaysOnEveryLineThatNothingIsWritten) {
  mimic::v1::Event step;
  step.set_host("h1");
  auto* sf = step.mutable_step_finished();
  sf->set_step("rollback");
  sf->set_status(mimic::v1::STEP_CHANGED);
  for (auto a : {mimic::v1::ACTION_UPDATE, mimic::v1::ACTION_CREATE, mimic::v1::ACTION_DELETE}) {
    auto* c = sf->add_changes();
    c->set_path("/opt/mi/f" + std::to_string(a));
    c->set_action(a);
  }
  mimic::v1::Event fin;
  fin.set_host("h1");
  fin.mutable_run_finished()->set_status(mimic::v1::RUN_CHANGED);
  const std::string text = Render(
      [](Progress& p) {
        p.SetDryRun(true);
        p.SetRollback(true);
        p.SetVerbosity(1);
      },
      {Log(mimic::v1::LOG_INFO, "planning"), step, fin});
  size_t lines = 0;
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find('\n', b);
    const std::string line = text.substr(b, e - b);
    EXPECT_TRUE(line.find("would ") != std::string::npos ||
                line.find("(dry run") != std::string::npos)
        << line;
    ++lines;
    b = e + 1;
  }
  EXPECT_EQ(lines, 6u) << text;
  EXPECT_THAT(text, HasSubstr("would restore /opt/mi/f2"));  // an updated file: restored
  EXPECT_THAT(text, HasSubstr("would restore /opt/mi/f1"));  // a deleted one: restored
  EXPECT_THAT(text, HasSubstr("would delete /opt/mi/f3"));   // one the run created
}

// A listening socket on 127.0.0.1 that never accepts by itself: the kernel completes each TCP
// connect, then nothing answers (an agent that hangs before the TLS/HTTP2 handshake).
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "listening socket";
      return;
    }
    port_ = ntohs(a.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A plaintext inventory of hosts h0, h1, ... at these ports and the 4.0.0 -> 4.2.0 plan, in a
// fresh folder; returns the options to run them (check mode).
RolloutOptions WriteRollout(const std::vector<int>& ports) {
  std::string dir = ::testing::TempDir() + "rollout-connect-XXXXXX";
  EXPECT_NE(::mkdtemp(dir.data()), nullptr);
  std::ofstream inv(dir + "/inventory.toml");
  inv << "[controller]\nstate_dir = \"state\"\nplaintext = true\n";
  for (size_t i = 0; i < ports.size(); ++i) {
    inv << "[hosts.h" << i << "]\naddress = \"127.0.0.1:" << ports[i] << "\"\n"
        << "environment = \"prod\"\n"
        << "vars = { source_home = \"/nowhere/wso2mi-4.0.0\", "
           "target_home = \"/nowhere/wso2mi-4.2.0\" }\n";
  }
  inv.close();
  std::ofstream plan(dir + "/plan.toml");
  plan << "[migration]\npath = \"4.0.0->4.2.0\"\n";
  for (const char* step : {"preflight", "snapshot_target", "migrate_userstore_config",
                           "copy_secondary_userstores", "copy_carbonapps", "copy_registry",
                           "copy_deployment", "migrate_datamapper", "copy_custom_components",
                           "copy_keystores", "merge_config", "hl7_transport"}) {
    plan << "[[steps]]\nname = \"" << step << "\"\n";
  }
  plan.close();
  RolloutOptions opt;
  opt.inventory_path = dir + "/inventory.toml";
  opt.plan_path = dir + "/plan.toml";
  opt.check = true;
  return opt;
}

// Runs the rollout; returns its exit code and output.
std::pair<int, std::string> RunAndRead(const RolloutOptions& opt) {
  std::FILE* out = std::tmpfile();
  EXPECT_NE(out, nullptr);
  absl::StatusOr<int> code = RunRollout(opt, out);
  std::rewind(out);
  std::string text(1 << 16, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_TRUE(code.ok()) << code.status();
  return {code.ok() ? *code : -1, text};
}

// A call whose connection never comes up ends: the watchdog cancels it after the connect
// timeout, tries again on a new channel, then reports the host unreachable (it hung for good
// with 2,000 hosts at once: gRPC's own connect timeout left calls neither connected nor failed).
TEST(RunRolloutTest, AHostThatNeverConnectsIsUnreachableAfterTheConnectTimeout) {
  Listener hole;
  ASSERT_NE(hole.port(), 0);
  RolloutOptions opt = WriteRollout({hole.port()});
  opt.max_attempts = 2;
  opt.connect.connect_timeout_ms = 200;
  auto [code, text] = RunAndRead(opt);
  EXPECT_EQ(code, 2) << text;
  EXPECT_THAT(text, HasSubstr("unreachable")) << text;
  EXPECT_THAT(text, HasSubstr("after 2 attempts: not connected within 200ms")) << text;
}

// Answers Run with the run's end (status ok) at once.
class FinishAtOnce final : public mimic::v1::Agent::CallbackService {
  grpc::ServerWriteReactor<mimic::v1::Event>* Run(grpc::CallbackServerContext*,
                                                  const mimic::v1::RunRequest* req) override {
    class Stream final : public grpc::ServerWriteReactor<mimic::v1::Event> {
     public:
      explicit Stream(const mimic::v1::HostPlan& plan) {
        e_.set_run_id(plan.run_id());
        e_.set_host(plan.host());
        e_.set_seq(1);
        e_.mutable_run_finished()->set_status(mimic::v1::RUN_OK);
        StartWrite(&e_);
      }
      void OnWriteDone(bool ok) override {
        Finish(ok ? grpc::Status::OK : grpc::Status::CANCELLED);
      }
      void OnDone() override { delete this; }

     private:
      mimic::v1::Event e_;
    };
    return new Stream(req->plan());
  }
};

// Copies bytes both ways between two sockets until one side closes, then closes both.
void Pipe(int a, int b) {
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  char buf[16384];
  for (;;) {
    if (::poll(fds, 2, -1) < 0) break;
    bool closed = false;
    for (int i = 0; i < 2 && !closed; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0 || ::write(fds[1 - i].fd, buf, n) != n) closed = true;
    }
    if (closed) break;
  }
  ::close(a);
  ::close(b);
}

// However high the concurrency, no more than max_connecting hosts are connecting at once (the
// 2,000-host stall: 2,000 TLS handshakes at once ran past gRPC's connect timeout). Each host's
// connection is held, unanswered, until the test lets it through to a real agent service;
// the test lets one through only when two are held, and the rest once every host has dialled.
TEST(RunRolloutTest, AtMostMaxConnectingHostsConnectAtOnce) {
  FinishAtOnce service;
  int agent_port = 0;
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &agent_port);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  ASSERT_NE(server, nullptr);
  constexpr int kHosts = 6;
  std::vector<std::unique_ptr<Listener>> hosts;
  std::vector<int> ports;
  for (int i = 0; i < kHosts; ++i) {
    hosts.push_back(std::make_unique<Listener>());
    ports.push_back(hosts.back()->port());
  }
  std::atomic<bool> stop{false};
  size_t most_held = 0;
  std::vector<std::thread> pipes;
  std::thread gate([&] {
    std::deque<int> held;  // accepted, not let through yet
    int accepted = 0;
    auto let_through = [&] {
      int client = held.front();
      held.pop_front();
      int agent = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(agent_port);
      if (::connect(agent, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ADD_FAILURE() << "connect to the agent service";
      }
      pipes.emplace_back(Pipe, client, agent);
    };
    std::vector<pollfd> fds;
    for (const auto& h : hosts) fds.push_back({h->fd(), POLLIN, 0});
    while (!stop) {
      ::poll(fds.data(), fds.size(), 50);  // 50 ms: only to look at `stop`
      for (pollfd& p : fds) {  // every connection that came, before letting any through
        if ((p.revents & POLLIN) == 0) continue;
        int c = ::accept(p.fd, nullptr, nullptr);
        if (c < 0) continue;
        held.push_back(c);
        ++accepted;
      }
      most_held = std::max(most_held, held.size());
      if (held.size() >= 2) let_through();
      if (accepted >= kHosts) {
        while (!held.empty()) let_through();
      }
    }
  });
  RolloutOptions opt = WriteRollout(ports);
  opt.connect.max_connecting = 2;
  opt.connect.connect_timeout_ms = 600000;  // the watchdog stays out of it
  auto [code, text] = RunAndRead(opt);
  stop = true;
  gate.join();
  server->Shutdown();
  for (std::thread& t : pipes) t.join();
  EXPECT_EQ(code, 0) << text;
  EXPECT_LE(most_held, 2u) << text;
}

}  // namespace
}  // namespace mimic::controller
