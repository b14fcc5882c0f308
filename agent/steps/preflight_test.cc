// The preflight step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

class PreflightTest : public PopulatedHomesTest {
 protected:
  void SetUp() override {
    PopulatedHomesTest::SetUp();
    SetSteps({"preflight", "snapshot_target", "migrate_userstore_config", "copy_carbonapps",
              "copy_registry", "copy_deployment", "migrate_datamapper", "copy_custom_components",
              "copy_keystores", "merge_config"});
  }
  void SetSteps(const std::vector<std::string>& names) {
    plan_.clear_steps();
    for (const std::string& n : names) plan_.add_steps()->set_name(n);
  }
  void Skip(const std::string& step, const std::string& reason) {
    mimic::v1::StepSkip* s = plan_.add_skips();
    s->set_step(step);
    s->set_reason(reason);
  }
};

TEST_F(PreflightTest, PreflightDetectsVersionsAndChecks) {
  absl::StatusOr<StepPlan> plan = PlanStep("preflight");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(plan->facts["source_version"], "4.0.0");
  EXPECT_EQ(plan->facts["target_version"], "4.2.0");
  EXPECT_EQ(plan->facts["migration_chain"], "4.0.0->4.2.0");
  EXPECT_EQ(plan->facts["source_update_level"], "");
  EXPECT_THAT(plan->message, HasSubstr("MI 4.0.0 -> 4.2.0"));
  EXPECT_THAT(Logs(), HasSubstr("MI 4.0.0 (from updates/product.txt)"));

  plan_.set_migration_path("4.0.0->4.2.0");
  EXPECT_TRUE(PlanStep("preflight").ok());
  plan_.set_migration_path("1.2.0->4.2.0");
  auto mismatch = PlanStep("preflight");
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.status().message(),
              HasSubstr("migration_path is 1.2.0->4.2.0 but the homes are 4.0.0->4.2.0"));
  plan_.set_migration_path("auto");

  auto no_room = PlanStep("preflight", {{"min_free_mb", "1000000000000"}});
  EXPECT_THAT(no_room.status().message(), HasSubstr("not enough free disk"));

  Write(dst_ / "wso2carbon.pid", std::to_string(::getpid()));
  auto running = PlanStep("preflight");
  EXPECT_EQ(running.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(running.status().message(), HasSubstr("the target MI is running"));
}

TEST_F(PreflightTest, UpdateLevelsInFacts) {
  Write(src_ / "updates/config.json", "{\n  \"update-level\": \"57\",\n  \"channel\": \"full\"\n}\n");
  Write(dst_ / "updates/config.json", "{\"update-level\":12}");
  absl::StatusOr<StepPlan> plan = PlanStep("preflight");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->facts["source_update_level"], "57");
  EXPECT_EQ(plan->facts["target_update_level"], "12");
  EXPECT_THAT(Logs(), HasSubstr("WSO2 update levels (updates/config.json): source 57, target 12"));
}

TEST_F(PreflightTest, PreflightRefusesDowngradeAndNonMiHomes) {
  std::swap(src_, dst_);
  auto down = PlanStep("preflight");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(down.status().message(), HasSubstr("downgrade from 4.2.0 to 4.0.0 is refused"));
  std::swap(src_, dst_);
  src_ = root_ / "homes/absent";
  auto absent = PlanStep("preflight");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(absent.status().message(), HasSubstr("source MI home"));
  EXPECT_THAT(absent.status().message(), HasSubstr("does not exist"));
  fs::create_directories(root_ / "homes/not-mi/docs");
  src_ = root_ / "homes/not-mi";
  auto not_mi = PlanStep("preflight");
  EXPECT_EQ(not_mi.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(not_mi.status().message(), HasSubstr("source MI home"));
}

TEST_F(PreflightTest, PreflightJavaCheck) {
  const fs::path java = root_ / "fake-java";
  Write(java, "#!/bin/sh\necho 'openjdk version \"1.8.0_292\"' >&2\n");
  fs::permissions(java, fs::perms(0755));
  auto old = PlanStep("preflight", {{"require_java", "true"}, {"java", java.string()}});
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(old.status().message(), HasSubstr("MI 4.2.0 needs JDK 11-17"));
  Write(java, "#!/bin/sh\necho 'openjdk version \"17.0.6\" 2023-01-17' >&2\n");
  auto ok = PlanStep("preflight", {{"require_java", "true"}, {"java", java.string()}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(ok->message, HasSubstr("JDK 17"));
}

// The source has a Data Mapper CApp and the path goes to 4.2.0: a plan without migrate_datamapper
// (or with it before copy_carbonapps, where it finds nothing) is refused before anything
// changes; [[skip]] with a reason is the only way past.
TEST_F(PreflightTest, PlanMissingDatamapperRefusedUnlessSkipped) {
  SetSteps({"preflight", "snapshot_target", "copy_carbonapps", "copy_keystores", "merge_config"});
  auto missing = PlanStep("preflight");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("the plan does not run required step 'migrate_datamapper'"));
  EXPECT_THAT(missing.status().message(),
              HasSubstr(std::string(kCapps) + "/" + mi_home::kDataMapperCappName +
                        ": 2 stylesheets"));
  EXPECT_THAT(missing.status().message(),
              HasSubstr("add [[steps]] name = \"migrate_datamapper\" after copy_carbonapps"));

  SetSteps({"preflight", "snapshot_target", "migrate_datamapper", "copy_carbonapps"});
  auto misordered = PlanStep("preflight");
  EXPECT_EQ(misordered.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(misordered.status().message(),
              HasSubstr("step 'migrate_datamapper' (step 3) runs before 'copy_carbonapps' (step 4)"));

  SetSteps({"preflight", "snapshot_target", "copy_carbonapps", "migrate_datamapper"});
  auto ok = PlanStep("preflight");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->facts["uses_datamapper"], "true");
  EXPECT_EQ(ok->facts["uses_hl7"], "false");
  EXPECT_THAT(Logs(), HasSubstr("needs migrate_datamapper: Data Mapper stylesheets"));

  SetSteps({"preflight", "snapshot_target", "copy_carbonapps"});
  Skip("migrate_datamapper", "CApps rebuilt for 4.2.0 by the integration team");
  auto skipped = PlanStep("preflight");
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_THAT(Logs(), HasSubstr("is skipped by the plan: CApps rebuilt for 4.2.0 by the "
                                "integration team"));
}

TEST_F(PreflightTest, Hl7AndSecureVaultMakeStepsRequired) {
  Write(src_ / "dropins/org.wso2.micro.integrator.business.messaging.hl7_1.2.0.jar", "hl7 jar");
  auto hl7 = PlanStep("preflight");
  EXPECT_EQ(hl7.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(hl7.status().message(), HasSubstr("required step 'hl7_transport' (the source uses "
                                                "HL7 (dropins/"));
  fs::remove(src_ / "dropins/org.wso2.micro.integrator.business.messaging.hl7_1.2.0.jar");

  std::string toml = Read(src_ / "conf/deployment.toml");
  toml = absl::StrReplaceAll(toml, {{"password = \"s3cret-db-pass\"", "password = \"$secret{carbon_db_pw}\""}});
  toml += "\n[secrets]\ncarbon_db_pw = \"[cipher text]\"\n";
  Write(src_ / "conf/deployment.toml", toml);
  SetSteps({"preflight", "snapshot_target", "copy_carbonapps", "migrate_datamapper"});
  Skip("merge_config", "config is managed by Ansible");
  auto vault = PlanStep("preflight");
  EXPECT_EQ(vault.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(vault.status().message(), HasSubstr("required step 'copy_keystores' (the source "
                                                  "uses the secure vault (conf/deployment.toml:"));
  EXPECT_THAT(vault.status().message(), ::testing::Not(HasSubstr("carbon_db_pw")));
  EXPECT_THAT(vault.status().message(), ::testing::Not(HasSubstr("cipher text")));
  SetSteps({"preflight", "snapshot_target", "copy_carbonapps", "migrate_datamapper",
            "copy_keystores"});
  auto ok = PlanStep("preflight");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->facts["secure_vault"], "true");
  EXPECT_THAT(Logs(), HasSubstr("required step merge_config"));
  EXPECT_THAT(Logs(), ::testing::Not(HasSubstr("cipher text")));
}

// dropins/ bundles: an Import-Package range the target's Synapse/Axis2/MI/Carbon cannot satisfy
// fails preflight before anything changes, unless the plan names the bundle; optional imports
// and packages mimic has no table for are only logged.
TEST_F(PreflightTest, DropinsImportsTheTargetCannotSatisfy) {
  Write(src_ / "dropins/legacy-mediator_1.0.0.jar",
        *mi_home::MakeJar("Bundle-SymbolicName: legacy\r\n"
                          "Import-Package: org.apache.synapse;version=\"[2.1,3)\",org.apache.ax\r\n"
                          " is2.context;version=\"[1.6,2)\",org.apache.synapse.commons.json;vers\r\n"
                          " ion=\"[2.1,3)\";resolution:=optional,com.example.util;version=\"1.0\"\r\n"));
  Write(src_ / "dropins/fine_1.0.0.jar",
        *mi_home::MakeJar("Import-Package: org.apache.axis2.context;version=\"[1.6.1,1.7.0)\",org\r\n"
                          " .wso2.micro.integrator.core;version=\"[4.0,5)\"\r\n"));
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> refused = PlanStep("preflight");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(refused.status().message(),
              HasSubstr("dropins/legacy-mediator_1.0.0.jar imports org.apache.synapse "
                        "version \"[2.1,3)\"; MI 4.2.0 exports Synapse 4.0.0-wso2v20"));
  EXPECT_THAT(refused.status().message(), HasSubstr("known_unsatisfied_imports"));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("fine_1.0.0.jar")));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("org.apache.axis2.context")));
  EXPECT_EQ(Tree(dst_), before);

  absl::StatusOr<StepPlan> known =
      PlanStep("preflight", {{"known_unsatisfied_imports", "legacy-mediator_1.0.0.jar"}});
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_EQ(known->facts["dropins_unsatisfied_imports"],
            "dropins/legacy-mediator_1.0.0.jar: org.apache.synapse [2.1,3)");
  EXPECT_THAT(Logs(), HasSubstr("the plan knows (known_unsatisfied_imports)"));
  EXPECT_THAT(Logs(), HasSubstr("dropins/legacy-mediator_1.0.0.jar imports "
                                "org.apache.synapse.commons.json version \"[2.1,3)\" (optional)"));
  EXPECT_THAT(Logs(), HasSubstr("com.example.util"));  // not judged, said so
  // The populated homes' other dropins jar is not a zip: said, not fatal.
  EXPECT_THAT(Logs(), HasSubstr("dropins/custom-mediator_1.0.0.jar: cannot read its manifest"));

  // A name in the param that is not in dropins/ is a plan error.
  absl::StatusOr<StepPlan> typo =
      PlanStep("preflight", {{"known_unsatisfied_imports", "legacy-mediator_1.0.0.jar, nope.jar"}});
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(typo.status().message(), HasSubstr("nope.jar"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
