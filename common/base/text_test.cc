#include "common/base/text.h"

#include <string>

#include "gtest/gtest.h"

namespace mimic::common {
namespace {

const std::string kBad = "\xEF\xBF\xBD";

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);              // stray continuation
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82", 0), 0u);          // truncated
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0u);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\xAF", 0), 0u);      // overlong, 3 bytes
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // surrogate U+D800
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xF4\x8F\xBF\xBF", 0), 4u);  // U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xFF", 0), 0u);
}

TEST(Utf8Test, ValidateAndRepair) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC"));
  EXPECT_FALSE(IsValidUtf8("caf\xC3"));
  EXPECT_EQ(RepairUtf8("ok"), "ok");
  EXPECT_EQ(RepairUtf8("a\xFF" "b"), "a" + kBad + "b");
  EXPECT_EQ(RepairUtf8("\xE2\x82"), kBad + kBad);
  EXPECT_EQ(RepairUtf8("\xC3\xA9\xC3"), "\xC3\xA9" + kBad);
  EXPECT_TRUE(IsValidUtf8(RepairUtf8("\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80")));
}

TEST(JsonQuoteTest, KnownAnswers) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("l1\nl2\tx\r\b\f"), "\"l1\\nl2\\tx\\r\\b\\f\"");
  EXPECT_EQ(JsonQuote(std::string("\0\x1f", 2)), "\"\\u0000\\u001f\"");
  EXPECT_EQ(JsonQuote("\xC3\xA9\xFF"), "\"\xC3\xA9" + kBad + "\"");
}

TEST(XmlEscapeTest, KnownAnswers) {
  EXPECT_EQ(XmlEscape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(XmlEscape("a\tb\nc\rd"), "a\tb\nc&#13;d");
  EXPECT_EQ(XmlEscape("a\tb\nc", true), "a&#9;b&#10;c");
  EXPECT_EQ(XmlEscape(std::string("\x07\0\x7f", 3)), kBad + kBad + kBad);
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBE"), kBad + kBad + kBad);  // U+FFFE is no XML character
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBD"), kBad);                // U+FFFD itself is fine
  EXPECT_EQ(XmlEscape("caf\xC3\xA9 \xC3"), "caf\xC3\xA9 " + kBad);
}

TEST(TomlQuoteTest, KnownAnswers) {
  EXPECT_EQ(TomlQuote("plain"), "\"plain\"");
  EXPECT_EQ(TomlQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(TomlQuote("l1\nl2\tx\x01\x7f"), "\"l1\\nl2\\tx\\u0001\\u007F\"");
  EXPECT_EQ(TomlQuote("\xC3\xA9\xC0\xAF"), "\"\xC3\xA9" + kBad + kBad + "\"");
}

TEST(EscapeControlTest, NoLineOrCursorControlSurvives) {
  EXPECT_EQ(EscapeControl("plain caf\xC3\xA9"), "plain caf\xC3\xA9");
  EXPECT_EQ(EscapeControl("a.car\n12:00:00 prod h1 copy_carbonapps FAILED x"),
            "a.car\\n12:00:00 prod h1 copy_carbonapps FAILED x");
  EXPECT_EQ(EscapeControl("\r\t\x1B[2K\x7F\x01"), "\\r\\t\\x1B[2K\\x7F\\x01");
  EXPECT_EQ(EscapeControl("bad \xFF"), "bad \xEF\xBF\xBD");
}

TEST(EnumWordTest, KnownAnswers) {
  EXPECT_EQ(EnumWord("STEP_CHANGED", "STEP_"), "changed");
  EXPECT_EQ(EnumWord("RUN_INTERRUPTED", "RUN_"), "interrupted");
  EXPECT_EQ(EnumWord("STEP_STATUS_UNSPECIFIED", "STEP_"), "");
  EXPECT_EQ(EnumWord("", "STEP_"), "");
  EXPECT_EQ(EnumWord("MODE_APPLY", "STEP_"), "");
  EXPECT_EQ(EnumWord("STEP_", "STEP_"), "");
}

TEST(IndentLinesTest, EachLineIndentedAndSafe) {
  EXPECT_EQ(IndentLines("", "  "), "");
  EXPECT_EQ(IndentLines("-a\n+b\n", "    "), "    -a\n    +b\n");
  EXPECT_EQ(IndentLines("x\ty\r\x1b[2J", "| "), "| x\ty\\r\\x1B[2J\n");
  EXPECT_EQ(IndentLines("no newline", ""), "no newline\n");
}

}  // namespace
}  // namespace mimic::common
