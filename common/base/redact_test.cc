#include "common/base/redact.h"

#include <string>

#include "gtest/gtest.h"

namespace mimic::common {
namespace {

TEST(IsSecretKeyTest, PasswordKeysAreSecret) {
  EXPECT_TRUE(IsSecretKey("password"));
  EXPECT_TRUE(IsSecretKey("keystore.primary.password"));
  EXPECT_TRUE(IsSecretKey("keystore.primary.key_password"));
  EXPECT_TRUE(IsSecretKey("user_store.connection_password"));
  EXPECT_TRUE(IsSecretKey("internal_apis.users[0].user.password"));
  EXPECT_TRUE(IsSecretKey("datasource[1].password"));
  EXPECT_TRUE(IsSecretKey("user_store.properties.ConnectionPassword"));  // case-insensitive
  EXPECT_TRUE(IsSecretKey("custom_transport.listener[0].parameter.'transport.hl7.password'"));
  EXPECT_TRUE(IsSecretKey("PGPASSWORD"));
}

TEST(IsSecretKeyTest, OtherSecretNamesAndSecretsTable) {
  EXPECT_TRUE(IsSecretKey("secret"));
  EXPECT_TRUE(IsSecretKey("encryption.secret_key"));
  EXPECT_TRUE(IsSecretKey("management_api.token"));
  EXPECT_TRUE(IsSecretKey("tls.private_key"));
  EXPECT_TRUE(IsSecretKey("secrets.db_pass"));  // anything under [secrets]
  EXPECT_TRUE(IsSecretKey("secrets.'my.alias'"));
}

// Keys that merely mention "password" or "secret" but hold settings, not secrets, stay visible:
// the rule looks at the last dotted component's ending only.
TEST(IsSecretKeyTest, NoFalsePositives) {
  EXPECT_FALSE(IsSecretKey(""));
  EXPECT_FALSE(IsSecretKey("password_policy_enabled"));
  EXPECT_FALSE(IsSecretKey("user_store.password_java_regex"));
  EXPECT_FALSE(IsSecretKey("user_store.password_hash_method"));
  EXPECT_FALSE(IsSecretKey("password.length"));  // a table named password with a non-secret key
  EXPECT_FALSE(IsSecretKey("oauth.token_endpoint"));
  EXPECT_FALSE(IsSecretKey("secrets"));  // the table itself, not a value under it
  EXPECT_FALSE(IsSecretKey("server.hostname"));
  EXPECT_FALSE(IsSecretKey("datasource[0].username"));
  EXPECT_FALSE(IsSecretKey("keystore.primary.alias"));
}

TEST(HoldsSecretReferenceTest, FindsReferenceAnywhere) {
  EXPECT_TRUE(HoldsSecretReference("$secret{db_pass}"));
  EXPECT_TRUE(HoldsSecretReference("\"prefix-$secret{x}\""));
  EXPECT_FALSE(HoldsSecretReference("secret{x}"));
  EXPECT_FALSE(HoldsSecretReference("plain"));
}

TEST(RedactValueTest, RedactsByKeyOrReference) {
  EXPECT_EQ(RedactValue("datasource[0].password", "\"root\""), kRedacted);
  EXPECT_EQ(RedactValue("datasource[0].username", "\"$secret{db_user}\""), kRedacted);
  EXPECT_EQ(RedactValue("server.hostname", "\"mi.example.com\""), "\"mi.example.com\"");
}

TEST(RedactTextTest, TomlAndPropertiesAssignments) {
  EXPECT_EQ(RedactText("password = \"wso2carbon\""), "password = \"<redacted>\"");
  EXPECT_EQ(RedactText("key_password='x y'"), "key_password='<redacted>'");
  EXPECT_EQ(RedactText("password=hunter2 user=admin"), "password=<redacted> user=admin");
  EXPECT_EQ(RedactText("user.password = \"a\\\"b\" # note"),
            "user.password = \"<redacted>\" # note");
}

TEST(RedactTextTest, ColonSeparatedValuesRunToEndOfLine) {
  EXPECT_EQ(RedactText("password: my secret phrase  \nnext: 1"), "password: <redacted>  \nnext: 1");
  EXPECT_EQ(RedactText("{\"password\": \"x\", \"user\": \"u\"}"),
            "{\"password\": \"<redacted>\", \"user\": \"u\"}");
}

TEST(RedactTextTest, CommandLineFlags) {
  EXPECT_EQ(RedactText("tool --password s3cret --user admin"),
            "tool --password <redacted> --user admin");
  EXPECT_EQ(RedactText("tool --password=s3cret"), "tool --password=<redacted>");
  EXPECT_EQ(RedactText("mysqldump -u root -ps3cret db"), "mysqldump -u root -p<redacted> db");
  // Outside a MySQL command line, "-p..." is an ordinary flag.
  EXPECT_EQ(RedactText("gcc -pthread -o x; mkdir -p /tmp/a"), "gcc -pthread -o x; mkdir -p /tmp/a");
}

TEST(RedactTextTest, UrlUserinfo) {
  EXPECT_EQ(RedactText("postgresql://mimic:pa55@db:5432/audit"),
            "postgresql://mimic:<redacted>@db:5432/audit");
  EXPECT_EQ(RedactText("url = \"jdbc:mysql://root:pw@h:3306/x?useSSL=false\""),
            "url = \"jdbc:mysql://root:<redacted>@h:3306/x?useSSL=false\"");
  EXPECT_EQ(RedactText("https://example.com:9443/path"), "https://example.com:9443/path");
  EXPECT_EQ(RedactText("jdbc:sqlserver://h;user=sa;password=Pw1;db=x"),
            "jdbc:sqlserver://h;user=sa;password=<redacted>;db=x");
}

TEST(RedactTextTest, SecretReferences) {
  EXPECT_EQ(RedactText("alias = \"$secret{db_pass}\""), "alias = \"<redacted>\"");
  EXPECT_EQ(RedactText("using $secret{a} and $secret{b}"), "using <redacted> and <redacted>");
}

TEST(RedactTextTest, LeavesOrdinaryTextAlone) {
  const std::string text =
      "password_policy_enabled = true\n"
      "Enter the password below.\n"
      "password authentication failed for user \"mimic\"\n"
      "hostname = \"localhost\"\n";
  EXPECT_EQ(RedactText(text), text);
}

TEST(RedactTextTest, Idempotent) {
  const std::string text = "password = \"x\"\n--password y\npostgresql://u:p@h/db $secret{z}";
  const std::string once = RedactText(text);
  EXPECT_EQ(RedactText(once), once);
  EXPECT_EQ(once.find("x\""), std::string::npos);
}

}  // namespace
}  // namespace mimic::common
