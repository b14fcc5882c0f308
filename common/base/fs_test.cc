#include "common/base/fs.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "gtest/gtest.h"

namespace mimic::common {
namespace {

std::string TempDir() {
  std::string t = ::testing::TempDir() + "fs_test_XXXXXX";
  return mkdtemp(t.data());
}

TEST(FsTest, Sha256OfKnownValue) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(FsTest, AtomicWriteCreatesParentsAndKeepsMode) {
  std::string d = TempDir();
  std::string p = d + "/a/b/c.txt";
  ASSERT_TRUE(WriteFileAtomic(p, "hello", 0600).ok());
  EXPECT_EQ(*ReadFile(p), "hello");
  EXPECT_EQ(FileMode(p), 0600u);
  EXPECT_EQ(*Sha256File(p), Sha256Hex("hello"));
  ASSERT_TRUE(CopyFileAtomic(p, d + "/copy", 0644).ok());
  EXPECT_EQ(*ReadFile(d + "/copy"), "hello");
  // No temporary files are left behind.
  auto files = ListFilesRecursive(d);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(*files, (std::vector<std::string>{"a/b/c.txt", "copy"}));
}

TEST(FsTest, Sha256IfExistsIsEmptyForMissing) {
  std::string d = TempDir();
  EXPECT_EQ(*Sha256IfExists(d + "/nope"), "");
  EXPECT_EQ(*Sha256IfExists(d + "/nope/deeper"), "");
}

TEST(FsTest, MakeDirsCreatesEveryLevelAndFsyncDirNamesAMissingDir) {
  std::string d = TempDir();
  const std::string deep = JoinPath(d, "a/b/c");
  ASSERT_TRUE(MakeDirs(deep, 0700).ok());
  EXPECT_TRUE(IsDirectory(deep));
  EXPECT_EQ(FileMode(deep), 0700u);
  EXPECT_TRUE(MakeDirs(deep).ok());  // already there
  ASSERT_TRUE(WriteFileAtomic(JoinPath(d, "file"), "x").ok());
  EXPECT_EQ(MakeDirs(JoinPath(d, "file")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(FsyncDir(deep).ok());
  absl::Status st = FsyncDir(JoinPath(d, "missing"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(JoinPath(d, "missing")), absl::string_view::npos) << st;
}

TEST(FsTest, JoinAndSplit) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(Dirname("/a/b"), "/a");
  EXPECT_EQ(Basename("/a/b"), "b");
}

}  // namespace
}  // namespace mimic::common
