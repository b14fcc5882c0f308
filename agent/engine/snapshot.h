// The run's snapshot: the original bytes, mode and sha256 of every target path a run is about
// to write, plus the directories it creates and removes, so the run can be rolled back byte for
// byte. Stored under the run's directory:
//
//   <run_dir>/snapshot/manifest    its format version ("# mimic snapshot manifest v2"), the run's
//                                  target home, then one record per line, appended and fsynced
//                                  before each write
//   <run_dir>/snapshot/files/<n>   the saved bytes of the n-th saved file (fsynced)
//
// Rollback is itself a change set (PlanRollback), applied by ApplyChangeSet with the rolling-back
// run's own Snapshot, so a rollback is exact in check mode and can itself be rolled back.
#ifndef MIMIC_AGENT_ENGINE_SNAPSHOT_H_
#define MIMIC_AGENT_ENGINE_SNAPSHOT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/step.h"
#include "common/base/fs.h"

namespace mimic::agent {

// One run's snapshot. Not thread-safe: a run applies its steps one at a time.
class Snapshot {
 public:
  // Opens (creating as needed) <run_dir>/snapshot/. A new manifest starts with its format
  // version and `target_home` (so a rollback needs nothing else: SnapshotTargetHome). An
  // existing manifest is loaded, so a resumed run keeps what it saved before; a torn last line
  // (crash mid-append) is cut off. DATA_LOSS when the manifest holds a malformed complete line
  // or no version line; FAILED_PRECONDITION for a format version this agent does not know.
  static absl::StatusOr<std::unique_ptr<Snapshot>> Open(const std::string& run_dir,
                                                        const std::string& target_home = "");

  // Owns an on-disk directory that only one object may append to.
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot();

  // Records the current state of `path` (absolute): whether it exists and, when it is a regular
  // file, its bytes (copied to files/<n>, made durable and put in place before its record is
  // written: at once, or with the batch's others at Flush()), mode, owner, group and sha256. Idempotent per path: the
  // first call wins, later calls return OK at once, so the snapshot keeps the state from before
  // the run's first write. FAILED_PRECONDITION when `path` exists but is not a regular file.
  absl::Status Save(const std::string& path);

  // Records that the run is about to create directory `path` (rollback removes it when empty).
  absl::Status RecordCreatedDir(const std::string& path);
  // Records that the run is about to remove empty directory `path`, with its mode, owner and
  // group (rollback recreates it so; -1: not known, the parent's are taken).
  absl::Status RecordRemovedDir(const std::string& path, uint32_t mode, int64_t uid = -1,
                                int64_t gid = -1);
  // Records the sha256 the run writes to `path` ("" = the run deletes it). Called just before the
  // write, so a crash between record and write leaves a state rollback still accepts. Nothing is
  // appended when the run's last record for `path` already says so.
  absl::Status RecordWritten(const std::string& path, const std::string& sha256_after);

  // Before the run replaces or deletes `path`, whose sha256 is now `current_sha256` ("" =
  // absent): OK when the snapshot has not saved it yet, or holds it as it is now (the saved
  // original, or what the run last wrote). FAILED_PRECONDITION naming the path otherwise: the
  // file changed after it was saved ahead (snapshot_target), and its current bytes are in no
  // snapshot, so replacing them would lose them.
  absl::Status CheckUnchanged(const std::string& path, const std::string& current_sha256) const;

  // Batched durability. Between BeginBatch() and Flush() the records above are kept in memory;
  // Flush() appends them all with one write and makes them durable with one fsync. The caller
  // must Flush() before it changes any path recorded in the batch (ApplyChangeSet records a
  // whole change set ahead, flushes once, then writes). The batch's saved copies (files/<n>) are
  // made durable first, together (common::SyncStaged, then one fsync of files/). Records of a
  // batch never flushed are appended, unsynced, when the snapshot is destroyed; when its saved
  // copies cannot be made durable, Flush() fails and the batch's records are never written.
  void BeginBatch() { batch_ = true; }
  absl::Status Flush();
  // Saves every path (Save), with one fsync of the manifest for all (snapshot_target).
  absl::Status SaveAll(const std::vector<std::string>& paths);

  bool IsSaved(const std::string& path) const { return saved_.count(path) > 0; }
  // True when the run recorded a write (or delete) of `path`.
  bool HasWritten(const std::string& path) const { return last_written_.count(path) > 0; }
  // Total size of the saved file bytes.
  uint64_t bytes() const { return bytes_; }
  // Distinct paths recorded: saved files plus created directories.
  size_t entries() const { return saved_.size() + created_dirs_.size(); }
  // <run_dir>/snapshot
  const std::string& dir() const { return dir_; }

 private:
  explicit Snapshot(std::string dir) : dir_(std::move(dir)) {}
  // Queues `line`; outside a batch, Flush()es at once.
  absl::Status Append(const std::string& line);
  // Appends the queued lines to the manifest (unsynced).
  absl::Status WritePending();
  // Puts the staged saved copies in place (made durable first when `sync`, then their folder
  // fsynced); on error the copies not in place are removed and the queued lines dropped.
  absl::Status CommitBlobs(bool sync);

  std::string dir_;
  std::map<std::string, std::string> saved_;         // path -> original sha256 ("" = absent)
  std::map<std::string, std::string> last_written_;  // path -> sha256 the run wrote last
  std::set<std::string> created_dirs_;
  uint64_t next_blob_ = 0;
  uint64_t bytes_ = 0;
  bool batch_ = false;   // appends wait for Flush()
  bool dirty_ = false;   // appended since the last fsync
  bool dir_synced_ = true;  // false: the manifest was created and its folder not yet fsynced
  int manifest_fd_ = -1;    // the manifest, open for appends
  int files_fd_ = -1;       // files/
  // Saved copies written to temporaries, not yet durable nor in place: (name in files/, write).
  std::vector<std::pair<std::string, common::StagedWrite>> blobs_;
  std::string pending_;     // lines queued, not yet written
};

// The change set that undoes the run stored in `run_dir_to_undo`, so that every path it touched
// is as it was before the run (content and mode), files it created are deleted and directories
// it created are removed (when nothing else is in them). Per path: a file saved but never
// written needs nothing; a file already back to its original state needs nothing; otherwise
// its current sha256 must be the one the run wrote, else the path was changed since, and the
// result is FAILED_PRECONDITION listing every such path ("use force to restore anyway") unless
// `force`, in which case the op expects whatever is there now. Order: directories the run
// removed are recreated first, then files are restored newest first, then created directories
// are removed deepest first. NOT_FOUND when `run_dir_to_undo` does not exist; an empty change
// set when the run saved nothing. Reads only. A manifest of an unknown format version is refused
// (FAILED_PRECONDITION naming the version): rollback never guesses.
// Temporary files of interrupted writes (TempPrefix) beside the paths the run saved are deleted
// (after the files, before the directories), so the tree ends byte-exact.
absl::StatusOr<ChangeSet> PlanRollback(const std::string& run_dir_to_undo, bool force);

// The target home the run in `run_dir` wrote, as its snapshot manifest records it (so a run
// whose journal lost its start record can still be rolled back). NOT_FOUND without a manifest
// or when it records nothing (the run wrote nothing); FAILED_PRECONDITION when the manifest does
// not record it (format v1).
absl::StatusOr<std::string> SnapshotTargetHome(const std::string& run_dir);

// The change set that deletes the temporary files interrupted writes of the run in `run_dir`
// left beside the paths its snapshot lists (kDelete ops with temp_debris set; empty when there
// are none). Recovery applies it after a crash. Reads only.
absl::StatusOr<ChangeSet> PlanTempFileRemoval(const std::string& run_dir);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_SNAPSHOT_H_
