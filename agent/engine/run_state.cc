#include "agent/engine/run_state.h"

#include <algorithm>
#include <optional>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "absl/strings/str_cat.h"
#include "agent/engine/journal.h"
#include "common/base/logging.h"
#include "common/base/text.h"

namespace mimic::agent {

using mimic::v1::Event;
using mimic::v1::HostPlan;

namespace {

// `s` cut to at most `max` bytes (a marker included) at a UTF-8 boundary, then made valid
// UTF-8. Cut text ends in "... [truncated: N bytes]", N the bytes left out.
void BoundText(std::string* s, size_t max) {
  if (s->size() > max) {
    size_t keep = max - 64;  // room for the marker
    while (keep > 0 && (static_cast<unsigned char>((*s)[keep]) & 0xC0) == 0x80) --keep;
    const size_t dropped = s->size() - keep;
    s->resize(keep);
    absl::StrAppend(s, "... [truncated: ", dropped, " bytes]");
  }
  if (!common::IsValidUtf8(*s)) *s = common::RepairUtf8(*s);
}

// Every string field of `m`, however deep (repeated, maps, oneofs), through BoundText.
void BoundStrings(google::protobuf::Message* m, size_t max) {
  const google::protobuf::Reflection* r = m->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) {
    using FD = google::protobuf::FieldDescriptor;
    if (f->cpp_type() == FD::CPPTYPE_STRING && f->type() == FD::TYPE_STRING) {
      std::string scratch;
      auto needs_work = [max](const std::string& v) {
        return v.size() > max || !common::IsValidUtf8(v);
      };
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          if (!needs_work(r->GetRepeatedStringReference(*m, f, i, &scratch))) continue;
          std::string b = r->GetRepeatedString(*m, f, i);
          BoundText(&b, max);
          r->SetRepeatedString(m, f, i, std::move(b));
        }
      } else if (needs_work(r->GetStringReference(*m, f, &scratch))) {
        std::string b = r->GetString(*m, f);
        BoundText(&b, max);
        r->SetString(m, f, std::move(b));
      }
    } else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          BoundStrings(r->MutableRepeatedMessage(m, f, i), max);
        }
      } else {
        BoundStrings(r->MutableMessage(m, f), max);
      }
    }
  }
}

}  // namespace

void BoundEvent(Event* e) {
  BoundStrings(e, kMaxEventFieldBytes);
  if (e->ByteSizeLong() <= kMaxEventBytes || !e->has_step_finished()) return;
  // Too many changes for one event: keep what fits, count the rest in the message.
  mimic::v1::StepFinished* sf = e->mutable_step_finished();
  const int changes = sf->changes_size(), config_changes = sf->config_changes_size();
  const size_t budget = kMaxEventBytes - 2 * kMaxEventFieldBytes;  // the rest and the note
  // Removing an element saves at least its size plus a tag and a length byte, so `size` never
  // falls below the event's real size.
  size_t size = e->ByteSizeLong();
  // --diff text goes first (last file first): the list of changes is the record, the diff not.
  int diffs_cut = 0;
  for (int i = sf->changes_size() - 1; i >= 0 && size > budget; --i) {
    mimic::v1::FileChange* c = sf->mutable_changes(i);
    if (c->diff().empty()) continue;
    size -= c->diff().size();
    c->set_diff("... diff left out: event size limit\n");
    size += c->diff().size();
    ++diffs_cut;
  }
  if (size <= budget) {
    absl::StrAppend(sf->mutable_message(), " [event size limit: ", diffs_cut,
                    " diffs left out]");
    BoundText(sf->mutable_message(), kMaxEventFieldBytes);
    return;
  }
  while (size > budget && sf->config_changes_size() > 0) {
    size -= sf->config_changes(sf->config_changes_size() - 1).ByteSizeLong() + 2;
    sf->mutable_config_changes()->RemoveLast();
  }
  while (size > budget && sf->changes_size() > 0) {
    size -= sf->changes(sf->changes_size() - 1).ByteSizeLong() + 2;
    sf->mutable_changes()->RemoveLast();
  }
  std::string note = absl::StrCat(" [event size limit: ", changes - sf->changes_size(), " of ",
                                  changes, " file changes and ",
                                  config_changes - sf->config_changes_size(), " of ",
                                  config_changes, " config changes not shown]");
  BoundText(&note, kMaxEventFieldBytes);
  sf->mutable_message()->append(note);
  BoundText(sf->mutable_message(), kMaxEventFieldBytes);
}

void RunState::Events(uint64_t from_seq, size_t max, std::vector<Event>* out,
                      bool* finished) const {
  std::vector<std::pair<Entry, std::optional<Event>>> got;
  {
    common::MutexLock l(&mu_);
    auto it = std::lower_bound(index_.begin(), index_.end(), from_seq,
                               [](const Entry& e, uint64_t seq) { return e.seq < seq; });
    for (; it != index_.end() && got.size() < max; ++it) {
      auto m = memory_.find(it->seq);
      if (m != memory_.end()) {
        got.emplace_back(*it, m->second);
      } else if (it->offset >= 0) {
        got.emplace_back(*it, std::nullopt);  // read below, outside the lock
      }
    }
    *finished = finished_ && it == index_.end();
  }
  // Evicted events: read back from the journal (a finished run's journal no longer changes),
  // opened once for all of them.
  std::vector<uint64_t> offsets;
  for (const auto& [entry, ev] : got) {
    if (!ev.has_value()) offsets.push_back(static_cast<uint64_t>(entry.offset));
  }
  std::vector<absl::StatusOr<Event>> reads;
  if (!offsets.empty()) reads = Journal::ReadAt(journal_path_, offsets);
  size_t next_read = 0;
  for (auto& [entry, ev] : got) {
    if (!ev.has_value()) {
      absl::StatusOr<Event>& read = reads[next_read++];
      if (read.ok()) {
        ev = std::move(*read);
      } else {
        LOG(ERROR) << "run " << run_id_ << ": event " << entry.seq << ": " << read.status();
        ev.emplace();
        ev->set_run_id(run_id_);
        ev->set_seq(entry.seq);
        ev->mutable_log()->set_level(mimic::v1::LOG_ERROR);
        ev->mutable_log()->set_text("this event could not be read back from the agent's journal: " +
                                    std::string(read.status().message()));
      }
    }
    out->push_back(std::move(*ev));
  }
}

size_t RunState::events_in_memory() const {
  common::MutexLock l(&mu_);
  return memory_.size();
}

int RunState::Subscribe(std::function<void()> cb) {
  common::MutexLock l(&subs_mu_);
  int id = next_sub_++;
  subs_[id] = std::move(cb);
  return id;
}

void RunState::Unsubscribe(int id) {
  common::MutexLock l(&subs_mu_);
  subs_.erase(id);
}

void RunState::Publish(const Event& e, int64_t journal_offset) {
  {
    common::MutexLock l(&mu_);
    index_.push_back({e.seq(), journal_offset});
    memory_[e.seq()] = e;
    summary_.set_run_id(run_id_);
    summary_.set_last_seq(e.seq());
    if (e.has_run_started()) {
      const HostPlan& p = e.run_started().plan();
      summary_.set_rollout_id(p.rollout_id());
      summary_.set_host(p.host());
      summary_.set_mode(p.mode());
      summary_.set_target_home(p.target_home());
      summary_.set_status(mimic::v1::RUN_RUNNING);
      summary_.set_started_unix_micros(e.time_unix_micros());
    }
    if (e.has_run_finished()) {
      finished_ = true;
      summary_.set_status(e.run_finished().status());
      summary_.set_finished_unix_micros(e.time_unix_micros());
      // Finished: what the journal holds is read back from it on demand.
      if (!journal_path_.empty()) {
        for (const Entry& en : index_) {
          if (en.offset >= 0) memory_.erase(en.seq);
        }
      }
    }
  }
  common::MutexLock l(&subs_mu_);
  for (auto& [id, cb] : subs_) cb();
}

mimic::v1::RunSummary RunState::Summary() const {
  common::MutexLock l(&mu_);
  return summary_;
}

bool RunState::finished() const {
  common::MutexLock l(&mu_);
  return finished_;
}

}  // namespace mimic::agent
