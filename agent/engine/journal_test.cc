#include "agent/engine/journal.h"

#include <stdlib.h>
#include <unistd.h>

#include "common/base/fs.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

std::string TempFile() {
  std::string t = ::testing::TempDir() + "journal_XXXXXX";
  return std::string(mkdtemp(t.data())) + "/runs/r1/journal";
}

mimic::v1::Event Ev(uint64_t seq, const std::string& text) {
  mimic::v1::Event e;
  e.set_run_id("r1");
  e.set_seq(seq);
  e.mutable_log()->set_text(text);
  return e;
}

TEST(JournalTest, AppendsAndReadsBackInOrder) {
  std::string path = TempFile();
  {
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok()) << j.status();
    for (int i = 1; i <= 50; ++i) ASSERT_TRUE((*j)->Append(Ev(i, "line " + std::to_string(i))).ok());
  }
  {  // reopening appends after what is there
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->Append(Ev(51, "after reopen")).ok());
  }
  bool torn = true;
  auto events = Journal::ReadAll(path, &torn);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_FALSE(torn);
  ASSERT_EQ(events->size(), 51u);
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq(), i + 1);
  EXPECT_EQ(events->back().log().text(), "after reopen");
}

TEST(JournalTest, TornTailIsDroppedCorruptionInsideIsDataLoss) {
  std::string path = TempFile();
  {
    auto j = Journal::Open(path);
    ASSERT_TRUE(j.ok());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE((*j)->Append(Ev(i, "x")).ok());
  }
  std::string data = *common::ReadFile(path);
  // A crash in the middle of the fourth record.
  ASSERT_TRUE(common::WriteFileAtomic(path, data + std::string("\x20\x00\x00\x00\x01", 5)).ok());
  bool torn = false;
  auto events = Journal::ReadAll(path, &torn);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(torn);
  EXPECT_EQ(events->size(), 3u);
  // A flipped byte in the first record is not a torn tail.
  std::string bad = data;
  bad[10] ^= 0x55;
  ASSERT_TRUE(common::WriteFileAtomic(path, bad).ok());
  EXPECT_EQ(Journal::ReadAll(path).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mimic::agent
