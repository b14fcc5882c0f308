#include "common/config/host_pattern.h"

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kFleet[] = R"(
[controller]
plaintext = true
[groups.emea]
children = ["emea-dev"]
[groups.emea-dev]
[groups.apac]
[hosts.mi-dev-1]
address = "127.0.0.1:7001"
environment = "dev"
groups = ["emea-dev"]
[hosts.mi-prod-1]
address = "127.0.0.1:7002"
environment = "prod"
groups = ["emea"]
[hosts.mi-prod-2]
address = "127.0.0.1:7003"
environment = "prod"
groups = ["apac"]
[hosts.mi-prod-3]
address = "127.0.0.1:7004"
environment = "prod"
groups = ["apac"]
)";

class HostPatternTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hostpattern_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto inv = LoadInventoryFromString(kFleet, dir_ + "/inventory.toml");
    ASSERT_TRUE(inv.ok()) << inv.status();
    inv_ = *std::move(inv);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> Select(const std::string& pattern) {
    auto hosts = SelectHosts(inv_, pattern);
    EXPECT_TRUE(hosts.ok()) << pattern << ": " << hosts.status();
    std::vector<std::string> names;
    if (hosts.ok()) {
      for (const Host* h : *hosts) names.push_back(h->name);
    }
    return names;
  }
  std::string Error(const std::string& pattern) {
    auto hosts = SelectHosts(inv_, pattern);
    EXPECT_FALSE(hosts.ok()) << pattern;
    return hosts.ok() ? "" : std::string(hosts.status().message());
  }

  std::string dir_;
  Inventory inv_;
};

TEST_F(HostPatternTest, AllAndNames) {
  EXPECT_THAT(Select(""), ElementsAre("mi-dev-1", "mi-prod-1", "mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("all"), ElementsAre("mi-dev-1", "mi-prod-1", "mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("*"), ElementsAre("mi-dev-1", "mi-prod-1", "mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("mi-prod-2"), ElementsAre("mi-prod-2"));
  EXPECT_THAT(Select("emea"), ElementsAre("mi-dev-1", "mi-prod-1"));  // child groups too
  EXPECT_THAT(Select("dev"), ElementsAre("mi-dev-1"));                // an environment
}

TEST_F(HostPatternTest, GlobsRegexAndLists) {
  EXPECT_THAT(Select("mi-prod-*"), ElementsAre("mi-prod-1", "mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("mi-prod-[12]"), ElementsAre("mi-prod-1", "mi-prod-2"));
  EXPECT_THAT(Select("em*"), ElementsAre("mi-dev-1", "mi-prod-1"));  // globs match groups
  EXPECT_THAT(Select("~prod-(1|3)$"), ElementsAre("mi-prod-1", "mi-prod-3"));
  // Comma or colon, file order, no duplicates.
  EXPECT_THAT(Select("mi-prod-3,mi-dev-1:mi-prod-3"), ElementsAre("mi-dev-1", "mi-prod-3"));
}

TEST_F(HostPatternTest, IntersectionAndExclusionWhateverTheOrder) {
  EXPECT_THAT(Select("prod:&apac"), ElementsAre("mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("&apac,prod"), ElementsAre("mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("prod:!mi-prod-3"), ElementsAre("mi-prod-1", "mi-prod-2"));
  EXPECT_THAT(Select("!mi-prod-3,prod"), ElementsAre("mi-prod-1", "mi-prod-2"));
  // Only exclusions: from every host.
  EXPECT_THAT(Select("!prod"), ElementsAre("mi-dev-1"));
  EXPECT_THAT(Select("all:!emea:&prod"), ElementsAre("mi-prod-2", "mi-prod-3"));
  EXPECT_THAT(Select("prod:&dev"), IsEmpty());
}

TEST_F(HostPatternTest, HostFile) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/r.retry", "# failed in rollout R\nmi-prod-1\n\nmi-prod-3\n").ok());
  EXPECT_THAT(Select("@" + dir_ + "/r.retry"), ElementsAre("mi-prod-1", "mi-prod-3"));
  EXPECT_THAT(Select("prod:!@" + dir_ + "/r.retry"), ElementsAre("mi-prod-2"));
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad.retry", "mi-prod-1\nmi-gone-9\n").ok());
  EXPECT_THAT(Error("@" + dir_ + "/bad.retry"), HasSubstr("bad.retry:2: limit 'mi-gone-9'"));
  EXPECT_THAT(Error("@" + dir_ + "/missing.retry"), HasSubstr("cannot read host file"));
}

TEST_F(HostPatternTest, TyposNeverSelectFewerHostsSilently) {
  EXPECT_THAT(Error("mi-prod-1,mi-prdo-2"), HasSubstr("limit 'mi-prdo-2' matches no host"));
  EXPECT_THAT(Error("mi-qa-*"), HasSubstr("'mi-qa-*'"));
  EXPECT_THAT(Error("prod:!mi-prdo-2"), HasSubstr("'!mi-prdo-2'"));
  EXPECT_THAT(Error("~(unclosed"), HasSubstr("bad regular expression"));
  EXPECT_THAT(Error("!"), HasSubstr("names nothing"));
}

}  // namespace
}  // namespace mimic::common
