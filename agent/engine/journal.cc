#include "agent/engine/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

constexpr size_t kHeader = 8;

void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

uint32_t Crc(std::string_view bytes) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::function<void(const std::string&, uint64_t)>& SyncHook() {
  static auto* hook = new std::function<void(const std::string&, uint64_t)>();
  return *hook;
}

std::string Errno(int err) { return absl::StrCat(std::strerror(err), " (errno ", err, ")"); }

// Whether a good record starts at data[at]: header complete, a non-empty body that fits, its
// checksum right and an event with a sequence number inside. On success `*ev` and `*len`.
bool RecordAt(std::string_view data, size_t at, mimic::v1::Event* ev, uint32_t* len) {
  if (data.size() - at < kHeader) return false;
  uint32_t n = GetU32(data, at);
  // An all-zero region (a file extended but never written) would be an empty record with a
  // right checksum: every real event has a seq, so an empty body is never good.
  if (n == 0 || n > kMaxJournalRecordBytes || data.size() - at - kHeader < n) return false;
  std::string_view body = data.substr(at + kHeader, n);
  if (Crc(body) != GetU32(data, at + 4)) return false;
  mimic::v1::Event e;
  if (!e.ParseFromArray(body.data(), static_cast<int>(body.size())) || e.seq() == 0) return false;
  *ev = std::move(e);
  *len = n;
  return true;
}

}  // namespace

uint32_t Crc32(const std::string& bytes) { return Crc(bytes); }

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  RETURN_IF_ERROR(common::MakeDirs(common::Dirname(path), 0700));  // fsyncs each new parent
  const bool existed = common::PathExists(path);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("open journal ", path, ": ", Errno(errno)));
  }
  struct stat st;
  uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  std::unique_ptr<Journal> journal(new Journal(fd, path, size));
  if (!existed) RETURN_IF_ERROR(common::FsyncDir(common::Dirname(path)));  // the new entry
  return journal;
}

Journal::~Journal() { ::close(fd_); }

absl::Status Journal::Append(const mimic::v1::Event& event, uint64_t* offset, bool sync) {
  if (!broken_.ok()) return broken_;
  std::string body;
  if (!event.SerializeToString(&body)) return absl::InternalError("cannot serialise event");
  if (body.size() > kMaxJournalRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("event of ", body.size(),
                                                   " bytes exceeds the journal's record limit"));
  }
  std::string rec;
  PutU32(&rec, static_cast<uint32_t>(body.size()));
  PutU32(&rec, Crc(body));
  rec += body;
  const char* p = rec.data();
  size_t n = rec.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Fail("write", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (offset != nullptr) *offset = size_;
  size_ += rec.size();
  if (sync) return Sync();
  return absl::OkStatus();
}

absl::Status Journal::Sync() {
  if (!broken_.ok()) return broken_;
  if (durable_ == size_) return absl::OkStatus();
  if (::fdatasync(fd_) != 0) {
    const int err = errno;
    // What the failed sync covered is in an unknown state: none of it counts.
    size_ = durable_;
    return Fail("fsync", err);
  }
  durable_ = size_;
  if (SyncHook()) SyncHook()(path_, durable_);
  return absl::OkStatus();
}

absl::Status Journal::Fail(const char* what, int err) {
  // Cut the partial record off so the file ends at a record boundary, and make what was
  // written before durable; if that fails, cut back to what is known durable. A failure here
  // leaves a torn tail that recovery truncates.
  if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0 && ::fdatasync(fd_) == 0) {
    durable_ = size_;
  } else if (::ftruncate(fd_, static_cast<off_t>(durable_)) == 0) {
    (void)::fdatasync(fd_);
    size_ = durable_;
  }
  if (SyncHook()) SyncHook()(path_, durable_);
  broken_ = absl::UnavailableError(
      absl::StrCat("cannot ", what, " the run journal ", path_, ": ", Errno(err)));
  return broken_;
}

void SetJournalSyncHookForTesting(std::function<void(const std::string&, uint64_t)> hook) {
  SyncHook() = std::move(hook);
}

absl::StatusOr<JournalContents> Journal::Read(const std::string& path) {
  ASSIGN_OR_RETURN(std::string file, common::ReadFile(path));
  std::string_view data = file;
  JournalContents out;
  size_t at = 0;
  while (at < data.size()) {
    mimic::v1::Event ev;
    uint32_t len = 0;
    if (RecordAt(data, at, &ev, &len)) {
      out.events.push_back(std::move(ev));
      out.offsets.push_back(at);
      at += kHeader + len;
      out.valid_end = at;
      continue;
    }
    // Resynchronise on the next good record; none means the rest is a torn tail.
    size_t next = at + 1;
    while (next < data.size() && !RecordAt(data, next, &ev, &len)) ++next;
    if (next >= data.size()) {
      out.torn = true;
      break;
    }
    out.damaged.push_back(absl::StrCat("offset ", at, ": damaged record, ", next - at,
                                       " bytes skipped"));
    at = next;
  }
  return out;
}

absl::StatusOr<mimic::v1::Event> Journal::ReadAt(const std::string& path, uint64_t offset) {
  return std::move(ReadAt(path, std::vector<uint64_t>{offset}).front());
}

std::vector<absl::StatusOr<mimic::v1::Event>> Journal::ReadAt(
    const std::string& path, const std::vector<uint64_t>& offsets) {
  std::vector<absl::StatusOr<mimic::v1::Event>> out;
  out.reserve(offsets.size());
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const absl::Status st =
        absl::NotFoundError(absl::StrCat("open journal ", path, ": ", Errno(errno)));
    out.assign(offsets.size(), st);
    return out;
  }
  std::string buf;
  // Appends n bytes read at `off` to buf.
  auto read_at = [&](size_t n, uint64_t off) {
    size_t at = buf.size();
    buf.resize(at + n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd, buf.data() + at + got, n - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  };
  for (const uint64_t offset : offsets) {
    buf.clear();
    bool ok = read_at(kHeader, offset);
    const uint32_t len = ok ? GetU32(buf, 0) : 0;
    ok = ok && len > 0 && len <= kMaxJournalRecordBytes && read_at(len, offset + kHeader);
    mimic::v1::Event ev;
    uint32_t n = 0;
    if (ok && RecordAt(buf, 0, &ev, &n)) {
      out.push_back(std::move(ev));
    } else {
      out.push_back(absl::DataLossError(
          absl::StrCat("journal ", path, ": no good record at offset ", offset)));
    }
  }
  ::close(fd);
  return out;
}

absl::Status Journal::Truncate(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open journal ", path, ": ", Errno(errno)));
  int rc = ::ftruncate(fd, static_cast<off_t>(size));
  int err = errno;
  if (rc == 0) {
    rc = ::fsync(fd);
    err = errno;
  }
  ::close(fd);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("truncate journal ", path, ": ", Errno(err)));
  }
  return absl::OkStatus();
}

}  // namespace mimic::agent
