// The copy_deployment step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using CopyDeploymentTest = PopulatedHomesTest;

TEST_F(CopyDeploymentTest, CopyDeploymentKeepsUnmodifiedShippedFiles) {
  // registry.xml: 4.0.0's default in the source, 4.2.0's (different) in the target.
  ASSERT_NE(Read(src_ / kDefault / "registry.xml"), Read(dst_ / kDefault / "registry.xml"));
  Write(dst_ / "repository/deployment/server/dataservices/Orders.dbs", "<data name=\"Old\"/>");
  StepPlan plan = ExpectExactIdempotentReversible("copy_deployment");
  EXPECT_EQ(FindOp(plan, "/registry.xml"), nullptr);
  EXPECT_THAT(Logs(), HasSubstr("registry.xml: unchanged MI 4.0.0 default; keeping MI 4.2.0's"));
  EXPECT_THAT(plan.message,
              HasSubstr("1 unmodified shipped file left as the new version ships it"));
  const FileOp* dbs = FindOp(plan, "/Orders.dbs");
  ASSERT_NE(dbs, nullptr);
  EXPECT_EQ(dbs->note, "replaces the target's different copy");
  ASSERT_NE(FindOp(plan, "/HelloApi.xml"), nullptr);
  for (const std::string& p : OpPaths(plan, dst_)) {
    EXPECT_THAT(p, Not(HasSubstr("carbonapps")));
    EXPECT_THAT(p, Not(HasSubstr("userstores")));
  }
}

TEST_F(CopyDeploymentTest, CopyDeploymentReplacesOperatorModifiedShippedFiles) {
  Write(src_ / kDefault / "registry.xml", "<registry provider=\"operator's own\"/>");
  StepPlan plan = ExpectExactIdempotentReversible("copy_deployment");
  const FileOp* op = FindOp(plan, "/registry.xml");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->note,
            "operator-modified shipped file replaced; new version's default saved in snapshot");
  EXPECT_THAT(Logs(), HasSubstr("W " + std::string(kDefault) +
                                "/registry.xml: the operator "
                                "changed this shipped MI 4.0.0 file"));
  EXPECT_THAT(plan.message, HasSubstr("1 operator-modified shipped file among them"));
}

TEST_F(CopyDeploymentTest, CopyDeploymentOverwriteShippedNever) {
  Write(src_ / kDefault / "registry.xml", "<registry provider=\"operator's own\"/>");
  absl::StatusOr<StepPlan> plan = PlanStep("copy_deployment", {{"overwrite_shipped", "never"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(FindOp(*plan, "/registry.xml"), nullptr);
  EXPECT_THAT(plan->message, HasSubstr("1 differing file kept (overwrite_shipped = never): " +
                                       std::string(kDefault) + "/registry.xml"));
  EXPECT_EQ(PlanStep("copy_deployment", {{"overwrite_shipped", "bogus"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A synapse config with EI 7.1's HL7 class names is carried with the 4.x names: check mode
// exact, a second run a no-op, rollback byte-exact (ExpectExactIdempotentReversible).
TEST_F(CopyDeploymentTest, OldHl7ClassNamesRewritten) {
  const std::string store =
      "<messageStore xmlns=\"http://ws.apache.org/ns/synapse\" name=\"Hl7Store\" "
      "class=\"org.wso2.carbon.business.messaging.hl7.store.jpa.JPAStore\"/>\n";
  Write(src_ / kDefault / "message-stores/Hl7Store.xml", store);
  StepPlan plan = ExpectExactIdempotentReversible("copy_deployment");
  const FileOp* op = FindOp(plan, "/message-stores/Hl7Store.xml");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->content,
            "<messageStore xmlns=\"http://ws.apache.org/ns/synapse\" name=\"Hl7Store\" "
            "class=\"org.wso2.micro.integrator.business.messaging.hl7.store.jpa.JPAStore\"/>\n");
  EXPECT_THAT(op->note, HasSubstr("1 HL7 class name"));
  EXPECT_THAT(Logs(), HasSubstr("message-stores/Hl7Store.xml: 1 EI 7.1 HL7 class name "
                                "(org.wso2.carbon.business.messaging.hl7.*) rewritten"));
  EXPECT_EQ(Read(src_ / kDefault / "message-stores/Hl7Store.xml"), store);  // source untouched
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
