#include "tests/fault/fault_env.h"

#include <sys/eventfd.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/str_cat.h"
#include "agent/engine/journal.h"
#include "common/rpc/tls.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {

uint32_t FaultSeed(uint32_t fallback) {
  const char* s = std::getenv("MIMIC_FAULT_SEED");
  if (s == nullptr || *s == '\0') return fallback;
  return static_cast<uint32_t>(std::strtoul(s, nullptr, 10));
}

int FaultTrials(int ci_default) {
  const char* s = std::getenv("MIMIC_FAULT_TRIALS");
  if (s == nullptr || *s == '\0') return ci_default;
  const int n = std::atoi(s);
  return n > 0 ? n : ci_default;
}

bool MountScratch(const std::string& dir) {
  if (geteuid() != 0) return false;
  return ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=2g,mode=0755") == 0;
}

void UnmountScratch(const std::string& dir) { ::umount2(dir.c_str(), MNT_DETACH); }

void MigrationHomes::Make(const std::string& d) {
  dir = d;
  const std::string pristine = dir + "/pristine";
  pristine_target = pristine + "/dst";
  source = dir + "/mi/wso2mi-4.0.0";
  target = dir + "/mi/wso2mi-4.2.0";
  MakeMiHome("4.0.0", pristine + "/src", "source", "p1");
  MakeMiHome("4.2.0", pristine_target, "target", "p1");
  CommandResult big = RunCommand(
      "cd " + ShellQuote(pristine + "/src/repository/deployment/server/carbonapps") +
      " && head -c 655360 /dev/urandom > big.bin && zip -q -0 Big_1.0.0.car big.bin && rm big.bin");
  ASSERT_EQ(big.exit_code, 0) << big.output;
  if (geteuid() == 0) {
    for (const std::string& h : {pristine + "/src", pristine_target}) {
      CommandResult r = RunCommand("chown -R 65534:65534 " + ShellQuote(h) + " && chmod 0640 " +
                                   ShellQuote(h + "/conf/deployment.toml") + " && chmod 0600 " +
                                   ShellQuote(h) + "/repository/resources/security/*.jks");
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  CommandResult r = RunCommand("mkdir -p " + ShellQuote(dir + "/mi") + " && cp -a " +
                               ShellQuote(pristine + "/src") + " " + ShellQuote(source));
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void MigrationHomes::ResetTarget(const std::string& at) const {
  const std::string to = at.empty() ? target : at;
  CommandResult r = RunCommand("mkdir -p " + ShellQuote(to) + " && find " + ShellQuote(to) +
                               " -mindepth 1 -delete && cp -a " + ShellQuote(pristine_target) +
                               "/. " + ShellQuote(to) + " && chown --reference=" +
                               ShellQuote(pristine_target) + " " + ShellQuote(to) +
                               " && chmod --reference=" + ShellQuote(pristine_target) + " " +
                               ShellQuote(to));
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

const std::vector<std::string>& MigrationHomes::Steps() {
  static const auto* steps = new std::vector<std::string>{
      "preflight",          "snapshot_target",
      "migrate_userstore_config", "copy_secondary_userstores", "copy_carbonapps",
      "copy_registry",      "copy_deployment",        "migrate_datamapper",
      "copy_custom_components", "copy_keystores",     "merge_config",
      "hl7_transport"};
  return *steps;
}

mimic::v1::HostPlan MigrationHomes::Plan(const std::string& run_id) const {
  mimic::v1::HostPlan p;
  p.set_run_id(run_id);
  p.set_rollout_id("r-fault");
  p.set_host("p1");
  p.set_mode(mimic::v1::MODE_APPLY);
  p.set_source_home(source);
  p.set_target_home(target);
  p.set_migration_path("4.0.0->4.2.0");
  for (const std::string& s : Steps()) {
    auto* step = p.add_steps();
    step->set_name(s);
    if (s == "merge_config") (*step->mutable_params())["conflict"] = "source";
  }
  return p;
}

mimic::v1::HostPlan MigrationHomes::RollbackPlan(const std::string& of) {
  mimic::v1::HostPlan p;
  p.set_run_id(of + ".rollback1");
  p.set_rollout_id("r-fault");
  p.set_host("p1");
  p.set_mode(mimic::v1::MODE_ROLLBACK);
  p.set_rollback_run_id(of);
  return p;
}

std::shared_ptr<grpc::Channel> PlainChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh connection per channel
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& certs_dir,
                                          const std::string& server_name) {
  auto creds = common::MakeChannelCredentials(certs_dir + "/ca.pem", certs_dir + "/controller.pem",
                                              certs_dir + "/controller.key");
  EXPECT_TRUE(creds.ok()) << creds.status();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server_name);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, creds.ok() ? *creds : nullptr, args);
}

EventStream::EventStream(std::shared_ptr<grpc::Channel> channel, const mimic::v1::HostPlan& plan,
                         int deadline_seconds)
    : stub_(mimic::v1::Agent::NewStub(channel)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_seconds));
  *run_req_.mutable_plan() = plan;
  run_req_.set_from_seq(1);
  thread_ = std::thread([this] { Read(stub_->Run(&ctx_, run_req_)); });
}

EventStream::EventStream(std::shared_ptr<grpc::Channel> channel, const std::string& run_id,
                         uint64_t from_seq, int deadline_seconds)
    : stub_(mimic::v1::Agent::NewStub(channel)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_seconds));
  attach_req_.set_run_id(run_id);
  attach_req_.set_from_seq(from_seq);
  thread_ = std::thread([this] { Read(stub_->Attach(&ctx_, attach_req_)); });
}

EventStream::~EventStream() {
  if (!done()) ctx_.TryCancel();
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

void EventStream::Read(std::unique_ptr<grpc::ClientReader<mimic::v1::Event>> reader) {
  mimic::v1::Event e;
  const uint64_t one = 1;
  while (reader->Read(&e)) {
    {
      common::MutexLock l(&mu_);
      events_.push_back(e);
    }
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  grpc::Status st = reader->Finish();
  {
    common::MutexLock l(&mu_);
    status_ = st;
    done_ = true;
  }
  (void)!::write(wake_fd_, &one, sizeof one);
}

size_t EventStream::count() const {
  common::MutexLock l(&mu_);
  return events_.size();
}

std::vector<mimic::v1::Event> EventStream::events() const {
  common::MutexLock l(&mu_);
  return events_;
}

bool EventStream::done() const {
  common::MutexLock l(&mu_);
  return done_;
}

grpc::Status EventStream::Wait() {
  if (thread_.joinable()) thread_.join();
  common::MutexLock l(&mu_);
  return status_;
}

std::vector<mimic::v1::Event> RunToEnd(std::shared_ptr<grpc::Channel> channel,
                                       const mimic::v1::HostPlan& plan, grpc::Status* status) {
  EventStream s(std::move(channel), plan);
  grpc::Status st = s.Wait();
  if (status != nullptr) *status = st;
  return s.events();
}

std::vector<mimic::v1::Event> AttachAll(std::shared_ptr<grpc::Channel> channel,
                                        const std::string& run_id, grpc::Status* status) {
  EventStream s(std::move(channel), run_id, 1);
  grpc::Status st = s.Wait();
  if (status != nullptr) *status = st;
  return s.events();
}

std::string Why(const std::vector<mimic::v1::Event>& events) {
  std::string out;
  for (const auto& e : events) {
    if (e.has_step_finished() && e.step_finished().status() == mimic::v1::STEP_FAILED) {
      absl::StrAppend(&out, " step ", e.step_finished().step(), " failed: ",
                      e.step_finished().message(), ";");
    }
    if (e.has_run_finished()) {
      absl::StrAppend(&out, " run ", mimic::v1::RunStatus_Name(e.run_finished().status()), ": ",
                      e.run_finished().message());
    }
  }
  return out.empty() ? " (no run_finished)" : out;
}

int OnlyTrial() {
  const char* s = std::getenv("MIMIC_FAULT_TRIAL");
  if (s == nullptr || *s == '\0') return -1;
  return std::atoi(s);
}

mimic::v1::RunFinished Finished(const std::vector<mimic::v1::Event>& events) {
  if (!events.empty() && events.back().has_run_finished()) return events.back().run_finished();
  mimic::v1::RunFinished none;
  none.set_status(mimic::v1::RUN_RUNNING);
  return none;
}

namespace {
// Field by field (map entries in any order: their serialization order is not fixed).
bool Same(const mimic::v1::Event& a, const mimic::v1::Event& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}
}  // namespace

std::string CompareEvents(const std::vector<mimic::v1::Event>& streamed,
                          const std::vector<mimic::v1::Event>& replay, bool last_word_may_differ) {
  for (size_t i = 0; i < replay.size(); ++i) {
    if (replay[i].seq() != i + 1) {
      return absl::StrCat("replay event ", i, " has seq ", replay[i].seq(), ", want ", i + 1);
    }
  }
  size_t must = streamed.size();
  if (last_word_may_differ) {
    // The run's last word (the failed step's end, the run's end) was streamed from memory only.
    auto same = [&](size_t i) {
      return i < replay.size() && Same(streamed[i], replay[i]);
    };
    while (must > 0 && streamed.size() - must < 2 &&
           (streamed[must - 1].has_run_finished() || streamed[must - 1].has_step_finished()) &&
           !same(must - 1)) {
      --must;
    }
  }
  if (replay.size() < must) {
    return absl::StrCat("the agent holds ", replay.size(), " events after the fault, the client ",
                        "had received ", must, ": event seq ", replay.size() + 1, " was lost");
  }
  for (size_t i = 0; i < must; ++i) {
    if (!Same(streamed[i], replay[i])) {
      std::string report;
      google::protobuf::util::MessageDifferencer d;
      d.ReportDifferencesToString(&report);
      d.Compare(streamed[i], replay[i]);
      return absl::StrCat("event seq ", i + 1, " (", streamed[i].run_id(), ") differs: ",
                          report.substr(0, 1500));
    }
  }
  return "";
}

std::vector<mimic::v1::Event> JournalEvents(const std::string& journal_path) {
  auto c = agent::Journal::Read(journal_path);
  EXPECT_TRUE(c.ok()) << journal_path << ": " << c.status();
  if (!c.ok()) return {};
  EXPECT_TRUE(c->damaged.empty()) << journal_path << ": " << c->damaged.size() << " damaged records";
  return c->events;
}

std::string TreeDiff(const std::map<std::string, std::string>& want,
                     const std::map<std::string, std::string>& got, size_t max) {
  std::string out;
  size_t n = 0;
  auto add = [&](const std::string& line) {
    if (n++ < max) absl::StrAppend(&out, "  ", line, "\n");
  };
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      add(absl::StrCat("missing ", k, " (", v, ")"));
    } else if (it->second != v) {
      add(absl::StrCat("differs ", k, ": want ", v, ", got ", it->second));
    }
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k)) add(absl::StrCat("extra   ", k, " (", v, ")"));
  }
  if (n > max) absl::StrAppend(&out, "  ... ", n - max, " more\n");
  return out;
}

void PrintFigures(const std::string& campaign, int trials, int survived, uint32_t seed,
                  const std::string& detail) {
  std::printf("[fault] %s: %d trials, %d survived, seed=%u%s%s\n", campaign.c_str(), trials,
              survived, seed, detail.empty() ? "" : " ", detail.c_str());
  std::fflush(stdout);
}

}  // namespace mimic::testing
