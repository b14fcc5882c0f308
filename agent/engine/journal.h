// The run journal: every event of a run, appended and fsynced before it is streamed, so a
// result survives a lost controller, a lost network and an agent restart. Log lines may be
// group-committed with the next event (Append with sync = false, then Sync).
// Format: records of [u32 length LE][u32 crc32 LE][serialized mimic.v1.Event]. The journal
// alone reads and writes this format.
#ifndef MIMIC_AGENT_ENGINE_JOURNAL_H_
#define MIMIC_AGENT_ENGINE_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// The largest record the journal writes or accepts when reading (events are bounded far below
// this where they are built: see BoundEvent in run_state.cc).
inline constexpr uint32_t kMaxJournalRecordBytes = 16u << 20;

// What Journal::Read found in a journal file.
struct JournalContents {
  std::vector<mimic::v1::Event> events;  // every good record, in file order
  std::vector<uint64_t> offsets;         // offsets[i]: where events[i]'s record starts
  // The end of the last good record. Everything after it is a torn tail (a crash or a full
  // disk in the middle of a write) when `torn`.
  uint64_t valid_end = 0;
  bool torn = false;
  // Damaged records before the tail, each reported and skipped (LevelDB log::Reader style):
  // "offset N: bad checksum, M bytes skipped".
  std::vector<std::string> damaged;
};

class Journal {
 public:
  // Opens (creating it and its folder, each fsynced into its parent, if needed) the journal
  // file at `path` for appending.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;  // owns a file descriptor
  Journal& operator=(const Journal&) = delete;

  // Appends one event and fdatasyncs (also every record appended before it); on success
  // `*offset` (when given) is where its record starts. With `sync` false the record is only
  // written: it is durable after the next synced Append or Sync() (group commit; an event must
  // not be streamed before then, see durable_size()). Not thread-safe: the run that owns it
  // serialises calls.
  // On failure (ENOSPC, EIO, ...) the bytes of the partial record are cut off again and what
  // was written before is synced (best effort: a tail left behind is torn and recovery
  // truncates it; when that sync fails too, the file is cut back to durable_size()); the
  // journal refuses every later Append with the same error, and the status names the file and
  // the errno.
  absl::Status Append(const mimic::v1::Event& event, uint64_t* offset = nullptr,
                      bool sync = true);
  // Makes every record appended so far durable (no-op when they are). Fails as Append does.
  absl::Status Sync();
  // The end of the records known durable: a record whose end is at or below it is on disk.
  uint64_t durable_size() const { return durable_; }
  // The end of the records appended (durable or not).
  uint64_t size() const { return size_; }

  // Reads the journal at `path`. A torn tail is reported through `torn`/`valid_end`; a damaged
  // record followed by good ones is reported in `damaged` and skipped. Fails only when the file
  // cannot be read.
  static absl::StatusOr<JournalContents> Read(const std::string& path);

  // Reads the one record at `offset` (from JournalContents::offsets or Append). DATA_LOSS when
  // the bytes there are not a good record.
  static absl::StatusOr<mimic::v1::Event> ReadAt(const std::string& path, uint64_t offset);
  // The records at each of `offsets`, in that order, the file opened once: each as ReadAt
  // would give it (NOT_FOUND for all when the file cannot be opened).
  static std::vector<absl::StatusOr<mimic::v1::Event>> ReadAt(
      const std::string& path, const std::vector<uint64_t>& offsets);

  // Cuts the file at `path` to `size` bytes and fsyncs it (drops a torn tail).
  static absl::Status Truncate(const std::string& path, uint64_t size);

 private:
  Journal(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size), durable_(size) {}
  // Records the failure of `what` with `err`: the file is cut back to the last record
  // boundary, synced, or cut to durable_ when that sync fails.
  absl::Status Fail(const char* what, int err);
  int fd_;
  std::string path_;
  uint64_t size_;        // bytes of good records written
  uint64_t durable_;     // of which known durable (fdatasynced)
  absl::Status broken_;  // the first failed Append; every later one returns it
};

uint32_t Crc32(const std::string& bytes);

// Test hook: called after each fdatasync of a journal (and after a failure cut it back), with
// its path and durable_size(). Null (the default) = none.
void SetJournalSyncHookForTesting(std::function<void(const std::string& path, uint64_t durable)>);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_JOURNAL_H_
