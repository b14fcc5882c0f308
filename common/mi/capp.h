// CApps (.car = zip) read and written in memory with libzip, and the Data Mapper stylesheet
// rewrite of MI 4.0 -> 4.2 (MI-FACTS §5.1 step 7).
//
// Reading refuses hostile archives before anything is extracted or trusted: names that are
// absolute or hold ".." (also with '\' taken as a separator, and drive letters), duplicate
// names, symlinks and other special files, encrypted entries, and entries whose uncompressed
// size exceeds the limits (zip bombs). Writing keeps the entries' order, names, times,
// attributes and compression methods, so a repacked CApp differs only where its content was
// changed. Both are deterministic: the same entries give the same bytes.
#ifndef MIMIC_COMMON_MI_CAPP_H_
#define MIMIC_COMMON_MI_CAPP_H_

#include <cstdint>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::common {

// Compression methods (the zip format's numbers, as libzip's ZIP_CM_*).
inline constexpr int32_t kZipStore = 0;
inline constexpr int32_t kZipDeflate = 8;

struct ZipEntry {
  std::string name;  // as stored (raw bytes), "dir/" for directories
  std::string data;  // uncompressed content ("" for directories and entries not read)
  bool is_dir = false;
  uint8_t opsys = 0;                  // "version made by" host system (0 = MS-DOS, 3 = UNIX)
  uint32_t external_attributes = 0;   // UNIX hosts: mode << 16 (| DOS bits)
  std::time_t mtime = 0;              // libzip's conversion of the DOS date/time (local time)
  int32_t compression = kZipDeflate;  // kZipStore, kZipDeflate, ...
  // Set by reading: the declared uncompressed size (also of an entry whose content was not
  // read), and false when ZipLimits::want_content passed the content over (data is then "").
  uint64_t size = 0;
  bool content_read = true;
  // Set by reading with ZipLimits::skip_binary: the head of the content held a NUL byte, so
  // the rest was not read (content_read is then false and data "").
  bool binary = false;

  // The UNIX permission bits when the entry came from a UNIX host, else 0.
  uint32_t unix_mode() const { return opsys == 3 ? (external_attributes >> 16) & 07777 : 0; }
};

struct ZipLimits {
  uint64_t max_total_bytes = 512ull << 20;  // uncompressed sum of all entries
  uint64_t max_entries = 65536;
  double max_ratio = 200.0;               // uncompressed / compressed, per entry...
  uint64_t ratio_min_bytes = 1ull << 20;  // ...for entries of at least this size
  // Entries whose content is read, decided on the checked metadata (name, size, ...); all when
  // unset. The others pass the name, type and encryption checks; as nothing of them is
  // inflated, the CRC, ratio and max_total_bytes checks do not apply to them.
  std::function<bool(const ZipEntry&)> want_content;
  // Of the entries whose content is read, those with a NUL byte in their first kZipSniffBytes
  // (git's rule for binary files) are passed over after that head: `binary` set and nothing
  // more read (so not CRC-checked; the metadata checks above still apply to them).
  bool skip_binary = false;
};
inline constexpr uint64_t kZipSniffBytes = 8000;

// Reads the archive at `path` / held in `bytes` (`label` names it in messages). Entries in
// archive order, content decompressed and CRC-checked. From `path`, only the central
// directory, the local headers and the entries whose content is read are read from the file. INVALID_ARGUMENT naming the archive and
// the entry for a hostile or corrupt archive (see the file comment), NOT_FOUND / INTERNAL when
// the file cannot be read.
absl::StatusOr<std::vector<ZipEntry>> ReadZip(const std::string& path,
                                              const ZipLimits& limits = {});
// Reads the archive at `path` once for several readers: result i is what ReadZip(path,
// readers[i]) gives (the same entries, content and flags, or the same error), but the file is
// opened and its central directory checked once, and an entry several readers ask for is
// inflated once.
std::vector<absl::StatusOr<std::vector<ZipEntry>>> ReadZipForEach(
    const std::string& path, const std::vector<ZipLimits>& readers);
absl::StatusOr<std::vector<ZipEntry>> ReadZipFromBytes(const std::string& bytes,
                                                       const std::string& label,
                                                       const ZipLimits& limits = {});

// The bytes of a new zip holding `entries` in the same order with the same names, times,
// external attributes and compression methods (methods libzip cannot write become deflate).
// Deterministic. INVALID_ARGUMENT for an empty or duplicate name; INTERNAL on libzip errors.
absl::StatusOr<std::string> WriteZip(const std::vector<ZipEntry>& entries);

// The Data Mapper stylesheet rewrite (Saxon 9.5 -> 10), exactly as WSO2's
// data-mapper-config-migration-service does it: a plain replace of every occurrence of
// kOldXsltPrefixes by kNewXsltPrefixes. Sets *replacements (may be null) to the count; an
// already migrated text (no old string) comes back unchanged with 0.
inline constexpr char kOldXsltPrefixes[] =
    R"(extension-element-prefixes="xs own notXSLTCompatible firstElementOfTheInput")";
inline constexpr char kNewXsltPrefixes[] =
    R"(extension-element-prefixes="own notXSLTCompatible firstElementOfTheInput" )"
    R"(exclude-result-prefixes="xs")";
std::string MigrateXsltStyleSheet(const std::string& text, int* replacements);

// True for the entries WSO2's tool rewrites: names ending with "_xsltStyleSheet.xml".
bool IsXsltStyleSheetName(const std::string& name);

// Limits that read the content of the stylesheet entries only (IsXsltStyleSheetName): enough
// for MigrateCappEntries to count what it would change, without inflating the rest.
ZipLimits StyleSheetEntriesOnly();

// Applies MigrateXsltStyleSheet to every stylesheet entry of `entries` (other entries are not
// touched). Returns the number of entries changed; `changed_names` (may be null) gets their names.
int MigrateCappEntries(std::vector<ZipEntry>* entries, std::vector<std::string>* changed_names);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_CAPP_H_
