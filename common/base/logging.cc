#include "common/base/logging.h"

#include <sys/time.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mimic::common {
namespace {

LogSeverity InitialSeverity() {
  const char* env = std::getenv("MIMIC_LOG_LEVEL");
  if (env == nullptr) return LogSeverity::kInfo;
  if (std::strcmp(env, "warning") == 0) return LogSeverity::kWarning;
  if (std::strcmp(env, "error") == 0) return LogSeverity::kError;
  return LogSeverity::kInfo;
}

std::atomic<int> g_min_severity{static_cast<int>(InitialSeverity())};

}  // namespace

void SetMinLogSeverity(LogSeverity s) { g_min_severity = static_cast<int>(s); }
LogSeverity MinLogSeverity() { return static_cast<LogSeverity>(g_min_severity.load()); }

LogMessage::LogMessage(const char* file, int line, LogSeverity severity)
    : file_(file), line_(line), severity_(severity) {}

LogMessage::~LogMessage() {
  static const char kLetters[] = {'I', 'W', 'E', 'F'};
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  const char* base = std::strrchr(file_, '/');
  base = base ? base + 1 : file_;
  std::string text = stream_.str();
  std::fprintf(stderr, "%c%02d%02d %02d:%02d:%02d.%06ld %s:%d] %s\n",
               kLetters[static_cast<int>(severity_)], tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, static_cast<long>(tv.tv_usec), base, line_, text.c_str());
  if (severity_ == LogSeverity::kFatal) {
    std::fflush(stderr);
    std::abort();
  }
}

}  // namespace mimic::common
