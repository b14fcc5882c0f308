#include "agent/engine/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

}  // namespace

uint32_t Crc32(const std::string& bytes) {
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

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  RETURN_IF_ERROR(common::MakeDirs(common::Dirname(path)));
  const bool existed = common::PathExists(path);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("open journal ", path, ": ", std::strerror(errno)));
  }
  std::unique_ptr<Journal> journal(new Journal(fd, path));
  if (!existed) RETURN_IF_ERROR(common::FsyncDir(common::Dirname(path)));  // the new entry
  return journal;
}

Journal::~Journal() { ::close(fd_); }

absl::Status Journal::Append(const mimic::v1::Event& event) {
  std::string body;
  if (!event.SerializeToString(&body)) return absl::InternalError("cannot serialise event");
  std::string rec;
  PutU32(&rec, static_cast<uint32_t>(body.size()));
  PutU32(&rec, Crc32(body));
  rec += body;
  const char* p = rec.data();
  size_t n = rec.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("write journal ", path_, ": ", std::strerror(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (::fdatasync(fd_) != 0) {
    return absl::InternalError(absl::StrCat("fsync journal ", path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<mimic::v1::Event>> Journal::ReadAll(const std::string& path,
                                                               bool* torn) {
  ASSIGN_OR_RETURN(std::string data, common::ReadFile(path));
  std::vector<mimic::v1::Event> out;
  if (torn) *torn = false;
  size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 8) {
      if (torn) *torn = true;
      break;
    }
    uint32_t len = GetU32(data, at);
    uint32_t crc = GetU32(data, at + 4);
    if (data.size() - at - 8 < len) {
      if (torn) *torn = true;
      break;
    }
    std::string body = data.substr(at + 8, len);
    bool last = at + 8 + len == data.size();
    if (Crc32(body) != crc) {
      if (last) {
        if (torn) *torn = true;
        break;
      }
      return absl::DataLossError(absl::StrCat("journal ", path, ": bad checksum at offset ", at));
    }
    mimic::v1::Event ev;
    if (!ev.ParseFromString(body)) {
      return absl::DataLossError(absl::StrCat("journal ", path, ": bad record at offset ", at));
    }
    out.push_back(std::move(ev));
    at += 8 + len;
  }
  return out;
}

}  // namespace mimic::agent
