#include "common/mi/hl7_names.h"

namespace mimic::common {

std::string RewriteOldHl7ClassNames(std::string_view text, int* count) {
  const std::string_view from = kOldHl7Package;
  std::string out;
  int n = 0;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(text.substr(pos, hit - pos));
    out.append(kHl7Package);
    ++n;
  }
  out.append(text.substr(pos));
  if (count != nullptr) *count = n;
  return out;
}

}  // namespace mimic::common
