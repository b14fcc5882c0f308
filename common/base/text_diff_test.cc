#include "common/base/text_diff.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(UnifiedDiffTest, EqualTextsGiveNothing) {
  auto d = UnifiedDiff("a\nb\n", "a\nb\n", "a/x", "b/x");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "");
}

TEST(UnifiedDiffTest, HunkWithContextAsDiffUPrintsIt) {
  const std::string before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  const std::string after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
  auto d = UnifiedDiff(before, after, "a/f.txt", "b/f.txt");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d,
            "--- a/f.txt\n+++ b/f.txt\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST(UnifiedDiffTest, ContextLinesAndAddedFile) {
  auto d = UnifiedDiff("", "new\n", "/dev/null", "b/f", {.context_lines = 0});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+new\n");
}

TEST(UnifiedDiffTest, MissingFinalNewlineIsMarked) {
  auto d = UnifiedDiff("a\nb", "a\nc", "a/f", "b/f");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d,
            "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
            "\\ No newline at end of file\n");
}

TEST(UnifiedDiffTest, FilterSeesEveryLineButNotHeaders) {
  UnifiedDiffOptions o;
  o.filter_line = [](std::string_view line) {
    return line.find("password") != std::string_view::npos ? std::string("password = <redacted>")
                                                            : std::string(line);
  };
  auto d = UnifiedDiff("[x]\npassword = \"old-S3cret\"\n", "[x]\npassword = \"new-S3cret\"\n",
                       "a/password.toml", "b/password.toml", o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->find("S3cret"), std::string::npos) << *d;
  EXPECT_THAT(*d, HasSubstr("--- a/password.toml\n"));
  EXPECT_THAT(*d, HasSubstr("-password = <redacted>\n+password = <redacted>\n"));
}

TEST(UnifiedDiffTest, BinaryIsOneLine) {
  auto d = UnifiedDiff(std::string("a\0b", 3), "ab", "a/k.jks", "b/k.jks");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "Binary files a/k.jks and b/k.jks differ\n");
}

// The operator's edit of the old version's file, applied to the new version's (the JVM options
// case: base = what 4.0.0 shipped, theirs = the operator's 4.0.0 file, ours = 4.2.0 shipped).
TEST(Merge3Test, NonOverlappingChangesMergeCleanly) {
  const std::string base = "a\nb\n-Xms256m -Xmx1024m\nc\nd\ne\nf\n";
  const std::string ours = "a\nb\n-Xms256m -Xmx1024m\nc\nd\ne\nf\n-DnewIn42=true\n";
  const std::string theirs = "a\nb\n-Xms2g -Xmx4g\nc\nd\ne\nf\n";
  auto m = Merge3(base, ours, theirs);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->text, "a\nb\n-Xms2g -Xmx4g\nc\nd\ne\nf\n-DnewIn42=true\n");
  EXPECT_THAT(m->conflicts, IsEmpty());
}

TEST(Merge3Test, SameChangeOnBothSidesIsTakenOnce) {
  auto m = Merge3("x\n", "y\n", "y\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->clean);
  EXPECT_EQ(m->text, "y\n");
}

TEST(Merge3Test, ConflictNamesTheLinesOfEachSide) {
  auto m = Merge3("a\nheap=1\nz\n", "a\nheap=2\nz\n", "a\nheap=3\nz\n",
                  {.base = "4.0.0 shipped", .ours = "4.2.0", .theirs = "source"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->clean);
  ASSERT_EQ(m->conflicts.size(), 1u);
  EXPECT_EQ(m->conflicts[0].line, 2);
  EXPECT_THAT(m->conflicts[0].base, ElementsAre("heap=1"));
  EXPECT_THAT(m->conflicts[0].ours, ElementsAre("heap=2"));
  EXPECT_THAT(m->conflicts[0].theirs, ElementsAre("heap=3"));
  EXPECT_THAT(m->text, HasSubstr("<<<<<<< 4.2.0\nheap=2\n||||||| 4.0.0 shipped\nheap=1\n"
                                 "=======\nheap=3\n>>>>>>> source\n"));
}

TEST(Merge3Test, BinaryIsRefused) {
  auto m = Merge3(std::string("\0", 1), "a", "b");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mimic::common
