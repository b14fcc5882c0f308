// libFuzzer: deployment.toml parsing and the merge (common/mi/toml_merge) on arbitrary source,
// target and override texts. Input: [version pair][conflict mode] then the three texts split at
// NUL bytes. The merge verifies its own result: an INTERNAL status is a merge bug, so it aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/mi/shipped_defaults.h"
#include "common/mi/toml_merge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* kPairs[][2] = {{"1.2.0", "4.0.0"}, {"4.0.0", "4.2.0"}, {"1.2.0", "4.2.0"}};
  static const char* kConflicts[] = {"source", "target", "fail"};
  mimic::common::MergeOptions opts;
  opts.from_version = kPairs[data[0] % 3][0];
  opts.to_version = kPairs[data[0] % 3][1];
  opts.conflict = kConflicts[data[1] % 3];
  const std::string text(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('\0', 2));
  parts.resize(3);
  opts.overrides_toml = parts[2];
  if (data[0] & 4) {
    if (const std::string* def = mimic::common::ShippedDeploymentToml(opts.to_version)) {
      opts.target_default_text = *def;
    }
  }
  auto merged = mimic::common::MergeDeploymentToml(parts[0], "source/deployment.toml", parts[1],
                                                   "target/deployment.toml", opts);
  if (!merged.ok() && merged.status().code() == absl::StatusCode::kInternal) {
    std::fprintf(stderr, "merge verification failed: %s\n",
                 std::string(merged.status().message()).c_str());
    std::abort();
  }
  return 0;
}
