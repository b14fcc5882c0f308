// The catalogue steps on real MI homes built from shared/fixtures/mi/: every step's check is
// exact (what apply changes is what the plan said), a second plan is empty, a rollback restores
// the target byte for byte, the source is never written, and paths stay confined.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step.h"
#include "agent/engine/step_test_util.h"
#include "common/config/catalogue.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kCapps[] = "repository/deployment/server/carbonapps";
constexpr char kDefault[] = "repository/deployment/server/synapse-configs/default";
constexpr char kSecurity[] = "repository/resources/security";

using testing::FindOp;
using testing::OpPaths;
using testing::Read;
using testing::Tree;
using testing::Write;

class StepsTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("steps_"));
    src_ = root_ / "homes/wso2mi-4.0.0";
    dst_ = root_ / "homes/wso2mi-4.2.0";
    testing::CopyFixtureHome("4.0.0", src_);
    testing::CopyFixtureHome("4.2.0", dst_);
    GuardHomes();
    plan_.set_migration_path("auto");
    PopulateSource();
    PopulateTarget();
  }
  void TearDown() override { fs::remove_all(root_); }

  void PopulateSource() {
    Write(src_ / kCapps / "1_1_3_synapse-configCompositeApplication_1.0.0.car",
          Read(fs::path(MIMIC_FIXTURES_DIR) /
               "mi/samples/carbonapps/1_1_3_synapse-configCompositeApplication_1.0.0.car"));
    Write(src_ / kCapps / "orders_1.0.0.car", "PK\x03\x04 orders capp bytes");
    Write(src_ / kCapps / "README.txt", "not a CApp");
    Write(src_ / kDefault / "api/HelloApi.xml", "<api name=\"Hello\" context=\"/hello\"/>\n");
    Write(src_ / "repository/deployment/server/dataservices/Orders.dbs", "<data name=\"Orders\"/>");
    Write(src_ / "repository/deployment/server/userstores/example_com.xml", "<UserStoreManager/>");
    Write(src_ / "dropins/custom-mediator_1.0.0.jar", "dropin jar bytes");
    Write(src_ / "lib/mysql-connector-java-8.0.28.jar", "mysql driver bytes");
    Write(src_ / "lib/shared-lib-1.0.jar", "shared 1.0");
    Write(src_ / "lib/same.jar", "same bytes");
    Write(src_ / "lib/differs.jar", "the source's differs.jar");
    Write(src_ / kSecurity / "wso2carbon.jks", "operator primary keystore bytes");
    Write(src_ / kSecurity / "client-truststore.jks", "operator truststore bytes");
    Write(src_ / kSecurity / "partner.p12", "operator pkcs12 bytes");
    fs::permissions(src_ / kSecurity / "partner.p12", fs::perms(0600));
    std::string toml = Read(src_ / "conf/deployment.toml");
    toml.replace(toml.find("hostname = \"localhost\""), 22,
                 "hostname = \"mi-prod-01.example.com\"");
    toml +=
        "\n[[datasource]]\nid = \"WSO2CarbonDB\"\nurl = \"jdbc:mysql://db:3306/carbon\"\n"
        "username = \"mi\"\npassword = \"s3cret-db-pass\"\n"
        "driver = \"com.mysql.cj.jdbc.Driver\"\n";
    Write(src_ / "conf/deployment.toml", toml);
  }

  void PopulateTarget() {
    Write(dst_ / kSecurity / "wso2carbon.jks", "4.2.0 shipped keystore");
    Write(dst_ / kSecurity / "client-truststore.jks", "4.2.0 shipped truststore");
    Write(dst_ / "lib/shared-lib-2.0.jar", "shared 2.0");
    Write(dst_ / "lib/same.jar", "same bytes");
    Write(dst_ / "lib/differs.jar", "the target's differs.jar");
  }

  absl::StatusOr<StepPlan> PlanStep(const std::string& name,
                                    const std::map<std::string, std::string>& params = {}) {
    std::unique_ptr<Step> step = MakeStep(name);
    if (step == nullptr) return absl::NotFoundError(name);
    StepContext ctx = Context(name, params, true, Run("current"));
    spec_.set_params_toml(spec_overrides_);
    ctx.paths_of_later_steps = later_paths_;
    return step->Plan(ctx);
  }

  // The contract every file step keeps; returns the first plan.
  StepPlan ExpectExactIdempotentReversible(const std::string& name,
                                           const std::map<std::string, std::string>& params = {}) {
    return StepHarness::ExpectExactIdempotentReversible(
        name, [&] { return PlanStep(name, params); }, "up to date", false);
  }

  std::string spec_overrides_;
  std::function<absl::StatusOr<std::vector<std::string>>()> later_paths_;
};

TEST_F(StepsTest, CatalogueOrder) {
  // The agent implements exactly the catalogue the controller validates plans against.
  EXPECT_EQ(KnownSteps(), common::StepCatalogue());
  EXPECT_THAT(KnownSteps(), ::testing::Contains("migrate_datamapper"));
  for (const std::string& name : KnownSteps()) EXPECT_EQ(MakeStep(name)->name(), name);
  EXPECT_EQ(MakeStep("no_such_step"), nullptr);
}

TEST_F(StepsTest, CopyCarbonapps) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_carbonapps");
  EXPECT_EQ(plan.message, "2 CApps to copy (2 new, 0 replaced, 0 already there)");
  // The 4.2.0 fixture has no carbonapps/ folder yet: the plan lists its creation first.
  EXPECT_THAT(
      OpPaths(plan, dst_),
      ElementsAre(kCapps,
                  absl::StrCat(kCapps, "/1_1_3_synapse-configCompositeApplication_1.0.0.car"),
                  absl::StrCat(kCapps, "/orders_1.0.0.car")));  // README.txt is no CApp
}

TEST_F(StepsTest, CopyCarbonappsReplacesADifferentCapp) {
  Write(dst_ / kCapps / "orders_1.0.0.car", "an older build");
  StepPlan plan = ExpectExactIdempotentReversible("copy_carbonapps");
  const FileOp* op = FindOp(plan, "orders_1.0.0.car");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->expected_sha256, common::Sha256Hex("an older build"));
  EXPECT_THAT(plan.message, HasSubstr("1 replaced"));
}

TEST_F(StepsTest, ExpectedShaMismatchAtApplyWritesNothing) {
  absl::StatusOr<StepPlan> plan = PlanStep("copy_keystores");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_FALSE(plan->changes.empty());
  const FileOp& first = plan->changes.ops.front();
  ASSERT_EQ(first.kind, FileOp::Kind::kWrite);
  Write(first.path, "changed between check and apply");
  const auto before = Tree(dst_);
  absl::Status st = ApplyAs("r1", plan->changes);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("changed since the plan was made"));
  EXPECT_EQ(Tree(dst_), before);
}

TEST_F(StepsTest, SymlinkOutOfTheRootsIsRefused) {
  Write(root_ / "outside/secret.car", "not for mimic");
  fs::create_symlink(root_ / "outside/secret.car", src_ / kCapps / "evil.car");
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("copy_carbonapps");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(plan.status().message(), HasSubstr("evil.car"));
  EXPECT_EQ(Tree(dst_), before);

  // A symlinked directory out of the roots is refused as well (copy_deployment walks it).
  fs::remove(src_ / kCapps / "evil.car");
  fs::create_symlink(root_ / "outside", src_ / "repository/deployment/server/outside");
  EXPECT_EQ(PlanStep("copy_deployment").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(StepsTest, SymlinkInsideTheRootsIsFollowed) {
  Write(root_ / "homes/shared/common.car", "shared capp");
  fs::create_symlink(root_ / "homes/shared/common.car", src_ / kCapps / "common.car");
  StepPlan plan = ExpectExactIdempotentReversible("copy_carbonapps");
  const FileOp* op = FindOp(plan, "/common.car");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->new_sha256, common::Sha256Hex("shared capp"));
}

TEST_F(StepsTest, HomesOutsideTheRootsOrWithDotDotAreRefused) {
  src_ = root_ / "homes/../homes/wso2mi-4.0.0";
  EXPECT_EQ(PlanStep("copy_carbonapps").status().code(), absl::StatusCode::kPermissionDenied);
  testing::CopyFixtureHome("4.0.0", root_ / "elsewhere/mi");
  fs::create_symlink(root_ / "elsewhere/mi", root_ / "homes/link-to-elsewhere");
  src_ = root_ / "homes/link-to-elsewhere";
  for (const std::string& step : KnownSteps()) {
    if (step == "snapshot_target") continue;  // reads no home
    absl::StatusOr<StepPlan> plan = PlanStep(step);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << step;
  }
}

TEST_F(StepsTest, CopyDeploymentKeepsUnmodifiedShippedFiles) {
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

TEST_F(StepsTest, CopyDeploymentReplacesOperatorModifiedShippedFiles) {
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

TEST_F(StepsTest, CopyDeploymentOverwriteShippedNever) {
  Write(src_ / kDefault / "registry.xml", "<registry provider=\"operator's own\"/>");
  absl::StatusOr<StepPlan> plan = PlanStep("copy_deployment", {{"overwrite_shipped", "never"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(FindOp(*plan, "/registry.xml"), nullptr);
  EXPECT_THAT(plan->message, HasSubstr("1 differing file kept (overwrite_shipped = never): " +
                                       std::string(kDefault) + "/registry.xml"));
  EXPECT_EQ(PlanStep("copy_deployment", {{"overwrite_shipped", "bogus"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StepsTest, CopyCustomComponents) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_custom_components");
  EXPECT_THAT(OpPaths(plan, dst_), ElementsAre("dropins", "dropins/custom-mediator_1.0.0.jar",
                                               "lib/mysql-connector-java-8.0.28.jar"));
  EXPECT_THAT(plan.message, HasSubstr("1 dropins file to copy; 1 lib jar to copy"));
  EXPECT_THAT(plan.message, HasSubstr("lib/differs.jar"));
  EXPECT_THAT(plan.message, HasSubstr("target ships newer/other version of shared-lib-1.0.jar "
                                      "(target: shared-lib-2.0.jar)"));
  EXPECT_EQ(Read(dst_ / "lib/differs.jar"), "the target's differs.jar");  // operator decides
  EXPECT_FALSE(fs::exists(dst_ / "lib/shared-lib-1.0.jar"));
}

TEST_F(StepsTest, CopyKeystores) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_keystores");
  const FileOp* primary = FindOp(plan, "/wso2carbon.jks");
  ASSERT_NE(primary, nullptr);
  EXPECT_EQ(primary->note, "replaces the new version's shipped keystore");
  const FileOp* p12 = FindOp(plan, "/partner.p12");
  ASSERT_NE(p12, nullptr);
  EXPECT_EQ(p12->expected_sha256, "");
  EXPECT_EQ(p12->mode, 0600u);  // a private keystore stays private
  EXPECT_THAT(plan.message, HasSubstr("3 keystore files to copy (1 new, 2 replacing"));
}

TEST_F(StepsTest, MergeConfig) {
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

TEST_F(StepsTest, MergeConfigAppliesPlanOverrides) {
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

TEST_F(StepsTest, MergeConfigParseErrorWritesNothing) {
  Write(src_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\n\n[broken\n");
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("conf/deployment.toml:4:"));
  EXPECT_EQ(Tree(dst_), before);
}

TEST_F(StepsTest, PreflightDetectsVersionsAndChecks) {
  absl::StatusOr<StepPlan> plan = PlanStep("preflight");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(plan->facts["source_version"], "4.0.0");
  EXPECT_EQ(plan->facts["target_version"], "4.2.0");
  EXPECT_EQ(plan->facts["migration_chain"], "4.0.0->4.2.0");
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

TEST_F(StepsTest, PreflightRefusesDowngradeAndNonMiHomes) {
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

TEST_F(StepsTest, PreflightJavaCheck) {
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

TEST_F(StepsTest, SnapshotTargetListsLaterPaths) {
  auto none = PlanStep("snapshot_target");
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(none->snapshot_paths, IsEmpty());
  const std::string a = (dst_ / "conf/deployment.toml").string();
  const std::string b = (dst_ / kSecurity / "wso2carbon.jks").string();
  later_paths_ = [&]() -> absl::StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{b, a, b, (dst_ / "conf").string()};  // a dir: no bytes
  };
  auto plan = PlanStep("snapshot_target");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_THAT(plan->snapshot_paths, ElementsAre(a, b));
  EXPECT_EQ(plan->message, "2 paths to snapshot");
  later_paths_ = [&]() -> absl::StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{(root_ / "outside.txt").string()};
  };
  EXPECT_EQ(PlanStep("snapshot_target").status().code(), absl::StatusCode::kPermissionDenied);
}

// A whole run the way the agent does it: snapshot_target saves what the later steps will touch,
// each step is planned and applied in turn, and one rollback restores the original target.
TEST_F(StepsTest, WholeRunRollsBackToTheOriginalTarget) {
  const auto src_before = Tree(src_), dst_before = Tree(dst_);
  const std::vector<std::string> steps = {"copy_carbonapps", "copy_deployment",
                                          "copy_custom_components", "copy_keystores",
                                          "merge_config"};
  later_paths_ = [&]() -> absl::StatusOr<std::vector<std::string>> {
    std::vector<std::string> paths;
    for (const std::string& s : steps) {
      auto p = PlanStep(s);
      if (!p.ok()) return p.status();
      for (const FileOp& op : p->changes.ops) paths.push_back(op.path);
    }
    return paths;
  };
  auto snap_plan = PlanStep("snapshot_target");
  ASSERT_TRUE(snap_plan.ok()) << snap_plan.status();
  later_paths_ = nullptr;
  auto snap = Snapshot::Open(Run("whole"));
  ASSERT_TRUE(snap.ok());
  for (const std::string& p : snap_plan->snapshot_paths) ASSERT_TRUE((*snap)->Save(p).ok()) << p;
  for (const std::string& s : steps) {
    auto p = PlanStep(s);
    ASSERT_TRUE(p.ok()) << s << ": " << p.status();
    ASSERT_TRUE(ApplyChangeSet(p->changes, "/", **snap, nullptr).ok()) << s;
  }
  EXPECT_NE(Tree(dst_), dst_before);
  for (const std::string& s : steps) EXPECT_TRUE(PlanStep(s)->changes.empty()) << s;
  auto rollback = PlanRollback(Run("whole"), false);
  ASSERT_TRUE(rollback.ok()) << rollback.status();
  ASSERT_TRUE(ApplyAs("whole-rollback", *rollback).ok());
  EXPECT_EQ(Tree(dst_), dst_before);
  EXPECT_EQ(Tree(src_), src_before);
}

}  // namespace
}  // namespace mimic::agent
