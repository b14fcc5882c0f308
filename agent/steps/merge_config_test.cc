// The merge_config step on generated MI homes (fixtures: steps_test_fixture.h).
#include "absl/strings/match.h"
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

TEST_F(MergeConfigTest, MergeConfigParseErrorWritesNothing) {
  Write(src_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\n\n[broken\n");
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("conf/deployment.toml:4:"));
  EXPECT_EQ(Tree(dst_), before);
}

// EI 7.1's HL7 class names (org.wso2.carbon.business.messaging.hl7.*) load nothing in MI 4.x:
// merge_config carries them under the 4.x package, each reported.
TEST_F(MergeConfigTest, OldHl7ClassNamesRewritten) {
  Write(src_ / "conf/deployment.toml",
        Read(src_ / "conf/deployment.toml") +
            "\n[[custom_transport.sender]]\n"
            "class = \"org.wso2.carbon.business.messaging.hl7.transport.HL7TransportSender\"\n"
            "protocol = \"hl7\"\n\n[[custom_message_builders]]\n"
            "class = \"org.wso2.carbon.business.messaging.hl7.message.HL7MessageBuilder\"\n"
            "content_type = \"application/edi-hl7\"\n");
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  ASSERT_EQ(plan.changes.ops.size(), 1u);
  const std::string merged = plan.changes.ops[0].content;
  EXPECT_THAT(merged, Not(HasSubstr("org.wso2.carbon.business.messaging.hl7")));
  EXPECT_THAT(merged, HasSubstr("class = \"org.wso2.micro.integrator.business.messaging.hl7."
                                "transport.HL7TransportSender\""));
  EXPECT_THAT(merged, HasSubstr("class = \"org.wso2.micro.integrator.business.messaging.hl7."
                                "message.HL7MessageBuilder\""));
  int notes = 0;
  for (const auto& c : plan.changes.config_changes) {
    if (absl::StrContains(c.note(), "HL7 class")) ++notes;
  }
  EXPECT_EQ(notes, 2);
  EXPECT_THAT(Logs(), HasSubstr("org.wso2.carbon.business.messaging.hl7."));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
