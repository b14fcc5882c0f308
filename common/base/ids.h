// Clock and identifiers.
#ifndef MIMIC_COMMON_BASE_IDS_H_
#define MIMIC_COMMON_BASE_IDS_H_

#include <cstdint>
#include <string>

namespace mimic::common {

int64_t NowMicros();                       // wall clock, UTC micros since the epoch
std::string FormatTimeMicros(int64_t us);  // "2026-11-21T22:44:23.123Z"
std::string RandomHex(int n_chars);        // from the OS random source
std::string Hostname();
std::string OsUser();                      // the effective user's login name

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_IDS_H_
