// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Abseil 20220623 (Debian 12) has no status macros.
#ifndef MIMIC_COMMON_BASE_STATUS_MACROS_H_
#define MIMIC_COMMON_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

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

#endif  // MIMIC_COMMON_BASE_STATUS_MACROS_H_
