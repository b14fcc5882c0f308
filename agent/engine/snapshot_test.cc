// Snapshot and PlanRollback on real files: what a run saves, resumes, and rolls back.
#include "agent/engine/change_set_test_fixture.h"

namespace mimic::agent::change_set_testing {
namespace {

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

// Temporary files an interrupted write left (a crash between create and rename) are removed by
// rollback, in folders that existed and in folders the run made, and the tree ends byte-exact.
TEST_F(ChangeSetTest, RollbackRemovesTempFilesOfInterruptedWrites) {
  const auto before = Tree(target_);
  ASSERT_TRUE(ApplyAs("r1", Sample()).ok());
  // What a kill -9 in the middle of two more copies of run r1 leaves.
  {
    auto snap = Snapshot::Open(Run("r1"));
    ASSERT_TRUE(snap.ok());
    for (const char* p : {"conf/Big04.car", "new/dir/Big05.car"}) {
      ASSERT_TRUE((*snap)->Save((target_ / p).string()).ok());
      ASSERT_TRUE((*snap)->RecordWritten((target_ / p).string(), common::Sha256Hex("big")).ok());
    }
  }
  Write(target_ / "conf/.Big04.car.mimic-tmp-123456", "partial");
  Write(target_ / "new/dir/.Big05.car.mimic-tmp-987", "partial");
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_EQ(Tree(target_), before);
}

// A run writes a file twice (copy_carbonapps copies a CApp, migrate_datamapper re-packs it) and
// is killed -9 between recording the second write and its rename: the file holds the run's
// first write. That is the run's own state (found by tests/fault/agent_kill_test.cc): rollback
// restores the original without --force.
TEST_F(ChangeSetTest, RollbackAcceptsTheRunsEarlierWriteWhenItsLastWasCut) {
  const auto before = Tree(target_);
  const std::string a = (target_ / "conf/a.txt").string();
  {
    auto snap = Snapshot::Open(Run("r1"));
    ASSERT_TRUE(snap.ok());
    ASSERT_TRUE((*snap)->Save(a).ok());
    ASSERT_TRUE((*snap)->RecordWritten(a, common::Sha256Hex("first write")).ok());
    Write(a, "first write");
    ASSERT_TRUE((*snap)->RecordWritten(a, common::Sha256Hex("second write")).ok());
    // kill -9 here: the second write's temporary file is never renamed.
  }
  Write(target_ / "conf/.a.txt.mimic-tmp-42", "second wr");
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_EQ(Tree(target_), before);

  // Anything else there is still a change since the run: refused without force.
  ASSERT_TRUE(ApplyAs("r3", Sample()).ok());
  Write(a, "edited by someone");
  EXPECT_EQ(PlanRollback(Run("r3"), false).status().code(), absl::StatusCode::kFailedPrecondition);
}

// A batch's records reach the manifest together at Flush (one write, one fsync); a batch never
// flushed is still appended when the snapshot goes away.
TEST_F(ChangeSetTest, SnapshotBatchRecordsReachTheManifestAtFlush) {
  const std::string manifest = Run("r1") + "/snapshot/manifest";
  {
    auto snap = Snapshot::Open(Run("r1"), target_.string());
    ASSERT_TRUE(snap.ok()) << snap.status();
    const std::string head = Read(manifest);
    (*snap)->BeginBatch();
    ASSERT_TRUE((*snap)->RecordCreatedDir((target_ / "d1").string()).ok());
    ASSERT_TRUE((*snap)->RecordWritten((target_ / "d1/x").string(), "").ok());
    EXPECT_EQ(Read(manifest), head);
    ASSERT_TRUE((*snap)->Flush().ok());
    EXPECT_THAT(Read(manifest), HasSubstr("D\t" + (target_ / "d1").string() + "\n"));
    EXPECT_THAT(Read(manifest), HasSubstr("W\t-\t" + (target_ / "d1/x").string() + "\n"));
    (*snap)->BeginBatch();
    ASSERT_TRUE((*snap)->RecordCreatedDir((target_ / "d2").string()).ok());
  }
  EXPECT_THAT(Read(manifest), HasSubstr("D\t" + (target_ / "d2").string() + "\n"));
  auto reopened = Snapshot::Open(Run("r1"));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->entries(), 2u);
}

// The saved copies of a batch are written to temporaries, then made durable together and put in
// place at Flush, before the records naming them are written; each record's sha256 is that of
// its saved copy.
TEST_F(ChangeSetTest, SavedCopiesOfABatchArePutInPlaceTogetherAtFlush) {
  const std::string files = Run("r1") + "/snapshot/files";
  const std::string manifest = Run("r1") + "/snapshot/manifest";
  auto snap = Snapshot::Open(Run("r1"), target_.string());
  ASSERT_TRUE(snap.ok()) << snap.status();
  (*snap)->BeginBatch();
  ASSERT_TRUE((*snap)->Save((target_ / "conf/a.txt").string()).ok());
  ASSERT_TRUE((*snap)->Save((target_ / "conf/b.txt").string()).ok());
  EXPECT_FALSE(fs::exists(files + "/0"));
  EXPECT_FALSE(fs::exists(files + "/1"));
  EXPECT_THAT(Read(manifest), Not(HasSubstr("conf/a.txt")));
  ASSERT_TRUE((*snap)->Flush().ok());
  EXPECT_EQ(Read(files + "/0"), "original a\n");
  EXPECT_EQ(Read(files + "/1"), "original b\n");
  EXPECT_THAT(Read(manifest), HasSubstr("\t" + common::Sha256Hex("original a\n") + "\t"));
  EXPECT_THAT(Read(manifest), HasSubstr("\t" + common::Sha256Hex("original b\n") + "\t"));
  EXPECT_EQ((*snap)->bytes(), 22u);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(files)) left.push_back(e.path().filename().string());
  EXPECT_THAT(left, ::testing::UnorderedElementsAre("0", "1"));
}

}  // namespace
}  // namespace mimic::agent::change_set_testing
