// The copy_custom_components step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using CopyCustomComponentsTest = PopulatedHomesTest;

TEST_F(CopyCustomComponentsTest, CopyCustomComponents) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_custom_components");
  EXPECT_THAT(OpPaths(plan, dst_), ElementsAre("dropins", "dropins/custom-mediator_1.0.0.jar",
                                               "lib/mysql-connector-java-8.0.28.jar"));
  EXPECT_THAT(plan.message, HasSubstr("1 dropins file to copy; 1 lib jar to copy"));
  EXPECT_THAT(plan.message, HasSubstr("lib/differs.jar"));
  EXPECT_THAT(plan.message, HasSubstr("target ships another version of shared-lib-1.0.jar "
                                      "(1.0; target: lib/shared-lib-2.0.jar)"));
  EXPECT_EQ(Read(dst_ / "lib/differs.jar"), "the target's differs.jar");  // operator decides
  EXPECT_FALSE(fs::exists(dst_ / "lib/shared-lib-1.0.jar"));
}

// The old version's HL7 jars are left to hl7_transport only when it runs in the same plan;
// without it they are carried with a warning, never dropped.
TEST_F(CopyCustomComponentsTest, OldHl7JarsNeverDroppedWithoutHl7Step) {
  const std::string jar = "org.wso2.micro.integrator.business.messaging.hl7_1.2.0.jar";
  Write(src_ / "dropins" / jar, "old hl7 jar");
  plan_.add_steps()->set_name("copy_custom_components");
  absl::StatusOr<StepPlan> without = PlanStep("copy_custom_components");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_NE(FindOp(*without, "/dropins/" + jar), nullptr);
  EXPECT_THAT(Logs(), HasSubstr("hl7_transport is not in the plan, so it is carried"));
  plan_.add_steps()->set_name("hl7_transport");
  absl::StatusOr<StepPlan> with = PlanStep("copy_custom_components");
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(FindOp(*with, "/dropins/" + jar), nullptr);
}

// A lib/ jar whose artifact the target ships in another version (lib/ or the OSGi plugins,
// matched by file name or by the jar's Bundle-SymbolicName) is reported and not copied: two
// versions on the classpath. One the target ships in the same version is not copied either.
TEST_F(CopyCustomComponentsTest, LibJarTheTargetShipsInAnotherVersion) {
  const std::string plugins = "wso2/components/plugins";
  Write(dst_ / plugins / "commons-lang3_3.12.0.wso2v1.jar", "4.2.0's commons-lang3");
  Write(dst_ / plugins / "org.json_3.0.0.wso2v1.jar", "4.2.0's org.json");
  Write(dst_ / plugins / "com.google.gson_2.9.0.jar", "4.2.0's gson");
  Write(src_ / "lib/commons-lang3-3.9.jar",
        *mi_home::MakeJar("Bundle-SymbolicName: org.apache.commons.lang3\r\n"
                          "Bundle-Version: 3.9.0\r\nImplementation-Version: 3.9\r\n"));
  // The file name says nothing; the manifest names the bundle.
  Write(src_ / "lib/acme-json.jar",
        *mi_home::MakeJar("Bundle-SymbolicName: org.json\r\nBundle-Version: 3.0.0.wso2v1\r\n"));
  Write(src_ / "lib/gson.jar",
        *mi_home::MakeJar("Bundle-SymbolicName: com.google.gson\r\nBundle-Version: 2.8.5\r\n"));
  absl::StatusOr<StepPlan> plan = PlanStep("copy_custom_components");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(FindOp(*plan, "/lib/commons-lang3-3.9.jar"), nullptr);
  EXPECT_EQ(FindOp(*plan, "/lib/acme-json.jar"), nullptr);
  EXPECT_EQ(FindOp(*plan, "/lib/gson.jar"), nullptr);
  EXPECT_NE(FindOp(*plan, "/lib/mysql-connector-java-8.0.28.jar"), nullptr);
  EXPECT_THAT(plan->message,
              HasSubstr("commons-lang3-3.9.jar (3.9; target: "
                        "wso2/components/plugins/commons-lang3_3.12.0.wso2v1.jar)"));
  EXPECT_THAT(plan->message,
              HasSubstr("gson.jar (2.8.5; target: wso2/components/plugins/com.google.gson_2.9.0.jar)"));
  EXPECT_THAT(plan->message, HasSubstr("target already ships acme-json.jar "
                                       "(wso2/components/plugins/org.json_3.0.0.wso2v1.jar)"));
  EXPECT_THAT(Logs(), HasSubstr("lib/commons-lang3-3.9.jar: the target ships "
                                "commons-lang3 in another version"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
