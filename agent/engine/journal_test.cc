#include "agent/engine/journal.h"

#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/fs.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

std::string TempDir() {
  std::string t = ::testing::TempDir() + "journal_XXXXXX";
  return std::string(mkdtemp(t.data()));
}
std::string TempFile() { return TempDir() + "/runs/r1/journal"; }

mimic::v1::Event Ev(uint64_t seq, const std::string& text) {
  mimic::v1::Event e;
  e.set_run_id("r1");
  e.set_seq(seq);
  e.mutable_log()->set_text(text);
  return e;
}

std::string ThreeRecords(const std::string& path) {
  auto j = Journal::Open(path);
  EXPECT_TRUE(j.ok());
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE((*j)->Append(Ev(i, "record " + std::to_string(i))).ok());
  return *common::ReadFile(path);
}

TEST(JournalTest, AppendsAndReadsBackInOrder) {
  std::string path = TempFile();
  std::vector<uint64_t> offsets;
  {
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok()) << j.status();
    for (int i = 1; i <= 50; ++i) {
      uint64_t at = 0;
      ASSERT_TRUE((*j)->Append(Ev(i, "line " + std::to_string(i)), &at).ok());
      offsets.push_back(at);
    }
  }
  {  // reopening appends after what is there
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok());
    uint64_t at = 0;
    ASSERT_TRUE((*j)->Append(Ev(51, "after reopen"), &at).ok());
    offsets.push_back(at);
  }
  auto c = Journal::Read(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->torn);
  EXPECT_TRUE(c->damaged.empty());
  ASSERT_EQ(c->events.size(), 51u);
  for (size_t i = 0; i < c->events.size(); ++i) EXPECT_EQ(c->events[i].seq(), i + 1);
  EXPECT_EQ(c->events.back().log().text(), "after reopen");
  EXPECT_EQ(c->offsets, offsets);
  auto e = Journal::ReadAt(path, offsets[41]);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->log().text(), "line 42");
  EXPECT_EQ(Journal::ReadAt(path, offsets[41] + 1).status().code(), absl::StatusCode::kDataLoss);
}

// Several records read back with one open: each in the order asked, a bad offset among good
// ones DATA_LOSS alone, a missing file NOT_FOUND for every one.
TEST(JournalTest, ReadsSeveralRecordsBackInTheOrderAsked) {
  const std::string path = TempFile();
  (void)ThreeRecords(path);
  auto c = Journal::Read(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->offsets.size(), 3u);
  const auto got = Journal::ReadAt(path, {c->offsets[2], c->offsets[0] + 1, c->offsets[0]});
  ASSERT_EQ(got.size(), 3u);
  ASSERT_TRUE(got[0].ok()) << got[0].status();
  EXPECT_EQ(got[0]->log().text(), "record 3");
  EXPECT_EQ(got[1].status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(got[2].ok()) << got[2].status();
  EXPECT_EQ(got[2]->log().text(), "record 1");
  const auto missing = Journal::ReadAt(path + ".gone", {c->offsets[0], c->offsets[1]});
  ASSERT_EQ(missing.size(), 2u);
  for (const auto& m : missing) EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
}

TEST(JournalTest, UnsyncedAppendsBecomeDurableWithTheNextSync) {
  std::string path = TempFile();
  std::vector<uint64_t> syncs;
  SetJournalSyncHookForTesting([&](const std::string& p, uint64_t durable) {
    if (p == path) syncs.push_back(durable);
  });
  {
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok()) << j.status();
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE((*j)->Append(Ev(i, "line"), nullptr, /*sync=*/false).ok());
    }
    EXPECT_EQ((*j)->durable_size(), 0u);
    EXPECT_GT((*j)->size(), 0u);
    EXPECT_TRUE(syncs.empty());
    ASSERT_TRUE((*j)->Sync().ok());
    EXPECT_EQ((*j)->durable_size(), (*j)->size());
    ASSERT_TRUE((*j)->Sync().ok());  // nothing new: no second fdatasync
    ASSERT_TRUE((*j)->Append(Ev(4, "line"), nullptr, /*sync=*/false).ok());
    ASSERT_TRUE((*j)->Append(Ev(5, "step event")).ok());  // syncs both
    EXPECT_EQ((*j)->durable_size(), (*j)->size());
    EXPECT_EQ(syncs, (std::vector<uint64_t>{syncs[0], (*j)->size()}));
  }
  SetJournalSyncHookForTesting(nullptr);
  auto c = Journal::Read(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->events.size(), 5u);
  EXPECT_EQ(c->offsets[3], syncs[0]);
}

TEST(JournalTest, TornTailIsReportedAndTruncatedRecordsBeforeKept) {
  std::string path = TempFile();
  std::string data = ThreeRecords(path);
  // A crash in the middle of the fourth record.
  ASSERT_TRUE(common::WriteFileAtomic(path, data + std::string("\x20\x00\x00\x00\x01", 5)).ok());
  auto c = Journal::Read(path);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->torn);
  EXPECT_TRUE(c->damaged.empty());
  EXPECT_EQ(c->events.size(), 3u);
  EXPECT_EQ(c->valid_end, data.size());
  ASSERT_TRUE(Journal::Truncate(path, c->valid_end).ok());
  EXPECT_EQ(*common::ReadFile(path), data);
  // A tail of zeros (a file extended but never written) is torn too, not an empty record.
  ASSERT_TRUE(common::WriteFileAtomic(path, data + std::string(4096, '\0')).ok());
  c = Journal::Read(path);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->torn);
  EXPECT_EQ(c->events.size(), 3u);
}

TEST(JournalTest, DamagedRecordInTheMiddleIsReportedAndSkipped) {
  std::string path = TempFile();
  std::string data = ThreeRecords(path);
  for (size_t flip : {size_t{0}, size_t{2}, size_t{5}, size_t{10}}) {  // length, crc, body
    std::string bad = data;
    bad[flip] ^= 0x55;
    ASSERT_TRUE(common::WriteFileAtomic(path, bad).ok());
    auto c = Journal::Read(path);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->torn) << flip;
    ASSERT_EQ(c->damaged.size(), 1u) << flip;
    EXPECT_NE(c->damaged[0].find("offset 0"), std::string::npos) << c->damaged[0];
    ASSERT_EQ(c->events.size(), 2u) << flip;
    EXPECT_EQ(c->events[0].seq(), 2u);
    EXPECT_EQ(c->events[1].seq(), 3u);
    EXPECT_EQ(c->valid_end, data.size());
  }
}

// A real full disk: a tmpfs mounted by the test (needs root or CAP_SYS_ADMIN).
TEST(JournalTest, AppendOnAFullDiskFailsNamingErrnoAndLeavesRecordBoundary) {
  std::string dir = TempDir();
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno)
                 << "): the full-disk test needs root or CAP_SYS_ADMIN";
  }
  std::string path = dir + "/runs/r1/journal";
  {
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok()) << j.status();
    absl::Status st;
    int written = 0;
    for (int i = 1; i <= 1000 && st.ok(); ++i) {
      st = (*j)->Append(Ev(i, std::string(700, 'x')));
      if (st.ok()) written = i;
    }
    ASSERT_FALSE(st.ok()) << "a 64 KiB tmpfs never filled";
    EXPECT_NE(st.message().find("No space left on device (errno 28)"), std::string::npos) << st;
    EXPECT_NE(st.message().find(path), std::string::npos) << st;
    // Every later append fails the same way, even one that would fit.
    EXPECT_EQ((*j)->Append(Ev(written + 1, "")).message(), st.message());
    auto c = Journal::Read(path);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->torn);  // the partial record was cut off again
    EXPECT_EQ(c->events.size(), static_cast<size_t>(written));
  }
  ASSERT_EQ(::umount(dir.c_str()), 0) << std::strerror(errno);
}

}  // namespace
}  // namespace mimic::agent
