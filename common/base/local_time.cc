#include "common/base/local_time.h"

#include <stdlib.h>
#include <time.h>

namespace mimic::common {
namespace {

std::string& Entry() {
  static auto* e = new std::string();
  return *e;
}

}  // namespace

void PinLocalTimeZone() {
  if (::getenv("TZ") != nullptr) return;
  if (::setenv("TZ", ":/etc/localtime", 0) != 0) return;
  Entry() = "TZ=:/etc/localtime";
  ::tzset();
}

const std::string& PinnedTimeZoneEntry() { return Entry(); }

}  // namespace mimic::common
