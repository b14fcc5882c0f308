// The controller's side of the wire against an in-process Agent service (insecure, 127.0.0.1).
#include "controller/rollout/agent_client.h"

#include <sys/resource.h>

#include <memory>

#include "common/base/mutex.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

// Answers Run with two events, then OK.
class TwoEvents final : public v1::Agent::CallbackService {
  grpc::ServerWriteReactor<v1::Event>* Run(grpc::CallbackServerContext*,
                                           const v1::RunRequest* req) override {
    class Stream final : public grpc::ServerWriteReactor<v1::Event> {
     public:
      explicit Stream(const std::string& run_id) {
        e_.set_run_id(run_id);
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::CANCELLED);
        Next();
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        if (sent_ == 2) return Finish(grpc::Status::OK);
        e_.set_seq(++sent_);
        StartWrite(&e_);
      }
      v1::Event e_;
      int sent_ = 0;
    };
    return new Stream(req->plan().run_id());
  }
};

class AgentClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  TwoEvents service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// on_done may close the channel (the rollout closes each finished host's channel at once):
// the call must no longer hold it then. gRPC 1.51 tears its client callback threads down with
// the last channel; if a callback thread dropped that last reference, it would join itself
// and free the queue it still polls (heap corruption at the end of a 200-host run).
TEST_F(AgentClientTest, TheCallHoldsNoChannelWhenOnDoneRuns) {
  common::Host host;
  host.name = "agent";
  host.address = "127.0.0.1:" + std::to_string(port_);
  std::shared_ptr<grpc::Channel> channel =
      MakeAgentChannel(host, grpc::InsecureChannelCredentials());
  auto stub = v1::Agent::NewStub(channel);
  v1::RunRequest req;
  req.mutable_plan()->set_run_id("r.agent");
  int events = 0;
  long refs_at_done = -1;
  grpc::Status status;
  common::Mutex mu;  // the callbacks run on gRPC's threads
  bool done = false;
  EventCall::StartRun(
      stub.get(), req, std::chrono::system_clock::now() + std::chrono::seconds(60),
      [&](v1::Event*) {
        common::MutexLock l(&mu);
        ++events;
      },
      [&](const grpc::Status& s) {
        common::MutexLock l(&mu);
        status = s;
        refs_at_done = channel.use_count();  // this test's and the stub's: no call's
        done = true;
      });
  common::MutexLock l(&mu);
  mu.Await(absl::Condition(&done));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(events, 2);
  EXPECT_EQ(refs_at_done, 2);
}

TEST(RaiseOpenFileLimitTest, RaisesTheSoftLimitToTheHardLimit) {
  struct rlimit before {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  struct rlimit lowered = before;
  lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 256);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  EXPECT_EQ(RaiseOpenFileLimit(), before.rlim_max);
  struct rlimit after {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
}

}  // namespace
}  // namespace mimic::controller
