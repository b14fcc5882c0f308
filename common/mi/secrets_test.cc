#include "common/mi/secrets.h"

#include <string>

#include "common/base/fs.h"
#include "common/mi/toml_merge.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

TEST(AddDeploymentTomlSecretsTest, SecretKeysSecretsTableAndUrlPasswords) {
  SecretScrubber s;
  AddDeploymentTomlSecrets(R"(
[server]
hostname = "mi.example.com"
[keystore.primary]
file_name = "wso2carbon.jks"
password = "Ks-Pw-1234"
keystore_pass = "Ks-Pass-5678"
[[datasource]]
id = "WSO2_COORDINATION_DB"
url = "jdbc:mysql://u:Url-Pw-9012@db:3306/x"
password = "$secret{db_pass}"
[transport.jms.listener.parameter]
"java.naming.security.credentials" = "Jndi-Cred-3456"
[[custom_message_store]]
parameter = { "ssl_passphrase" = "Inline-Pp-7890" }
[secrets]
db_alias = "[Plain-Secret-1111]"
[management_api]
client_secret = "Cs-2222"
)", &s);
  EXPECT_EQ(s.Scrub("Ks-Pw-1234 Ks-Pass-5678 Url-Pw-9012 Jndi-Cred-3456 Inline-Pp-7890 "
                    "Plain-Secret-1111 [Plain-Secret-1111] Cs-2222"),
            "<redacted> <redacted> <redacted> <redacted> <redacted> <redacted> <redacted> "
            "<redacted>");
  EXPECT_EQ(s.Scrub("mi.example.com wso2carbon.jks WSO2_COORDINATION_DB"),
            "mi.example.com wso2carbon.jks WSO2_COORDINATION_DB");
}

TEST(AddDeploymentTomlSecretsTest, UnparsableTextSearchedAsText) {
  SecretScrubber s;
  AddDeploymentTomlSecrets("[a\npassword = \"Broken-Pw-1\"\n", &s);
  EXPECT_EQ(s.Scrub("Broken-Pw-1"), "<redacted>");
}

TEST(AddPropertiesSecretsTest, SecretKeysOrEveryValue) {
  SecretScrubber keys, all;
  const std::string text =
      "# comment\nkeystore.identity.store.password=Id-Store-Pw\nsecretRepositories=file\n"
      "carbon.secretProvider = org.wso2.X\n";
  AddPropertiesSecrets(text, false, &keys);
  EXPECT_EQ(keys.Scrub("Id-Store-Pw file org.wso2.X"), "<redacted> file org.wso2.X");
  AddPropertiesSecrets("Datasources.X.Password=Cipher-Val-123==\n", true, &all);
  EXPECT_EQ(all.Scrub("Cipher-Val-123=="), "<redacted>");
}

TEST(AddPlanSecretsTest, ParamsVarsAndCommands) {
  mimic::v1::HostPlan plan;
  auto* step = plan.add_steps();
  step->set_name("exec");
  (*step->mutable_params())["command"] =
      "keytool -list -storepass Cmd-Store-1 && curl -u admin:Cmd-Curl-2 https://h";
  (*step->mutable_params())["api_key"] = "Param-Key-3";
  (*step->mutable_params())["chdir"] = "/opt/mi";
  step->set_params_toml("[overrides.keystore.primary]\nkey_password = \"Toml-Pw-4\"\n");
  (*plan.mutable_vars())["db_pass"] = "Var-Pass-5";
  (*plan.mutable_vars())["source_home"] = "/opt/mi";
  SecretScrubber s;
  AddPlanSecrets(plan, &s);
  EXPECT_EQ(s.Scrub("Cmd-Store-1 Cmd-Curl-2 Param-Key-3 Toml-Pw-4 Var-Pass-5 /opt/mi"),
            "<redacted> <redacted> <redacted> <redacted> <redacted> /opt/mi");
}

TEST(AddMiHomeSecretsTest, ReadsTheHomesConfigAndSkipsWhatIsNotAFile) {
  const std::string home = std::string(::testing::TempDir()) + "/secrets_home";
  ASSERT_TRUE(MakeDirs(home + "/conf/security").ok());
  ASSERT_TRUE(WriteFileAtomic(home + "/conf/deployment.toml",
                              "[keystore.tls]\npassword = \"Home-Tls-Pw\"\n").ok());
  ASSERT_TRUE(WriteFileAtomic(home + "/conf/security/cipher-text.properties",
                              "Some.Alias=[Home-Cipher-Plain]\n").ok());
  SecretScrubber s;
  AddMiHomeSecrets(home, &s);
  AddMiHomeSecrets(home + "/missing", &s);  // nothing there: nothing added, no error
  EXPECT_EQ(s.Scrub("Home-Tls-Pw Home-Cipher-Plain"), "<redacted> <redacted>");
}

TEST(ScrubEventTest, TextFieldsScrubbedIdentifiersKept) {
  SecretScrubber s;
  s.Add("Sec-Value-1");
  mimic::v1::Event e;
  e.set_host("Sec-Value-1-host");  // an identifier: kept
  e.mutable_log()->set_text("output: Sec-Value-1");
  mimic::v1::Event f;
  auto* sf = f.mutable_step_finished();
  sf->set_message("changed Sec-Value-1");
  auto* c = sf->add_config_changes();
  c->set_key("x.note");
  c->set_new_value("\"Sec-Value-1\"");
  auto* fc = sf->add_changes();
  fc->set_path("/opt/Sec-Value-1/file");
  mimic::v1::Event g;
  auto* plan = g.mutable_run_started()->mutable_plan();
  (*plan->add_steps()->mutable_params())["command"] = "echo Sec-Value-1";
  (*plan->mutable_vars())["x"] = "Sec-Value-1";
  ScrubEvent(&e, s);
  ScrubEvent(&f, s);
  ScrubEvent(&g, s);
  EXPECT_EQ(e.host(), "Sec-Value-1-host");
  EXPECT_EQ(e.log().text(), "output: <redacted>");
  EXPECT_EQ(f.step_finished().message(), "changed <redacted>");
  EXPECT_EQ(f.step_finished().config_changes(0).new_value(), "\"<redacted>\"");
  EXPECT_EQ(f.step_finished().changes(0).path(), "/opt/Sec-Value-1/file");
  EXPECT_EQ(g.run_started().plan().steps(0).params().at("command"), "echo <redacted>");
  EXPECT_EQ(g.run_started().plan().vars().at("x"), "<redacted>");
}

}  // namespace
}  // namespace mimic::common

namespace mimic::common {
namespace {

// Issue 9: keys the old fixed list missed, and a password inside a non-secret value.
TEST(RedactConfigChangeTest, SecretKeysByPatternAndPasswordsInValues) {
  mimic::v1::ConfigChange c;
  c.set_key("transport.jms.listener[0].parameter.\"java.naming.security.credentials\"");
  c.set_new_value("\"Jndi-Cred-1\"");
  mimic::v1::ConfigChange r = RedactConfigChange(c);
  EXPECT_EQ(r.new_value(), kRedacted);
  EXPECT_TRUE(r.redacted());
  for (const char* key : {"custom.keystore_pass", "custom.ssl_passphrase", "custom.client_secret",
                          "custom.api_key", "custom.db_pwd"}) {
    c.set_key(key);
    c.set_old_value("\"Old-Secret-1\"");
    c.set_new_value("\"New-Secret-1\"");
    r = RedactConfigChange(c);
    EXPECT_EQ(r.old_value(), kRedacted) << key;
    EXPECT_EQ(r.new_value(), kRedacted) << key;
  }
  c.set_key("custom.broker_url");
  c.set_old_value("");
  c.set_new_value("\"amqp://mimic:Url-Pw-1@broker:5672\"");
  r = RedactConfigChange(c);
  EXPECT_EQ(r.new_value(), "\"amqp://mimic:<redacted>@broker:5672\"");
  EXPECT_TRUE(r.redacted());
  EXPECT_EQ(r.old_value(), "");
}

}  // namespace
}  // namespace mimic::common
