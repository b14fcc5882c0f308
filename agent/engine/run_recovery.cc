// RunManager's recovery at start: the runs a stop cut are marked interrupted and their
// temporary files removed (RunManager::Recover, run_manager.h).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "agent/engine/change_set.h"
#include "agent/engine/journal.h"
#include "agent/engine/run_manager.h"
#include "agent/engine/snapshot.h"
#include "common/base/fs.h"
#include "common/base/ids.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"

namespace mimic::agent {

using mimic::v1::Event;

namespace {

// The target home of the run in `run_dir` whose journal holds `events`: from its run_started
// record, or, when that record is damaged, from its snapshot manifest ("" when neither says).
std::string TargetHomeOf(const std::vector<Event>& events, const std::string& run_dir) {
  if (!events.empty() && events.front().has_run_started()) {
    return events.front().run_started().plan().target_home();
  }
  return SnapshotTargetHome(run_dir).value_or("");
}

}  // namespace

bool RunManager::HeldElsewhere(const std::vector<Event>& events, const std::string& run_id) const {
  struct stat home;
  const std::string target = TargetHomeOf(events, RunDir(run_id));
  if (target.empty() || ::stat(target.c_str(), &home) != 0) return false;
  const std::string lock_path = HomeLockPath(home);
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = false;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    auto holder = common::ReadFile(lock_path);
    held = holder.ok() && *holder == run_id;
  }
  ::close(fd);  // releases the lock when this process took it
  return held;
}

absl::Status RunManager::RemoveTempFiles(const std::vector<Event>& events,
                                         const std::string& run_dir) {
  const std::string target = TargetHomeOf(events, run_dir);
  if (target.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(ChangeSet temps, PlanTempFileRemoval(run_dir));
  if (temps.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<Snapshot> snapshot, Snapshot::Open(run_dir));
  std::vector<mimic::v1::FileChange> removed;
  absl::Status st = ApplyChangeSet(temps, target, *snapshot, &removed);
  for (const auto& c : removed) {
    LOG(WARNING) << "removed " << c.path() << ", left by an interrupted write";
  }
  return st;
}

absl::Status RunManager::Recover() {
  std::string runs_dir = common::JoinPath(options_.state_dir, "runs");
  DIR* d = ::opendir(runs_dir.c_str());
  if (d == nullptr) return absl::OkStatus();
  std::vector<std::string> ids;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (ValidRunId(n)) ids.push_back(n);
  }
  ::closedir(d);
  for (const std::string& id : ids) {
    std::string dir = RunDir(id);
    std::string jpath = common::JoinPath(dir, "journal");
    if (!common::PathExists(jpath)) continue;
    auto contents = Journal::Read(jpath);
    if (!contents.ok()) {
      LOG(ERROR) << "run " << id << ": " << contents.status();
      continue;
    }
    for (const std::string& d : contents->damaged) {
      LOG(ERROR) << "run " << id << ": journal " << jpath << ": " << d
                 << " (the run and its snapshot are kept)";
    }
    if (contents->torn) {
      // Drop the torn tail so appends continue from a clean record boundary.
      LOG(WARNING) << "run " << id << ": journal " << jpath << ": torn tail at offset "
                   << contents->valid_end << " truncated";
      if (absl::Status st = Journal::Truncate(jpath, contents->valid_end); !st.ok()) {
        LOG(ERROR) << "run " << id << ": " << st;
      }
    }
    const std::vector<Event>& events = contents->events;
    if (events.empty()) continue;
    auto run = std::make_shared<RunState>(id, dir, jpath);
    for (size_t i = 0; i < events.size(); ++i) {
      if (!events[i].has_run_finished()) run->Publish(events[i], static_cast<int64_t>(contents->offsets[i]));
    }
    if (events.back().has_run_finished()) {
      run->Publish(events.back(), static_cast<int64_t>(contents->offsets.back()));
    } else if (!HeldElsewhere(events, id)) {
      uint64_t last_seq = 0;
      for (const Event& e : events) last_seq = std::max(last_seq, e.seq());
      Event fin;
      fin.set_run_id(id);
      fin.set_host(events.front().host());
      fin.set_seq(last_seq + 1);
      fin.set_time_unix_micros(common::NowMicros());
      fin.mutable_run_finished()->set_status(mimic::v1::RUN_INTERRUPTED);
      fin.mutable_run_finished()->set_message(
          "the agent stopped (or its journal could not be written) while this run was in "
          "progress; the target may be partly migrated: roll it back from its snapshot or run "
          "the plan again");
      int64_t offset = -1;
      auto journal = Journal::Open(jpath);
      absl::Status st = journal.status();
      if (st.ok()) {
        uint64_t at = 0;
        st = (*journal)->Append(fin, &at);
        if (st.ok()) offset = static_cast<int64_t>(at);
      }
      if (!st.ok()) {
        LOG(ERROR) << "run " << id << ": cannot journal its interruption (kept in memory): " << st;
      }
      run->Publish(fin, offset);
      LOG(WARNING) << "run " << id << " was interrupted";
      // Temporary files of writes the stop interrupted go; the snapshot lists where to look.
      if (absl::Status rm = RemoveTempFiles(events, dir); !rm.ok()) {
        LOG(ERROR) << "run " << id << ": " << rm;
      }
    }
    common::MutexLock l(&mu_);
    runs_[id] = run;
  }
  return absl::OkStatus();
}

}  // namespace mimic::agent
