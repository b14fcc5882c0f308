// ApplyChangeSet, Snapshot and PlanRollback on real files in a temporary directory.
#include "agent/engine/change_set.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "agent/engine/snapshot.h"
#include "agent/engine/step_test_util.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using testing::Read;
using testing::Tree;
using testing::Write;

class ChangeSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::MakeTempRoot("change_set_", &root_));
    target_ = root_ / "target";
    fs::create_directories(target_ / "conf");
    Write(target_ / "conf/a.txt", "original a\n");
    Write(target_ / "conf/b.txt", "original b\n");
    fs::permissions(target_ / "conf/b.txt", fs::perms(0600));
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Run(const std::string& id) { return (root_ / "runs" / id).string(); }

  // Applies `cs` as run `id` (its own snapshot); returns the status.
  absl::Status ApplyAs(const std::string& id, const ChangeSet& cs,
                       std::vector<mimic::v1::FileChange>* applied = nullptr) {
    return testing::ApplyInRun(Run(id), cs, applied);
  }

  // A change set that updates a.txt (copy), creates new/dir/c.txt (content, 0600), deletes b.txt.
  ChangeSet Sample() {
    Write(root_ / "src/a.txt", "new a from the source\n");
    ChangeSet cs;
    cs.ops.push_back(
        *MakeCopyOp((root_ / "src/a.txt").string(), (target_ / "conf/a.txt").string(), "copied")
             .value());
    cs.ops.push_back(*MakeWriteOp((target_ / "new/dir/c.txt").string(), "c content", 0600).value());
    FileOp del;
    del.kind = FileOp::Kind::kDelete;
    del.path = (target_ / "conf/b.txt").string();
    del.expected_sha256 = common::Sha256Hex("original b\n");
    cs.ops.push_back(del);
    AddParentDirOps(&cs);
    return cs;
  }

  fs::path root_, target_;
};

TEST_F(ChangeSetTest, DescribeListsEveryOpWithParentsFirst) {
  ChangeSet cs = Sample();
  auto d = DescribeChangeSet(cs);
  ASSERT_THAT(d, SizeIs(5));
  EXPECT_EQ(d[0].path(), (target_ / "new").string());
  EXPECT_EQ(d[0].action(), mimic::v1::ACTION_MKDIR);
  EXPECT_EQ(d[1].path(), (target_ / "new/dir").string());
  EXPECT_EQ(d[2].action(), mimic::v1::ACTION_UPDATE);
  EXPECT_EQ(d[2].sha256_before(), common::Sha256Hex("original a\n"));
  EXPECT_EQ(d[2].sha256_after(), common::Sha256Hex("new a from the source\n"));
  EXPECT_EQ(d[2].size(), 22u);
  EXPECT_EQ(d[2].note(), "copied");
  EXPECT_EQ(d[3].action(), mimic::v1::ACTION_CREATE);
  EXPECT_EQ(d[3].sha256_before(), "");
  EXPECT_EQ(d[4].action(), mimic::v1::ACTION_DELETE);
  EXPECT_EQ(d[4].sha256_after(), "");
}

TEST_F(ChangeSetTest, ApplyDoesExactlyThePlanAndRollbackRestoresByteForByte) {
  const auto before = Tree(target_);
  ChangeSet cs = Sample();
  std::vector<mimic::v1::FileChange> applied;
  ASSERT_TRUE(ApplyAs("r1", cs, &applied).ok());
  auto described = DescribeChangeSet(cs);
  ASSERT_EQ(applied.size(), described.size());
  for (size_t i = 0; i < applied.size(); ++i) {
    EXPECT_EQ(applied[i].SerializeAsString(), described[i].SerializeAsString()) << i;
  }
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "new a from the source\n");
  EXPECT_EQ(Read(target_ / "new/dir/c.txt"), "c content");
  EXPECT_EQ(common::FileMode((target_ / "new/dir/c.txt").string()), 0600u);
  EXPECT_FALSE(fs::exists(target_ / "conf/b.txt"));

  auto rollback = PlanRollback(Run("r1"), /*force=*/false);
  ASSERT_TRUE(rollback.ok()) << rollback.status();
  // restore b, delete c, restore a, then rmdir new/dir, new.
  ASSERT_THAT(rollback->ops, SizeIs(5));
  EXPECT_EQ(rollback->ops[3].kind, FileOp::Kind::kRmdir);
  EXPECT_EQ(rollback->ops[3].path, (target_ / "new/dir").string());
  ASSERT_TRUE(ApplyAs("r2", *rollback).ok());
  EXPECT_EQ(Tree(target_), before);  // content, mode (b.txt 0600) and directories
  EXPECT_THAT(PlanRollback(Run("r1"), false)->ops, IsEmpty());  // nothing left to undo

  // The rollback is itself a run: rolling it back gives the migrated tree again.
  auto redo = PlanRollback(Run("r2"), false);
  ASSERT_TRUE(redo.ok()) << redo.status();
  ASSERT_TRUE(ApplyAs("r3", *redo).ok());
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "new a from the source\n");
  EXPECT_EQ(Read(target_ / "new/dir/c.txt"), "c content");
  EXPECT_FALSE(fs::exists(target_ / "conf/b.txt"));
}

TEST_F(ChangeSetTest, ExpectedShaMismatchFailsWithoutWriting) {
  ChangeSet cs = Sample();
  Write(target_ / "conf/a.txt", "edited behind mimic's back\n");
  std::vector<mimic::v1::FileChange> applied;
  absl::Status st = ApplyAs("r1", cs, &applied);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("conf/a.txt changed since the plan was made"));
  EXPECT_THAT(st.message(), HasSubstr("not overwritten"));
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "edited behind mimic's back\n");
  // Apply stopped there: the parent dirs before it were made, nothing after it.
  EXPECT_THAT(applied, SizeIs(2));
  EXPECT_FALSE(fs::exists(target_ / "new/dir/c.txt"));
  EXPECT_TRUE(fs::exists(target_ / "conf/b.txt"));

  // A file that must not exist but does.
  ChangeSet create;
  create.ops.push_back(*MakeWriteOp((target_ / "conf/x.txt").string(), "x").value());
  Write(target_ / "conf/x.txt", "someone else's");
  st = ApplyAs("r2", create);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("expected sha256 (none)"));
  EXPECT_EQ(Read(target_ / "conf/x.txt"), "someone else's");
}

TEST_F(ChangeSetTest, CopyVerifiesTheWrittenBytes) {
  Write(root_ / "src/k.jks", "keystore v1");
  ChangeSet cs;
  cs.ops.push_back(
      *MakeCopyOp((root_ / "src/k.jks").string(), (target_ / "conf/k.jks").string()).value());
  Write(root_ / "src/k.jks", "keystore v2, changed after the plan");
  absl::Status st = ApplyAs("r1", cs);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("change during the copy"));
  // The snapshot knows what was really written: rollback needs no force.
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_FALSE(fs::exists(target_ / "conf/k.jks"));
}

TEST_F(ChangeSetTest, MakeOpsAreIdempotentAndKeepModes) {
  Write(root_ / "src/same.txt", "original a\n");
  EXPECT_FALSE(MakeCopyOp((root_ / "src/same.txt").string(), (target_ / "conf/a.txt").string())
                   .value()
                   .has_value());
  EXPECT_FALSE(MakeWriteOp((target_ / "conf/a.txt").string(), "original a\n").value());
  auto w = MakeWriteOp((target_ / "conf/b.txt").string(), "other", 0644).value();
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->mode, 0600u);  // an existing file keeps its mode
  fs::permissions(root_ / "src/same.txt", fs::perms(0640));
  auto c = MakeCopyOp((root_ / "src/same.txt").string(), (target_ / "conf/new.txt").string());
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->mode, 0640u);  // a copy takes the source's mode
  EXPECT_EQ((*c)->expected_sha256, "");
  fs::create_directories(target_ / "conf/adir");
  EXPECT_EQ(MakeWriteOp((target_ / "conf/adir").string(), "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ChangeSetTest, RollbackRefusesFilesChangedSinceUnlessForced) {
  const auto before = Tree(target_);
  ASSERT_TRUE(ApplyAs("r1", Sample()).ok());
  Write(target_ / "conf/a.txt", "edited after the run\n");
  Write(target_ / "new/dir/foreign.txt", "not mimic's");
  auto rb = PlanRollback(Run("r1"), false);
  EXPECT_EQ(rb.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(rb.status().message(), HasSubstr("conf/a.txt"));
  EXPECT_THAT(rb.status().message(), HasSubstr("foreign.txt"));
  EXPECT_THAT(rb.status().message(), HasSubstr("use force to restore anyway"));

  auto forced = PlanRollback(Run("r1"), true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  ASSERT_TRUE(ApplyAs("r2", *forced).ok());
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "original a\n");
  EXPECT_EQ(Read(target_ / "conf/b.txt"), "original b\n");
  EXPECT_FALSE(fs::exists(target_ / "new/dir/c.txt"));
  EXPECT_TRUE(fs::exists(target_ / "new/dir/foreign.txt"));  // others' files are never deleted
  fs::remove_all(target_ / "new");
  EXPECT_EQ(Tree(target_), before);
}

TEST_F(ChangeSetTest, SavedButNeverWrittenNeedsNothing) {
  {
    auto snap = Snapshot::Open(Run("r1"));
    ASSERT_TRUE(snap.ok());
    ASSERT_TRUE((*snap)->Save((target_ / "conf/a.txt").string()).ok());
    ASSERT_TRUE((*snap)->Save((target_ / "conf/absent.txt").string()).ok());
    EXPECT_EQ((*snap)->entries(), 2u);
    EXPECT_EQ((*snap)->bytes(), 11u);
  }
  Write(target_ / "conf/a.txt", "changed by someone else");
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_THAT(rb->ops, IsEmpty());
}

TEST_F(ChangeSetTest, SnapshotResumesKeepsFirstStateAndCutsTornLine) {
  const std::string a = (target_ / "conf/a.txt").string();
  {
    auto snap = Snapshot::Open(Run("r1"));
    ASSERT_TRUE(snap.ok());
    ASSERT_TRUE((*snap)->Save(a).ok());
    ASSERT_TRUE((*snap)->RecordWritten(a, common::Sha256Hex("second")).ok());
  }
  Write(a, "second");
  {
    // A crash in the middle of an append leaves a torn line.
    std::ofstream(Run("r1") + "/snapshot/manifest", std::ios::app) << "S\t9\t1\t0644\tabc";
  }
  auto snap = Snapshot::Open(Run("r1"));
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE((*snap)->IsSaved(a));
  EXPECT_EQ((*snap)->bytes(), 11u);
  ASSERT_TRUE((*snap)->Save(a).ok());  // idempotent: still the original bytes
  EXPECT_EQ((*snap)->bytes(), 11u);
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_EQ(Read(a), "original a\n");

  std::ofstream(Run("r1") + "/snapshot/manifest", std::ios::app) << "X\tnonsense\n";
  EXPECT_EQ(Snapshot::Open(Run("r1")).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ChangeSetTest, PathsWithOddBytesRoundTrip) {
  const auto before = Tree(target_);
  ChangeSet cs;
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/we\tird%20\nname.txt").string(), "odd").value());
  ASSERT_TRUE(ApplyAs("r1", cs).ok());
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_THAT(rb->ops, SizeIs(1));
  EXPECT_EQ(rb->ops[0].path, (target_ / "conf/we\tird%20\nname.txt").string());
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_EQ(Tree(target_), before);
}

TEST_F(ChangeSetTest, RefusesNonRegularFilesAndUnknownRuns) {
  fs::create_symlink(target_ / "conf/a.txt", target_ / "conf/link.txt");
  auto snap = Snapshot::Open(Run("r1"));
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ((*snap)->Save((target_ / "conf/link.txt").string()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CurrentSha256((target_ / "conf").string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PlanRollback(Run("nope"), false).status().code(), absl::StatusCode::kNotFound);
  fs::create_directories(Run("empty"));
  EXPECT_THAT(PlanRollback(Run("empty"), false)->ops, IsEmpty());
}

}  // namespace
}  // namespace mimic::agent
