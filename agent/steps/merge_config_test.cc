// The merge_config step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using MergeConfigTest = PopulatedHomesTest;

TEST_F(MergeConfigTest, MergeConfig) {
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  ASSERT_EQ(plan.changes.ops.size(), 1u);
  EXPECT_EQ(plan.changes.ops[0].path, (dst_ / "conf/deployment.toml").string());
  ASSERT_FALSE(plan.changes.config_changes.empty());
  bool hostname = false, password = false;
  for (const auto& c : plan.changes.config_changes) {
    EXPECT_NE(c.action(), "keep");
    EXPECT_THAT(c.old_value() + c.new_value(), Not(HasSubstr("s3cret-db-pass")));
    if (c.key() == "server.hostname") {
      hostname = true;
      EXPECT_EQ(c.action(), "change");
      EXPECT_EQ(c.new_value(), "\"mi-prod-01.example.com\"");
    }
    if (c.key() == "datasource[0].password") {
      password = true;
      EXPECT_TRUE(c.redacted());
      EXPECT_EQ(c.old_value(), "");
      EXPECT_EQ(c.new_value(), "<redacted>");
    }
  }
  EXPECT_TRUE(hostname);
  EXPECT_TRUE(password);
  // The helper rolled the run back: the target's file is its original again.
  EXPECT_THAT(Read(dst_ / "conf/deployment.toml"), Not(HasSubstr("s3cret-db-pass")));
  EXPECT_THAT(plan.message, HasSubstr("config change"));
  EXPECT_THAT(plan.message, HasSubstr("unchanged"));
  EXPECT_THAT(Logs(), Not(HasSubstr("s3cret-db-pass")));
}

TEST_F(MergeConfigTest, MergeConfigAppliesPlanOverrides) {
  spec_overrides_ = "[server]\noffset = 7\n";
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  bool offset = false;
  for (const auto& c : plan->changes.config_changes) offset |= c.key() == "server.offset";
  EXPECT_TRUE(offset);
  ASSERT_TRUE(ApplyAs("r1", plan->changes).ok());
  EXPECT_THAT(Read(dst_ / "conf/deployment.toml"), HasSubstr("offset = 7"));
  EXPECT_THAT(Read(dst_ / "conf/deployment.toml"), HasSubstr("s3cret-db-pass"));
  EXPECT_TRUE(PlanStep("merge_config")->changes.empty());
}

// Edits outside deployment.toml travel in the same step (agent/steps/conf_edits.h): a log4j2
// logger level and a heap size, merged into 4.2.0's own files; exact, idempotent, reversible.
TEST_F(MergeConfigTest, MergeConfigCarriesEditsOutsideDeploymentToml) {
  testing::CopyMiHome("4.0.0", src_, {"bin"});
  testing::CopyMiHome("4.2.0", dst_, {"bin"});
  for (const auto& [rel, from, to] :
       {std::tuple("conf/log4j2.properties", "logger.org-apache-tomcat.level = INFO",
                   "logger.org-apache-tomcat.level = DEBUG"),
        std::tuple("bin/micro-integrator.sh", "-Xms256m -Xmx1024m", "-Xms1g -Xmx2g")}) {
    std::string text = Read(src_ / rel);
    ASSERT_NE(text.find(from), std::string::npos) << rel;
    text.replace(text.find(from), std::string(from).size(), to);
    Write(src_ / rel, text);
  }
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  EXPECT_THAT(OpPaths(plan, dst_), ElementsAre("conf/deployment.toml", "bin/micro-integrator.sh",
                                               "conf/log4j2.properties"));
  const FileOp* log4j2 = FindOp(plan, "conf/log4j2.properties");
  ASSERT_NE(log4j2, nullptr);
  EXPECT_THAT(log4j2->content, HasSubstr("logger.org-apache-tomcat.level = DEBUG\n"));
  EXPECT_THAT(log4j2->content, HasSubstr("${sys:logfiles.home}/wso2carbon.log"));  // 4.2.0's
  EXPECT_THAT(FindOp(plan, "bin/micro-integrator.sh")->content, HasSubstr("-Xms1g -Xmx2g"));
  EXPECT_THAT(plan.message, HasSubstr("outside deployment.toml: 2 files carried"));
  EXPECT_THAT(Logs(), HasSubstr("-logger.org-apache-tomcat.level = INFO"));
}

TEST_F(MergeConfigTest, MergeConfigParseErrorWritesNothing) {
  Write(src_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\n\n[broken\n");
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("conf/deployment.toml:4:"));
  EXPECT_EQ(Tree(dst_), before);
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
