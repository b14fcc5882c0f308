// Text helpers every layer shares: UTF-8 validation and repair, and escaping for JSON, XML/HTML
// and TOML. Each escaper passes valid UTF-8 through and replaces each invalid byte by U+FFFD, so
// its output is always valid in the target format.
#ifndef MIMIC_COMMON_BASE_TEXT_H_
#define MIMIC_COMMON_BASE_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace mimic::common {

// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr char kReplacementChar[] = "\xEF\xBF\xBD";

// Length (1-4) of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not
// one: stray continuation bytes, truncated sequences, overlong forms, surrogates and code points
// above U+10FFFF are invalid. Requires i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

bool IsValidUtf8(std::string_view s);

// `s` with each byte that does not start a valid sequence replaced by U+FFFD.
std::string RepairUtf8(std::string_view s);

// `s` as a JSON string literal, quotes included: '"' '\' and control characters escaped
// (\n \t \r \b \f, else \u00XX), valid UTF-8 passed through, invalid bytes -> U+FFFD.
std::string JsonQuote(std::string_view s);

// `s` escaped for XML and HTML text and attribute values: & < > " ' as entities; tab, newline
// and carriage return as character references when `attribute` (so they survive attribute
// normalisation), as is otherwise (carriage return always as &#13;); other control characters
// and each invalid UTF-8 byte become U+FFFD, as does each of the 3 bytes of U+FFFE and U+FFFF.
std::string XmlEscape(std::string_view s, bool attribute = false);

// `s` as a TOML basic string, quotes included: '"' and '\' escaped, \n and \t, other control
// characters as \uXXXX; invalid bytes -> U+FFFD (TOML parsers refuse them).
std::string TomlQuote(std::string_view s);

// The human word for a generated protobuf enum name (mimic::v1::StepStatus_Name(...) etc.):
// `name` without `prefix`, lower-cased: ("STEP_CHANGED", "STEP_") -> "changed". "" when `name`
// is empty (an unknown value), does not start with `prefix`, or ends in "UNSPECIFIED".
std::string EnumWord(std::string_view name, std::string_view prefix);

// `s` safe to print on one line of a terminal or a text report: each ASCII control character
// (newline, carriage return, escape, ...) and DEL shown as \n, \r, \t or \xNN, so a file
// name or a command's output cannot start a line of its own ("... FAILED") or move the cursor;
// invalid UTF-8 bytes -> U+FFFD.
std::string EscapeControl(std::string_view s);

// Multi-line agent text (a --diff) under a line of output: each line of `text` (split at '\n';
// no final empty line) prefixed with `indent`, made safe as EscapeControl does except that tabs
// are kept, and ended with '\n'. "" for "".
std::string IndentLines(std::string_view text, std::string_view indent);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_TEXT_H_
