// libFuzzer: the journal reader (agent/engine/journal) on arbitrary file bytes: torn tails,
// damaged records, lengths past the end. Every offset it reports must read back with ReadAt.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/engine/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    char templ[] = "/tmp/mimic-journal-fuzz.XXXXXX";
    int fd = mkstemp(templ);
    if (fd < 0) std::abort();
    close(fd);
    return std::string(templ);
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  auto contents = mimic::agent::Journal::Read(path);
  if (!contents.ok()) return 0;
  if (contents->valid_end > size || contents->events.size() != contents->offsets.size()) {
    std::fprintf(stderr, "journal: valid_end %llu past %zu bytes, or offsets do not match\n",
                 static_cast<unsigned long long>(contents->valid_end), size);
    std::abort();
  }
  for (size_t i = 0; i < contents->offsets.size(); ++i) {
    auto e = mimic::agent::Journal::ReadAt(path, contents->offsets[i]);
    if (!e.ok() || e->SerializeAsString() != contents->events[i].SerializeAsString()) {
      std::fprintf(stderr, "journal: record %zu at offset %llu does not read back\n", i,
                   static_cast<unsigned long long>(contents->offsets[i]));
      std::abort();
    }
  }
  return 0;
}
