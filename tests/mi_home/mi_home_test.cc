// The MI home generator: layout and shipped files of every version, the source profile's
// customisations, byte-identical output on every run (key material aside), refusals, and -- when
// WSO2's real files are beside the clone -- equality with them.
#include "tests/mi_home/mi_home.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/mi/capp.h"
#include "common/mi/osgi.h"
#include "common/mi/mi_version.h"
#include "common/mi/shipped_defaults.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"

namespace mimic::mi_home {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCapps[] = "repository/deployment/server/carbonapps";

// rel path -> "d mode" / "f mode sha256" for everything under `root`.
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    const std::string rel = fs::relative(e.path(), root).string();
    out[rel] = e.is_directory() ? absl::StrCat("d ", st.st_mode & 07777)
                                : absl::StrCat("f ", st.st_mode & 07777, " ",
                                               *common::Sha256File(e.path().string()));
  }
  return out;
}

std::string Read(const fs::path& p) { return *common::ReadFile(p.string()); }

bool HaveKeytool() {
  return ::system("command -v keytool >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1") == 0;
}

class MiHomeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/mi_home_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path Make(const std::string& version, const std::string& name, Profile profile,
                bool keystores = false) {
    Options o;
    o.version = version;
    o.dest = (root_ / name).string();
    o.profile = profile;
    o.hostname = "t1";
    o.keystores = keystores;
    absl::Status st = MakeMiHome(o);
    EXPECT_TRUE(st.ok()) << st;
    return root_ / name;
  }

  fs::path root_;
};

TEST_F(MiHomeTest, TargetOfEveryVersionHasTheLayoutAndShippedFiles) {
  for (const std::string& v : Versions()) {
    const fs::path h = Make(v, "wso2mi-" + v, Profile::kTarget);
    EXPECT_EQ(Read(h / "updates/product.txt"), "wso2mi-" + v);
    EXPECT_EQ(Read(h / "conf/deployment.toml"), *common::ShippedDeploymentToml(v));
    for (const auto& [path, sha] : *common::ShippedDeploymentDefaults(v)) {
      EXPECT_EQ(*common::Sha256File((h / path).string()), sha) << v << " " << path;
    }
    for (const char* d : {"dropins", "lib", "registry/config", "registry/governance",
                          "registry/local", kCapps, "repository/resources/security"}) {
      EXPECT_TRUE(fs::is_directory(h / d)) << d;
      EXPECT_TRUE(fs::is_empty(h / d)) << d;
    }
    // The version's real start script, whose second line hands the run to the stand-in.
    EXPECT_EQ(common::FileMode((h / "bin/micro-integrator.sh").string()), 0755u);
    EXPECT_EQ(common::FileMode((h / "bin/mimic-standin.sh").string()), 0755u);
    EXPECT_THAT(Read(h / "bin/mimic-standin.sh"), HasSubstr("STAND-IN"));
    std::string script = Read(h / "bin/micro-integrator.sh");
    const size_t second = script.find('\n') + 1;
    EXPECT_THAT(script.substr(second, script.find('\n', second) - second),
                HasSubstr("exec sh \"$(dirname \"$0\")/mimic-standin.sh\""));
    script.erase(second, script.find('\n', second) + 1 - second);
    const auto* shipped = common::ShippedConfigFiles(v);
    EXPECT_EQ(script, shipped->at("bin/micro-integrator.sh").text);
    // Every shipped conf/ file MI does not regenerate at start (and carbon.xml), byte for byte;
    // no templated one but carbon.xml, nothing under conf/security/.
    for (const auto& [path, f] : *shipped) {
      if (path == "bin/micro-integrator.sh") continue;
      const bool written = !absl::StartsWith(path, "conf/security/") &&
                           (!f.templated || path == "conf/carbon.xml");
      EXPECT_EQ(fs::exists(h / path), written) << v << " " << path;
      if (written) {
        EXPECT_EQ(*common::Sha256File((h / path).string()), f.sha256) << v << " " << path;
      }
    }
    // Detected the way mimic detects a real home, by product.txt and by carbon.xml.
    auto got = common::DetectMiVersion(h.string());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, v);
    fs::remove(h / "updates/product.txt");
    got = common::DetectMiVersion(h.string());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, v);
    EXPECT_EQ(got->detected_by, "conf/carbon.xml");
  }
}

TEST_F(MiHomeTest, SourceProfileHasTheOperatorsCustomisations) {
  const fs::path h = Make("4.0.0", "src", Profile::kSource);
  for (const char* car : {kDataMapperCappName, "GreetingServiceCompositeExporter_1.0.0.car",
                          "OrderProxyCompositeExporter_1.0.0.car"}) {
    auto entries = common::ReadZip((h / kCapps / car).string());
    ASSERT_TRUE(entries.ok()) << entries.status();
    bool has_artifacts = false;
    for (const auto& e : *entries) has_artifacts |= e.name == "artifacts.xml";
    EXPECT_TRUE(has_artifacts) << car;
  }
  const std::string syn = "repository/deployment/server/synapse-configs/default/";
  EXPECT_THAT(Read(h / syn / "api/HelloApi.xml"), HasSubstr("context=\"/hello\""));
  const std::string ops_line =
      "        <log level=\"custom\"><property name=\"ops\" value=\"unmatched request reached main "
      "(added by ops)\"/></log>\n";
  std::string main = Read(h / syn / "sequences/main.xml");
  EXPECT_THAT(main, HasSubstr("\n    <in>\n" + ops_line));
  main.erase(main.find(ops_line), ops_line.size());
  EXPECT_EQ(main, common::ShippedDeploymentFiles("4.0.0")->at(syn + "sequences/main.xml"));
  EXPECT_THAT(Read(h / "repository/resources/security/partner.pem"),
              HasSubstr("BEGIN CERTIFICATE"));
  // Edits outside deployment.toml: the heap, a -D property, a logger level, a conf file.
  const auto* shipped = common::ShippedConfigFiles("4.0.0");
  const std::string script = Read(h / "bin/micro-integrator.sh");
  EXPECT_THAT(script, HasSubstr("JVM_MEM_OPTS=\"-Xms256m -Xmx4096m\""));
  EXPECT_THAT(script, HasSubstr("    -Dcom.example.ops.tracing=true \\\n"));
  EXPECT_EQ(common::FileMode((h / "bin/micro-integrator.sh").string()), 0755u);
  EXPECT_THAT(Read(h / "conf/log4j2.properties"), HasSubstr("logger.ModuleDeployer.level = INFO\n"));
  EXPECT_NE(Read(h / "conf/file.properties"), shipped->at("conf/file.properties").text);
  EXPECT_EQ(Read(h / "bin/yajsw/wrapper.conf"), shipped->at("bin/yajsw/wrapper.conf").text);
  for (const char* jar : {"lib/postgresql-42.5.4.jar", "lib/custom-mediator-1.0.jar",
                          "dropins/custom-handler_1.0.0.jar"}) {
    auto entries = common::ReadZip((h / jar).string());
    ASSERT_TRUE(entries.ok()) << entries.status();
    EXPECT_EQ((*entries)[1].name, "META-INF/MANIFEST.MF");
  }
  EXPECT_THAT(Read(h / "registry/governance/custom/endpoint-config.xml"),
              HasSubstr("PartnerEndpoint"));
  const std::string toml = Read(h / "conf/deployment.toml");
  EXPECT_THAT(toml,
              HasSubstr("\nhostname = \"mi-t1.example.com\"   # set by ops (was \"localhost\")\n"));
  EXPECT_THAT(toml, HasSubstr("\noffset = 10   # set by ops\n"));
  EXPECT_THAT(toml, HasSubstr("\n[secrets]\ndb_password = \"[secret]\"\n"));
  EXPECT_THAT(toml, Not(HasSubstr("\nhostname = \"localhost\"")));
}

// The operator's bundles carry manifests mimic reads (Import-Package wrapped at 72 bytes);
// every home ships a few plugins at its version's versions.
TEST_F(MiHomeTest, SourceBundlesAndShippedPluginsHaveManifests) {
  const fs::path h = Make("4.0.0", "src", Profile::kSource);
  auto handler = common::ReadJarManifest((h / "dropins/org.example.audit.handler_1.0.0.jar").string());
  ASSERT_TRUE(handler.ok()) << handler.status();
  EXPECT_EQ(handler->at("Import-Package"),
            "org.apache.axis2.context;version=\"[1.6.1,1.7.0)\",org.apache.synapse.rest;"
            "version=\"[2.1,3)\";resolution:=optional,org.apache.commons.logging");
  auto lang3 = common::ReadJarManifest((h / "lib/commons-lang3-3.9.jar").string());
  ASSERT_TRUE(lang3.ok()) << lang3.status();
  EXPECT_EQ(lang3->at("Bundle-SymbolicName"), "org.apache.commons.lang3");
  EXPECT_FALSE(fs::exists(h / "dropins/org.example.legacy.mediator_1.0.0.jar"));  // opt-in
  EXPECT_THAT(Read(h / "conf/deployment.toml"), Not(HasSubstr("business.messaging.hl7")));
  const fs::path t = Make("4.2.0", "dst", Profile::kTarget);
  EXPECT_TRUE(fs::exists(t / "wso2/components/plugins/commons-lang3_3.12.0.wso2v1.jar"));
  EXPECT_TRUE(fs::exists(t / "wso2/components/plugins/synapse-core_4.0.0.wso2v20.jar"));
  EXPECT_TRUE(fs::is_empty(t / "lib"));
}

TEST_F(MiHomeTest, OptInUnresolvableDropinAndOldHl7) {
  Options o;
  o.version = "1.2.0";
  o.dest = (root_ / "old").string();
  o.profile = Profile::kSource;
  o.keystores = false;
  o.unresolvable_dropin = true;
  o.old_hl7 = true;
  ASSERT_TRUE(MakeMiHome(o).ok());
  const fs::path h = root_ / "old";
  auto legacy = common::ReadJarManifest((h / "dropins/org.example.legacy.mediator_1.0.0.jar").string());
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_THAT(legacy->at("Import-Package"),
              HasSubstr("org.apache.synapse;version=\"[2.1,3)\",org.apache.synapse.mediators;"));
  EXPECT_THAT(Read(h / "conf/deployment.toml"),
              HasSubstr("class = \"org.wso2.carbon.business.messaging.hl7.message.HL7MessageBuilder\""));
  EXPECT_THAT(Read(h / "repository/deployment/server/synapse-configs/default/message-stores/"
                       "Hl7Store.xml"),
              HasSubstr("org.wso2.carbon.business.messaging.hl7.store.jpa.JPAStore"));
}

TEST_F(MiHomeTest, DataMapperCappHoldsPreSaxon10StylesheetsAsRegistryResources) {
  auto bytes = DataMapperCapp();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto entries = common::ReadZipFromBytes(*bytes, kDataMapperCappName);
  ASSERT_TRUE(entries.ok()) << entries.status();
  std::map<std::string, std::string> by_name;
  for (const auto& e : *entries) by_name[e.name] = e.data;
  int stylesheets = 0;
  for (int i = 0; i < 2; ++i) {
    const std::string name = DataMapperStylesheetEntries()[i];
    ASSERT_TRUE(by_name.count(name)) << name;
    EXPECT_EQ(by_name[name], DataMapperStylesheet(i));
    EXPECT_THAT(by_name[name], HasSubstr(common::kOldXsltPrefixes));
    const std::string dir = name.substr(0, name.find('/'));
    EXPECT_THAT(by_name[dir + "/registry-info.xml"],
                HasSubstr("<path>/_system/governance/datamapper</path>"));
    EXPECT_THAT(by_name[dir + "/artifact.xml"], HasSubstr("type=\"registry/resource\""));
  }
  for (const auto& e : *entries) stylesheets += common::IsXsltStyleSheetName(e.name);
  EXPECT_EQ(stylesheets, 2);
  EXPECT_THAT(by_name["artifacts.xml"],
              HasSubstr("<artifact name=\"1_1_3_synapse-configCompositeApplication\""));
  EXPECT_EQ(*DataMapperCapp(), *bytes);
}

TEST_F(MiHomeTest, SameBytesOnEveryRun) {
  for (const std::string& v : Versions()) {
    // The same options: the same place (a source home names its own path).
    const fs::path a = Make(v, "same-" + v, Profile::kSource);
    const auto first = Tree(a);
    fs::remove_all(a);
    const fs::path b = Make(v, "same-" + v, Profile::kSource);
    EXPECT_EQ(Tree(b), first) << v;
  }
}

// What the deployment.toml, old-home path, empty folder and update-level tests need.
TEST_F(MiHomeTest, SourceProfileHasTicketsOldHomePathsEmptyFolderAndUpdateLevel) {
  const fs::path h = fs::canonical(Make("1.2.0", "src-120", Profile::kSource));  // as it writes
  const std::string toml = Read(h / "conf/deployment.toml");
  EXPECT_THAT(toml, HasSubstr("# CHG-20240117: the name clients use behind the load balancer\n"
                              "hostname = "));
  EXPECT_THAT(toml, HasSubstr("# CHG-20231102: slow partner backend\n[transport.http]\n"));
  EXPECT_THAT(toml, HasSubstr("\"file://" + h.string() + "/file-drop/failed\""));
  EXPECT_THAT(Read(h / "repository/deployment/server/synapse-configs/default/proxy-services/"
                       "FileDropProxy.xml"),
              HasSubstr(">file://" + h.string() + "/file-drop/in</parameter>"));
  EXPECT_TRUE(fs::is_directory(h / "repository/deployment/server/file-drop"));
  EXPECT_TRUE(fs::is_empty(h / "repository/deployment/server/file-drop"));
  EXPECT_EQ(common::DetectUpdateLevel(h.string()), "36");
}

TEST_F(MiHomeTest, KeystoresMadeWithOpensslAndKeytool) {
  if (!HaveKeytool()) GTEST_SKIP() << "no keytool/openssl on this machine";
  const fs::path h = Make("4.2.0", "keys", Profile::kSource, /*keystores=*/true);
  const fs::path sec = h / "repository/resources/security";
  for (const char* f : {"wso2carbon.jks", "client-truststore.jks", "publickey.pem",
                        "custom-keystore.p12", "partner.pem"}) {
    EXPECT_TRUE(fs::is_regular_file(sec / f)) << f;
    EXPECT_EQ(common::FileMode((sec / f).string()), 0644u) << f;
  }
  EXPECT_THAT(Read(sec / "publickey.pem"), HasSubstr("BEGIN PUBLIC KEY"));
  const std::string list =
      absl::StrCat("keytool -list -keystore '", (sec / "wso2carbon.jks").string(),
                   "' -storepass wso2carbon -alias wso2carbon >/dev/null 2>&1");
  EXPECT_EQ(::system(list.c_str()), 0);
}

TEST_F(MiHomeTest, RefusesBadInputAndReplacesOnlyWithForce) {
  Options o;
  o.version = "4.1.0";
  o.dest = (root_ / "x").string();
  o.keystores = false;
  absl::Status st = MakeMiHome(o);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown MI version '4.1.0'"));
  o.version = "4.2.0";
  o.hostname = "bad host";
  st = MakeMiHome(o);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'bad host' is not a valid host name"));
  o.hostname = "ok";
  ASSERT_TRUE(MakeMiHome(o).ok());
  st = MakeMiHome(o);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("exists and is not empty"));
  o.force = true;
  EXPECT_TRUE(MakeMiHome(o).ok());
  // --force replaces only an MI home.
  fs::create_directories(root_ / "other");
  common::WriteFileAtomic((root_ / "other/keep.txt").string(), "mine").IgnoreError();
  o.dest = (root_ / "other").string();
  EXPECT_EQ(MakeMiHome(o).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read(root_ / "other/keep.txt"), "mine");
}

TEST_F(MiHomeTest, CliWritesAHome) {
  const std::string cli = std::string(MIMIC_BINARY_DIR) + "/bin/make-mi-home";
  ASSERT_TRUE(fs::exists(cli)) << cli;
  const std::string cmd = absl::StrCat("'", cli, "' 4.0.0 '", (root_ / "cli").string(),
                                       "' --profile target --nokeys >/dev/null 2>&1");
  EXPECT_EQ(WEXITSTATUS(::system(cmd.c_str())), 2) << "an unknown option is a usage error";
  EXPECT_FALSE(fs::exists(root_ / "cli"));
  if (!HaveKeytool()) GTEST_SKIP() << "no keytool/openssl on this machine";
  const std::string make = absl::StrCat("'", cli, "' 4.0.0 '", (root_ / "cli").string(),
                                        "' --profile source --hostname cli-1 >/dev/null 2>&1");
  ASSERT_EQ(WEXITSTATUS(::system(make.c_str())), 0) << make;
  EXPECT_EQ(Read(root_ / "cli/updates/product.txt"), "wso2mi-4.0.0");
  EXPECT_THAT(Read(root_ / "cli/conf/deployment.toml"), HasSubstr("\"mi-cli-1.example.com\""));
  EXPECT_TRUE(fs::exists(root_ / "cli/repository/resources/security/custom-keystore.p12"));
  EXPECT_EQ(WEXITSTATUS(::system(make.c_str())), 1) << "DEST is not empty";
}

// The generated homes against WSO2's real trees: same product.txt, same <Version>, same shipped
// deployment.toml and synapse-config files.
TEST_F(MiHomeTest, MatchesWso2sRealFiles) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  for (const std::string& v : Versions()) {
    const fs::path real = fs::path(FixturesDir()) / "mi" / v;
    const fs::path h = Make(v, "real-" + v, Profile::kTarget);
    EXPECT_EQ(Read(h / "updates/product.txt"), Read(real / "updates/product.txt"));
    EXPECT_EQ(Read(h / "conf/deployment.toml"), Read(real / "conf/deployment.toml"));
    EXPECT_THAT(Read(real / "conf/carbon.xml"), HasSubstr("<Version>" + v + "</Version>"));
    int files = 0;
    for (const auto& e : fs::recursive_directory_iterator(real / "repository/deployment")) {
      if (!e.is_regular_file()) continue;
      ++files;
      const fs::path rel = fs::relative(e.path(), real);
      EXPECT_EQ(Read(h / rel), Read(e.path())) << rel;
    }
    EXPECT_EQ(files, 4);
  }
}

}  // namespace
}  // namespace mimic::mi_home
