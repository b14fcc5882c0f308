// A small absl/log-like logger (Abseil 20220623 has no absl/log). Lines go to stderr as
// "I1121 22:44:23.123456 file.cc:12] text". Secrets must be redacted before they reach here.
#ifndef MIMIC_COMMON_BASE_LOGGING_H_
#define MIMIC_COMMON_BASE_LOGGING_H_

#include <sstream>
#include <string>

namespace mimic::common {

enum class LogSeverity { kInfo = 0, kWarning = 1, kError = 2, kFatal = 3 };

// Messages below this severity are dropped. Default kInfo; MIMIC_LOG_LEVEL=warning|error.
void SetMinLogSeverity(LogSeverity s);
LogSeverity MinLogSeverity();

class LogMessage {
 public:
  LogMessage(const char* file, int line, LogSeverity severity);
  ~LogMessage();  // writes the line; aborts for kFatal
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  LogSeverity severity_;
  std::ostringstream stream_;
};

}  // namespace mimic::common

#define MIMIC_LOG_INFO ::mimic::common::LogSeverity::kInfo
#define MIMIC_LOG_WARNING ::mimic::common::LogSeverity::kWarning
#define MIMIC_LOG_ERROR ::mimic::common::LogSeverity::kError
#define MIMIC_LOG_FATAL ::mimic::common::LogSeverity::kFatal

#define LOG(severity)                                                         \
  if (MIMIC_LOG_##severity < ::mimic::common::MinLogSeverity()) {            \
  } else                                                                      \
    ::mimic::common::LogMessage(__FILE__, __LINE__, MIMIC_LOG_##severity).stream()

#define CHECK(cond) \
  if (cond) {       \
  } else            \
    LOG(FATAL) << "Check failed: " #cond " "

#endif  // MIMIC_COMMON_BASE_LOGGING_H_
