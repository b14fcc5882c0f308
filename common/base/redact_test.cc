#include "common/base/redact.h"

#include <string>

#include "gmock/gmock.h"
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

// --diff lines of XML files (user-mgt.xml, master-datasources.xml, axis2.xml): an element
// named like a secret, or a <Property name="..."> / <parameter name="..."> naming one.
TEST(RedactTextTest, XmlElementsAndNamedProperties) {
  EXPECT_EQ(RedactText("+    <Password>Xml-Pw-1</Password>"),
            "+    <Password><redacted></Password>");
  EXPECT_EQ(RedactText("<Property name=\"ConnectionPassword\">Xml-Pw-2</Property>"),
            "<Property name=\"ConnectionPassword\"><redacted></Property>");
  EXPECT_EQ(RedactText("<parameter name='keystore.password' locked=\"false\">Xml-Pw-3</parameter>"),
            "<parameter name='keystore.password' locked=\"false\"><redacted></parameter>");
  EXPECT_EQ(RedactText("<ax:KeyPassword svns:secretAlias=\"k\">Xml-Pw-4</ax:KeyPassword>"),
            "<ax:KeyPassword svns:secretAlias=\"k\"><redacted></ax:KeyPassword>");
  // Settings about secrets, other properties and empty or already hidden values stay.
  for (const std::string same :
       {"<Property name=\"PasswordJavaRegEx\">^[\\S]{5,30}$</Property>",
        "<Property name=\"ConnectionURL\">jdbc:h2:./db</Property>", "<Password></Password>",
        "<Password/>", "<Password><redacted></Password>", "</Password>"}) {
    EXPECT_EQ(RedactText(same), same);
  }
  EXPECT_EQ(SecretsInText("<Password>Xml-Pw-5</Password>"), std::vector<std::string>{"Xml-Pw-5"});
  const std::string once = RedactText("<Password>a</Password><Property name=\"password\">b</Property>");
  EXPECT_EQ(RedactText(once), once);
}

TEST(RedactTextTest, Idempotent) {
  const std::string text = "password = \"x\"\n--password y\npostgresql://u:p@h/db $secret{z}";
  const std::string once = RedactText(text);
  EXPECT_EQ(RedactText(once), once);
  EXPECT_EQ(once.find("x\""), std::string::npos);
}

// Issue 9: keys that leaked because the rule knew only "password", "secret", "token".
TEST(IsSecretKeyTest, KeyPatterns) {
  EXPECT_TRUE(IsSecretKey("parameter.\"java.naming.security.credentials\""));
  EXPECT_TRUE(IsSecretKey("transport.jms.parameter.'java.naming.security.credentials'"));
  EXPECT_TRUE(IsSecretKey("keystore_pass"));
  EXPECT_TRUE(IsSecretKey("ssl_passphrase"));
  EXPECT_TRUE(IsSecretKey("oauth.client_secret"));
  EXPECT_TRUE(IsSecretKey("api_key"));
  EXPECT_TRUE(IsSecretKey("apiKey"));
  EXPECT_TRUE(IsSecretKey("x-api-key"));
  EXPECT_TRUE(IsSecretKey("db_pwd"));
  EXPECT_TRUE(IsSecretKey("db_pass"));  // an inventory var
  EXPECT_TRUE(IsSecretKey("DB_PASSWD"));
  EXPECT_TRUE(IsSecretKey("auth_token"));
  EXPECT_TRUE(IsSecretKey("accessToken"));
  EXPECT_TRUE(IsSecretKey("clientSecret"));
  EXPECT_TRUE(IsSecretKey("credential"));
  EXPECT_TRUE(IsSecretKey("signing.private-key"));
  EXPECT_TRUE(IsSecretKey("storePass"));
  EXPECT_TRUE(IsSecretKey("-storepass"));
  EXPECT_TRUE(IsSecretKey("-srcstorepass"));
  EXPECT_TRUE(IsSecretKey("-keypass"));
  EXPECT_TRUE(IsSecretKey("Authorization"));
  EXPECT_TRUE(IsSecretKey("MYSQL_PWD"));
}

// Decided: a key is secret by its LAST word. Settings about secrets (an expiry, a regex, an
// endpoint, a file name) are not secrets; neither are words that merely contain "pass".
TEST(IsSecretKeyTest, KeyPatternsKeepFalsePositivesOut) {
  EXPECT_FALSE(IsSecretKey("password_expiry_days"));
  EXPECT_FALSE(IsSecretKey("user_store.password_java_regex"));
  EXPECT_FALSE(IsSecretKey("token_endpoint"));
  EXPECT_FALSE(IsSecretKey("passthrough"));
  EXPECT_FALSE(IsSecretKey("transport.passthru.enabled"));
  EXPECT_FALSE(IsSecretKey("http.bypass"));
  EXPECT_FALSE(IsSecretKey("compass"));
  EXPECT_FALSE(IsSecretKey("keystore.primary.file_name"));
  EXPECT_FALSE(IsSecretKey("--password-file"));
  EXPECT_FALSE(IsSecretKey("key"));
  EXPECT_FALSE(IsSecretKey("keystore.primary.alias"));
  EXPECT_FALSE(IsSecretKey("secret_alias_enabled"));
  EXPECT_FALSE(IsSecretKey("pass_count"));
}

TEST(RedactTextTest, CommandLinePatterns) {
  EXPECT_EQ(RedactText("keytool -importkeystore -srcstorepass S1x -deststorepass S2x -keypass K3x"),
            "keytool -importkeystore -srcstorepass <redacted> -deststorepass <redacted> "
            "-keypass <redacted>");
  EXPECT_EQ(RedactText("keytool -list -storepass 'St0re pw' -v"),
            "keytool -list -storepass '<redacted>' -v");
  EXPECT_EQ(RedactText("openssl pkcs12 -export -passout pass:P4ss -passin pass:Q5ss -out x.p12"),
            "openssl pkcs12 -export -passout pass:<redacted> -passin pass:<redacted> -out x.p12");
  EXPECT_EQ(RedactText("openssl rsa -passin env:KEYPW -in k.pem"),
            "openssl rsa -passin env:KEYPW -in k.pem");
  EXPECT_EQ(RedactText("curl -k -u admin:Cu7l https://h:9164/management/login"),
            "curl -k -u admin:<redacted> https://h:9164/management/login");
  EXPECT_EQ(RedactText("curl --user admin:Cu8l https://h"), "curl --user admin:<redacted> https://h");
  EXPECT_EQ(RedactText("curl --user=admin:Cu9l https://h"), "curl --user=admin:<redacted> https://h");
  EXPECT_EQ(RedactText("curl -u 'admin:Cu0 l' https://h"), "curl -u 'admin:<redacted>' https://h");
  EXPECT_EQ(RedactText("mysqldump -u root -pS3 db"), "mysqldump -u root -p<redacted> db");
  // On a line that also runs mysql, openssl's -passout keeps its own rule.
  EXPECT_EQ(RedactText("mysql -u root -pM1x db; openssl x -passout pass:P6x -out y"),
            "mysql -u root -p<redacted> db; openssl x -passout pass:<redacted> -out y");
  EXPECT_EQ(RedactText("curl -H 'Authorization: Bearer eyJ.abc' https://h"),
            "curl -H 'Authorization: <redacted>' https://h");
  EXPECT_EQ(RedactText("tool --password=pw1x --token tk2x --api-key ak3x"),
            "tool --password=<redacted> --token <redacted> --api-key <redacted>");
}

TEST(RedactTextTest, CommandOutputPatterns) {
  EXPECT_EQ(RedactText("got Bearer eyJhbGciOi.x.y for admin"),
            "got Bearer <redacted> for admin");
  EXPECT_EQ(RedactText("running keytool -storepass Kt1x -list"),
            "running keytool -storepass <redacted> -list");
  EXPECT_EQ(RedactText("client_secret=Cs1x&grant_type=x"),
            "client_secret=<redacted>&grant_type=x");
  EXPECT_EQ(RedactText("ssl_passphrase = \"Pp1x\""), "ssl_passphrase = \"<redacted>\"");
  EXPECT_EQ(RedactText("parameter.\"java.naming.security.credentials\" = \"Jn1x\""),
            "parameter.\"java.naming.security.credentials\" = \"<redacted>\"");
  // Prose about these words stays: the scheme is "Bearer" (or "BEARER"), as HTTP writes it.
  const std::string prose = "the bearer of this message; pass the test; token endpoint ok";
  EXPECT_EQ(RedactText(prose), prose);
}

TEST(RedactTextTest, NewPatternsIdempotent) {
  const std::string text =
      "openssl -passout pass:P4ss -out x\ncurl -u a:b1cd h\nBearer tttt\n-storepass ssss\n";
  const std::string once = RedactText(text);
  EXPECT_EQ(RedactText(once), once);
  EXPECT_EQ(once.find("P4ss"), std::string::npos);
  EXPECT_EQ(once.find("b1cd"), std::string::npos);
  EXPECT_EQ(once.find("tttt"), std::string::npos);
  EXPECT_EQ(once.find("ssss"), std::string::npos);
}

TEST(SecretsInTextTest, FindsWhatRedactTextHides) {
  EXPECT_THAT(SecretsInText("keytool -storepass Kt1x -keypass Kp2x; curl -u a:Cu3x h; "
                            "postgresql://u:Pg4x@h/db password = \"Pw5x\""),
              ::testing::UnorderedElementsAre("Kt1x", "Kp2x", "Cu3x", "Pg4x", "Pw5x"));
  EXPECT_TRUE(SecretsInText("alias = \"$secret{db}\" and plain text").empty());
}

TEST(SecretScrubberTest, ReplacesRegisteredValuesWhateverTheKey) {
  SecretScrubber s;
  s.Add("S3cr3t-one");
  s.Add("\"S3cr3t-quoted\"");
  s.Add("[S3cr3t-plain]");    // MI's plain-text secret form
  s.Add("abc");               // too short: not registered
  s.Add("wso2carbon");        // WSO2's published default: not registered
  s.Add("[secret]");          // MI's placeholder: the word "secret" is not registered
  s.Add("$secret{alias}");    // an alias, not a value
  s.AddKeyValue("db_pass", "S3cr3t-var");
  s.AddKeyValue("command", "keytool -storepass S3cr3t-cmd -list");
  s.AddKeyValue("hostname", "mi.example.com");  // not secret, holds none
  EXPECT_EQ(s.Scrub("x S3cr3t-one y S3cr3t-quoted z S3cr3t-plain S3cr3t-var S3cr3t-cmd"),
            "x <redacted> y <redacted> z <redacted> <redacted> <redacted>");
  EXPECT_EQ(s.Scrub("abc wso2carbon.jks mi.example.com /tmp/secrets"),
            "abc wso2carbon.jks mi.example.com /tmp/secrets");
  EXPECT_TRUE(s.Holds("..S3cr3t-one.."));
  EXPECT_FALSE(s.Holds("S3cr3t-on"));
}

TEST(SecretScrubberTest, LongestFirstAndMarkerSafe) {
  SecretScrubber s;
  s.Add("pass");
  s.Add("password123");
  s.Add("dact");  // a piece of "<redacted>": never registered
  EXPECT_EQ(s.Scrub("password123 pass"), "<redacted> <redacted>");
  EXPECT_EQ(s.Scrub(s.Scrub("password123")), "<redacted>");
}

}  // namespace
}  // namespace mimic::common
