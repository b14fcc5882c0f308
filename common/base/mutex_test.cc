#include "common/base/mutex.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mimic::common {
namespace {

// Under ThreadSanitizer (tests/sanitize.sh tsan) these fail as data races when the lock does
// not tell TSan what it does (a bare absl::Mutex from Debian's uninstrumented Abseil).
TEST(MutexTest, GuardsDataAcrossThreads) {
  Mutex mu;
  int n = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        MutexLock l(&mu);
        ++n;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(n, 4000);
}

TEST(MutexTest, AwaitSeesWhatAnotherThreadWroteUnderTheLock) {
  Mutex mu;
  bool ready = false;
  std::string payload;
  std::thread writer([&] {
    MutexLock l(&mu);
    payload = "written";
    ready = true;
  });
  {
    MutexLock l(&mu);
    mu.Await(absl::Condition(&ready));
    EXPECT_EQ(payload, "written");  // read before the join: only the lock orders it
  }
  writer.join();
}

TEST(MutexTest, AwaitWithTimeoutAndDeadlineSayWhetherTheConditionHeld) {
  Mutex mu;
  bool never = false;
  bool always = true;
  MutexLock l(&mu);
  EXPECT_FALSE(mu.AwaitWithTimeout(absl::Condition(&never), absl::Milliseconds(1)));
  EXPECT_FALSE(mu.AwaitWithDeadline(absl::Condition(&never), absl::InfinitePast()));
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&always), absl::ZeroDuration()));
  EXPECT_TRUE(mu.AwaitWithDeadline(absl::Condition(&always), absl::InfinitePast()));
  mu.AssertHeld();
}

// Unlock and Lock by hand (rollout.cc drops its lock around a call that may block).
TEST(MutexTest, UnlockAndLockByHand) {
  Mutex mu;
  int n = 0;
  mu.Lock();
  std::thread other([&] {
    MutexLock l(&mu);
    ++n;
  });
  mu.Unlock();
  other.join();
  mu.Lock();
  EXPECT_EQ(n, 1);
  mu.Unlock();
}

}  // namespace
}  // namespace mimic::common
