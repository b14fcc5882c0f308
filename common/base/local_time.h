// The process's local time zone, pinned once at start.
#ifndef MIMIC_COMMON_BASE_LOCAL_TIME_H_
#define MIMIC_COMMON_BASE_LOCAL_TIME_H_

#include <string>

namespace mimic::common {

// With TZ unset, glibc stats /etc/localtime on every mktime/localtime call (libzip calls mktime
// for every entry of every zip central directory it reads: thousands per run). When TZ is
// unset this sets it to ":/etc/localtime", the zone glibc would use anyway, so the file is read
// once; a TZ already set is left alone. Must run before any other thread starts (setenv).
// A zone file replaced later is not seen until the process restarts.
void PinLocalTimeZone();

// "TZ=:/etc/localtime" when PinLocalTimeZone set it, else "". Subprocess leaves that entry out
// of a child's environment, so children see the environment the process was started with.
const std::string& PinnedTimeZoneEntry();

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_LOCAL_TIME_H_
