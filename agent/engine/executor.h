// A fixed pool of threads that run the agent's work (steps, file scans) outside gRPC reactions.
#ifndef MIMIC_AGENT_ENGINE_EXECUTOR_H_
#define MIMIC_AGENT_ENGINE_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/base/mutex.h"

namespace mimic::agent {

class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();  // runs what is queued, then joins the threads
  Executor(const Executor&) = delete;  // owns threads
  Executor& operator=(const Executor&) = delete;

  // Queues `fn` to run on a pool thread. Never blocks.
  void Schedule(std::function<void()> fn);

 private:
  void Loop();

  common::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_EXECUTOR_H_
