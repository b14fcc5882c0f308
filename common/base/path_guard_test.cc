#include "common/base/path_guard.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

class PathGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "guard_XXXXXX";
    base_ = mkdtemp(t.data());
    ASSERT_TRUE(MakeDirs(base_ + "/root/mi").ok());
    ASSERT_TRUE(MakeDirs(base_ + "/outside").ok());
  }
  std::string base_;
};

TEST_F(PathGuardTest, InsideIsAllowed) {
  PathGuard g({base_ + "/root"});
  auto r = g.Resolve(base_ + "/root/mi/conf/deployment.toml");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, base_ + "/root/mi/conf/deployment.toml");
  EXPECT_TRUE(g.Resolve(base_ + "/root//mi/./x").ok());
}

TEST_F(PathGuardTest, OutsideDotDotAndRelativeAreRefused) {
  PathGuard g({base_ + "/root"});
  EXPECT_EQ(g.Resolve(base_ + "/outside/x").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(g.Resolve(base_ + "/root/../outside").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(g.Resolve("root/mi").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(g.Resolve(base_ + "/rootish").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(g.ResolveUnder(base_ + "/root/mi", "../x").ok());
  EXPECT_FALSE(g.ResolveUnder(base_ + "/root/mi", "/etc/passwd").ok());
}

TEST_F(PathGuardTest, SymlinkOutIsRefusedSymlinkInIsAllowed) {
  PathGuard g({base_ + "/root"});
  ASSERT_EQ(symlink((base_ + "/outside").c_str(), (base_ + "/root/mi/out").c_str()), 0);
  ASSERT_EQ(symlink((base_ + "/root/mi").c_str(), (base_ + "/root/in").c_str()), 0);
  auto out = g.Resolve(base_ + "/root/mi/out/file");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(out.status().message().find("symlink"), std::string::npos);
  EXPECT_TRUE(g.Resolve(base_ + "/root/in/file").ok());
}

TEST_F(PathGuardTest, RememberedFoldersSaveTheWalk) {
  PathGuard g({base_ + "/root"});
  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/a/b/c/d").ok());
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/a/b/c/d/f1").ok());
  const uint64_t first = g.components_checked();
  EXPECT_EQ(first, 6u);  // mi a b c d f1 (missing: nothing more to ask)
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/a/b/c/d/f2").ok());
  EXPECT_EQ(g.components_checked() - first, 2u);  // d (stat) and f2 (lstat)
}

// A walker that opened a folder without following a symlink hands it to the guard: resolves
// beneath it start there. A folder since swapped (another inode) is walked again; one outside
// the roots, or not a folder, is not remembered.
TEST_F(PathGuardTest, RememberFolderStartsLaterResolvesThere) {
  PathGuard g({base_ + "/root"});
  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/a/b/c").ok());
  struct stat st;
  ASSERT_EQ(::stat((base_ + "/root/mi/a/b/c").c_str(), &st), 0);
  g.RememberFolder(base_ + "/root/mi/a/b/c", st);
  uint64_t first = g.components_checked();
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/a/b/c/f").ok());
  EXPECT_EQ(g.components_checked() - first, 2u);  // c (stat) and f (lstat); not mi a b c f

  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/x").ok());
  g.RememberFolder(base_ + "/root/mi/x", st);  // not x's inode: found out, walked again
  first = g.components_checked();
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/x/f").ok());
  EXPECT_EQ(g.components_checked() - first, 4u);  // x (stat, wrong), mi x f

  ASSERT_EQ(::stat(base_.c_str(), &st), 0);
  g.RememberFolder(base_ + "/outside", st);  // outside the roots: ignored
  EXPECT_EQ(g.Resolve(base_ + "/outside/f").status().code(), absl::StatusCode::kPermissionDenied);
}

// The last component's lstat is given for a root itself too (no component is walked there).
TEST_F(PathGuardTest, ARootsOwnLstatIsGiven) {
  PathGuard g({base_ + "/root"});
  struct stat st;
  ASSERT_TRUE(g.Resolve(base_ + "/root", &st).ok());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_TRUE(g.Resolve(base_ + "/root/missing", &st).ok());
  EXPECT_EQ(st.st_mode, 0u);
}

// An existing file beneath a remembered folder costs two stats: the folder's, and the file's
// lstat, which also judges its kind (no third stat of the path).
TEST_F(PathGuardTest, AnExistingFileCostsOneLstatOfItsOwn) {
  PathGuard g({base_ + "/root"});
  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/d").ok());
  ASSERT_TRUE(WriteFileAtomic(base_ + "/root/mi/d/f", "x").ok());
  ASSERT_TRUE(WriteFileAtomic(base_ + "/root/mi/d/g", "y").ok());
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/d/f").ok());
  const uint64_t first = g.components_checked();
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/d/g").ok());
  EXPECT_EQ(g.components_checked() - first, 2u);
  // The kind is still judged on that answer: a hard-linked file, a FIFO, and an inside symlink
  // to a FIFO beneath the remembered folder are refused.
  ASSERT_EQ(::link((base_ + "/root/mi/d/g").c_str(), (base_ + "/outside/g").c_str()), 0);
  EXPECT_EQ(g.Resolve(base_ + "/root/mi/d/g").status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(::mkfifo((base_ + "/root/mi/d/p").c_str(), 0600), 0);
  EXPECT_EQ(g.Resolve(base_ + "/root/mi/d/p").status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(symlink((base_ + "/root/mi/d/p").c_str(), (base_ + "/root/mi/d/lp").c_str()), 0);
  EXPECT_EQ(g.Resolve(base_ + "/root/mi/d/lp").status().code(),
            absl::StatusCode::kPermissionDenied);
}

// A caller walking a folder learns each entry's kind from the guard's own lstat of it (no stat
// of its own): a symlink is reported as the link, not as what it leads to; a missing path as 0.
TEST_F(PathGuardTest, ResolveReportsTheLstatOfTheLastComponent) {
  PathGuard g({base_ + "/root"});
  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/d/sub").ok());
  ASSERT_TRUE(WriteFileAtomic(base_ + "/root/mi/d/f", "x").ok());
  ASSERT_EQ(symlink((base_ + "/root/mi/d/sub").c_str(), (base_ + "/root/mi/d/l").c_str()), 0);
  ASSERT_TRUE(g.ResolveUnder(base_ + "/root/mi", "d").ok());  // d remembered
  struct stat st {};
  st.st_mode = 0;
  ASSERT_TRUE(g.ResolveUnder(base_ + "/root/mi/d", "f", &st).ok());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 1);
  ASSERT_TRUE(g.ResolveUnder(base_ + "/root/mi/d", "sub", &st).ok());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_TRUE(g.ResolveUnder(base_ + "/root/mi/d", "l", &st).ok());
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_TRUE(g.ResolveUnder(base_ + "/root/mi/d", "missing", &st).ok());
  EXPECT_EQ(st.st_mode, 0u);
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/d/f", &st).ok());
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(PathGuardTest, ARememberedFolderSwappedForASymlinkOutIsRefused) {
  PathGuard g({base_ + "/root"});
  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/conf/sub").ok());
  ASSERT_TRUE(MakeDirs(base_ + "/outside/sub").ok());
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/conf/sub/x").ok());
  // The deepest folder swapped.
  ASSERT_EQ(::rename((base_ + "/root/mi/conf/sub").c_str(), (base_ + "/root/mi/old").c_str()), 0);
  ASSERT_EQ(symlink((base_ + "/outside/sub").c_str(), (base_ + "/root/mi/conf/sub").c_str()), 0);
  auto r = g.Resolve(base_ + "/root/mi/conf/sub/x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  // A folder higher up swapped: the remembered deeper path now leads outside.
  ASSERT_TRUE(MakeDirs(base_ + "/root/mi/a/b/c").ok());
  ASSERT_TRUE(MakeDirs(base_ + "/outside/a/b/c").ok());
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/a/b/c/x").ok());
  ASSERT_EQ(::rename((base_ + "/root/mi/a").c_str(), (base_ + "/root/mi/a-old").c_str()), 0);
  ASSERT_EQ(symlink((base_ + "/outside/a").c_str(), (base_ + "/root/mi/a").c_str()), 0);
  r = g.Resolve(base_ + "/root/mi/a/b/c/x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_NE(r.status().message().find("symlink"), std::string::npos);
  // A file beneath a remembered folder swapped for a symlink out.
  ASSERT_TRUE(g.Resolve(base_ + "/root/mi/old/f").ok());
  ASSERT_EQ(symlink("/etc/passwd", (base_ + "/root/mi/old/f").c_str()), 0);
  EXPECT_EQ(g.Resolve(base_ + "/root/mi/old/f").status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace mimic::common
