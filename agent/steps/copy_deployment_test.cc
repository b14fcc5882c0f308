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

// Absolute paths to the old MI home inside carried files are reported (file, line, key) and
// rewritten to the target home when they are clearly under it; others are reported and left.
// Check mode plans the rewritten bytes; a second run is a no-op; rollback is byte-exact.
TEST_F(CopyDeploymentTest, CopyDeploymentRewritesOldHomePaths) {
  const std::string proxy = kDefault + std::string("/proxy-services/FileProxy.xml");
  Write(src_ / proxy,
        "<proxy name=\"FileProxy\" xmlns=\"http://ws.apache.org/ns/synapse\">\n"
        "  <parameter name=\"transport.vfs.FileURI\">file://" + src_.string() +
            "/vfs/in</parameter>\n"
            "  <parameter name=\"transport.vfs.MoveAfterProcess\">file://" + src_.string() +
            "-archive/done</parameter>\n"
            "</proxy>\n");
  Write(src_ / "repository/deployment/server/custom/settings.properties",
        "out.dir=" + src_.string() + "/out\n");
  StepPlan plan = ExpectExactIdempotentReversible("copy_deployment");
  const FileOp* op = FindOp(plan, "/FileProxy.xml");
  ASSERT_NE(op, nullptr);
  EXPECT_TRUE(op->has_content);
  EXPECT_THAT(op->content, HasSubstr("file://" + dst_.string() + "/vfs/in</parameter>"));
  EXPECT_THAT(op->content, HasSubstr("file://" + src_.string() + "-archive/done"));
  EXPECT_THAT(Logs(), HasSubstr(proxy + ":2: parameter: path under the old MI home " +
                                src_.string() + " rewritten to the target home " + dst_.string() +
                                ": " + src_.string() + "/vfs/in"));
  EXPECT_THAT(Logs(), HasSubstr(proxy + ":3: parameter: not a path under the old MI home " +
                                src_.string() + ", left as it is (check it): " + src_.string() +
                                "-archive/done"));
  EXPECT_THAT(Logs(), HasSubstr("settings.properties:1: out.dir: "));
  ASSERT_TRUE(ApplyAs("again", plan.changes).ok());
  EXPECT_EQ(Read(dst_ / "repository/deployment/server/custom/settings.properties"),
            "out.dir=" + dst_.string() + "/out\n");
}

// Empty folders under repository/deployment are carried; rollback removes what it made.
TEST_F(CopyDeploymentTest, CopyDeploymentCarriesEmptyFolders) {
  fs::create_directories(src_ / "repository/deployment/server/file-inbound/in/processing");
  fs::create_directories(src_ / kDefault / "templates-empty");
  StepPlan plan = ExpectExactIdempotentReversible("copy_deployment");
  const FileOp* made = FindOp(plan, "/file-inbound/in/processing");
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(made->kind, FileOp::Kind::kMkdir);
  ASSERT_NE(FindOp(plan, "/templates-empty"), nullptr);
  EXPECT_THAT(plan.message, HasSubstr("2 empty folders"));
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
