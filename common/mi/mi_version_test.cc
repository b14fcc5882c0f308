#include "common/mi/mi_version.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"
#include "tests/mi_home/mi_home.h"

namespace mimic::common {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MiVersionTest : public ::testing::Test {
 protected:
  // One generated target home per version for the whole suite (tests copy it).
  static void SetUpTestSuite() {
    std::string tmpl = ::testing::TempDir() + "/mi_version_homes_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    homes_ = new fs::path(tmpl);
    for (const std::string& v : mi_home::Versions()) {
      mi_home::Options o;
      o.version = v;
      o.dest = (*homes_ / v).string();
      o.keystores = false;
      absl::Status st = mi_home::MakeMiHome(o);
      ASSERT_TRUE(st.ok()) << st;
    }
  }
  static void TearDownTestSuite() {
    if (homes_ != nullptr) fs::remove_all(*homes_);
    delete homes_;
    homes_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(homes_, nullptr);
    std::string tmpl = ::testing::TempDir() + "/mi_version_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  // A writable copy of the tree `from` at root_/`name`.
  std::string CopyTree(const fs::path& from, const std::string& name) {
    const fs::path dst = root_ / name;
    fs::create_directories(dst);
    for (const auto& e : fs::recursive_directory_iterator(from)) {
      const fs::path to = dst / fs::relative(e.path(), from);
      if (e.is_directory()) {
        fs::create_directories(to);
      } else {
        fs::copy_file(e.path(), to);
        fs::permissions(to, fs::perms(0644));
      }
    }
    return dst.string();
  }
  // A copy of the generated home of `version` at root_/`name`.
  std::string CopyFixture(const std::string& version, const std::string& name) {
    return CopyTree(*homes_ / version, name);
  }
  // A copy of WSO2's real tree of `version` (the caller skips when the fixtures are absent).
  std::string CopyReal(const std::string& version, const std::string& name) {
    return CopyTree(fs::path(mi_home::FixturesDir()) / "mi" / version, name);
  }
  static void Write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  }

  fs::path root_;
  static fs::path* homes_;
};

fs::path* MiVersionTest::homes_ = nullptr;

TEST_F(MiVersionTest, ProductTxtOfEveryGeneratedHome) {
  for (const char* v : {"1.2.0", "4.0.0", "4.2.0"}) {
    auto got = DetectMiVersion(CopyFixture(v, std::string("home-") + v));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, v);
    EXPECT_EQ(got->detected_by, "updates/product.txt");
  }
}

// WSO2's real trees: product.txt, then (without it) carbon.xml, and 4.2.0's netty.properties.
TEST_F(MiVersionTest, EveryRealTree) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  for (const char* v : {"1.2.0", "4.0.0", "4.2.0"}) {
    const std::string home = CopyReal(v, std::string("real-") + v);
    auto got = DetectMiVersion(home);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, v);
    EXPECT_EQ(got->detected_by, "updates/product.txt");
    fs::remove(fs::path(home) / "updates/product.txt");
    got = DetectMiVersion(home);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, v);
    EXPECT_EQ(got->detected_by, "conf/carbon.xml");
    fs::remove(fs::path(home) / "conf/carbon.xml");
    got = DetectMiVersion(home);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, v);
    EXPECT_EQ(got->detected_by, std::string(v) == "4.2.0" ? "conf/netty.properties"
                                                          : "conf/deployment.toml hints");
  }
}

TEST_F(MiVersionTest, CarbonXmlWhenProductTxtMissing) {
  const std::string home = CopyFixture("4.0.0", "renamed");
  fs::remove(fs::path(home) / "updates/product.txt");
  auto got = DetectMiVersion(home);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "4.0.0");
  EXPECT_EQ(got->detected_by, "conf/carbon.xml");
}

TEST_F(MiVersionTest, UnfilteredCarbonXmlFallsBackToDirectoryName) {
  const std::string home = CopyFixture("1.2.0", "wso2mi-1.2.0");
  fs::remove(fs::path(home) / "updates/product.txt");
  Write(fs::path(home) / "conf/carbon.xml",
        "<Server><Name>WSO2 Micro Integrator</Name><Version>@product.version@</Version></Server>");
  auto got = DetectMiVersion(home + "/");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "1.2.0");
  EXPECT_EQ(got->detected_by, "directory name");
}

TEST_F(MiVersionTest, NettyPropertiesAndTomlHints) {
  const std::string h42 = CopyFixture("4.2.0", "a");
  const std::string h40 = CopyFixture("4.0.0", "b");
  const std::string h12 = CopyFixture("1.2.0", "c");
  for (const std::string& h : {h42, h40, h12}) {
    fs::remove(fs::path(h) / "updates/product.txt");
    fs::remove(fs::path(h) / "conf/carbon.xml");
  }
  // MI 4.2.0 ships conf/netty.properties (the generator writes no conf file mimic does not read).
  Write(fs::path(h42) / "conf/netty.properties", "# MI 4.2.0's netty.properties\n");
  auto got = DetectMiVersion(h42);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "4.2.0");
  EXPECT_EQ(got->detected_by, "conf/netty.properties");

  fs::remove(fs::path(h42) / "conf/netty.properties");
  got = DetectMiVersion(h42);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "4.2.0");  // [[transport.phase_order]] / [dashboard_config]
  EXPECT_EQ(got->detected_by, "conf/deployment.toml hints");

  got = DetectMiVersion(h40);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "4.0.0");  // [[service_catalog]]

  got = DetectMiVersion(h12);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "1.2.0");  // [keystore.tls]
}

TEST_F(MiVersionTest, NotAnMiHomeAndNoSignal) {
  EXPECT_EQ(DetectMiVersion((root_ / "absent").string()).status().code(),
            absl::StatusCode::kNotFound);
  fs::create_directories(root_ / "plain/docs");
  auto st = DetectMiVersion((root_ / "plain").string()).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("not a Micro Integrator home"));

  Write(root_ / "bare/conf/deployment.toml", "[server]\nhostname = \"x\"\n");
  st = DetectMiVersion((root_ / "bare").string()).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("could not be detected"));
}

TEST(MigrationChainTest, SupportedPaths) {
  EXPECT_THAT(*MigrationChain("1.2.0", "4.0.0"), ElementsAre("1.2.0->4.0.0"));
  EXPECT_THAT(*MigrationChain("4.0.0", "4.2.0"), ElementsAre("4.0.0->4.2.0"));
  EXPECT_THAT(*MigrationChain("1.2.0", "4.2.0"), ElementsAre("1.2.0->4.0.0", "4.0.0->4.2.0"));
}

TEST(MigrationChainTest, RefusesDowngradeSameAndUnknown) {
  auto down = MigrationChain("4.2.0", "4.0.0");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(down.status().message(), HasSubstr("downgrade"));
  EXPECT_THAT(down.status().message(), HasSubstr("1.2.0->4.0.0"));
  auto same = MigrationChain("4.0.0", "4.0.0");
  EXPECT_EQ(same.status().code(), absl::StatusCode::kInvalidArgument);
  auto unknown = MigrationChain("4.0.0", "4.1.0");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("\"4.1.0\" is not supported"));
}

TEST_F(MiVersionTest, PidFileAlive) {
  const fs::path pid_file = root_ / "wso2carbon.pid";
  EXPECT_FALSE(PidFileAlive(pid_file.string()));  // missing
  Write(pid_file, std::to_string(::getpid()) + "\n");
  EXPECT_TRUE(PidFileAlive(pid_file.string()));
  Write(pid_file, "garbage");
  EXPECT_FALSE(PidFileAlive(pid_file.string()));
  // A child that has exited and been reaped: its pid names no process now.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  Write(pid_file, std::to_string(child));
  EXPECT_FALSE(PidFileAlive(pid_file.string()));
}

}  // namespace
}  // namespace mimic::common
