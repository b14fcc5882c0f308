#include "common/mi/capp.h"

#include <sys/stat.h>
#include <zip.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::common {
namespace {

struct ZipCloser {
  void operator()(zip_t* za) const { zip_discard(za); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

struct ZipFileCloser {
  void operator()(zip_file_t* zf) const { zip_fclose(zf); }
};
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

struct SourceFreer {
  void operator()(zip_source_t* src) const { zip_source_free(src); }
};
using SourcePtr = std::unique_ptr<zip_source_t, SourceFreer>;

absl::Status Hostile(const std::string& label, const std::string& entry, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("refusing archive ", label, ": entry \"", entry, "\" ", why));
}

std::string ZipErrorText(zip_error_t* err) { return zip_error_strerror(err); }
std::string ZipErrorText(zip_t* za) { return zip_error_strerror(zip_get_error(za)); }

// The key under which a name is extracted: '\' taken as '/', the trailing '/' of a directory
// dropped. Fails when the name is empty, absolute (also "C:"), or has "", "." or ".."
// components, so two names never alias the same file and nothing lands outside the root.
absl::StatusOr<std::string> ExtractionKey(const std::string& label, const std::string& name) {
  if (name.empty()) return Hostile(label, name, "has an empty name");
  std::string key = name;
  for (char& c : key) {
    if (c == '\\') c = '/';
  }
  if (key[0] == '/') return Hostile(label, name, "has an absolute name");
  if (key.size() >= 2 && std::isalpha(static_cast<unsigned char>(key[0])) && key[1] == ':') {
    return Hostile(label, name, "has an absolute name (drive letter)");
  }
  if (key.back() == '/') key.pop_back();
  for (absl::string_view part : absl::StrSplit(key, '/')) {
    if (part == "..") return Hostile(label, name, "has a \"..\" component (zip slip)");
    if (part.empty() || part == ".") {
      return Hostile(label, name, "has an empty or \".\" path component");
    }
  }
  return key;
}

// Reads exactly `size` bytes of entry `index`, CRC-checked, never more. With `sniff`, stops
// after the first kZipSniffBytes when they hold a NUL byte: *binary set, "" returned.
absl::StatusOr<std::string> ReadEntry(zip_t* za, zip_uint64_t index, zip_uint64_t size,
                                      const std::string& label, const std::string& name,
                                      bool sniff, bool* binary) {
  ZipFilePtr zf(zip_fopen_index(za, index, 0));
  if (zf == nullptr) {
    return Hostile(label, name, absl::StrCat("cannot be opened: ", ZipErrorText(za)));
  }
  std::string data(size, '\0');
  zip_uint64_t got = 0;
  const zip_uint64_t head = sniff ? std::min<zip_uint64_t>(size, kZipSniffBytes) : 0;
  while (got < size) {
    const zip_uint64_t want = got < head ? head - got : size - got;
    zip_int64_t n = zip_fread(zf.get(), data.data() + got, want);
    if (n < 0) {
      return Hostile(
          label, name,
          absl::StrCat("is corrupt: ", zip_error_strerror(zip_file_get_error(zf.get()))));
    }
    if (n == 0) break;
    got += static_cast<zip_uint64_t>(n);
    if (got == head && std::memchr(data.data(), '\0', head) != nullptr) {
      *binary = true;
      return std::string();
    }
  }
  if (got != size) {
    return Hostile(label, name, absl::StrCat("holds ", got, " bytes, not the declared ", size));
  }
  char extra;
  zip_int64_t n = zip_fread(zf.get(), &extra, 1);  // also triggers the CRC check at the end
  if (n != 0) {
    return Hostile(
        label, name,
        n > 0 ? std::string("holds more bytes than declared")
              : absl::StrCat("is corrupt: ", zip_error_strerror(zip_file_get_error(zf.get()))));
  }
  return data;
}

uint32_t Le(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

// libzip refuses to open an archive with duplicate names without saying which: the first name
// the central directory holds twice (a plain scan, no zip64), or "" when none is found.
std::string FirstDuplicateName(const std::string& b) {
  const size_t eocd = b.rfind(std::string("PK\x05\x06", 4));
  if (eocd == std::string::npos || eocd + 22 > b.size()) return "";
  const uint32_t count = Le(b, eocd + 10, 2);
  size_t at = Le(b, eocd + 16, 4);
  std::set<std::string> seen;
  for (uint32_t i = 0; i < count && at + 46 <= b.size(); ++i) {
    if (b.compare(at, 4, "PK\x01\x02", 4) != 0) break;
    const size_t name_len = Le(b, at + 28, 2);
    if (at + 46 + name_len > b.size()) break;
    std::string name = b.substr(at + 46, name_len);
    if (!seen.insert(name).second) return name;
    at += 46 + name_len + Le(b, at + 30, 2) + Le(b, at + 32, 2);
  }
  return "";
}

// Opens the archive read by `src` (taken over, also on failure). `bytes` gives the archive's
// bytes to name a duplicate entry (libzip does not say which one).
absl::StatusOr<ZipPtr> OpenArchive(zip_source_t* src, const std::string& label,
                                   const std::function<std::string()>& bytes) {
  SourcePtr owned(src);
  zip_error_t err;
  zip_error_init(&err);
  ZipPtr za(zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err));
  if (za == nullptr) {
    const bool duplicate = zip_error_code_zip(&err) == ZIP_ER_EXISTS;
    std::string text = ZipErrorText(&err);
    zip_error_fini(&err);
    if (duplicate) return Hostile(label, FirstDuplicateName(bytes()), "is a duplicate name");
    return absl::InvalidArgumentError(absl::StrCat(label, " is not a valid zip archive: ", text));
  }
  owned.release();  // owned by the archive now
  zip_error_fini(&err);
  return za;
}

// Checks every entry's metadata, then reads the content `limits` asks for.
absl::StatusOr<std::vector<ZipEntry>> ReadEntries(zip_t* za, const std::string& label,
                                                  const ZipLimits& limits) {
  const zip_int64_t count = zip_get_num_entries(za, 0);
  if (count < 0) return absl::InternalError(absl::StrCat(label, ": ", ZipErrorText(za)));
  if (static_cast<uint64_t>(count) > limits.max_entries) {
    return absl::InvalidArgumentError(absl::StrCat("refusing archive ", label, ": ", count,
                                                   " entries (limit ", limits.max_entries, ")"));
  }

  // First pass: every entry's metadata is checked before any content is inflated.
  std::vector<ZipEntry> entries(count);
  std::vector<zip_uint64_t> sizes(count);
  std::set<std::string> keys;
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < count; ++i) {
    const char* raw = zip_get_name(za, i, ZIP_FL_ENC_RAW);
    if (raw == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": entry #", i, " has no name: ", ZipErrorText(za)));
    }
    ZipEntry& e = entries[i];
    e.name = raw;
    ASSIGN_OR_RETURN(std::string key, ExtractionKey(label, e.name));
    if (!keys.insert(key).second) return Hostile(label, e.name, "is a duplicate name");
    e.is_dir = e.name.back() == '/';

    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, i, ZIP_FL_ENC_RAW, &st) != 0) {
      return Hostile(label, e.name, absl::StrCat("cannot be read: ", ZipErrorText(za)));
    }
    const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need) return Hostile(label, e.name, "has no sizes");
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
      return Hostile(label, e.name, "is encrypted");
    }
    if (zip_file_get_external_attributes(za, i, 0, &e.opsys, &e.external_attributes) != 0) {
      return Hostile(label, e.name, "has unreadable attributes");
    }
    if (e.opsys == ZIP_OPSYS_UNIX) {
      const uint32_t type = (e.external_attributes >> 16) & S_IFMT;
      if (type == S_IFLNK) return Hostile(label, e.name, "is a symbolic link");
      if (type != 0 && type != S_IFREG && type != S_IFDIR) {
        return Hostile(label, e.name, "is a special file (device, fifo or socket)");
      }
    }
    if (e.is_dir && st.size != 0) return Hostile(label, e.name, "is a directory with content");
    e.mtime = (st.valid & ZIP_STAT_MTIME) ? st.mtime : 0;
    e.compression = static_cast<int32_t>(st.comp_method);
    sizes[i] = st.size;
    e.size = st.size;

    // Only what is inflated can be a bomb.
    e.content_read = !limits.want_content || limits.want_content(e);
    if (e.content_read && st.size >= limits.ratio_min_bytes &&
        static_cast<double>(st.size) >
            limits.max_ratio * static_cast<double>(st.comp_size > 0 ? st.comp_size : 1)) {
      return Hostile(label, e.name,
                     absl::StrCat("expands ", st.comp_size, " bytes to ", st.size, " (ratio above ",
                                  limits.max_ratio, "; zip bomb?)"));
    }
    if (e.content_read) total += st.size;
    if (e.content_read &&
        (total > limits.max_total_bytes || st.size > limits.max_total_bytes)) {
      return Hostile(
          label, e.name,
          absl::StrCat("takes the uncompressed total above ", limits.max_total_bytes, " bytes"));
    }
  }

  // Second pass: the content, exactly the declared sizes, CRC-checked.
  for (zip_int64_t i = 0; i < count; ++i) {
    if ((sizes[i] == 0 && entries[i].is_dir) || !entries[i].content_read) continue;
    ASSIGN_OR_RETURN(entries[i].data, ReadEntry(za, i, sizes[i], label, entries[i].name,
                                                limits.skip_binary, &entries[i].binary));
    if (entries[i].binary) entries[i].content_read = false;
  }
  return entries;
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZip(const std::string& path, const ZipLimits& limits) {
  if (!IsRegularFile(path)) {
    return absl::NotFoundError(absl::StrCat(path, " is not a regular file"));
  }
  // Read through a file source: libzip reads the central directory and then only what is
  // inflated, never the bulk of entries passed over.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    std::string msg = absl::StrCat("open ", path, ": ", std::strerror(e));
    return e == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  FILE* file = ::fdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_filep_create(file, 0, -1, &err);
  if (src == nullptr) {
    std::fclose(file);
    std::string text = ZipErrorText(&err);
    zip_error_fini(&err);
    return absl::InternalError(absl::StrCat(path, ": ", text));
  }
  zip_error_fini(&err);
  ASSIGN_OR_RETURN(ZipPtr za, OpenArchive(src, path, [&path] {
                     absl::StatusOr<std::string> bytes = ReadFile(path);
                     return bytes.ok() ? *bytes : std::string();
                   }));
  return ReadEntries(za.get(), path, limits);
}

absl::StatusOr<std::vector<ZipEntry>> ReadZipFromBytes(const std::string& bytes,
                                                       const std::string& label,
                                                       const ZipLimits& limits) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  if (src == nullptr) {
    std::string text = ZipErrorText(&err);
    zip_error_fini(&err);
    return absl::InternalError(absl::StrCat(label, ": ", text));
  }
  zip_error_fini(&err);
  ASSIGN_OR_RETURN(ZipPtr za, OpenArchive(src, label, [&bytes] { return bytes; }));
  return ReadEntries(za.get(), label, limits);
}


absl::StatusOr<std::string> WriteZip(const std::vector<ZipEntry>& entries) {
  std::set<std::string> names;
  for (const ZipEntry& e : entries) {
    if (e.name.empty()) return absl::InvalidArgumentError("zip entry with an empty name");
    if (!names.insert(e.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate zip entry ", e.name));
    }
  }
  zip_error_t err;
  zip_error_init(&err);
  SourcePtr out(zip_source_buffer_create(nullptr, 0, 0, &err));
  if (out == nullptr) {
    std::string text = ZipErrorText(&err);
    zip_error_fini(&err);
    return absl::InternalError(absl::StrCat("cannot create a zip buffer: ", text));
  }
  zip_t* za = zip_open_from_source(out.get(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (za == nullptr) {
    std::string text = ZipErrorText(&err);
    zip_error_fini(&err);
    return absl::InternalError(absl::StrCat("cannot create a zip archive: ", text));
  }
  zip_error_fini(&err);
  zip_source_keep(out.get());  // survives zip_close, so the written bytes can be read back

  auto fail = [&](const ZipEntry& e, const char* what) {
    absl::Status st = absl::InternalError(
        absl::StrCat("cannot ", what, " zip entry ", e.name, ": ", ZipErrorText(za)));
    zip_discard(za);
    return st;
  };
  for (const ZipEntry& e : entries) {
    // The buffer is only read at zip_close(), while `entries` is still alive.
    zip_source_t* s = zip_source_buffer(za, e.data.data(), e.data.size(), 0);
    if (s == nullptr) return fail(e, "buffer");
    const zip_int64_t idx = zip_file_add(za, e.name.c_str(), s, ZIP_FL_ENC_GUESS);
    if (idx < 0) {
      zip_source_free(s);
      return fail(e, "add");
    }
    const int32_t method =
        zip_compression_method_supported(e.compression, 1) ? e.compression : ZIP_CM_DEFLATE;
    // Level 6 is zlib's and Java's default ("normal"), what CApp tooling writes.
    const zip_uint32_t level = method == ZIP_CM_DEFLATE ? 6 : 0;
    if (zip_set_file_compression(za, idx, method, level) != 0) {
      return fail(e, "set the method of");
    }
    if (zip_file_set_mtime(za, idx, e.mtime, 0) != 0) return fail(e, "set the time of");
    if (zip_file_set_external_attributes(za, idx, 0, e.opsys, e.external_attributes) != 0) {
      return fail(e, "set the attributes of");
    }
  }
  if (zip_close(za) != 0) {
    absl::Status st =
        absl::InternalError(absl::StrCat("cannot write the zip archive: ", ZipErrorText(za)));
    zip_discard(za);
    return st;
  }

  if (zip_source_open(out.get()) != 0) {
    return absl::InternalError(absl::StrCat("cannot read the written zip archive: ",
                                            zip_error_strerror(zip_source_error(out.get()))));
  }
  std::string bytes;
  char buf[64 * 1024];
  for (;;) {
    zip_int64_t n = zip_source_read(out.get(), buf, sizeof(buf));
    if (n < 0) {
      zip_source_close(out.get());
      return absl::InternalError(absl::StrCat("cannot read the written zip archive: ",
                                              zip_error_strerror(zip_source_error(out.get()))));
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  zip_source_close(out.get());
  return bytes;
}

std::string MigrateXsltStyleSheet(const std::string& text, int* replacements) {
  int count = 0;
  std::string out;
  const absl::string_view from = kOldXsltPrefixes;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from.data(), pos, from.size())) != std::string::npos;) {
    out.append(text, pos, hit - pos);
    out.append(kNewXsltPrefixes);
    pos = hit + from.size();
    ++count;
  }
  if (replacements != nullptr) *replacements = count;
  if (count == 0) return text;
  out.append(text, pos, std::string::npos);
  return out;
}

bool IsXsltStyleSheetName(const std::string& name) {
  return absl::EndsWith(name, "_xsltStyleSheet.xml");
}

ZipLimits StyleSheetEntriesOnly() {
  ZipLimits limits;
  limits.want_content = [](const ZipEntry& e) { return !e.is_dir && IsXsltStyleSheetName(e.name); };
  return limits;
}

int MigrateCappEntries(std::vector<ZipEntry>* entries, std::vector<std::string>* changed_names) {
  int changed = 0;
  for (ZipEntry& e : *entries) {
    if (e.is_dir || !IsXsltStyleSheetName(e.name)) continue;
    int n = 0;
    std::string migrated = MigrateXsltStyleSheet(e.data, &n);
    if (n == 0) continue;
    e.data = std::move(migrated);
    ++changed;
    if (changed_names != nullptr) changed_names->push_back(e.name);
  }
  return changed;
}

}  // namespace mimic::common
