// The run journal: every event of a run, appended and fsynced before it is streamed, so a
// result survives a lost controller, a lost network and an agent restart.
// Format: records of [u32 length LE][u32 crc32 LE][serialized mimic.v1.Event]. The journal
// alone reads and writes this format.
#ifndef MIMIC_AGENT_ENGINE_JOURNAL_H_
#define MIMIC_AGENT_ENGINE_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// The largest record the journal writes or accepts when reading (events are bounded far below
// this where they are built: see BoundEvent in run_manager.cc).
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

  // Appends one event and fdatasyncs; on success `*offset` (when given) is where its record
  // starts. Not thread-safe: the run that owns it serialises calls.
  // On failure (ENOSPC, EIO, ...) the bytes of the partial record are cut off again (best
  // effort: a tail left behind is torn and recovery truncates it), the journal refuses every
  // later Append with the same error, and the status names the file and the errno.
  absl::Status Append(const mimic::v1::Event& event, uint64_t* offset = nullptr);

  // Reads the journal at `path`. A torn tail is reported through `torn`/`valid_end`; a damaged
  // record followed by good ones is reported in `damaged` and skipped. Fails only when the file
  // cannot be read.
  static absl::StatusOr<JournalContents> Read(const std::string& path);

  // Reads the one record at `offset` (from JournalContents::offsets or Append). DATA_LOSS when
  // the bytes there are not a good record.
  static absl::StatusOr<mimic::v1::Event> ReadAt(const std::string& path, uint64_t offset);

  // Cuts the file at `path` to `size` bytes and fsyncs it (drops a torn tail).
  static absl::Status Truncate(const std::string& path, uint64_t size);

 private:
  Journal(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
  int fd_;
  std::string path_;
  uint64_t size_;        // bytes of good records
  absl::Status broken_;  // the first failed Append; every later one returns it
};

uint32_t Crc32(const std::string& bytes);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_JOURNAL_H_
