#include "agent/engine/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/engine/change_set.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

// The manifest's first line names its format version: "# mimic snapshot manifest v<N>". A
// version this agent does not know is refused (rollback never guesses at a format).
//   v1  S (owner field since 0.1), D, R, W
//   v2  adds H, the run's target home, right after the version line, and R's owner field
// Manifest records, one per line, fields separated by tabs, the (escaped) path last:
//   H <target home>                                           the home the run writes (v2)
//   S <blob|-> <existed 0|1> <mode octal> <sha256|-> [<uid>:<gid>|-] <path>
//                                                             state before the run's first write
//                                                             (owner field since v1.1)
//   D <path>                                                  directory the run creates
//   R <mode octal> [<uid>:<gid>|-] <path>                     directory the run removes (its
//                                                             mode, owner and group)
//   W <sha256|-> <path>                                       what the run writes ("-" = deletes)
constexpr char kVersionLine[] = "# mimic snapshot manifest v";
constexpr int kVersion = 2;  // written
constexpr int kOldestVersion = 1;  // oldest read

struct Record {
  char kind = 0;
  std::string path;
  std::string blob;  // S
  bool existed = false;
  uint32_t mode = 0;
  std::string sha;  // S: original; W: written ("" = deleted)
  int64_t uid = -1, gid = -1;  // S, R: owner and group (-1 = not recorded)
};

// Percent-escapes the bytes that would break the line format.
std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '%' || c < 0x20 || c == 0x7f) {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool Unescape(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      *out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int v = 0;
    if (std::sscanf(s.substr(i + 1, 2).c_str(), "%2x", &v) != 1) return false;
    *out += static_cast<char>(v);
    i += 2;
  }
  return true;
}

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }
std::string Undash(const std::string& s) { return s == "-" ? "" : s; }
std::string Octal(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode & 07777);
  return buf;
}
bool ParseOctal(const std::string& s, uint32_t* mode) {
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 8);
  if (s.empty() || *end != '\0' || v > 07777) return false;
  *mode = static_cast<uint32_t>(v);
  return true;
}

// "<uid>:<gid>" or "-" into r->uid, r->gid.
bool ParseOwner(const std::string& field, Record* r) {
  if (field == "-") return true;
  std::pair<std::string, std::string> ug = absl::StrSplit(field, ':');
  return absl::SimpleAtoi(ug.first, &r->uid) && absl::SimpleAtoi(ug.second, &r->gid);
}

bool ParseRecord(const std::string& line, Record* r) {
  std::vector<std::string> f = absl::StrSplit(line, '\t');
  if (f.empty() || f[0].size() != 1) return false;
  r->kind = f[0][0];
  switch (r->kind) {
    case 'S':
      if ((f.size() != 6 && f.size() != 7) || (f[2] != "0" && f[2] != "1")) return false;
      r->blob = Undash(f[1]);
      r->existed = f[2] == "1";
      r->sha = Undash(f[4]);
      if (f.size() == 7 && !ParseOwner(f[5], r)) return false;
      return ParseOctal(f[3], &r->mode) && Unescape(f.back(), &r->path);
    case 'D':
    case 'H':
      return f.size() == 2 && Unescape(f[1], &r->path);
    case 'R':
      if (f.size() != 3 && f.size() != 4) return false;
      if (f.size() == 4 && !ParseOwner(f[2], r)) return false;
      return ParseOctal(f[1], &r->mode) && Unescape(f.back(), &r->path);
    case 'W':
      if (f.size() != 3) return false;
      r->sha = Undash(f[1]);
      return Unescape(f[2], &r->path);
    default:
      return false;
  }
}

// Reads the manifest's complete lines. `torn_at` receives the length of the complete part when
// the file ends in a torn (unterminated) line, else std::string::npos. A missing file is empty.
absl::StatusOr<std::vector<Record>> LoadManifest(const std::string& path, size_t* torn_at) {
  *torn_at = std::string::npos;
  std::vector<Record> records;
  if (!common::PathExists(path)) return records;
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
  size_t complete = text.rfind('\n');
  complete = complete == std::string::npos ? 0 : complete + 1;
  if (complete != text.size()) *torn_at = complete;
  int line_no = 0;
  for (absl::string_view raw :
       absl::StrSplit(absl::string_view(text).substr(0, complete), '\n', absl::SkipEmpty())) {
    ++line_no;
    std::string line(raw);
    if (line_no == 1) {
      const std::string prefix = kVersionLine;
      int version = 0;
      if (line.compare(0, prefix.size(), prefix) != 0 ||
          !absl::SimpleAtoi(line.substr(prefix.size()), &version)) {
        return absl::DataLossError(absl::StrCat(
            path, ":1: no format version line (\"", prefix,
            "N\"); not a snapshot manifest this agent can read; rollback does not guess"));
      }
      if (version < kOldestVersion || version > kVersion) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, ":1: snapshot format version v", version, " is unknown to this agent (it reads v",
            kOldestVersion, " to v", kVersion,
            "); rollback does not guess: use the mimic-agent version that wrote it"));
      }
      continue;
    }
    if (line[0] == '#') continue;
    Record r;
    if (!ParseRecord(line, &r)) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_no, ": malformed snapshot manifest line"));
    }
    records.push_back(std::move(r));
  }
  return records;
}

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Snapshot>> Snapshot::Open(const std::string& run_dir,
                                                          const std::string& target_home) {
  const std::string dir = common::JoinPath(run_dir, "snapshot");
  RETURN_IF_ERROR(common::MakeDirs(common::JoinPath(dir, "files"), 0700));
  const std::string manifest = common::JoinPath(dir, "manifest");
  size_t torn_at = 0;
  ASSIGN_OR_RETURN(std::vector<Record> records, LoadManifest(manifest, &torn_at));
  if (torn_at != std::string::npos && ::truncate(manifest.c_str(), torn_at) != 0) {
    return ErrnoError("cannot cut the torn last line", manifest);
  }
  std::unique_ptr<Snapshot> snap(new Snapshot(dir));
  for (const Record& r : records) {
    if (r.kind == 'W') snap->last_written_[r.path] = r.sha;
    if (r.kind == 'S') {
      snap->saved_.emplace(r.path, r.existed ? r.sha : "");
      if (!r.blob.empty()) {
        uint64_t n = 0;
        if (absl::SimpleAtoi(r.blob, &n)) snap->next_blob_ = std::max(snap->next_blob_, n + 1);
        struct stat st;
        const std::string blob = common::JoinPath(common::JoinPath(dir, "files"), r.blob);
        if (::stat(blob.c_str(), &st) == 0) snap->bytes_ += static_cast<uint64_t>(st.st_size);
      }
    } else if (r.kind == 'D') {
      snap->created_dirs_.insert(r.path);
    }
  }
  const std::string files = common::JoinPath(dir, "files");
  snap->files_fd_ = ::open(files.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (snap->files_fd_ < 0) return ErrnoError("cannot open", files);
  // The manifest stays open for appends while the snapshot lives (one open per run).
  snap->dir_synced_ = common::PathExists(manifest);
  snap->manifest_fd_ = ::open(manifest.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (snap->manifest_fd_ < 0) return ErrnoError("cannot open", manifest);
  struct stat mst;
  if (::fstat(snap->manifest_fd_, &mst) != 0 || mst.st_size == 0) {  // new (or cut to nothing)
    std::string head = absl::StrCat(kVersionLine, kVersion);
    if (!target_home.empty()) absl::StrAppend(&head, "\nH\t", Escape(target_home));
    RETURN_IF_ERROR(snap->Append(head));
  }
  return snap;
}

Snapshot::~Snapshot() {
  // A batch never flushed (an error on the way): its saved copies are put in place and its
  // records appended, unsynced, as if written one by one.
  if (CommitBlobs(/*sync=*/false).ok() && manifest_fd_ >= 0 && !pending_.empty()) {
    (void)WritePending();
  }
  if (manifest_fd_ >= 0) ::close(manifest_fd_);
  if (files_fd_ >= 0) ::close(files_fd_);
}

absl::Status Snapshot::CommitBlobs(bool sync) {
  if (blobs_.empty()) return absl::OkStatus();
  const std::string files = common::JoinPath(dir_, "files");
  absl::Status st;
  if (sync) {
    std::vector<common::StagedWrite*> staged;
    for (auto& [name, w] : blobs_) staged.push_back(&w);
    st = common::SyncStaged(staged);
  }
  for (auto& [name, w] : blobs_) {
    if (st.ok()) st = w.Commit();
    struct stat bst;
    if (st.ok() && ::fstatat(files_fd_, name.c_str(), &bst, 0) == 0) {
      bytes_ += static_cast<uint64_t>(bst.st_size);
    }
  }
  if (st.ok() && sync && ::fsync(files_fd_) != 0 && errno != EINVAL) {
    st = ErrnoError("cannot fsync", files);
  }
  blobs_.clear();  // a copy not put in place is removed
  // A record must never name a saved copy that is not there: the batch's records go too.
  if (!st.ok()) pending_.clear();
  return st;
}

absl::Status Snapshot::WritePending() {
  const std::string manifest = common::JoinPath(dir_, "manifest");
  if (manifest_fd_ < 0) {
    manifest_fd_ = ::open(manifest.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (manifest_fd_ < 0) return ErrnoError("cannot open", manifest);
  }
  size_t done = 0;
  while (done < pending_.size()) {
    ssize_t n = ::write(manifest_fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // A partial line is a torn tail, which Open cuts off.
      pending_.clear();
      return ErrnoError("cannot append", manifest);
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
  return absl::OkStatus();
}

absl::Status Snapshot::Append(const std::string& line) {
  absl::StrAppend(&pending_, line, "\n");
  dirty_ = true;
  if (batch_) return absl::OkStatus();  // written and fsynced by Flush()
  return Flush();
}

absl::Status Snapshot::Flush() {
  batch_ = false;
  if (!dirty_) return absl::OkStatus();
  // The saved copies first (one sync for all, then in place, then their folder), so every
  // record that names one is written after it is durable.
  if (absl::Status st = CommitBlobs(/*sync=*/true); !st.ok()) {
    dirty_ = false;
    return st;
  }
  RETURN_IF_ERROR(WritePending());
  if (::fsync(manifest_fd_) != 0) {
    return ErrnoError("cannot fsync", common::JoinPath(dir_, "manifest"));
  }
  if (!dir_synced_) (void)common::FsyncDir(dir_);  // the new manifest's entry; best effort
  dir_synced_ = true;
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status Snapshot::SaveAll(const std::vector<std::string>& paths) {
  BeginBatch();
  absl::Status st;
  for (const std::string& p : paths) {
    st = Save(p);
    if (!st.ok()) break;
  }
  absl::Status flushed = Flush();  // what was saved before an error is durable too
  return st.ok() ? flushed : st;
}

absl::Status Snapshot::Save(const std::string& path) {
  if (saved_.count(path) > 0) return absl::OkStatus();
  struct stat st;
  std::string blob = "-", sha = "-";
  bool existed = false;
  uint32_t mode = 0;
  std::string owner = "-";
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is not a regular file; it cannot be snapshotted"));
    }
    existed = true;
    mode = st.st_mode & 07777;
    owner = absl::StrCat(st.st_uid, ":", st.st_gid);
    blob = absl::StrCat(next_blob_);
    const std::string blob_path = common::JoinPath(common::JoinPath(dir_, "files"), blob);
    // Written to a temporary now, made durable and put in place by Flush() with the batch's
    // other saved copies, before the record naming it is written.
    ASSIGN_OR_RETURN(common::StagedWrite w,
                     common::StageCopyAt(path, files_fd_, blob, blob_path, 0600, -1, -1));
    // The hash of the copy as written, not of the original: the record must describe exactly
    // the saved bytes.
    sha = w.sha256();
    blobs_.emplace_back(blob, std::move(w));
    ++next_blob_;
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return ErrnoError("cannot stat", path);
  }
  RETURN_IF_ERROR(Append(absl::StrJoin(
      {std::string("S"), blob, std::string(existed ? "1" : "0"), Octal(mode), sha, owner,
       Escape(path)},
      "\t")));
  saved_.emplace(path, Undash(sha));
  return absl::OkStatus();
}

absl::Status Snapshot::RecordCreatedDir(const std::string& path) {
  if (created_dirs_.count(path) > 0) return absl::OkStatus();
  RETURN_IF_ERROR(Append(absl::StrCat("D\t", Escape(path))));
  created_dirs_.insert(path);
  return absl::OkStatus();
}

absl::Status Snapshot::RecordRemovedDir(const std::string& path, uint32_t mode, int64_t uid,
                                        int64_t gid) {
  const std::string owner = uid >= 0 && gid >= 0 ? absl::StrCat(uid, ":", gid) : "-";
  return Append(absl::StrCat("R\t", Octal(mode), "\t", owner, "\t", Escape(path)));
}

absl::Status Snapshot::RecordWritten(const std::string& path, const std::string& sha256_after) {
  if (auto it = last_written_.find(path); it != last_written_.end() && it->second == sha256_after) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(Append(absl::StrCat("W\t", Dash(sha256_after), "\t", Escape(path))));
  last_written_[path] = sha256_after;
  return absl::OkStatus();
}

absl::Status Snapshot::CheckUnchanged(const std::string& path,
                                      const std::string& current_sha256) const {
  auto saved = saved_.find(path);
  if (saved == saved_.end() || saved->second == current_sha256) return absl::OkStatus();
  auto written = last_written_.find(path);
  if (written != last_written_.end() && written->second == current_sha256) {
    return absl::OkStatus();
  }
  auto shown = [](const std::string& sha) { return sha.empty() ? std::string("absent") : sha; };
  return absl::FailedPreconditionError(absl::StrCat(
      path, " changed after the run's snapshot saved it (saved sha256 ", shown(saved->second),
      ", now ", shown(current_sha256),
      "); not overwritten, since its current content is in no snapshot: run the plan again"));
}

namespace {

struct FileState {
  size_t first = 0;  // index of the path's S record
  Record saved;
  bool written = false;
  std::string last_written;  // "" = deleted
  // What the run wrote before its last write (the original when it wrote once): a W record is
  // appended just before its write, so a crash between the two leaves this state.
  std::string before_last;
};

// A sha256 for messages: "absent" for "".
std::string Describe(const std::string& sha) { return sha.empty() ? "absent" : sha; }

// Regular files named TempPrefix(basename) + ... beside each path in `files`, sorted.
std::vector<std::string> TempFilesBeside(const std::map<std::string, FileState>& files) {
  std::set<std::string> out;
  for (const auto& [path, state] : files) {
    const std::string dir = common::Dirname(path);
    const std::string prefix = common::TempPrefix(common::Basename(path));
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      if (common::IsRegularFile(e.path().string())) out.insert(e.path().string());
    }
  }
  return std::vector<std::string>(out.begin(), out.end());
}

// Deletes temporary file `tmp` (its sha256 re-checked as for any delete).
FileOp TempFileDelete(const std::string& tmp) {
  FileOp op;
  op.kind = FileOp::Kind::kDelete;
  op.path = tmp;
  op.expected_sha256 = common::Sha256IfExists(tmp).value_or("");
  op.temp_debris = true;
  op.note = "temporary file of an interrupted write";
  return op;
}

absl::StatusOr<std::map<std::string, FileState>> SavedFiles(const std::vector<Record>& records) {
  std::map<std::string, FileState> files;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].kind == 'S' && files.count(records[i].path) == 0) {
      files[records[i].path] = FileState{i, records[i], false, "", ""};
    }
  }
  return files;
}

}  // namespace

absl::StatusOr<ChangeSet> PlanRollback(const std::string& run_dir_to_undo, bool force) {
  if (!common::IsDirectory(run_dir_to_undo)) {
    return absl::NotFoundError(absl::StrCat("run directory ", run_dir_to_undo, " not found"));
  }
  const std::string dir = common::JoinPath(run_dir_to_undo, "snapshot");
  size_t torn_at = 0;
  ASSIGN_OR_RETURN(std::vector<Record> records,
                   LoadManifest(common::JoinPath(dir, "manifest"), &torn_at));

  std::map<std::string, FileState> files;
  std::map<std::string, Record> dirs;  // first record decides: D or R
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    if (r.kind == 'S') {
      if (files.count(r.path) == 0) files[r.path] = FileState{i, r, false, "", ""};
    } else if (r.kind == 'W') {
      auto it = files.find(r.path);
      if (it == files.end()) {
        return absl::DataLossError(absl::StrCat("snapshot of ", run_dir_to_undo,
                                                " records a write of ", r.path,
                                                " without its original; cannot roll it back"));
      }
      it->second.before_last = it->second.written ? it->second.last_written
                                                  : (it->second.saved.existed ? it->second.saved.sha : "");
      it->second.written = true;
      it->second.last_written = r.sha;
    } else if ((r.kind == 'D' || r.kind == 'R') && dirs.count(r.path) == 0) {
      dirs[r.path] = r;
    }
  }

  std::vector<const FileState*> order;
  for (const auto& [path, state] : files) order.push_back(&state);
  std::sort(order.begin(), order.end(),
            [](const FileState* a, const FileState* b) { return a->first > b->first; });

  ChangeSet out;
  std::vector<std::string> conflicts;
  std::set<std::string> removed;  // paths this plan deletes or rmdirs

  // 1. Directories the run removed come back first (parents before children).
  for (const auto& [path, rec] : dirs) {
    if (rec.kind != 'R' || common::IsDirectory(path)) continue;
    FileOp op;
    op.kind = FileOp::Kind::kMkdir;
    op.path = path;
    op.mode = rec.mode;
    op.uid = rec.uid;
    op.gid = rec.gid;
    op.note = "recreate directory removed by the run";
    out.ops.push_back(std::move(op));
  }
  // 2. Files, newest first.
  const std::string files_dir = common::JoinPath(dir, "files");
  for (const FileState* f : order) {
    if (!f->written) continue;  // saved ahead (snapshot_target) but never written
    const std::string& path = f->saved.path;
    absl::StatusOr<std::string> current = CurrentSha256(path);
    if (!current.ok()) {
      conflicts.push_back(std::string(current.status().message()));
      continue;
    }
    const std::string original = f->saved.existed ? f->saved.sha : "";
    if (*current == original) continue;  // already as before the run
    // The run's own states: what it wrote last, or what it had written before a last write a
    // crash cut between its record and its rename.
    if (*current != f->last_written && *current != f->before_last && !force) {
      conflicts.push_back(absl::StrCat(path, " (the run left ", Describe(f->last_written), ", now ",
                                       Describe(*current), ")"));
      continue;
    }
    FileOp op;
    op.path = path;
    op.expected_sha256 = *current;
    if (f->saved.existed) {
      op.kind = FileOp::Kind::kWrite;
      op.source_path = common::JoinPath(files_dir, f->saved.blob);
      op.new_sha256 = original;
      struct stat st;
      if (::stat(op.source_path.c_str(), &st) != 0) {
        return absl::DataLossError(absl::StrCat("saved copy of ", path, " (", op.source_path,
                                                ") is missing; cannot restore it"));
      }
      op.new_size = static_cast<uint64_t>(st.st_size);
      op.mode = f->saved.mode;
      op.uid = f->saved.uid;
      op.gid = f->saved.gid;
      op.note = "restore the original from the snapshot";
    } else {
      op.kind = FileOp::Kind::kDelete;
      op.note = "created by the run";
      removed.insert(path);
    }
    out.ops.push_back(std::move(op));
  }
  // 3. Temporary files of writes a crash interrupted.
  for (const std::string& tmp : TempFilesBeside(files)) {
    removed.insert(tmp);
    out.ops.push_back(TempFileDelete(tmp));
  }
  // 4. Directories the run created, deepest first, when nothing foreign is left in them.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    const std::string& path = it->first;
    if (it->second.kind != 'D' || !common::PathExists(path)) continue;
    if (!common::IsDirectory(path)) {
      conflicts.push_back(absl::StrCat(path, " (the run created a directory, now a file)"));
      continue;
    }
    std::vector<std::string> foreign;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
      if (removed.count(e.path().string()) == 0) foreign.push_back(e.path().filename().string());
    }
    if (!foreign.empty()) {
      if (!force) {
        conflicts.push_back(absl::StrCat(path, " (created by the run, now also holds ",
                                         absl::StrJoin(foreign, ", "), ")"));
      }
      continue;  // with force: keep the directory and what others put there
    }
    FileOp op;
    op.kind = FileOp::Kind::kRmdir;
    op.path = path;
    op.note = "created by the run";
    removed.insert(path);
    out.ops.push_back(std::move(op));
  }
  if (!conflicts.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(conflicts.size(), " path(s) changed since the run wrote them: ",
                     absl::StrJoin(conflicts, "; "), "; use force to restore anyway"));
  }
  return out;
}

absl::StatusOr<std::string> SnapshotTargetHome(const std::string& run_dir) {
  const std::string manifest =
      common::JoinPath(common::JoinPath(run_dir, "snapshot"), "manifest");
  if (!common::PathExists(manifest)) {
    return absl::NotFoundError(absl::StrCat("no snapshot manifest ", manifest));
  }
  size_t torn_at = 0;
  ASSIGN_OR_RETURN(std::vector<Record> records, LoadManifest(manifest, &torn_at));
  for (const Record& r : records) {
    if (r.kind == 'H') return r.path;
  }
  // Every write is recorded before it is made: a manifest without records saw no write (a run
  // whose state disk was full from its start).
  if (records.empty()) {
    return absl::NotFoundError(absl::StrCat(manifest, " records nothing: the run wrote nothing"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(manifest, " does not name the run's target home (written by an older agent)"));
}

absl::StatusOr<ChangeSet> PlanTempFileRemoval(const std::string& run_dir) {
  size_t torn_at = 0;
  ASSIGN_OR_RETURN(
      std::vector<Record> records,
      LoadManifest(common::JoinPath(common::JoinPath(run_dir, "snapshot"), "manifest"), &torn_at));
  ASSIGN_OR_RETURN(auto files, SavedFiles(records));
  ChangeSet out;
  for (const std::string& tmp : TempFilesBeside(files)) out.ops.push_back(TempFileDelete(tmp));
  return out;
}

}  // namespace mimic::agent
