// ApplyChangeSet and the change set ops on real files in a temporary directory.
#include "agent/engine/change_set_test_fixture.h"

namespace mimic::agent::change_set_testing {
namespace {

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

// rel path -> "uid:gid mode" for everything under `root` (symlinks not followed).
std::map<std::string, std::string> Owners(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) != 0) continue;
    char mode[16];
    std::snprintf(mode, sizeof(mode), "%o", st.st_mode & 07777);
    out[fs::relative(e.path(), root).string()] =
        std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + " " + mode;
  }
  return out;
}

std::string OwnerOf(const fs::path& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}

// An MI home owned by a non-root user, the agent as root: every file written takes the owner
// and group of the file it replaces, a new file or directory those of its folder, and rollback
// gives every restored file its owner, group and mode back.
TEST_F(ChangeSetTest, WritesKeepOwnersAndRollbackRestoresThem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown to another user)";
  ASSERT_EQ(::chown(target_.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chown((target_ / "conf").c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chown((target_ / "conf/a.txt").c_str(), 1, 2), 0);
  ASSERT_EQ(::chown((target_ / "conf/b.txt").c_str(), 2, 1), 0);
  fs::permissions(target_ / "conf/a.txt", fs::perms(0640));
  const auto before = Tree(target_);
  const auto owners_before = Owners(target_);

  ASSERT_TRUE(ApplyAs("r1", Sample()).ok());
  EXPECT_EQ(OwnerOf(target_ / "conf/a.txt"), "1:2");  // the replaced file's owner and group
  EXPECT_EQ(OwnerOf(target_ / "new"), "65534:65534");  // a made folder: its parent's
  EXPECT_EQ(OwnerOf(target_ / "new/dir"), "65534:65534");
  EXPECT_EQ(OwnerOf(target_ / "new/dir/c.txt"), "65534:65534");  // a new file: its folder's

  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_EQ(Tree(target_), before);
  EXPECT_EQ(Owners(target_), owners_before);  // b.txt back as 2:1 0600, a.txt 1:2 0640
}

// A folder a run removes comes back, on rollback, with the owner, group and mode it had (the
// snapshot records them), not its parent's: here two nested folders of a non-root user.
TEST_F(ChangeSetTest, RemovedFoldersComeBackWithTheirOwnersAndModes) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown to another user)";
  fs::create_directories(target_ / "gone/inner");
  ASSERT_EQ(::chown((target_ / "gone").c_str(), 12345, 12346), 0);
  ASSERT_EQ(::chown((target_ / "gone/inner").c_str(), 12347, 12348), 0);
  fs::permissions(target_ / "gone", fs::perms(0750));
  fs::permissions(target_ / "gone/inner", fs::perms(02710));
  const auto before = Tree(target_);
  const auto owners_before = Owners(target_);
  ChangeSet cs;
  for (const char* d : {"gone/inner", "gone"}) {
    FileOp op;
    op.kind = FileOp::Kind::kRmdir;
    op.path = (target_ / d).string();
    cs.ops.push_back(op);
  }
  ASSERT_TRUE(ApplyAs("r1", cs).ok());
  ASSERT_FALSE(fs::exists(target_ / "gone"));
  const std::string manifest = Read(fs::path(Run("r1")) / "snapshot/manifest");
  EXPECT_THAT(manifest, HasSubstr("R\t2710\t12347:12348\t" + (target_ / "gone/inner").string()));
  EXPECT_THAT(manifest, HasSubstr("R\t0750\t12345:12346\t" + (target_ / "gone").string()));

  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_EQ(OwnerOf(target_ / "gone"), "12345:12346");
  EXPECT_EQ(OwnerOf(target_ / "gone/inner"), "12347:12348");
  EXPECT_EQ(Tree(target_), before);  // modes 0750 and 02710 too
  EXPECT_EQ(Owners(target_), owners_before);
}

// A file changed between snapshot_target (which saved it) and the step that replaces it: the
// step's plan saw the new bytes, but the snapshot holds the old ones, so writing would lose the
// change for good. The write refuses.
TEST_F(ChangeSetTest, WriteRefusesAFileChangedSinceTheSnapshotSavedIt) {
  const std::string a = (target_ / "conf/a.txt").string();
  auto snap = Snapshot::Open(Run("r1"));
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE((*snap)->Save(a).ok());  // snapshot_target
  Write(a, "edited by the operator after snapshot_target\n");
  Write(root_ / "src/a.txt", "new a from the source\n");
  ChangeSet cs;
  cs.ops.push_back(*MakeCopyOp((root_ / "src/a.txt").string(), a).value());  // planned now
  absl::Status st = ApplyChangeSet(cs, "/", **snap, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("conf/a.txt"));
  EXPECT_EQ(Read(a), "edited by the operator after snapshot_target\n");

  // The same for a delete.
  FileOp del;
  del.kind = FileOp::Kind::kDelete;
  del.path = a;
  del.expected_sha256 = common::Sha256Hex("edited by the operator after snapshot_target\n");
  ChangeSet cs2;
  cs2.ops.push_back(del);
  EXPECT_EQ(ApplyChangeSet(cs2, "/", **snap, nullptr).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fs::exists(a));
}

// Deletes and restores re-check the expected sha256 exactly as writes do.
TEST_F(ChangeSetTest, DeleteAndRestoreRecheckTheExpectedSha) {
  FileOp del;
  del.kind = FileOp::Kind::kDelete;
  del.path = (target_ / "conf/b.txt").string();
  del.expected_sha256 = common::Sha256Hex("original b\n");
  ChangeSet cs;
  cs.ops.push_back(del);
  Write(target_ / "conf/b.txt", "changed behind mimic's back\n");
  absl::Status st = ApplyAs("r1", cs);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("changed since the plan was made"));
  EXPECT_EQ(Read(target_ / "conf/b.txt"), "changed behind mimic's back\n");

  // A restore planned, then the file edited before it is applied.
  Write(target_ / "conf/b.txt", "original b\n");
  ASSERT_TRUE(ApplyAs("r2", Sample()).ok());
  auto rb = PlanRollback(Run("r2"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  Write(target_ / "conf/a.txt", "edited between plan and apply\n");
  EXPECT_EQ(ApplyAs("r3", *rb).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "edited between plan and apply\n");
}

// A symlink inside the target home is never followed by a write: with the target's folder a
// link to the source's, the source would be written through the target.
TEST_F(ChangeSetTest, WritesNeverFollowSymlinksBeneathTheHome) {
  fs::create_directories(root_ / "source/repository");
  Write(root_ / "source/repository/app.car", "source's capp");
  fs::create_directory_symlink(root_ / "source/repository", target_ / "repository");
  const auto source_before = Tree(root_ / "source");
  const std::string via_link = (target_ / "repository/app.car").string();
  ChangeSet cs;
  cs.ops.push_back(*MakeWriteOp(via_link, "re-packed capp").value());
  absl::Status st = ApplyAs("r1", cs);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("symlink"));
  ChangeSet cs2;
  cs2.ops.push_back(*MakeWriteOp((target_ / "repository/new/x.txt").string(), "x").value());
  EXPECT_FALSE(ApplyAs("r2", cs2).ok());
  FileOp del;
  del.kind = FileOp::Kind::kDelete;
  del.path = via_link;
  del.expected_sha256 = common::Sha256Hex("source's capp");
  ChangeSet cs3;
  cs3.ops.push_back(del);
  EXPECT_FALSE(ApplyAs("r3", cs3).ok());
  EXPECT_EQ(Tree(root_ / "source"), source_before);
  EXPECT_FALSE(fs::exists(root_ / "source/repository/new"));

  // A dangling symlink where a file is to be written: refused, its target never created.
  fs::create_symlink(root_ / "nowhere/x.txt", target_ / "conf/dangling.txt");
  EXPECT_EQ(CurrentSha256((target_ / "conf/dangling.txt").string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  FileOp w;
  w.kind = FileOp::Kind::kWrite;
  w.path = (target_ / "conf/dangling.txt").string();
  w.content = "y";
  w.has_content = true;
  w.new_sha256 = common::Sha256Hex("y");
  ChangeSet cs4;
  cs4.ops.push_back(w);
  EXPECT_FALSE(ApplyAs("r4", cs4).ok());
  EXPECT_FALSE(fs::exists(root_ / "nowhere"));
  EXPECT_TRUE(fs::is_symlink(target_ / "conf/dangling.txt"));
}

// A dangling symlink in the source is reported as one, never followed nor taken for a file.
// Batched durability: every op's snapshot records (original saved, sha256 to be written,
// folders to be made) are in the manifest, fsynced once, before the first byte is written; a
// crash in the middle of the change set then leaves a state rollback accepts (a recorded path
// still as it was needs nothing). Seen from the copy hook, during the first copy.
TEST_F(ChangeSetTest, EveryOpIsRecordedInTheSnapshotBeforeTheFirstWrite) {
  Write(root_ / "src/x.car", std::string(200000, 'x'));
  Write(root_ / "src/y.car", std::string(200000, 'y'));
  ChangeSet cs;
  cs.ops.push_back(
      *MakeCopyOp((root_ / "src/x.car").string(), (target_ / "apps/x.car").string()).value());
  cs.ops.push_back(
      *MakeCopyOp((root_ / "src/y.car").string(), (target_ / "apps/y.car").string()).value());
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/a.txt").string(), "merged a\n").value());
  AddParentDirOps(&cs);
  std::string manifest_at_first_copy;
  const std::string first = (target_ / "apps/x.car").string();
  common::SetCopyProgressHookForTesting([&](const std::string& display, uint64_t) {
    if (display == first && manifest_at_first_copy.empty()) {
      manifest_at_first_copy = Read(fs::path(Run("r1")) / "snapshot/manifest");
    }
  });
  std::vector<mimic::v1::FileChange> applied;
  absl::Status st = ApplyAs("r1", cs, &applied);
  common::SetCopyProgressHookForTesting(nullptr);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(applied, SizeIs(4));
  EXPECT_THAT(manifest_at_first_copy, HasSubstr("D\t" + (target_ / "apps").string()));
  EXPECT_THAT(manifest_at_first_copy, HasSubstr(common::Sha256Hex(std::string(200000, 'y')) +
                                                "\t" + (target_ / "apps/y.car").string()));
  EXPECT_THAT(manifest_at_first_copy,
              HasSubstr(common::Sha256Hex("merged a\n") + "\t" + (target_ / "conf/a.txt").string()));
  EXPECT_THAT(manifest_at_first_copy, HasSubstr((target_ / "conf/a.txt").string()));
  // Nothing is recorded twice, and rollback is byte-exact.
  const std::string manifest = Read(fs::path(Run("r1")) / "snapshot/manifest");
  EXPECT_EQ(manifest, manifest_at_first_copy);
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_FALSE(fs::exists(target_ / "apps"));
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "original a\n");
}

// A path an earlier change set of the run wrote (copy_carbonapps' CApp, then migrate_datamapper
// re-packs it) is written again: recording ahead must not hide what the run wrote last.
TEST_F(ChangeSetTest, APathTheRunWroteBeforeIsWrittenAgain) {
  ChangeSet first;
  first.ops.push_back(*MakeWriteOp((target_ / "apps/dm.car").string(), "copied\n").value());
  AddParentDirOps(&first);
  ASSERT_TRUE(ApplyAs("r1", first).ok());
  ChangeSet second;
  second.ops.push_back(*MakeWriteOp((target_ / "apps/dm.car").string(), "re-packed\n").value());
  second.ops.push_back(*MakeWriteOp((target_ / "conf/a.txt").string(), "merged\n").value());
  absl::Status st = ApplyAs("r1", second);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Read(target_ / "apps/dm.car"), "re-packed\n");
  auto rb = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(ApplyAs("r2", *rb).ok());
  EXPECT_FALSE(fs::exists(target_ / "apps"));
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "original a\n");
}

// A change set that stops at a changed file still records only what it reached: the ops after
// the failing one are neither recorded nor written.
TEST_F(ChangeSetTest, RecordingAheadStopsAtTheFirstOpThatWouldFail) {
  ChangeSet cs;
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/a.txt").string(), "new a\n").value());
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/b.txt").string(), "new b\n").value());
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/c.txt").string(), "new c\n").value());
  Write(target_ / "conf/b.txt", "edited behind mimic's back\n");
  std::vector<mimic::v1::FileChange> applied;
  absl::Status st = ApplyAs("r1", cs, &applied);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(applied, SizeIs(1));
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "new a\n");
  EXPECT_EQ(Read(target_ / "conf/b.txt"), "edited behind mimic's back\n");
  EXPECT_FALSE(fs::exists(target_ / "conf/c.txt"));
  const std::string manifest = Read(fs::path(Run("r1")) / "snapshot/manifest");
  EXPECT_THAT(manifest, Not(HasSubstr((target_ / "conf/b.txt").string())));
  EXPECT_THAT(manifest, Not(HasSubstr((target_ / "conf/c.txt").string())));
}

// The temporaries of a change set's writes are all written before the first is synced and
// renamed (one sync for all): while the last is written, the others are temporaries beside
// their paths, and nothing is in place yet.
TEST_F(ChangeSetTest, WritesAreStagedThenMadeDurableAndRenamedTogether) {
  Write(root_ / "src/x.car", std::string(200000, 'x'));
  ChangeSet cs;
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/a.txt").string(), "new a\n").value());
  cs.ops.push_back(
      *MakeCopyOp((root_ / "src/x.car").string(), (target_ / "apps/x.car").string()).value());
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/c.txt").string(), "new c\n").value());
  AddParentDirOps(&cs);
  const std::string last = (target_ / "conf/c.txt").string();
  std::string a_then;
  bool x_there = true;
  std::vector<std::string> temps_then;
  common::SetCopyProgressHookForTesting([&](const std::string& display, uint64_t) {
    if (display != last) return;
    a_then = Read(target_ / "conf/a.txt");
    x_there = fs::exists(target_ / "apps/x.car");
    for (const auto& dir : {target_ / "conf", target_ / "apps"}) {
      for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().find(".mimic-tmp-") != std::string::npos) {
          temps_then.push_back(e.path().filename().string());
        }
      }
    }
  });
  std::vector<mimic::v1::FileChange> applied;
  absl::Status st = ApplyAs("r1", cs, &applied);
  common::SetCopyProgressHookForTesting(nullptr);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(a_then, "original a\n");
  EXPECT_FALSE(x_there);
  EXPECT_THAT(temps_then, SizeIs(3));  // a.txt's, x.car's and c.txt's (being written)
  EXPECT_THAT(applied, SizeIs(4));
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "new a\n");
  EXPECT_EQ(Read(target_ / "conf/c.txt"), "new c\n");
  EXPECT_EQ(Read(target_ / "apps/x.car"), std::string(200000, 'x'));
  for (const auto& e : fs::recursive_directory_iterator(target_)) {
    EXPECT_EQ(e.path().filename().string().find(".mimic-tmp-"), std::string::npos) << e.path();
  }
}

// The expected-sha256 guard runs again just before each staged write is renamed: a file changed
// after its write was staged is not overwritten, and the staged writes not renamed are removed.
TEST_F(ChangeSetTest, AFileChangedWhileItsWriteWasStagedIsNotOverwritten) {
  ChangeSet cs;
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/a.txt").string(), "new a\n").value());
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/b.txt").string(), "new b\n").value());
  cs.ops.push_back(*MakeWriteOp((target_ / "conf/c.txt").string(), "new c\n").value());
  const std::string last = (target_ / "conf/c.txt").string();
  common::SetCopyProgressHookForTesting([&](const std::string& display, uint64_t) {
    if (display == last) Write(target_ / "conf/b.txt", "edited behind mimic's back\n");
  });
  std::vector<mimic::v1::FileChange> applied;
  absl::Status st = ApplyAs("r1", cs, &applied);
  common::SetCopyProgressHookForTesting(nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("conf/b.txt changed since the plan was made"));
  ASSERT_THAT(applied, SizeIs(1));
  EXPECT_EQ(applied[0].path(), (target_ / "conf/a.txt").string());
  EXPECT_EQ(Read(target_ / "conf/a.txt"), "new a\n");
  EXPECT_EQ(Read(target_ / "conf/b.txt"), "edited behind mimic's back\n");
  EXPECT_FALSE(fs::exists(target_ / "conf/c.txt"));
  for (const auto& e : fs::recursive_directory_iterator(target_)) {
    EXPECT_EQ(e.path().filename().string().find(".mimic-tmp-"), std::string::npos) << e.path();
  }
}

// A change set reaches each folder once and reuses its descriptor for the folder's later ops; a
// folder it removes is reached again, so a write into a folder removed and made again by the
// same change set lands in the new folder (and the home), not in the removed one.
TEST_F(ChangeSetTest, AFolderRemovedAndMadeAgainInOneChangeSetIsWrittenInTheNewFolder) {
  Write(target_ / "old/f.txt", "f\n");
  ChangeSet cs;
  FileOp del;
  del.kind = FileOp::Kind::kDelete;
  del.path = (target_ / "old/f.txt").string();
  del.expected_sha256 = common::Sha256Hex("f\n");
  cs.ops.push_back(del);
  FileOp rmdir;
  rmdir.kind = FileOp::Kind::kRmdir;
  rmdir.path = (target_ / "old").string();
  cs.ops.push_back(rmdir);
  FileOp mkdir;
  mkdir.kind = FileOp::Kind::kMkdir;
  mkdir.path = (target_ / "old").string();
  mkdir.mode = 0755;
  cs.ops.push_back(mkdir);
  cs.ops.push_back(ContentWriteOp((target_ / "old/g.txt").string(), "", "g\n", 0644));
  absl::Status st = ApplyAs("r1", cs);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(fs::exists(target_ / "old/f.txt"));
  EXPECT_EQ(Read(target_ / "old/g.txt"), "g\n");
}

TEST_F(ChangeSetTest, DanglingSymlinkInTheSourceIsReported) {
  fs::create_directories(root_ / "src");
  fs::create_symlink(root_ / "gone/app.car", root_ / "src/app.car");
  auto op = MakeCopyOp((root_ / "src/app.car").string(), (target_ / "conf/app.car").string());
  EXPECT_EQ(op.status().code(), absl::StatusCode::kFailedPrecondition) << op.status();
  EXPECT_THAT(op.status().message(), HasSubstr("dangling symlink"));
  EXPECT_FALSE(fs::exists(target_ / "conf/app.car"));
}

}  // namespace
}  // namespace mimic::agent::change_set_testing
