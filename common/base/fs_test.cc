#include "common/base/fs.h"

#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vector>

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

// The names of an open folder, sorted, from its start whatever the descriptor read before;
// the caller's descriptor stays open.
TEST(FsTest, ReadFolderNamesListsAnOpenFolder) {
  std::string d = TempDir();
  for (const char* n : {"b", "a", "c"}) ASSERT_TRUE(WriteFileAtomic(d + "/" + n, n).ok());
  ASSERT_TRUE(MakeDirs(d + "/sub").ok());
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<std::vector<std::string>> names = ReadFolderNames(fd, d);
    ASSERT_TRUE(names.ok()) << names.status();
    EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "c", "sub"}));
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);  // still open
  ::close(fd);
  absl::StatusOr<std::vector<std::string>> bad = ReadFolderNames(fd, d + "/closed");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(d + "/closed"), std::string::npos);
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

// Waits until the coarse clock is well past `path`'s ctime, so the hash cache may keep its hash.
void WaitUntilCtimeIsOld(const std::string& path) {
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const int64_t ctime = st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec;
  for (;;) {
    struct timespec now;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec * 1'000'000'000LL + now.tv_nsec > ctime + 200'000'000LL) return;
    struct timespec tick = {0, 5'000'000};
    ::nanosleep(&tick, nullptr);
  }
}

TEST(FsTest, HashCacheReadsAnUnchangedFileOnce) {
  ClearHashCache();
  const std::string p = JoinPath(TempDir(), "capp.car");
  ASSERT_TRUE(WriteFileAtomic(p, std::string(300000, 'a')).ok());
  WaitUntilCtimeIsOld(p);
  const HashCacheStats s0 = GetHashCacheStats();
  EXPECT_EQ(*Sha256File(p), Sha256Hex(std::string(300000, 'a')));
  EXPECT_EQ(*Sha256File(p), Sha256Hex(std::string(300000, 'a')));
  const int fd = ::open(p.c_str(), O_RDONLY);
  EXPECT_EQ(*Sha256Fd(fd, p), Sha256Hex(std::string(300000, 'a')));
  ::close(fd);
  const HashCacheStats s1 = GetHashCacheStats();
  EXPECT_EQ(s1.misses - s0.misses, 1u);
  EXPECT_EQ(s1.hits - s0.hits, 2u);
  EXPECT_EQ(s1.bytes_hashed - s0.bytes_hashed, 300000u);
}

TEST(FsTest, HashCacheMissesAFileChangedInPlaceEvenWithItsMtimeSetBack) {
  ClearHashCache();
  const std::string p = JoinPath(TempDir(), "deployment.toml");
  ASSERT_TRUE(WriteFileAtomic(p, "port = 1\n").ok());
  WaitUntilCtimeIsOld(p);
  struct stat before;
  ASSERT_EQ(::stat(p.c_str(), &before), 0);
  EXPECT_EQ(*Sha256File(p), Sha256Hex("port = 1\n"));
  // Same size, same inode, mtime put back: only ctime tells, and it does.
  const int fd = ::open(p.c_str(), O_WRONLY);
  ASSERT_EQ(::pwrite(fd, "port = 2\n", 9, 0), 9);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::futimens(fd, times), 0);
  ::close(fd);
  EXPECT_EQ(*Sha256File(p), Sha256Hex("port = 2\n"));
  // A file replaced by rename (a new inode) misses too.
  ASSERT_TRUE(WriteFileAtomic(p, "port = 3\n").ok());
  EXPECT_EQ(*Sha256File(p), Sha256Hex("port = 3\n"));
}

// Stages a copy of `from` into `dir` as `name`, commits it and returns the staged sha256.
std::string CopyAndCommit(const std::string& from, const std::string& dir, const std::string& name) {
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  absl::StatusOr<StagedWrite> w = StageCopyAt(from, dir_fd, name, JoinPath(dir, name), 0644, -1, -1);
  ::close(dir_fd);
  if (!w.ok()) return std::string(w.status().message());
  const std::vector<StagedWrite*> all = {&*w};
  if (!SyncStaged(all).ok() || !w->Commit().ok()) return "not committed";
  return w->sha256();
}

TEST(FsTest, ACopyOfAFileWhoseHashIsKnownTakesItsSha256FromTheCache) {
  ClearHashCache();
  const std::string dir = TempDir();
  const std::string from = JoinPath(dir, "capp.car");
  const std::string bytes(300000, 'a');
  ASSERT_TRUE(WriteFileAtomic(from, bytes).ok());
  WaitUntilCtimeIsOld(from);
  ASSERT_EQ(*Sha256File(from), Sha256Hex(bytes));
  const HashCacheStats s0 = GetHashCacheStats();
  EXPECT_EQ(CopyAndCommit(from, dir, "copy.car"), Sha256Hex(bytes));
  EXPECT_EQ(GetHashCacheStats().hits - s0.hits, 1u);  // the copy used the known sha256
  EXPECT_EQ(*ReadFile(JoinPath(dir, "copy.car")), bytes);
}

TEST(FsTest, ACopyOfAKnownFileChangedDuringTheCopyGivesTheSha256OfTheBytesWritten) {
  ClearHashCache();
  const std::string dir = TempDir();
  const std::string from = JoinPath(dir, "capp.car");
  ASSERT_TRUE(WriteFileAtomic(from, std::string(300000, 'a')).ok());
  WaitUntilCtimeIsOld(from);
  ASSERT_EQ(*Sha256File(from), Sha256Hex(std::string(300000, 'a')));
  // After the first chunk, the end of the source (not copied yet) is rewritten in place.
  bool changed = false;
  SetCopyProgressHookForTesting([&](const std::string&, uint64_t) {
    if (changed) return;
    changed = true;
    const int fd = ::open(from.c_str(), O_WRONLY);
    ASSERT_EQ(::pwrite(fd, "bbbb", 4, 299990), 4);
    ::close(fd);
  });
  const std::string sha = CopyAndCommit(from, dir, "copy.car");
  SetCopyProgressHookForTesting(nullptr);
  ASSERT_TRUE(changed);
  const std::string written = *ReadFile(JoinPath(dir, "copy.car"));
  EXPECT_EQ(written.substr(299990, 4), "bbbb");
  EXPECT_EQ(sha, Sha256Hex(written));
}

TEST(FsTest, JoinAndSplit) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(Dirname("/a/b"), "/a");
  EXPECT_EQ(Basename("/a/b"), "b");
}

}  // namespace
}  // namespace mimic::common
