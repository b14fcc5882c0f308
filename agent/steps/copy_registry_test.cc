// The copy_registry step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::generated_homes {
namespace {

using CopyRegistryTest = GeneratedHomesTest;

TEST_F(CopyRegistryTest, CopyRegistry) {
  Write(src_ / "registry/config/app/settings.xml", "<settings/>");
  Write(src_ / "registry/governance/endpoints/Ep.xml", "<endpoint name=\"Ep\"/>");
  Write(src_ / "registry/governance/endpoints/.metadata/Ep.xml.meta", "mediaType=text/xml");
  Write(src_ / "registry/local/state.txt", "local");
  Write(src_ / "registry/stray.txt", "not a partition");
  Write(dst_ / "registry/governance/endpoints/Ep.xml", "<endpoint name=\"older\"/>");
  StepPlan plan = ExpectExactIdempotentReversible("copy_registry", {}, "up to date (4 registry");
  EXPECT_EQ(plan.message, "4 registry files to copy (3 new, 1 replaced, 0 already there)");
  const FileOp* meta = FindOp(plan, "registry/governance/endpoints/.metadata/Ep.xml.meta");
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->new_sha256, common::Sha256Hex("mediaType=text/xml"));
  EXPECT_EQ(FindOp(plan, "stray.txt"), nullptr);
  EXPECT_THAT(Logs(), HasSubstr("registry/ also holds stray.txt"));
}

TEST_F(CopyRegistryTest, CopyRegistrySkippedWithoutRegistryFolder) {
  absl::StatusOr<StepPlan> plan = PlanStep("copy_registry");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("no registry/ folder"));
  EXPECT_TRUE(plan->changes.empty());
}

TEST_F(CopyRegistryTest, CopyRegistryWarnsAboutAMovedRoot) {
  Write(src_ / "registry/local/a.txt", "a");
  ASSERT_TRUE(PlanStep("copy_registry").ok());  // the shipped file's roots are commented out
  EXPECT_THAT(Logs(), Not(HasSubstr("RegRoot")));
  std::string xml = Read(src_ / kDefault / "registry.xml");
  xml.replace(xml.find("</registry>"), 11,
              "<parameter name=\"GovRegRoot\">file:///srv/gov</parameter></registry>");
  Write(src_ / kDefault / "registry.xml", xml);
  ASSERT_TRUE(PlanStep("copy_registry").ok());
  EXPECT_THAT(Logs(), HasSubstr("sets GovRegRoot"));
}

// Empty registry collections are carried too; rollback removes the folders it made.
TEST_F(CopyRegistryTest, CopyRegistryCarriesEmptyCollections) {
  Write(src_ / "registry/governance/endpoints/Ep.xml", "<endpoint name=\"Ep\"/>");
  fs::create_directories(src_ / "registry/governance/empty-collection/child");
  fs::create_directories(src_ / "registry/config/reserved");
  StepPlan plan = ExpectExactIdempotentReversible("copy_registry", {}, "up to date");
  const FileOp* made = FindOp(plan, "registry/governance/empty-collection/child");
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(made->kind, FileOp::Kind::kMkdir);
  ASSERT_NE(FindOp(plan, "registry/config/reserved"), nullptr);
}

TEST_F(CopyRegistryTest, OldHl7ClassNamesRewritten) {
  Write(src_ / "registry/governance/hl7/proxy-params.xml",
        "<parameter name=\"transport.hl7.MessagePreprocessorClass\">"
        "org.wso2.carbon.business.messaging.hl7.common.HL7MessagePreprocessor</parameter>\n");
  StepPlan plan = ExpectExactIdempotentReversible("copy_registry", {}, "up to date");
  const FileOp* op = FindOp(plan, "/hl7/proxy-params.xml");
  ASSERT_NE(op, nullptr);
  EXPECT_THAT(op->content,
              HasSubstr(">org.wso2.micro.integrator.business.messaging.hl7.common."
                        "HL7MessagePreprocessor<"));
  EXPECT_THAT(Logs(), HasSubstr("registry/governance/hl7/proxy-params.xml: 1 EI 7.1 HL7 class name"));
}

// ---- copy_secondary_userstores ----------------------------------------------------------------

}  // namespace
}  // namespace mimic::agent::steps_testing::generated_homes
