// migrate_userstore_config and verify on MI homes copied from shared/fixtures/mi/: LDAP and JDBC
// user stores carried (secrets kept in the file, redacted in the changes), idempotent, and
// merge_config afterwards agrees; verify against tests/testdata/mi-standin.sh.
#include "agent/steps/steps.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agent/engine/change_set.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step_test_util.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLdap[] = R"([user_store]
type = "read_write_ldap"
connection_url = "ldap://ldap.example.com:10389"
connection_name = "uid=admin,ou=system"
connection_password = "LdapS3cret"
user_search_base = "ou=Users,dc=wso2,dc=org"
)";

constexpr char kJdbc[] = R"([user_store]
class = "org.wso2.micro.integrator.security.user.core.jdbc.JDBCUserStoreManager"
type = "database"
read_only = true

[realm_manager]
data_source = "WSO2CarbonDB"
)";

constexpr char kDatasources[] = R"(
[[datasource]]
id = "WSO2CarbonDB"
url = "jdbc:mysql://db.example.com:3306/userdb"
username = "mi"
password = "DbS3cret"
driver = "com.mysql.jdbc.Driver"
pool_options.maxActive = 50
pool_options.testOnBorrow = true

[[datasource]]
id = "OrdersDB"
url = "jdbc:mysql://db.example.com:3306/orders"
username = "orders"
password = "OrdersS3cret"
driver = "com.mysql.jdbc.Driver"
)";

using testing::Write;

// Unlike testing::Read, "" for a file that cannot be read (a process gone from /proc).
std::string Read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bool Alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  const std::string stat = Read(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class LateStepsTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("late_steps_"));
    GuardHomes();
  }
  void TearDown() override { fs::remove_all(root_); }

  void MakeHomes(const std::string& from, const std::string& to) {
    src_ = root_ / ("homes/wso2mi-" + from);
    dst_ = root_ / ("homes/wso2mi-" + to);
    testing::CopyFixtureHome(from, src_, {"conf", "updates"}, /*writable=*/false);
    testing::CopyFixtureHome(to, dst_, {"conf", "updates"}, /*writable=*/false);
  }

  // The source's deployment.toml with its [user_store] table replaced by `tables`.
  void SetSourceUserStore(const std::string& tables) {
    const fs::path p = src_ / "conf/deployment.toml";
    Write(p, absl::StrReplaceAll(Read(p), {{"[user_store]\ntype = \"read_only_ldap\"\n", tables}}));
  }

  absl::StatusOr<StepPlan> PlanStep(const std::string& name,
                                    const std::map<std::string, std::string>& params = {},
                                    bool check = true) {
    std::unique_ptr<Step> step = name == "verify" ? NewVerifyStep()
                                 : name == "migrate_userstore_config"
                                     ? NewMigrateUserstoreConfigStep()
                                     : MakeStep(name);
    if (step == nullptr) return absl::NotFoundError(name);
    EXPECT_EQ(step->name(), name);
    StepContext ctx = Context(name, params, check, Run("current"));
    return step->Plan(ctx);
  }

  void Apply(const std::string& id, const ChangeSet& cs) {
    auto snap = Snapshot::Open(Run(id));
    ASSERT_TRUE(snap.ok()) << snap.status();
    ASSERT_TRUE(ApplyChangeSet(cs, "/", **snap, nullptr).ok());
  }

  // Applies migrate_userstore_config; checks secrets and idempotency, then that merge_config
  // changes none of the user store keys and leaves this step with nothing to do.
  StepPlan ApplyAndCheckConsistency(const std::vector<std::string>& secrets) {
    absl::StatusOr<StepPlan> plan = PlanStep("migrate_userstore_config");
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED) << plan->message;
    EXPECT_EQ(plan->changes.ops.size(), 1u);
    for (const auto& c : plan->changes.config_changes) {
      EXPECT_NE(c.action(), "keep");
      for (const std::string& s : secrets) {
        EXPECT_THAT(c.old_value() + c.new_value() + c.note(), Not(HasSubstr(s))) << c.key();
      }
    }
    Apply("userstore", plan->changes);
    const std::string text = Read(dst_ / "conf/deployment.toml");
    for (const std::string& s : secrets) EXPECT_THAT(text, HasSubstr(s)) << "secret kept in file";

    absl::StatusOr<StepPlan> again = PlanStep("migrate_userstore_config");
    EXPECT_TRUE(again.ok()) << again.status();
    if (again.ok()) {
      EXPECT_TRUE(again->changes.empty()) << again->message;
      EXPECT_THAT(again->message, HasSubstr("up to date"));
    }

    absl::StatusOr<StepPlan> merge = PlanStep("merge_config");
    EXPECT_TRUE(merge.ok()) << merge.status();
    if (!merge.ok()) {
      return *std::move(plan);
    }
    for (const auto& c : merge->changes.config_changes) {
      for (const char* prefix : {"user_store", "realm_manager", "internal_apis.file_user_store"}) {
        EXPECT_FALSE(c.key().rfind(prefix, 0) == 0)
            << "merge_config flips " << c.key() << " (" << c.action() << ")";
      }
    }
    Apply("merge", merge->changes);
    absl::StatusOr<StepPlan> after = PlanStep("migrate_userstore_config");
    EXPECT_TRUE(after.ok()) << after.status();
    if (after.ok()) {
      EXPECT_TRUE(after->changes.empty()) << after->message;
    }
    return *std::move(plan);
  }

  std::map<std::string, std::string> ChangesByKey(const StepPlan& plan) {
    std::map<std::string, std::string> out;
    for (const auto& c : plan.changes.config_changes) {
      out[c.key()] = absl::StrCat(c.action(), " ", c.new_value(), " | ", c.note());
    }
    return out;
  }
};

TEST_F(LateStepsTest, DefaultUserStoreIsOk) {
  MakeHomes("4.0.0", "4.2.0");
  const std::string before = Read(dst_ / "conf/deployment.toml");
  absl::StatusOr<StepPlan> plan = PlanStep("migrate_userstore_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_OK);
  EXPECT_EQ(plan->message, "default user store; nothing to carry");
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(Read(dst_ / "conf/deployment.toml"), before);
}

TEST_F(LateStepsTest, ReadWriteLdapIsCarriedAndFileUserStoreDisabled) {
  MakeHomes("4.0.0", "4.2.0");
  SetSourceUserStore(kLdap);
  StepPlan plan = ApplyAndCheckConsistency({"LdapS3cret"});
  auto changes = ChangesByKey(plan);
  EXPECT_THAT(changes["user_store.type"], HasSubstr("read_write_ldap"));
  EXPECT_THAT(changes["user_store.connection_url"], HasSubstr("ldap.example.com"));
  EXPECT_THAT(changes["user_store.connection_password"], HasSubstr("<redacted>"));
  EXPECT_THAT(changes["internal_apis.file_user_store.enable"], HasSubstr("false"));
  EXPECT_THAT(changes["internal_apis.file_user_store.enable"], HasSubstr("guides require"));
  const std::string text = Read(dst_ / "conf/deployment.toml");
  EXPECT_THAT(text, HasSubstr("type = \"read_write_ldap\""));
  EXPECT_THAT(text, HasSubstr("[internal_apis.file_user_store]\nenable = false"));
}

TEST_F(LateStepsTest, JdbcUserStoreWithDatasourceAndRealmManager) {
  MakeHomes("1.2.0", "4.2.0");
  SetSourceUserStore(absl::StrCat(kJdbc, kDatasources));
  StepPlan plan = ApplyAndCheckConsistency({"DbS3cret"});
  auto changes = ChangesByKey(plan);
  EXPECT_THAT(changes["user_store.type"], HasSubstr("database"));
  EXPECT_THAT(changes["realm_manager.data_source"], HasSubstr("WSO2CarbonDB"));
  EXPECT_THAT(Logs(), HasSubstr("migrate_userstore_db must have run"));
  bool datasource = false;
  for (const auto& [key, v] : changes) datasource = datasource || key.rfind("datasource", 0) == 0;
  EXPECT_TRUE(datasource) << absl::StrJoin(changes, "\n", absl::PairFormatter("="));
  // merge_config (applied by ApplyAndCheckConsistency) brought the other datasource; the user
  // store's one is still there, unchanged.
  const std::string text = Read(dst_ / "conf/deployment.toml");
  EXPECT_THAT(text, HasSubstr("jdbc:mysql://db.example.com:3306/userdb"));
  EXPECT_THAT(text, HasSubstr("OrdersDB"));
}

TEST_F(LateStepsTest, JdbcOnlyUserStoreDatasourceIsTaken) {
  MakeHomes("4.0.0", "4.2.0");
  SetSourceUserStore(absl::StrCat(kJdbc, kDatasources));
  absl::StatusOr<StepPlan> plan = PlanStep("migrate_userstore_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  Apply("userstore", plan->changes);
  const std::string text = Read(dst_ / "conf/deployment.toml");
  EXPECT_THAT(text, HasSubstr("userdb"));
  EXPECT_THAT(text, Not(HasSubstr("OrdersDB")));
  EXPECT_THAT(Logs(), Not(HasSubstr("migrate_userstore_db")));
}

class VerifyTest : public LateStepsTest {
 protected:
  void SetUp() override {
    LateStepsTest::SetUp();
    MakeHomes("4.0.0", "4.2.0");
    const fs::path script = dst_ / "bin/micro-integrator.sh";
    fs::create_directories(script.parent_path());
    fs::copy_file(fs::path(MIMIC_SOURCE_DIR) / "tests/testdata/mi-standin.sh", script);
    fs::permissions(script, fs::perms(0755));
    port_ = FreePort();
    const fs::path toml = dst_ / "conf/deployment.toml";
    Write(toml, absl::StrReplaceAll(Read(toml), {{"# offset  = 10",
                                                  absl::StrCat("offset = ", port_ - 9191)}}));
  }

  // Runs verify in apply mode; the server must be gone afterwards.
  StepPlan Verify(std::map<std::string, std::string> params = {}) {
    params.emplace("start_timeout_seconds", "30");
    absl::StatusOr<StepPlan> plan = PlanStep("verify", params, false);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    EXPECT_TRUE(plan->changes.empty());
    const auto pid = plan->facts.find("verify_pid");
    EXPECT_NE(pid, plan->facts.end());
    if (pid != plan->facts.end()) {
      EXPECT_FALSE(Alive(std::stoi(pid->second))) << "still running";
    }
    EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid"));
    return *std::move(plan);
  }

  int port_ = 0;
};

TEST_F(VerifyTest, HealthyServerIsOkAndStopped) {
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message << "\n" << Logs();
  EXPECT_THAT(plan.message, HasSubstr(absl::StrCat("127.0.0.1:", port_, "/healthz")));
  EXPECT_THAT(plan.message, HasSubstr("ready"));
}

TEST_F(VerifyTest, FaultyCappsFail) {
  Write(dst_ / "FAULTY", "");
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_FAILED) << plan.message;
  EXPECT_THAT(plan.message, HasSubstr("bad.car"));
}

TEST_F(VerifyTest, LogLineCountsWhenProbeNeverAnswers) {
  Write(dst_ / "NOPROBE", "");
  // Grace 0: the start-up line is the event the step waits for; no 10 s of probe silence.
  StepPlan plan = Verify({{"probe_grace_seconds", "0"}});
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message;
  EXPECT_THAT(plan.message, HasSubstr("WSO2 Micro Integrator started"));
  EXPECT_THAT(plan.message, HasSubstr("never answered ready"));
}

TEST_F(VerifyTest, NegativeProbeGraceIsRefusedNamingTheParam) {
  absl::StatusOr<StepPlan> plan = PlanStep("verify", {{"probe_grace_seconds", "-1"}}, false);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("probe_grace_seconds"));
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid")) << "nothing may start on bad input";
}

TEST_F(VerifyTest, CheckModeNeverStarts) {
  absl::StatusOr<StepPlan> plan = PlanStep("verify");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("verify runs only in apply mode"));
  EXPECT_THAT(plan->message, HasSubstr(absl::StrCat(":", port_, "/healthz")));
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid"));
  EXPECT_FALSE(fs::exists(dst_ / "repository/logs/wso2carbon.log"));

  plan = PlanStep("verify", {{"probe_port", "12345"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->message, HasSubstr("127.0.0.1:12345/healthz"));
}

}  // namespace
}  // namespace mimic::agent
