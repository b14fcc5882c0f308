// WaitUntil (test_env.h) wakes on what it is told to watch and on nothing else: no timer. In
// each test the change happens only after WaitUntil has checked the condition once (the first
// check lets it happen), so only the wake-up can see it.
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "common/base/fs.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

// Runs `change` on another thread once `done` has been checked once; then returns `done()`.
class AfterFirstCheck {
 public:
  explicit AfterFirstCheck(std::function<void()> change) : change_(std::move(change)) {}
  ~AfterFirstCheck() {
    if (thread_.joinable()) thread_.join();
  }
  std::function<bool()> Wrap(std::function<bool()> done) {
    return [this, done] {
      if (!started_.exchange(true)) thread_ = std::thread(change_);
      return done();
    };
  }

 private:
  std::function<void()> change_;
  std::atomic<bool> started_{false};
  std::thread thread_;
};

std::string Scratch(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/wait-" + name + "-" + std::to_string(getpid());
  EXPECT_TRUE(common::MakeDirs(d).ok());
  return d;
}

TEST(WaitUntilTest, WakesOnAFileWrittenInAWatchedDirectory) {
  const std::string dir = Scratch("file");
  const std::string path = dir + "/out.log";
  WriteText(path, "starting\n");
  AfterFirstCheck later([&] { WriteText(path, "starting\nready\n"); });
  EXPECT_TRUE(WaitUntil(later.Wrap([&] { return ReadText(path).find("ready") != std::string::npos; }),
                        60, {.dirs = {dir}}));
}

TEST(WaitUntilTest, WakesOnAChildsExit) {
  int rd[2];
  ASSERT_EQ(pipe(rd), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(rd[1]);
    char c;
    (void)!read(rd[0], &c, 1);  // EOF once the parent has checked once and closed its end
    _exit(0);
  }
  close(rd[0]);
  int st = 0;
  AfterFirstCheck later([&] { close(rd[1]); });
  EXPECT_TRUE(WaitUntil(later.Wrap([&] { return waitpid(pid, &st, WNOHANG) == pid; }), 60,
                        {.pids = {pid}}));
}

TEST(WaitUntilTest, WakesOnAnEventfd) {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(fd, 0);
  std::atomic<bool> flag{false};
  AfterFirstCheck later([&] {
    flag = true;
    const uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
  });
  EXPECT_TRUE(WaitUntil(later.Wrap([&] { return flag.load(); }), 60, {.eventfds = {fd}}));
  close(fd);
}

// A change WaitUntil was not told to watch is not seen: it waits to its bound (1 s) and says so.
TEST(WaitUntilTest, AChangeItDoesNotWatchIsNotSeenBeforeTheBound) {
  const std::string dir = Scratch("unwatched");
  const std::string other = Scratch("watched");
  const std::string path = dir + "/flag";
  AfterFirstCheck later([&] { WriteText(path, "x"); });
  EXPECT_FALSE(WaitUntil(later.Wrap([&] { return ReadText(path) == "x"; }), 1, {.dirs = {other}}));
}

}  // namespace
}  // namespace mimic::testing
