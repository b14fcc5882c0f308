// Fixtures the step tests share (one <step>_test.cc per step): each builds a root with an MI
// source and target home from the test MI home generator (tests/mi_home) and a PathGuard, and
// checks the contract every step keeps through testing::StepHarness (agent/engine/step_test_util.h).
//   populated_homes::PopulatedHomesTest  4.0.0 -> 4.2.0, homes filled with CApps, artifacts, jars,
//                                        keystores and a customised deployment.toml
//   generated_homes::GeneratedHomesTest  4.0.0 -> 4.2.0 as generated, plus HL7 and symlink helpers
//   conf_homes::ConfHomesTest            conf/ and updates/ of any two versions (user stores); VerifyTest
#ifndef MIMIC_AGENT_STEPS_STEPS_TEST_FIXTURE_H_
#define MIMIC_AGENT_STEPS_STEPS_TEST_FIXTURE_H_

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <set>
#include <signal.h>
#include <stdlib.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agent/engine/change_set.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step.h"
#include "agent/engine/step_test_util.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "common/base/subprocess.h"
#include "common/config/catalogue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/mi_home.h"

namespace mimic::agent::steps_testing::populated_homes {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

inline constexpr char kCapps[] = "repository/deployment/server/carbonapps";
inline constexpr char kDefault[] = "repository/deployment/server/synapse-configs/default";
inline constexpr char kSecurity[] = "repository/resources/security";

using testing::FindOp;
using testing::OpPaths;
using testing::Read;
using testing::Tree;
using testing::Write;

class PopulatedHomesTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  static void SetUpTestSuite() { testing::PrepareMiHomes(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("steps_"));
    src_ = root_ / "homes/wso2mi-4.0.0";
    dst_ = root_ / "homes/wso2mi-4.2.0";
    testing::CopyMiHome("4.0.0", src_);
    testing::CopyMiHome("4.2.0", dst_);
    GuardHomes();
    plan_.set_migration_path("auto");
    PopulateSource();
    PopulateTarget();
  }
  void TearDown() override { fs::remove_all(root_); }

  void PopulateSource() {
    Write(src_ / kCapps / mi_home::kDataMapperCappName, *mi_home::DataMapperCapp());
    Write(src_ / kCapps / "orders_1.0.0.car", "PK\x03\x04 orders capp bytes");
    Write(src_ / kCapps / "README.txt", "not a CApp");
    Write(src_ / kDefault / "api/HelloApi.xml", "<api name=\"Hello\" context=\"/hello\"/>\n");
    Write(src_ / "repository/deployment/server/dataservices/Orders.dbs", "<data name=\"Orders\"/>");
    Write(src_ / "repository/deployment/server/userstores/example_com.xml", "<UserStoreManager/>");
    Write(src_ / "dropins/custom-mediator_1.0.0.jar", "dropin jar bytes");
    Write(src_ / "lib/mysql-connector-java-8.0.28.jar", "mysql driver bytes");
    Write(src_ / "lib/shared-lib-1.0.jar", "shared 1.0");
    Write(src_ / "lib/same.jar", "same bytes");
    Write(src_ / "lib/differs.jar", "the source's differs.jar");
    Write(src_ / kSecurity / "wso2carbon.jks", "operator primary keystore bytes");
    Write(src_ / kSecurity / "client-truststore.jks", "operator truststore bytes");
    Write(src_ / kSecurity / "partner.p12", "operator pkcs12 bytes");
    fs::permissions(src_ / kSecurity / "partner.p12", fs::perms(0600));
    std::string toml = Read(src_ / "conf/deployment.toml");
    toml.replace(toml.find("hostname = \"localhost\""), 22,
                 "hostname = \"mi-prod-01.example.com\"");
    toml +=
        "\n[[datasource]]\nid = \"WSO2CarbonDB\"\nurl = \"jdbc:mysql://db:3306/carbon\"\n"
        "username = \"mi\"\npassword = \"s3cret-db-pass\"\n"
        "driver = \"com.mysql.cj.jdbc.Driver\"\n";
    Write(src_ / "conf/deployment.toml", toml);
  }

  void PopulateTarget() {
    Write(dst_ / kSecurity / "wso2carbon.jks", "4.2.0 shipped keystore");
    Write(dst_ / kSecurity / "client-truststore.jks", "4.2.0 shipped truststore");
    Write(dst_ / "lib/shared-lib-2.0.jar", "shared 2.0");
    Write(dst_ / "lib/same.jar", "same bytes");
    Write(dst_ / "lib/differs.jar", "the target's differs.jar");
  }

  absl::StatusOr<StepPlan> PlanStep(const std::string& name,
                                    const std::map<std::string, std::string>& params = {}) {
    std::unique_ptr<Step> step = MakeStep(name);
    if (step == nullptr) return absl::NotFoundError(name);
    StepContext ctx = Context(name, params, true, Run("current"));
    spec_.set_params_toml(spec_overrides_);
    ctx.paths_of_later_steps = later_paths_;
    return step->Plan(ctx);
  }

  // The contract every file step keeps; returns the first plan.
  StepPlan ExpectExactIdempotentReversible(const std::string& name,
                                           const std::map<std::string, std::string>& params = {}) {
    return StepHarness::ExpectExactIdempotentReversible(
        name, [&] { return PlanStep(name, params); }, "up to date", false);
  }

  std::string spec_overrides_;
  std::function<absl::StatusOr<std::vector<std::string>>()> later_paths_;
};

}  // namespace mimic::agent::steps_testing::populated_homes

namespace mimic::agent::steps_testing::generated_homes {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

inline constexpr char kDefault[] = "repository/deployment/server/synapse-configs/default";
inline constexpr char kUserstores[] = "repository/deployment/server/userstores";
inline constexpr char kHl7Jar[] = "org.wso2.micro.integrator.business.messaging.hl7-4.2.0.jar";
inline constexpr char kJpaJar[] = "openjpa-all-2.2.2.wso2v2.jar";

inline std::unique_ptr<Step> Make(const std::string& name) {
  if (name == "copy_registry") return NewCopyRegistryStep();
  if (name == "copy_secondary_userstores") return NewCopySecondaryUserstoresStep();
  if (name == "hl7_transport") return NewHl7TransportStep();
  if (name == "exec") return NewExecStep();
  return nullptr;
}

using testing::FindOp;
using testing::Read;
using testing::Tree;
using testing::Write;

// Zips the content of `dir` into `zip` with the zip(1) tool.
inline void Zip(const fs::path& dir, const fs::path& zip) {
  fs::create_directories(zip.parent_path());
  const std::string cmd =
      absl::StrCat("cd '", dir.string(), "' && zip -q -r -X '", zip.string(), "' .");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class GeneratedHomesTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  static void SetUpTestSuite() { testing::PrepareMiHomes(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("generated_homes_"));
    src_ = root_ / "homes/wso2mi-4.0.0";
    dst_ = root_ / "homes/wso2mi-4.2.0";
    testing::CopyMiHome("4.0.0", src_);
    testing::CopyMiHome("4.2.0", dst_);
    GuardHomes();
  }
  void TearDown() override { fs::remove_all(root_); }

  absl::StatusOr<StepPlan> PlanStep(const std::string& name,
                                    const std::map<std::string, std::string>& params = {},
                                    bool check = true) {
    std::unique_ptr<Step> step = Make(name);
    if (step == nullptr) return absl::NotFoundError(name);
    EXPECT_EQ(step->name(), name);
    StepContext ctx = Context(name, params, check, Run("current"));
    return step->Plan(ctx);
  }

  // The contract of every file step; returns the first plan. `again` is in the second message.
  StepPlan ExpectExactIdempotentReversible(const std::string& name,
                                           const std::map<std::string, std::string>& params,
                                           const std::string& again_says) {
    return StepHarness::ExpectExactIdempotentReversible(
        name, [&] { return PlanStep(name, params); }, again_says, true);
  }

  // A symlink in the source leading out of the roots makes `step` fail with PERMISSION_DENIED.
  void ExpectSymlinkOutRefused(const std::string& step, const fs::path& link,
                               const std::map<std::string, std::string>& params = {}) {
    Write(root_ / "outside/secret.xml", "not for mimic hl7://");
    fs::create_directories(link.parent_path());
    fs::create_symlink(root_ / "outside/secret.xml", link);
    const auto before = Tree(dst_);
    absl::StatusOr<StepPlan> plan = PlanStep(step, params);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << plan.status();
    EXPECT_THAT(plan.status().message(), HasSubstr(link.filename().string()));
    EXPECT_EQ(Tree(dst_), before);
    fs::remove(link);
  }

  // The wso2mi-hl7 zip an operator downloads, inside the allowed roots.
  fs::path MakeHl7Zip(const std::string& version = "4.2.0") {
    const fs::path dir = root_ / "zipsrc" / version;
    const std::string folder = "wso2mi-hl7-" + version;
    Write(dir / folder / ("org.wso2.micro.integrator.business.messaging.hl7-" + version + ".jar"),
          "hl7 bundle " + version);
    Write(dir / folder / kJpaJar, "openjpa bytes");
    const fs::path zip = root_ / "homes/ops" / (folder + ".zip");
    Zip(dir, zip);
    return zip;
  }

  void UseHl7InSource() {
    Write(src_ / kDefault / "endpoints/LabEp.xml",
          "<endpoint name=\"LabEp\"><address uri=\"hl7://lab:9988\"/></endpoint>");
  }
};

// ---- copy_registry ----------------------------------------------------------------------------

}  // namespace mimic::agent::steps_testing::generated_homes

namespace mimic::agent::steps_testing::conf_homes {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

inline constexpr char kLdap[] = R"([user_store]
type = "read_write_ldap"
connection_url = "ldap://ldap.example.com:10389"
connection_name = "uid=admin,ou=system"
connection_password = "LdapS3cret"
user_search_base = "ou=Users,dc=wso2,dc=org"
)";

inline constexpr char kJdbc[] = R"([user_store]
class = "org.wso2.micro.integrator.security.user.core.jdbc.JDBCUserStoreManager"
type = "database"
read_only = true

[realm_manager]
data_source = "WSO2CarbonDB"
)";

inline constexpr char kDatasources[] = R"(
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
inline std::string Read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline int FreePort() {
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

// True when nothing is bound to 127.0.0.1:`port` now.
inline bool PortFree(int port) {
  if (port <= 1024 || port > 65535) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// A probe port 9201 + offset - 10 whose sibling ports (HTTP 8290, HTTPS 8253, internal HTTPS
// 9164, same offset) are free too: verify refuses to start while any of them is taken.
inline int FreeProbePort() {
  for (int tries = 0; tries < 200; ++tries) {
    const int p = FreePort();
    if (PortFree(p - 911) && PortFree(p - 948) && PortFree(p - 37)) return p;
  }
  ADD_FAILURE() << "no probe port with free sibling ports in 200 tries";
  return FreePort();
}

class ConfHomesTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  static void SetUpTestSuite() { testing::PrepareMiHomes(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("conf_homes_"));
    GuardHomes();
  }
  void TearDown() override { fs::remove_all(root_); }

  void MakeHomes(const std::string& from, const std::string& to) {
    src_ = root_ / ("homes/wso2mi-" + from);
    dst_ = root_ / ("homes/wso2mi-" + to);
    testing::CopyMiHome(from, src_, {"conf", "updates"}, /*writable=*/false);
    testing::CopyMiHome(to, dst_, {"conf", "updates"}, /*writable=*/false);
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

class VerifyTest : public ConfHomesTest {
 protected:
  void SetUp() override {
    ConfHomesTest::SetUp();
    MakeHomes("4.0.0", "4.2.0");
    const fs::path script = dst_ / "bin/micro-integrator.sh";
    fs::create_directories(script.parent_path());
    fs::copy_file(fs::path(MIMIC_SOURCE_DIR) / "tests/testdata/mi-standin.sh", script);
    fs::permissions(script, fs::perms(0755));
    port_ = FreeProbePort();
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
      EXPECT_FALSE(common::ProcessAlive(std::stoi(pid->second))) << "still running";
    }
    EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid"));
    return *std::move(plan);
  }

  int port_ = 0;
};

}  // namespace mimic::agent::steps_testing::conf_homes

#endif  // MIMIC_AGENT_STEPS_STEPS_TEST_FIXTURE_H_
