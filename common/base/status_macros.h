// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Abseil 20220623 (Debian 12) has no status macros.
// Annotate / AnnotateAfter: add context to an error, keeping its code.
#ifndef MIMIC_COMMON_BASE_STATUS_MACROS_H_
#define MIMIC_COMMON_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define MIMIC_CONCAT_INNER_(a, b) a##b
#define MIMIC_CONCAT_(a, b) MIMIC_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    if (::absl::Status _st = (expr); !_st.ok()) {     \
      return _st;                                     \
    }                                                 \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  MIMIC_ASSIGN_OR_RETURN_IMPL_(MIMIC_CONCAT_(_statusor_, __LINE__), lhs, rexpr)

#define MIMIC_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) {                                    \
    return std::move(statusor).status();                   \
  }                                                        \
  lhs = std::move(statusor).value()

namespace mimic::common {

// `status` with its message prefixed by "<prefix>: ", its code and payloads kept; OK stays OK.
inline absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

// `status` with `suffix` appended to its message as is, its code and payloads kept.
inline absl::Status AnnotateAfter(const absl::Status& status, absl::string_view suffix) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(status.message(), suffix));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_STATUS_MACROS_H_
