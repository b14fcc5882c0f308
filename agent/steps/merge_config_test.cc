// The merge_config step on generated MI homes (fixtures: steps_test_fixture.h).
#include "absl/strings/match.h"
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using MergeConfigTest = PopulatedHomesTest;

TEST_F(MergeConfigTest, MergeConfig) {
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  ASSERT_EQ(plan.changes.ops.size(), 1u);
  EXPECT_EQ(plan.changes.ops[0].path, (dst_ / "conf/deployment.toml").string());
  ASSERT_FALSE(plan.changes.config_changes.empty());
  bool hostname = false, password = false;
  for (const auto& c : plan.changes.config_changes) {
    EXPECT_NE(c.action(), "keep");
    EXPECT_THAT(c.old_value() + c.new_value(), Not(HasSubstr("s3cret-db-pass")));
    if (c.key() == "server.hostname") {
      hostname = true;
      EXPECT_EQ(c.action(), "change");
      EXPECT_EQ(c.new_value(), "\"mi-prod-01.example.com\"");
    }
    if (c.key() == "datasource[0].password") {
      password = true;
      EXPECT_TRUE(c.redacted());
      EXPECT_EQ(c.old_value(), "");
      EXPECT_EQ(c.new_value(), "<redacted>");
    }
  }
  EXPECT_TRUE(hostname);
  EXPECT_TRUE(password);
  // The helper rolled the run back: the target's file is its original again.
  EXPECT_THAT(Read(dst_ / "conf/deployment.toml"), Not(HasSubstr("s3cret-db-pass")));
  EXPECT_THAT(plan.message, HasSubstr("config change"));
  EXPECT_THAT(plan.message, HasSubstr("unchanged"));
  EXPECT_THAT(Logs(), Not(HasSubstr("s3cret-db-pass")));
}

TEST_F(MergeConfigTest, MergeConfigAppliesPlanOverrides) {
  spec_overrides_ = "[server]\noffset = 7\n";
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  bool offset = false;
  for (const auto& c : plan->changes.config_changes) offset |= c.key() == "server.offset";
  EXPECT_TRUE(offset);
  ASSERT_TRUE(ApplyAs("r1", plan->changes).ok());
  EXPECT_THAT(Read(dst_ / "conf/deployment.toml"), HasSubstr("offset = 7"));
  EXPECT_THAT(Read(dst_ / "conf/deployment.toml"), HasSubstr("s3cret-db-pass"));
  EXPECT_TRUE(PlanStep("merge_config")->changes.empty());
}

// Edits outside deployment.toml travel in the same step (agent/steps/conf_edits.h): a log4j2
// logger level and a heap size, merged into 4.2.0's own files; exact, idempotent, reversible.
TEST_F(MergeConfigTest, MergeConfigCarriesEditsOutsideDeploymentToml) {
  testing::CopyMiHome("4.0.0", src_, {"bin"});
  testing::CopyMiHome("4.2.0", dst_, {"bin"});
  for (const auto& [rel, from, to] :
       {std::tuple("conf/log4j2.properties", "logger.org-apache-tomcat.level = INFO",
                   "logger.org-apache-tomcat.level = DEBUG"),
        std::tuple("bin/micro-integrator.sh", "-Xms256m -Xmx1024m", "-Xms1g -Xmx2g")}) {
    std::string text = Read(src_ / rel);
    ASSERT_NE(text.find(from), std::string::npos) << rel;
    text.replace(text.find(from), std::string(from).size(), to);
    Write(src_ / rel, text);
  }
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  EXPECT_THAT(OpPaths(plan, dst_), ElementsAre("conf/deployment.toml", "bin/micro-integrator.sh",
                                               "conf/log4j2.properties"));
  const FileOp* log4j2 = FindOp(plan, "conf/log4j2.properties");
  ASSERT_NE(log4j2, nullptr);
  EXPECT_THAT(log4j2->content, HasSubstr("logger.org-apache-tomcat.level = DEBUG\n"));
  EXPECT_THAT(log4j2->content, HasSubstr("${sys:logfiles.home}/wso2carbon.log"));  // 4.2.0's
  EXPECT_THAT(FindOp(plan, "bin/micro-integrator.sh")->content, HasSubstr("-Xms1g -Xmx2g"));
  EXPECT_THAT(plan.message, HasSubstr("outside deployment.toml: 2 files carried"));
  EXPECT_THAT(Logs(), HasSubstr("-logger.org-apache-tomcat.level = INFO"));
}

TEST_F(MergeConfigTest, MergeConfigParseErrorWritesNothing) {
  Write(src_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\n\n[broken\n");
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("conf/deployment.toml:4:"));
  EXPECT_EQ(Tree(dst_), before);
}

// A deployment.toml value that is a path under the old MI home becomes the target home's.
TEST_F(MergeConfigTest, MergeConfigRewritesOldHomePaths) {
  Write(src_ / "conf/deployment.toml", Read(src_ / "conf/deployment.toml") +
                                           "\n[transport.vfs]\nlocking_dir = \"" + src_.string() +
                                           "/tmp/vfs-locks\"\n");
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  bool found = false;
  for (const auto& c : plan.changes.config_changes) {
    if (c.key() != "transport.vfs.locking_dir") continue;
    found = true;
    EXPECT_EQ(c.new_value(), "\"" + dst_.string() + "/tmp/vfs-locks\"");
  }
  EXPECT_TRUE(found);
  EXPECT_THAT(Logs(), HasSubstr("conf/deployment.toml:" ));
  EXPECT_THAT(Logs(), HasSubstr(": transport.vfs.locking_dir: path under the old MI home " +
                                src_.string() + " rewritten to the target home " + dst_.string() +
                                ": " + src_.string() + "/tmp/vfs-locks"));
}

// EI 7.1's HL7 class names (org.wso2.carbon.business.messaging.hl7.*) load nothing in MI 4.x:
// merge_config carries them under the 4.x package, each reported.
TEST_F(MergeConfigTest, OldHl7ClassNamesRewritten) {
  Write(src_ / "conf/deployment.toml",
        Read(src_ / "conf/deployment.toml") +
            "\n[[custom_transport.sender]]\n"
            "class = \"org.wso2.carbon.business.messaging.hl7.transport.HL7TransportSender\"\n"
            "protocol = \"hl7\"\n\n[[custom_message_builders]]\n"
            "class = \"org.wso2.carbon.business.messaging.hl7.message.HL7MessageBuilder\"\n"
            "content_type = \"application/edi-hl7\"\n");
  StepPlan plan = ExpectExactIdempotentReversible("merge_config");
  ASSERT_EQ(plan.changes.ops.size(), 1u);
  const std::string merged = plan.changes.ops[0].content;
  EXPECT_THAT(merged, Not(HasSubstr("org.wso2.carbon.business.messaging.hl7")));
  EXPECT_THAT(merged, HasSubstr("class = \"org.wso2.micro.integrator.business.messaging.hl7."
                                "transport.HL7TransportSender\""));
  EXPECT_THAT(merged, HasSubstr("class = \"org.wso2.micro.integrator.business.messaging.hl7."
                                "message.HL7MessageBuilder\""));
  int notes = 0;
  for (const auto& c : plan.changes.config_changes) {
    if (absl::StrContains(c.note(), "HL7 class")) ++notes;
  }
  EXPECT_EQ(notes, 2);
  EXPECT_THAT(Logs(), HasSubstr("org.wso2.carbon.business.messaging.hl7."));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes

namespace mimic::agent::steps_testing::conf_homes {
namespace {

// 1.2.0 -> 4.0.0: which keystore table the source read depends on its update level.
class MergeConfigKeystoreTest : public ConfHomesTest {
 protected:
  void SetUp() override {
    ConfHomesTest::SetUp();
    MakeHomes("1.2.0", "4.0.0");
    const fs::path toml = src_ / "conf/deployment.toml";
    std::string text = Read(toml);
    text.replace(text.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
    Replace(toml, text);
  }
  // The homes are copies of a shared cache: replace a file, never write through it.
  static void Replace(const fs::path& p, const std::string& text) {
    fs::remove(p);
    Write(p, text);
  }
  std::string Change(const StepPlan& plan, const std::string& key) {
    for (const auto& c : plan.changes.config_changes) {
      if (c.key() == key) return absl::StrCat(c.action(), " | ", c.note());
    }
    return "";
  }
};

TEST_F(MergeConfigKeystoreTest, UpdateLevelDecidesWhetherKeystoreTlsIsCarried) {
  Replace(src_ / "updates/config.json", "{\n  \"update-level\": \"3\"\n}\n");
  absl::StatusOr<StepPlan> at = PlanStep("merge_config");
  ASSERT_TRUE(at.ok()) << at.status();
  // The server read [keystore.primary] (the default one): nothing to carry, and said so.
  EXPECT_EQ(Change(*at, "keystore.primary.file_name"), "");
  EXPECT_THAT(Logs(), HasSubstr("[keystore.tls] not carried: source update level 3 >= 1"));

  absl::StatusOr<StepPlan> below =
      PlanStep("merge_config", {{"keystore_primary_update_level", "4"}});
  ASSERT_TRUE(below.ok()) << below.status();
  EXPECT_THAT(Change(*below, "keystore.primary.file_name"), HasSubstr("rename | "));
  EXPECT_THAT(Change(*below, "keystore.primary.file_name"),
              HasSubstr("source update level 3 < 4"));
  EXPECT_THAT(Logs(), HasSubstr("source update level 3 < 4"));
}

TEST_F(MergeConfigKeystoreTest, NoUpdateLevelIsSaidAsAnAssumption) {
  fs::remove(src_ / "updates/config.json");
  absl::StatusOr<StepPlan> plan = PlanStep("merge_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Change(*plan, "keystore.primary.file_name"), HasSubstr("no update level found"));
}

TEST_F(MergeConfigKeystoreTest, InternalKeystoreStaysOnWso2carbonWhenTheTargetHasIt) {
  absl::StatusOr<StepPlan> without = PlanStep("merge_config");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(Change(*without, "keystore.internal.file_name"), "");
  EXPECT_THAT(Logs(), HasSubstr("[keystore.internal] not added"));
  Write(dst_ / "repository/resources/security/wso2carbon.jks", "4.0.0 keystore bytes");
  absl::StatusOr<StepPlan> with = PlanStep("merge_config");
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_THAT(Change(*with, "keystore.internal.file_name"), HasSubstr("add | "));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::conf_homes
