// The step library as a whole: the catalogue, the guards every step shares (expected sha256, confinement, symlinks) and a whole run rolled back.
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using StepsTest = PopulatedHomesTest;

TEST_F(PopulatedHomesTest, CatalogueOrder) {
  // The agent implements exactly the catalogue the controller validates plans against.
  EXPECT_EQ(KnownSteps(), common::StepCatalogue());
  EXPECT_THAT(KnownSteps(), ::testing::Contains("migrate_datamapper"));
  for (const std::string& name : KnownSteps()) EXPECT_EQ(MakeStep(name)->name(), name);
  EXPECT_EQ(MakeStep("no_such_step"), nullptr);
}

TEST_F(PopulatedHomesTest, ExpectedShaMismatchAtApplyWritesNothing) {
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

TEST_F(PopulatedHomesTest, SymlinkOutOfTheRootsIsRefused) {
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

TEST_F(PopulatedHomesTest, SymlinkInsideTheRootsIsFollowed) {
  Write(root_ / "homes/shared/common.car", "shared capp");
  fs::create_symlink(root_ / "homes/shared/common.car", src_ / kCapps / "common.car");
  StepPlan plan = ExpectExactIdempotentReversible("copy_carbonapps");
  const FileOp* op = FindOp(plan, "/common.car");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->new_sha256, common::Sha256Hex("shared capp"));
}

TEST_F(PopulatedHomesTest, HomesOutsideTheRootsOrWithDotDotAreRefused) {
  src_ = root_ / "homes/../homes/wso2mi-4.0.0";
  EXPECT_EQ(PlanStep("copy_carbonapps").status().code(), absl::StatusCode::kPermissionDenied);
  testing::CopyMiHome("4.0.0", root_ / "elsewhere/mi");
  fs::create_symlink(root_ / "elsewhere/mi", root_ / "homes/link-to-elsewhere");
  src_ = root_ / "homes/link-to-elsewhere";
  for (const std::string& step : KnownSteps()) {
    if (step == "snapshot_target") continue;  // reads no home
    absl::StatusOr<StepPlan> plan = PlanStep(step);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << step;
  }
}

TEST_F(PopulatedHomesTest, WholeRunRollsBackToTheOriginalTarget) {
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

// A folder is listed through its descriptor: each entry costs one lstat of its name, not the
// guard's two stats of its whole path (and the listed folders are remembered, so resolving a
// listed file afterwards costs what it costs beneath a folder the guard walked itself). What the
// guard refuses is still refused: a hard-linked file and a FIFO in a nested folder.
TEST_F(PopulatedHomesTest, ListingAFolderAsksTheGuardOnlyForItsTop) {
  const std::string rel = "repository/deployment/server/synapse-configs/default";
  for (const char* d : {"api", "sequences", "endpoints"}) {
    for (int i = 0; i < 10; ++i) Write(src_ / rel / d / absl::StrCat("a", i, ".xml"), "<x/>");
  }
  StepContext ctx = Context("copy_deployment", {}, true, Run("current"));
  ASSERT_TRUE(guard_->ResolveUnder(src_.string(), rel).ok());  // the top, remembered
  const uint64_t before = guard_->components_checked();
  absl::StatusOr<std::vector<std::string>> files = ListConfinedFiles(ctx, src_.string(), rel);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_GE(files->size(), 30u);
  EXPECT_THAT(*files, ::testing::Contains(rel + "/sequences/a7.xml"));
  // The top folder's check and its lstat; not two stats per entry (78 here before).
  EXPECT_LE(guard_->components_checked() - before, 2u);
  const uint64_t listed = guard_->components_checked();
  ASSERT_TRUE(guard_->ResolveUnder(src_.string(), rel + "/sequences/a7.xml").ok());
  EXPECT_EQ(guard_->components_checked() - listed, 2u);  // sequences/ (stat) and a7.xml (lstat)

  ASSERT_EQ(::link((src_ / rel / "api/a1.xml").c_str(), (root_ / "outside-link.xml").c_str()), 0);
  absl::StatusOr<std::vector<std::string>> refused = ListConfinedFiles(ctx, src_.string(), rel);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("api/a1.xml"));
  ASSERT_EQ(::unlink((root_ / "outside-link.xml").c_str()), 0);
  ASSERT_EQ(::mkfifo((src_ / rel / "endpoints/pipe").c_str(), 0600), 0);
  refused = ListConfinedFiles(ctx, src_.string(), rel);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("endpoints/pipe"));
  EXPECT_THAT(FirstRefusedFile(src_.string(), rel), HasSubstr("endpoints/pipe: a FIFO"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes

namespace mimic::agent::steps_testing::generated_homes {
namespace {

using GeneratedHomesStepsTest = GeneratedHomesTest;

TEST_F(GeneratedHomesStepsTest, SymlinksOutOfTheRootsAreRefused) {
  Write(src_ / "registry/local/a.txt", "a");
  ExpectSymlinkOutRefused("copy_registry", src_ / "registry/governance/evil.xml");
  ExpectSymlinkOutRefused("copy_secondary_userstores", src_ / kUserstores / "evil2.xml");
  ExpectSymlinkOutRefused("hl7_transport", src_ / kDefault / "endpoints/evil3.xml");
}

// ---- exec -------------------------------------------------------------------------------------

}  // namespace
}  // namespace mimic::agent::steps_testing::generated_homes
