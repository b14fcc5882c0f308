#include "agent/engine/file_diffs.h"

#include <sys/stat.h>

#include <cctype>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/text_diff.h"

namespace mimic::agent {
namespace {

constexpr char kNoFile[] = "/dev/null";

// Archives, keystores and compiled code: known binary without reading them.
bool BinaryByName(std::string_view path) {
  static constexpr std::string_view kExtensions[] = {
      ".jar", ".car", ".war", ".zip", ".jks", ".p12", ".pfx", ".keystore", ".class", ".so",
      ".gz",  ".tgz", ".tar", ".png", ".jpg", ".gif", ".ico", ".db",       ".mv.db", ".dat"};
  std::string lower(path);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view e : kExtensions) {
    if (lower.ends_with(e)) return true;
  }
  return false;
}

// The bytes of a path at one moment: absent, known bytes, or a file to read.
struct Side {
  bool exists = false;
  std::string content;
  bool has_content = false;
  std::string file;  // read on demand
  uint64_t size = 0;
};

Side FromOp(const FileOp& op) {
  Side s;
  if (op.kind == FileOp::Kind::kDelete) return s;
  s.exists = true;
  if (op.has_content) {
    s.content = op.content;
    s.has_content = true;
    s.size = op.content.size();
  } else {
    s.file = op.source_path;
    s.size = op.new_size;
  }
  return s;
}

Side FromDisk(const std::string& path) {
  Side s;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return s;
  s.exists = true;
  s.file = path;
  s.size = static_cast<uint64_t>(st.st_size);
  return s;
}

// The side's bytes, or the reason they cannot be had.
absl::StatusOr<std::string> Bytes(const Side& s) {
  if (!s.exists) return std::string();
  if (s.has_content) return s.content;
  return common::ReadFile(s.file);
}

// `diff` cut at a line boundary to at most `max` bytes, with a marker saying how much was cut.
void Truncate(std::string* diff, size_t max) {
  if (diff->size() <= max) return;
  size_t keep = diff->rfind('\n', max - 1);
  keep = keep == std::string::npos ? 0 : keep + 1;
  const size_t dropped = diff->size() - keep;
  diff->resize(keep);
  absl::StrAppend(diff, "... diff truncated (", dropped, " more bytes)\n");
}

std::string DiffOne(const std::string& path, const Side& before, const Side& after,
                    const FileDiffOptions& o) {
  const std::string a = before.exists ? path : kNoFile;
  const std::string b = after.exists ? path : kNoFile;
  if ((before.exists && BinaryByName(path)) || (after.exists && BinaryByName(path))) {
    return absl::StrCat("Binary files ", a, " and ", b, " differ\n");
  }
  for (const Side* s : {&before, &after}) {
    if (s->exists && s->size > o.max_input_bytes) {
      return absl::StrCat("--- ", a, "\n+++ ", b, "\n... file too large to diff (", s->size,
                          " bytes)\n");
    }
  }
  absl::StatusOr<std::string> old_bytes = Bytes(before);
  absl::StatusOr<std::string> new_bytes = Bytes(after);
  for (const auto* r : {&old_bytes, &new_bytes}) {
    if (!r->ok()) {
      return absl::StrCat("--- ", a, "\n+++ ", b, "\n... diff not available: ",
                          r->status().message(), "\n");
    }
  }
  if (before.exists && after.exists && *old_bytes == *new_bytes) return "";
  common::UnifiedDiffOptions uo;
  uo.filter_line = o.filter_line;
  absl::StatusOr<std::string> d = common::UnifiedDiff(*old_bytes, *new_bytes, a, b, uo);
  if (!d.ok()) {
    return absl::StrCat("--- ", a, "\n+++ ", b, "\n... diff not available: ",
                        d.status().message(), "\n");
  }
  if (d->empty() && before.exists != after.exists) {
    // An empty file created or deleted: the headers still say which.
    *d = absl::StrCat("--- ", a, "\n+++ ", b, "\n");
  }
  Truncate(&*d, o.max_bytes_per_file);
  return *std::move(d);
}

}  // namespace

std::map<std::string, std::string> DiffChangeSet(const ChangeSet& changes,
                                                 const std::map<std::string, FileOp>* overlay,
                                                 const FileDiffOptions& options) {
  // Each path's first "before" and last "after", in the order paths first appear.
  std::vector<std::string> order;
  std::map<std::string, std::pair<Side, Side>> sides;
  for (const FileOp& op : changes.ops) {
    if (op.kind != FileOp::Kind::kWrite && op.kind != FileOp::Kind::kDelete) continue;
    auto it = sides.find(op.path);
    if (it == sides.end()) {
      Side before;
      if (overlay != nullptr) {
        if (auto o = overlay->find(op.path); o != overlay->end()) {
          before = FromOp(o->second);
        } else {
          before = FromDisk(op.path);
        }
      } else {
        before = FromDisk(op.path);
      }
      it = sides.emplace(op.path, std::make_pair(std::move(before), Side())).first;
      order.push_back(op.path);
    }
    it->second.second = FromOp(op);
  }
  std::map<std::string, std::string> out;
  size_t total = 0;
  for (const std::string& path : order) {
    const auto& [before, after] = sides[path];
    if (total > options.max_bytes_per_step) {
      out[path] = absl::StrCat("... diff left out: this step's diffs passed ",
                               options.max_bytes_per_step >> 10, " KiB\n");
      continue;
    }
    std::string d = DiffOne(path, before, after, options);
    if (d.empty()) continue;
    total += d.size();
    out[path] = std::move(d);
  }
  return out;
}

void AttachDiffs(const std::map<std::string, std::string>& diffs,
                 std::vector<mimic::v1::FileChange>* changes) {
  std::set<std::string> done;
  for (auto it = changes->rbegin(); it != changes->rend(); ++it) {
    const mimic::v1::Action a = it->action();
    if (a != mimic::v1::ACTION_CREATE && a != mimic::v1::ACTION_UPDATE &&
        a != mimic::v1::ACTION_DELETE) {
      continue;
    }
    auto d = diffs.find(it->path());
    if (d == diffs.end() || !done.insert(it->path()).second) continue;
    it->set_diff(d->second);
  }
}

}  // namespace mimic::agent
