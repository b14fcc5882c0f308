// The audit's event writer under faults: a bounded queue that blocks the producer (never
// drops), a failing commit retried with a bounded backoff and then failing loudly, everything
// queued written on close, and text made NUL-safe before it is hashed and stored. Runs on
// SQLite, and on PostgreSQL under tests/db/run_pg_audit_tests.sh. Commit failures are injected
// through AuditOptions::before_commit.
#include <atomic>
#include <thread>

#include "controller/audit/audit_test_fixture.h"

namespace mimic::controller {
namespace {

// The same fixture; its own suite name, since gtest keys fixtures by suite across files.
class AuditWriterTest : public AuditTest {};

v1::Event LogEvent(const std::string& run_id, uint64_t seq, const std::string& text) {
  v1::Event e = Base(run_id, "mi-1", seq);
  e.mutable_log()->set_step("exec");
  e.mutable_log()->set_level(v1::LOG_INFO);
  e.mutable_log()->set_text(text);
  return e;
}

// Commits fail while `failing` is set (and count their attempts).
struct Fault {
  std::atomic<bool> failing{false};
  std::atomic<int> attempts{0};
  std::atomic<int> fail_first{0};  // additionally: fail the first N attempts
  std::function<absl::Status()> Hook() {
    return [this]() -> absl::Status {
      int n = ++attempts;
      if (failing || n <= fail_first) return absl::UnavailableError("injected: disk I/O error");
      return absl::OkStatus();
    };
  }
};

AuditOptions FastRetries(Fault& f, int attempts) {
  AuditOptions o;
  o.before_commit = f.Hook();
  o.commit_attempts = attempts;
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(4);
  return o;
}

TEST_F(AuditWriterTest, FullQueueBlocksTheProducerAndLosesNothing) {
  Fault fault;
  fault.failing = true;
  AuditOptions o = FastRetries(fault, 1000000);
  o.max_queued = 4;
  auto audit = OpenAudit(o);
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, LogEvent("run-q", seq, "line")).ok());
  }
  std::atomic<bool> returned{false};
  absl::Status fifth;
  std::thread producer([&] {
    fifth = audit->AppendEvent(kRollout, LogEvent("run-q", 5, "line 5"));
    returned = true;
  });
  // The producer blocks (or, wrongly, returns: then it never blocks and the wait times out).
  EXPECT_TRUE(audit->AwaitStats([](const AuditStats& s) { return s.blocked_producers == 1; },
                                absl::Seconds(60)));
  EXPECT_FALSE(returned) << "the fifth event was queued over the bound";
  EXPECT_EQ(audit->Stats().blocked_producers, 1);
  EXPECT_EQ(audit->Stats().unwritten, 4u);
  fault.failing = false;  // the database is back: the retry commits, the producer goes on
  producer.join();
  EXPECT_TRUE(fifth.ok()) << fifth;
  ASSERT_TRUE(audit->Flush().ok());
  EXPECT_EQ(*audit->EventCount(kRollout), 5);
  EXPECT_TRUE(audit->VerifyChain(kRollout)->ok);
}

TEST_F(AuditWriterTest, ACommitFailingPastItsAttemptsFailsLoudlyAndKeepsTheEvents) {
  Fault fault;
  fault.failing = true;
  {
    auto audit = OpenAudit(FastRetries(fault, 3));
    ASSERT_TRUE(audit->AppendEvent(kRollout, LogEvent("run-f", 1, "one")).ok());
    absl::Status st = audit->Flush();
    EXPECT_FALSE(st.ok());
    EXPECT_THAT(std::string(st.message()), HasSubstr("3 attempts"));
    EXPECT_THAT(std::string(st.message()), HasSubstr("injected: disk I/O error"));
    EXPECT_EQ(fault.attempts.load(), 3) << "retried past its bound";
    // Failed: later events are refused at once, not queued behind a dead writer.
    absl::Status later = audit->AppendEvent(kRollout, LogEvent("run-f", 2, "two"));
    EXPECT_FALSE(later.ok());
    EXPECT_EQ(audit->Stats().unwritten, 1u) << "the failed batch was dropped";
    fault.failing = false;  // back before close: the close drains what is held
  }
  auto reopened = OpenAudit();
  EXPECT_EQ(*reopened->EventCount(kRollout), 1);
}

TEST_F(AuditWriterTest, CloseDrainsTheQueueThroughTransientFailures) {
  Fault fault;
  fault.fail_first = 5;  // more than a closing writer used to try
  {
    auto audit = OpenAudit(FastRetries(fault, 20));
    for (uint64_t seq = 1; seq <= 50; ++seq) {
      ASSERT_TRUE(audit->AppendEvent(kRollout, LogEvent("run-c", seq, "line")).ok());
    }
  }  // closed at once, no Flush
  auto reopened = OpenAudit();
  EXPECT_EQ(*reopened->EventCount(kRollout), 50);
  EXPECT_TRUE(reopened->VerifyChain(kRollout)->ok);
  EXPECT_GT(fault.attempts.load(), 5);
}

// A NUL in any text (here a log line and a step message) is stored visibly, the same in the
// payload and the columns, so `audit verify` holds on PostgreSQL (whose text stops at a NUL).
TEST_F(AuditWriterTest, NulInTextIsStoredVisiblyAndTheChainVerifies) {
  auto audit = OpenAudit();
  const std::string with_nul("before\0after", 12);
  ASSERT_TRUE(audit->AppendEvent(kRollout, LogEvent("run-n", 1, with_nul)).ok());
  v1::Event f = Base("run-n", "mi-1", 2);
  f.mutable_step_finished()->set_step("exec");
  f.mutable_step_finished()->set_status(v1::STEP_FAILED);
  f.mutable_step_finished()->set_message(with_nul);
  ASSERT_TRUE(audit->AppendEvent(kRollout, f).ok());
  ASSERT_TRUE(audit->Flush().ok());
  absl::StatusOr<VerifyResult> v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->reason;
  auto events = audit->Events(kRollout);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(events->at(0).log().text(), "before\\0after");
  auto steps = audit->Steps("run-n");
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ(steps->at(0).message, "before\\0after");
}

}  // namespace
}  // namespace mimic::controller
