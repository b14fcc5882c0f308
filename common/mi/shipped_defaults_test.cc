// shipped_defaults: the tables are consistent (each sha256 is that of the embedded text), and
// -- when WSO2's real files are beside the clone -- shipped_defaults.cc is exactly what
// gen_shipped_defaults.sh makes of them ("reproducible").
#include "common/mi/shipped_defaults.h"

#include <stdio.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;

TEST(ShippedDefaultsTest, EveryVersionShipsFourSynapseFilesWithTheirSha256) {
  for (const char* v : {"1.2.0", "4.0.0", "4.2.0"}) {
    const auto* files = ShippedDeploymentFiles(v);
    const auto* sums = ShippedDeploymentDefaults(v);
    ASSERT_NE(files, nullptr) << v;
    ASSERT_NE(sums, nullptr) << v;
    ASSERT_EQ(files->size(), 4u) << v;
    ASSERT_EQ(sums->size(), 4u) << v;
    for (const auto& [path, text] : *files) {
      EXPECT_EQ(sums->at(path), Sha256Hex(text)) << v << " " << path;
      EXPECT_THAT(text, HasSubstr("<?xml")) << path;
    }
    EXPECT_TRUE(
        files->count("repository/deployment/server/synapse-configs/default/sequences/main.xml"));
    ASSERT_NE(ShippedDeploymentToml(v), nullptr);
    EXPECT_THAT(*ShippedDeploymentToml(v), HasSubstr("hostname = \"localhost\""));
  }
  // A known answer: MI 4.2.0's shipped main.xml (sha256 of WSO2's file, v4.2.0 tag).
  EXPECT_EQ(ShippedDeploymentDefaults("4.2.0")->at(
                "repository/deployment/server/synapse-configs/default/sequences/main.xml"),
            "7a3bd59630554b53726c272fb8a4ca7e40ec0e33db781d655328c7c7e9367224");
  EXPECT_EQ(ShippedDeploymentFiles("4.1.0"), nullptr);
  EXPECT_EQ(ShippedDeploymentDefaults("4.1.0"), nullptr);
  EXPECT_EQ(ShippedDeploymentToml("4.1.0"), nullptr);
}

TEST(ShippedDefaultsTest, EveryVersionShipsItsConfFilesAndStartScripts) {
  for (const char* v : {"1.2.0", "4.0.0", "4.2.0"}) {
    const auto* files = ShippedConfigFiles(v);
    ASSERT_NE(files, nullptr) << v;
    for (const char* p : {"bin/micro-integrator.sh", "bin/yajsw/wrapper.conf",
                          "conf/log4j2.properties", "conf/deployment.toml", "conf/carbon.xml"}) {
      ASSERT_TRUE(files->count(p)) << v << " " << p;
    }
    for (const auto& [path, f] : *files) {
      EXPECT_EQ(f.sha256, Sha256Hex(f.text)) << v << " " << path;
      EXPECT_TRUE(path.rfind("conf/", 0) == 0 || path.rfind("bin/", 0) == 0) << path;
    }
    EXPECT_EQ(&files->at("conf/deployment.toml").text, ShippedDeploymentToml(v));
    EXPECT_THAT(files->at("bin/micro-integrator.sh").text, HasSubstr("JVM_MEM_OPTS"));
    EXPECT_THAT(files->at("bin/yajsw/wrapper.conf").text, HasSubstr("wrapper.java.additional."));
    // MI regenerates these from deployment.toml at start; not these.
    EXPECT_TRUE(files->at("conf/carbon.xml").templated) << v;
    EXPECT_TRUE(files->at("conf/axis2/axis2.xml").templated) << v;
    EXPECT_FALSE(files->at("conf/log4j2.properties").templated) << v;
    EXPECT_FALSE(files->at("bin/micro-integrator.sh").templated) << v;
    EXPECT_FALSE(files->at("conf/file.properties").templated) << v;
  }
  // Known answers (sha256sum of WSO2's files at the v4.x tags); conf/datasources.properties holds
  // carriage returns, which must survive the C++ raw strings.
  EXPECT_EQ(ShippedConfigFiles("4.2.0")->at("bin/micro-integrator.sh").sha256,
            "2e891b09b80a60c3050d1c96442977dd8e8c4ddc4359ed033be3d005a4170270");
  EXPECT_EQ(ShippedConfigFiles("4.0.0")->at("conf/log4j2.properties").sha256,
            "ff8bdf1c2926639dee684f5914c22d170a9aa80e4766f4a4e696b334668a8ed8");
  EXPECT_THAT(ShippedConfigFiles("4.0.0")->at("conf/datasources.properties").text,
              HasSubstr("\r\n"));
  // 4.2.0 changed the shipped log4j2.properties and start script; netty.properties is new in it.
  EXPECT_NE(ShippedConfigFiles("4.0.0")->at("conf/log4j2.properties").sha256,
            ShippedConfigFiles("4.2.0")->at("conf/log4j2.properties").sha256);
  EXPECT_FALSE(ShippedConfigFiles("4.0.0")->count("conf/netty.properties"));
  EXPECT_TRUE(ShippedConfigFiles("4.2.0")->at("conf/netty.properties").templated);
  EXPECT_EQ(ShippedConfigFiles("4.1.0"), nullptr);
}

// Each table entry is byte for byte the fixture's file, when the fixtures are present.
TEST(ShippedDefaultsTest, ConfigFilesAreTheFixturesBytes) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  for (const char* v : {"1.2.0", "4.0.0", "4.2.0"}) {
    for (const auto& [path, f] : *ShippedConfigFiles(v)) {
      absl::StatusOr<std::string> real =
          ReadFile(absl::StrCat(mi_home::FixturesDir(), "/mi/", v, "/", path));
      ASSERT_TRUE(real.ok()) << real.status();
      EXPECT_TRUE(*real == f.text) << v << " " << path;
    }
  }
}

TEST(ShippedDefaultsTest, ReproducibleFromTheFixtures) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  const std::string script = std::string(MIMIC_SOURCE_DIR) + "/common/mi/gen_shipped_defaults.sh";
  const std::string cmd = absl::StrCat("sh '", script, "' '", mi_home::FixturesDir(), "'");
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr) << cmd;
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int st = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << cmd;
  absl::StatusOr<std::string> committed =
      ReadFile(std::string(MIMIC_SOURCE_DIR) + "/common/mi/shipped_defaults.cc");
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(out == *committed)
      << "common/mi/shipped_defaults.cc is not what gen_shipped_defaults.sh makes of "
      << mi_home::FixturesDir() << "; regenerate it: " << cmd << " > common/mi/shipped_defaults.cc";
}

}  // namespace
}  // namespace mimic::common
