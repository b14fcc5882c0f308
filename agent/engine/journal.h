// The run journal: every event of a run, appended and fsynced before it is streamed, so a
// result survives a lost controller, a lost network and an agent restart.
// Format: records of [u32 length LE][u32 crc32 LE][serialized mimic.v1.Event].
#ifndef MIMIC_AGENT_ENGINE_JOURNAL_H_
#define MIMIC_AGENT_ENGINE_JOURNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

class Journal {
 public:
  // Opens (creating if needed) the journal file at `path` for appending.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;  // owns a file descriptor
  Journal& operator=(const Journal&) = delete;

  // Appends one event and fdatasyncs. Not thread-safe: the run that owns it serialises calls.
  absl::Status Append(const mimic::v1::Event& event);

  // Every complete record of the journal at `path`, in order. A torn last record (a crash in the
  // middle of a write) is dropped and reported through `torn` when given; corruption before the
  // end is DATA_LOSS.
  static absl::StatusOr<std::vector<mimic::v1::Event>> ReadAll(const std::string& path,
                                                               bool* torn = nullptr);

 private:
  Journal(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

uint32_t Crc32(const std::string& bytes);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_JOURNAL_H_
