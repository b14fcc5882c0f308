#include "agent/engine/step_test_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/snapshot.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/mi_home.h"

namespace mimic::agent::testing {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    const std::string mode = std::to_string(st.st_mode & 07777);
    const std::string rel = fs::relative(e.path(), root).string();
    out[rel] =
        e.is_directory() ? "d " + mode : "f " + mode + " " + *common::Sha256File(e.path().string());
  }
  return out;
}

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

std::string Read(const fs::path& p) { return *common::ReadFile(p.string()); }

void MakeTempRoot(const std::string& prefix, fs::path* out) {
  std::string tmpl = ::testing::TempDir() + "/" + prefix + "XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  *out = fs::canonical(tmpl);
}

namespace {

// The generated homes: <dir>/<version>, removed when the test binary exits.
class GeneratedHomes {
 public:
  GeneratedHomes() {
    std::string tmpl = ::testing::TempDir() + "/mimic_mi_homes_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "cannot create " << tmpl;
      return;
    }
    dir_ = tmpl;
    for (const std::string& v : mi_home::Versions()) {
      mi_home::Options o;
      o.version = v;
      o.dest = (dir_ / v).string();
      o.keystores = false;
      if (absl::Status st = mi_home::MakeMiHome(o); !st.ok()) ADD_FAILURE() << st;
    }
  }
  ~GeneratedHomes() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  GeneratedHomes(const GeneratedHomes&) = delete;  // owns a directory
  GeneratedHomes& operator=(const GeneratedHomes&) = delete;
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

const GeneratedHomes& Homes() {
  static GeneratedHomes homes;
  return homes;
}

}  // namespace

void PrepareMiHomes() { Homes(); }

void CopyMiHome(const std::string& version, const fs::path& home,
                const std::vector<std::string>& dirs, bool writable) {
  const fs::path from = Homes().dir() / version;
  for (const std::string& dir : dirs) {
    fs::create_directories(home / dir);
    if (!writable) {
      fs::copy(from / dir, home / dir, fs::copy_options::recursive);
      continue;
    }
    for (const auto& e : fs::recursive_directory_iterator(from / dir)) {
      const fs::path to = home / dir / fs::relative(e.path(), from / dir);
      if (e.is_directory()) {
        fs::create_directories(to);
      } else {
        fs::copy_file(e.path(), to);
        fs::permissions(to, fs::perms(0644));
      }
    }
  }
}

std::vector<std::string> OpPaths(const StepPlan& plan, const fs::path& home) {
  std::vector<std::string> out;
  for (const FileOp& op : plan.changes.ops) {
    out.push_back(op.path.substr(home.string().size() + 1));
  }
  return out;
}

const FileOp* FindOp(const StepPlan& plan, const std::string& suffix) {
  for (const FileOp& op : plan.changes.ops) {
    if (op.path.size() >= suffix.size() &&
        op.path.compare(op.path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return &op;
    }
  }
  return nullptr;
}

absl::Status ApplyInRun(const std::string& run_dir, const ChangeSet& cs,
                        std::vector<mimic::v1::FileChange>* applied) {
  auto snap = Snapshot::Open(run_dir);
  if (!snap.ok()) return snap.status();
  return ApplyChangeSet(cs, "/", **snap, applied);
}

void StepHarness::MakeRoot(const std::string& prefix) { MakeTempRoot(prefix, &root_); }

void StepHarness::GuardHomes() {
  guard_ =
      std::make_unique<common::PathGuard>(std::vector<std::string>{(root_ / "homes").string()});
}

std::string StepHarness::Run(const std::string& id) const {
  return (root_ / "state/runs" / id).string();
}

StepContext StepHarness::Context(const std::string& name,
                                 const std::map<std::string, std::string>& params, bool check,
                                 const std::string& run_dir, bool level_prefix) {
  spec_.Clear();
  spec_.set_name(name);
  for (const auto& [k, v] : params) (*spec_.mutable_params())[k] = v;
  StepContext ctx;
  ctx.plan = &plan_;
  ctx.spec = &spec_;
  ctx.source_home = src_.string();
  ctx.target_home = dst_.string();
  ctx.guard = guard_.get();
  ctx.check = check;
  ctx.state_dir = (root_ / "state").string();
  ctx.run_dir = run_dir;
  if (level_prefix) {
    ctx.log = [this](LogLevel level, const std::string& text) {
      logs_.push_back(absl::StrCat(level == LogLevel::kWarning ? "W " : "I ", text));
    };
  } else {
    ctx.log = [this](LogLevel, const std::string& text) { logs_.push_back(text); };
  }
  return ctx;
}

absl::Status StepHarness::ApplyAs(const std::string& id, const ChangeSet& cs,
                                  std::vector<mimic::v1::FileChange>* applied) const {
  return ApplyInRun(Run(id), cs, applied);
}

std::string StepHarness::Logs() const { return absl::StrJoin(logs_, "\n"); }

StepPlan StepHarness::ExpectExactIdempotentReversible(
    const std::string& name, const std::function<absl::StatusOr<StepPlan>()>& plan_step,
    const std::string& again_says, bool expect_unforced) {
  const auto src_before = Tree(src_), dst_before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = plan_step();
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  if (expect_unforced) {
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED) << plan->message;
  }
  EXPECT_FALSE(plan->changes.empty()) << name << ": the test data should need changes";
  EXPECT_EQ(Tree(dst_), dst_before) << "planning wrote into the target";

  // Apply does exactly what the plan described, and nothing else.
  const auto described = DescribeChangeSet(plan->changes);
  std::vector<mimic::v1::FileChange> applied;
  EXPECT_TRUE(ApplyAs(name, plan->changes, &applied).ok());
  EXPECT_EQ(applied.size(), described.size());
  for (size_t i = 0; i < std::min(applied.size(), described.size()); ++i) {
    EXPECT_EQ(applied[i].SerializeAsString(), described[i].SerializeAsString());
  }
  const auto dst_after = Tree(dst_);
  std::map<std::string, std::string> expected, actual;
  for (const auto& c : described) {
    std::string rel = c.path().substr(dst_.string().size() + 1);
    expected[rel] = mimic::v1::Action_Name(c.action()) + " " + c.sha256_after();
  }
  std::set<std::string> paths;
  for (const auto& [p, v] : dst_before) paths.insert(p);
  for (const auto& [p, v] : dst_after) paths.insert(p);
  for (const std::string& p : paths) {
    auto b = dst_before.find(p), a = dst_after.find(p);
    if (b != dst_before.end() && a != dst_after.end() && b->second == a->second) continue;
    std::string sha = a == dst_after.end() || a->second[0] == 'd'
                          ? ""
                          : a->second.substr(a->second.rfind(' ') + 1);
    std::string action = b == dst_before.end()
                             ? (a->second[0] == 'd' ? "ACTION_MKDIR" : "ACTION_CREATE")
                             : (a == dst_after.end() ? "ACTION_DELETE" : "ACTION_UPDATE");
    actual[p] = action + " " + sha;
  }
  EXPECT_EQ(actual, expected) << name << ": the tree changed other than the plan said";

  // Idempotent: nothing left to do.
  absl::StatusOr<StepPlan> again = plan_step();
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) {
    EXPECT_TRUE(again->changes.empty()) << again->message;
    EXPECT_THAT(again->message, HasSubstr(again_says));
  }

  // Rollback restores the target byte for byte; the source was never touched.
  absl::StatusOr<ChangeSet> rollback = PlanRollback(Run(name), false);
  EXPECT_TRUE(rollback.ok()) << rollback.status();
  if (rollback.ok()) {
    EXPECT_TRUE(ApplyAs(name + "-rollback", *rollback).ok());
  }
  EXPECT_EQ(Tree(dst_), dst_before) << name << ": rollback left a difference";
  EXPECT_EQ(Tree(src_), src_before) << name << ": the source home was written";
  return *std::move(plan);
}

}  // namespace mimic::agent::testing
