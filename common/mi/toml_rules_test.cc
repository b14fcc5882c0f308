// The parsed deployment.toml the merge works on (toml_rules.h): where an array of tables' elements
// sit in the file, and what a merge carries of an element that another table's header interrupts.
#include "common/mi/toml_rules.h"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/mi/toml_merge.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"

namespace mimic::common::toml_internal {
namespace {

using ::testing::HasSubstr;
using Segments = std::vector<std::pair<int, int>>;

// WSO2's own deployment-full.toml does this ("phase_orders" is a typo in it): an element of
// [[a]] goes on after the header of another array, whose block is only its own two lines.
constexpr char kInterrupted[] =
    "[[a]]\n"                 // 0
    "x = 1\n"                 // 1
    "\n"                      // 2
    "[[b.c]]\n"               // 3
    "y = 2\n"                 // 4
    "\n"                      // 5
    "# the second phase\n"    // 6
    "[[a.sub]]\n"             // 7
    "z = 3\n"                 // 8
    "\n"                      // 9
    "[[a]]\n"                 // 10
    "x = 4\n";                // 11

std::vector<std::string> Flat(const toml::node& n, const std::string& key) {
  std::vector<std::pair<std::string, std::string>> flat;
  Flatten(n, key, flat);
  std::vector<std::string> out;
  for (auto& [k, v] : flat) out.push_back(k + " = " + v);
  return out;
}

TEST(DocUnitsTest, AnElementInterruptedByAnotherTableHasEverySegment) {
  auto doc = Doc::Parse(kInterrupted, "deployment.toml");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Unit* a = (*doc)->FindUnit({"a"});
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->blocks, (std::vector<Segments>{{{0, 1}, {7, 8}}, {{10, 11}}}));
  const Unit* bc = (*doc)->FindUnit({"b", "c"});
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(bc->blocks, (std::vector<Segments>{{{3, 4}}}));
}

// What the merge carries of a unit is its text; it must hold what the file gives the array.
TEST(DocUnitsTest, AUnitsTextParsesToTheArrayTheFileHolds) {
  auto check = [](const std::string& text, const std::string& name) {
    auto doc = Doc::Parse(text, name);
    ASSERT_TRUE(doc.ok()) << doc.status();
    for (const Item& it : ItemsOf(**doc)) {
      if (!it.is_unit) continue;
      const std::string key = JoinPath(it.path);
      ASSERT_EQ(it.node, (*doc)->FindUnit(it.path)->node) << name << ": " << key;
      auto alone = Doc::Parse(it.text, key);
      ASSERT_TRUE(alone.ok()) << name << ": " << key << ": " << alone.status();
      const toml::node* reparsed = (*alone)->Find(it.path);
      ASSERT_NE(reparsed, nullptr) << name << ": " << key;
      EXPECT_EQ(Flat(*reparsed, key), Flat(*it.node, key)) << name << ": " << key;
    }
  };
  check(kInterrupted, "interrupted");
  if (!mi_home::HaveFixtures()) return;
  // (deployment-full.toml, the key catalogue, is not valid TOML as a whole: keys repeat.)
  for (const char* rel : {"mi/4.2.0/conf/deployment.toml", "mi/4.0.0/conf/deployment.toml",
                          "mi/1.2.0/conf/deployment.toml"}) {
    std::ifstream in(mi_home::FixturesDir() + "/" + rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    check(ss.str(), rel);
  }
}

MergeOptions Opts() {
  MergeOptions o;
  o.from_version = "4.0.0";
  o.to_version = "4.2.0";
  return o;
}

// Before: the segment after [[b.c]] was in no block, so the merge neither carried nor reported
// a.sub (z = 3): lost without a word.
TEST(MergeInterruptedUnitTest, TheWholeElementIsCarriedAndReported) {
  auto r = MergeDeploymentToml(kInterrupted, "old/deployment.toml", "[server]\nhostname = \"h\"\n",
                               "new/deployment.toml", Opts());
  ASSERT_TRUE(r.ok()) << r.status();
  auto merged = toml::parse(r->merged_text, std::string_view("merged"));
  ASSERT_NE(merged["a"].as_array(), nullptr) << r->merged_text;
  EXPECT_EQ(merged["a"][0]["sub"][0]["z"].value_or(0), 3) << r->merged_text;
  EXPECT_EQ(merged["a"][1]["x"].value_or(0), 4) << r->merged_text;
  EXPECT_EQ(merged["b"]["c"][0]["y"].value_or(0), 2) << r->merged_text;
  EXPECT_THAT(r->merged_text, HasSubstr("# the second phase\n[[a.sub]]"));
  bool reported = false;
  for (const auto& c : r->changes) reported |= c.key() == "a[0].sub[0].z" && c.action() == "add";
  EXPECT_TRUE(reported);
}

// Before: the target's second segment stayed in the file after the replaced element and joined
// the source's last element, and the merge's self-check refused the result.
TEST(MergeInterruptedUnitTest, ATargetElementIsReplacedWithAllItsSegments) {
  auto r = MergeDeploymentToml("[[a]]\nx = 9\n", "old/deployment.toml", kInterrupted,
                               "new/deployment.toml", Opts());
  ASSERT_TRUE(r.ok()) << r.status();
  auto merged = toml::parse(r->merged_text, std::string_view("merged"));
  ASSERT_NE(merged["a"].as_array(), nullptr) << r->merged_text;
  EXPECT_EQ(merged["a"].as_array()->size(), 1u) << r->merged_text;
  EXPECT_EQ(merged["a"][0]["x"].value_or(0), 9) << r->merged_text;
  EXPECT_FALSE(merged["a"][0]["sub"]) << r->merged_text;
  EXPECT_EQ(merged["b"]["c"][0]["y"].value_or(0), 2) << r->merged_text;
}

}  // namespace
}  // namespace mimic::common::toml_internal
