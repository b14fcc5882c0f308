// mimic's lock: absl::Mutex (same calls, same semantics: conditions are re-evaluated on every
// unlock, timeouts and deadlines as absl's) that ThreadSanitizer can see.
//
// Debian's Abseil is not built with TSan, so absl::Mutex's lock, unlock and Await run in
// uninstrumented code (futexes and atomics TSan never sees): every access guarded by one would
// look like a race. In a TSan build (MIMIC_TSAN, defined by -DMIMIC_SANITIZE=thread) each call
// here tells TSan what the mutex did, as an instrumented Abseil does: __tsan_mutex_* around the
// real call, memory accesses inside it ignored (which covers a Condition that another thread's
// Unlock evaluates). In every other build each call is absl::Mutex's, inlined.
#ifndef MIMIC_COMMON_BASE_MUTEX_H_
#define MIMIC_COMMON_BASE_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(MIMIC_TSAN)
#include <sanitizer/tsan_interface.h>
#define MIMIC_TSAN_ANNOTATE(call) call
#else
#define MIMIC_TSAN_ANNOTATE(call) static_cast<void>(0)
#endif

namespace mimic::common {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() { MIMIC_TSAN_ANNOTATE(__tsan_mutex_create(this, __tsan_mutex_not_static)); }
  ~Mutex() { MIMIC_TSAN_ANNOTATE(__tsan_mutex_destroy(this, __tsan_mutex_not_static)); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_pre_lock(this, 0));
    mu_.Lock();
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_post_lock(this, 0, 0));
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_pre_unlock(this, 0));
    mu_.Unlock();
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_post_unlock(this, 0));
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

  // Held on entry and on return; released while waiting (to TSan: always, whether or not absl
  // had to wait, which only adds ordering that holding the lock already implies).
  void Await(const absl::Condition& cond) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Waiting([&] { mu_.Await(cond); return true; });
  }
  // False when the time ran out with `cond` still false (the lock is held either way).
  bool AwaitWithTimeout(const absl::Condition& cond, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return Waiting([&] { return mu_.AwaitWithTimeout(cond, timeout); });
  }
  bool AwaitWithDeadline(const absl::Condition& cond, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return Waiting([&] { return mu_.AwaitWithDeadline(cond, deadline); });
  }

 private:
  // Runs `wait` (one of absl's Await calls) as, to TSan, an unlock then a lock.
  template <typename Wait>
  bool Waiting(Wait wait) {
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_pre_unlock(this, 0));
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_post_unlock(this, 0));
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_pre_lock(this, 0));
    bool met = wait();
    MIMIC_TSAN_ANNOTATE(__tsan_mutex_post_lock(this, 0, 0));
    return met;
  }

  absl::Mutex mu_;
};

// Holds `mu` for its scope, as absl::MutexLock.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_MUTEX_H_
