#include "agent/engine/run_emitter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/logging.h"
#include "common/mi/secrets.h"

namespace mimic::agent {
namespace {

using mimic::v1::Event;

mimic::v1::LogLevel ToProto(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return mimic::v1::LOG_DEBUG;
    case LogLevel::kInfo: return mimic::v1::LOG_INFO;
    case LogLevel::kWarning: return mimic::v1::LOG_WARNING;
    case LogLevel::kError: return mimic::v1::LOG_ERROR;
  }
  return mimic::v1::LOG_INFO;
}

}  // namespace

Emitter::Emitter(RunState* run, std::string host, std::unique_ptr<Journal> journal,
                 std::string state_dir, std::unique_ptr<common::SecretScrubber> secrets,
                 absl::Duration flush_delay)
    : run_(run), host_(std::move(host)), journal_(std::move(journal)),
      state_dir_(std::move(state_dir)), secrets_(std::move(secrets)), flush_delay_(flush_delay) {
  if (journal_ != nullptr) flusher_ = std::thread([this] { FlushLoop(); });
}

Emitter::~Emitter() {
  {
    common::MutexLock l(&mu_);
    stop_ = true;
    if (error_.ok()) FlushLocked();
  }
  if (flusher_.joinable()) flusher_.join();
}

bool Emitter::Emit(Event e, Durable durable) {
  common::MutexLock l(&mu_);
  return EmitLocked(std::move(e), durable);
}

void Emitter::EmitLastWord(Event e) {
  common::MutexLock l(&mu_);
  if (EmitLocked(e, Durable::kNow)) return;
  Stamp(&e);
  run_->Publish(e, -1);
}

bool Emitter::ok() const {
  common::MutexLock l(&mu_);
  return error_.ok();
}

std::string Emitter::Failure() const {
  common::MutexLock l(&mu_);
  return absl::StrCat("the run's journal could not be written (agent state directory ",
                      state_dir_, "): ", error_.message(),
                      "; the run stopped; free space there, then roll back or run again");
}

void Emitter::Log(const std::string& step, LogLevel level, const std::string& text) {
  Event e;
  e.mutable_log()->set_step(step);
  e.mutable_log()->set_level(ToProto(level));
  e.mutable_log()->set_text(common::RedactText(text));
  Emit(std::move(e), Durable::kWithNext);
}

bool Emitter::EmitLocked(Event e, Durable durable) {
  if (!error_.ok()) return false;
  Stamp(&e);
  if (journal_ == nullptr) {
    run_->Publish(e, -1);
    return true;
  }
  const bool hold = durable == Durable::kWithNext;
  uint64_t at = 0;
  if (absl::Status st = journal_->Append(e, &at, /*sync=*/!hold); !st.ok()) {
    Stop(st, /*numbered=*/1);
    return false;
  }
  held_.push_back(Held{std::move(e), at, journal_->size()});
  if (!hold) PublishDurable();
  return true;
}

void Emitter::FlushLocked() {
  if (journal_ == nullptr || held_.empty() || !error_.ok()) return;
  if (absl::Status st = journal_->Sync(); !st.ok()) {
    Stop(st, /*numbered=*/0);
    return;
  }
  PublishDurable();
}

void Emitter::PublishDurable() {
  size_t n = 0;
  for (; n < held_.size() && held_[n].end <= journal_->durable_size(); ++n) {
    run_->Publish(held_[n].event, static_cast<int64_t>(held_[n].offset));
  }
  held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(n));
}

void Emitter::Stop(const absl::Status& st, int numbered) {
  error_ = st;
  PublishDurable();  // what the journal still made durable before it failed
  // The rest is not streamed; their numbers go to the run's last word.
  seq_ -= held_.size() + static_cast<uint64_t>(numbered);
  held_.clear();
  LOG(ERROR) << "run " << run_->run_id() << ": " << st << "; the run stops";
}

void Emitter::FlushLoop() {
  common::MutexLock l(&mu_);
  for (;;) {
    mu_.Await(absl::Condition(this, &Emitter::StopOrHeld));
    if (stop_) return;
    mu_.AwaitWithTimeout(absl::Condition(&stop_), flush_delay_);
    if (stop_) return;
    FlushLocked();
  }
}

void Emitter::Stamp(Event* e) {
  e->set_run_id(run_->run_id());
  e->set_host(host_);
  e->set_seq(++seq_);
  e->set_time_unix_micros(common::NowMicros());
  common::ScrubEvent(e, *secrets_);
  BoundEvent(e);
}

}  // namespace mimic::agent
