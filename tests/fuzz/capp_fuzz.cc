// libFuzzer: the CApp reader (common/mi/capp, libzip) on arbitrary bytes, with tight limits so
// a bomb is cheap to refuse; what it accepts is rewritten (Data Mapper stylesheets) and
// re-packed, and the re-packed archive must read back to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/mi/capp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  mimic::common::ZipLimits limits;
  limits.max_total_bytes = 8 << 20;
  limits.max_entries = 1024;
  auto entries = mimic::common::ReadZipFromBytes(bytes, "fuzz.car", limits);
  if (!entries.ok()) return 0;
  (void)mimic::common::MigrateCappEntries(&*entries, nullptr);
  auto repacked = mimic::common::WriteZip(*entries);
  if (!repacked.ok()) return 0;  // e.g. an empty name: refused, not written
  auto again = mimic::common::ReadZipFromBytes(*repacked, "repacked.car");
  if (!again.ok() || again->size() != entries->size()) {
    std::fprintf(stderr, "a re-packed CApp does not read back: %s\n",
                 again.ok() ? "entry count differs" : std::string(again.status().message()).c_str());
    std::abort();
  }
  for (size_t i = 0; i < again->size(); ++i) {
    if ((*again)[i].name != (*entries)[i].name || (*again)[i].data != (*entries)[i].data) {
      std::fprintf(stderr, "a re-packed CApp differs at entry %zu\n", i);
      std::abort();
    }
  }
  return 0;
}
