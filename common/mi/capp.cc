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

// Reads exactly `size` bytes of entry `index`, CRC-checked, never more. With `sniff`, the first
// kZipSniffBytes are read first and *binary set when they hold a NUL byte; then, with
// `stop_if_binary`, "" is returned at once, else the rest is read as for any entry (an error in
// the rest is then one a reader stopping at the head would not have seen).
absl::StatusOr<std::string> ReadEntry(zip_t* za, zip_uint64_t index, zip_uint64_t size,
                                      const std::string& label, const std::string& name,
                                      bool sniff, bool stop_if_binary, bool* binary) {
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
    const zip_uint64_t before = got;
    got += static_cast<zip_uint64_t>(n);
    if (before < head && got == head && std::memchr(data.data(), '\0', head) != nullptr) {
      *binary = true;
      if (stop_if_binary) return std::string();
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

using ZipReadings = std::vector<absl::StatusOr<std::vector<ZipEntry>>>;

// For each of `readers`, what reading the archive with those limits alone gives: every entry's
// metadata checked, then the content the reader asks for. The metadata is read and checked once
// and an entry several readers ask for is inflated once; a reader's result ends at its first
// error, as a read of its own would (the checks common to all readers fail them all there).
ZipReadings ReadEntries(zip_t* za, const std::string& label, const std::vector<ZipLimits>& readers) {
  const size_t n_readers = readers.size();
  const zip_int64_t count = zip_get_num_entries(za, 0);
  if (count < 0) {
    return ZipReadings(n_readers, absl::InternalError(absl::StrCat(label, ": ", ZipErrorText(za))));
  }
  ZipReadings out(n_readers, std::vector<ZipEntry>());
  size_t alive = 0;
  for (size_t r = 0; r < n_readers; ++r) {
    if (static_cast<uint64_t>(count) > readers[r].max_entries) {
      out[r] = absl::InvalidArgumentError(absl::StrCat(
          "refusing archive ", label, ": ", count, " entries (limit ", readers[r].max_entries, ")"));
    } else {
      ++alive;
    }
  }
  auto fail_all = [&](const absl::Status& st) {
    for (auto& result : out) {
      if (result.ok()) result = st;
    }
    return std::move(out);
  };

  // First pass: every entry's metadata is checked before any content is inflated.
  std::vector<ZipEntry> entries(count);
  std::vector<zip_uint64_t> sizes(count);
  // wanted[r][i]: reader r reads entry i's content.
  std::vector<std::vector<bool>> wanted(n_readers, std::vector<bool>(count, false));
  std::vector<uint64_t> totals(n_readers, 0);
  std::set<std::string> keys;
  auto check = [&](zip_int64_t i) -> absl::Status {
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
    for (size_t r = 0; r < n_readers; ++r) {
      if (!out[r].ok()) continue;
      const ZipLimits& limits = readers[r];
      const bool read = !limits.want_content || limits.want_content(e);
      wanted[r][i] = read;
      if (!read) continue;
      if (st.size >= limits.ratio_min_bytes &&
          static_cast<double>(st.size) >
              limits.max_ratio * static_cast<double>(st.comp_size > 0 ? st.comp_size : 1)) {
        out[r] = Hostile(label, e.name,
                         absl::StrCat("expands ", st.comp_size, " bytes to ", st.size,
                                      " (ratio above ", limits.max_ratio, "; zip bomb?)"));
        --alive;
        continue;
      }
      totals[r] += st.size;
      if (totals[r] > limits.max_total_bytes || st.size > limits.max_total_bytes) {
        out[r] = Hostile(label, e.name,
                         absl::StrCat("takes the uncompressed total above ",
                                      limits.max_total_bytes, " bytes"));
        --alive;
      }
    }
    return absl::OkStatus();
  };
  for (zip_int64_t i = 0; i < count && alive > 0; ++i) {
    if (absl::Status st = check(i); !st.ok()) return fail_all(st);
  }

  // Second pass: the content, exactly the declared sizes, CRC-checked; read once for all the
  // readers that ask for it, stopping after the head of a binary entry when all of them skip
  // binary entries.
  std::vector<std::vector<std::string>> data(n_readers, std::vector<std::string>(count));
  std::vector<std::vector<bool>> binary(n_readers, std::vector<bool>(count, false));
  for (zip_int64_t i = 0; i < count && alive > 0; ++i) {
    if (sizes[i] == 0 && entries[i].is_dir) continue;
    bool any = false, sniff = false, all_sniff = true;
    for (size_t r = 0; r < n_readers; ++r) {
      if (!out[r].ok() || !wanted[r][i]) continue;
      any = true;
      sniff = sniff || readers[r].skip_binary;
      all_sniff = all_sniff && readers[r].skip_binary;
    }
    if (!any) continue;
    bool is_binary = false;
    absl::StatusOr<std::string> read =
        ReadEntry(za, i, sizes[i], label, entries[i].name, sniff, all_sniff, &is_binary);
    for (size_t r = 0; r < n_readers; ++r) {
      if (!out[r].ok() || !wanted[r][i]) continue;
      if (readers[r].skip_binary && is_binary) {
        binary[r][i] = true;  // its own read stopped at the head, whatever followed
      } else if (!read.ok()) {
        out[r] = read.status();
        --alive;
      } else {
        data[r][i] = *read;
      }
    }
  }

  for (size_t r = 0; r < n_readers; ++r) {
    if (!out[r].ok()) continue;
    std::vector<ZipEntry>& mine = *out[r];
    mine = entries;
    for (zip_int64_t i = 0; i < count; ++i) {
      mine[i].content_read = wanted[r][i] && !binary[r][i];
      mine[i].binary = binary[r][i];
      mine[i].data = std::move(data[r][i]);
    }
  }
  return out;
}

}  // namespace

std::vector<absl::StatusOr<std::vector<ZipEntry>>> ReadZipForEach(
    const std::string& path, const std::vector<ZipLimits>& readers) {
  auto fail_all = [&](absl::Status st) { return ZipReadings(readers.size(), std::move(st)); };
  if (!IsRegularFile(path)) {
    return fail_all(absl::NotFoundError(absl::StrCat(path, " is not a regular file")));
  }
  // Read through a file source: libzip reads the central directory and then only what is
  // inflated, never the bulk of entries passed over.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    std::string msg = absl::StrCat("open ", path, ": ", std::strerror(e));
    return fail_all(e == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg));
  }
  FILE* file = ::fdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    return fail_all(absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno))));
  }
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_filep_create(file, 0, -1, &err);
  if (src == nullptr) {
    std::fclose(file);
    std::string text = ZipErrorText(&err);
    zip_error_fini(&err);
    return fail_all(absl::InternalError(absl::StrCat(path, ": ", text)));
  }
  zip_error_fini(&err);
  absl::StatusOr<ZipPtr> za = OpenArchive(src, path, [&path] {
    absl::StatusOr<std::string> bytes = ReadFile(path);
    return bytes.ok() ? *bytes : std::string();
  });
  if (!za.ok()) return fail_all(za.status());
  return ReadEntries(za->get(), path, readers);
}

absl::StatusOr<std::vector<ZipEntry>> ReadZip(const std::string& path, const ZipLimits& limits) {
  return std::move(ReadZipForEach(path, {limits})[0]);
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
  return std::move(ReadEntries(za.get(), label, {limits})[0]);
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
