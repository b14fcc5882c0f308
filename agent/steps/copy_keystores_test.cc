// The copy_keystores step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"
#include "common/mi/jks.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using CopyKeystoresTest = PopulatedHomesTest;

TEST_F(CopyKeystoresTest, CopyKeystores) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_keystores");
  const FileOp* primary = FindOp(plan, "/wso2carbon.jks");
  ASSERT_NE(primary, nullptr);
  EXPECT_EQ(primary->note, "replaces the new version's shipped keystore");
  const FileOp* p12 = FindOp(plan, "/partner.p12");
  ASSERT_NE(p12, nullptr);
  EXPECT_EQ(p12->expected_sha256, "");
  EXPECT_EQ(p12->mode, 0600u);  // a private keystore stays private
  EXPECT_THAT(plan.message, HasSubstr("3 keystore files to copy (1 new, 2 replacing"));
}

// client-truststore.jks is merged: the target's CA certificates stay, the operator's partner
// certificate from the source is added, an alias the target uses for another certificate gets
// "-source"; each alias is logged; check mode exact, second run no-op, rollback byte-exact
// (ExpectExactIdempotentReversible). No password in any log.
TEST_F(CopyKeystoresTest, TruststoreMergedNotReplaced) {
  common::Jks src, dst;
  src.entries.push_back(common::TrustedCertEntry("shared-ca", 1000, "DER shared CA"));
  src.entries.push_back(common::TrustedCertEntry("partner", 2000, "DER partner cert"));
  src.entries.push_back(common::TrustedCertEntry("wso2carbon", 3000, "DER 4.0.0 self"));
  dst.entries.push_back(common::TrustedCertEntry("shared-ca", 1000, "DER shared CA"));
  dst.entries.push_back(common::TrustedCertEntry("new-ca-2023", 4000, "DER new CA"));
  dst.entries.push_back(common::TrustedCertEntry("wso2carbon", 5000, "DER 4.2.0 self"));
  // The operator's store password, set in the source's deployment.toml.
  std::string toml = Read(src_ / "conf/deployment.toml");
  toml.replace(toml.find("[truststore]\n"), 13, "[truststore]\npassword = \"op-trust-pw\"\n");
  size_t second = toml.find("password = \"wso2carbon\"", toml.find("[truststore]"));
  if (second != std::string::npos) toml.erase(second, 24);
  Write(src_ / "conf/deployment.toml", toml);
  Write(src_ / kSecurity / "client-truststore.jks", common::WriteJks(src, "op-trust-pw"));
  Write(dst_ / kSecurity / "client-truststore.jks", common::WriteJks(dst, "wso2carbon"));

  StepPlan plan = ExpectExactIdempotentReversible("copy_keystores");
  const FileOp* trust = FindOp(plan, "/client-truststore.jks");
  ASSERT_NE(trust, nullptr);
  EXPECT_EQ(trust->note, "truststore merged: 3 target entries kept, 2 added from the source");
  EXPECT_THAT(plan.message, HasSubstr("client-truststore.jks merged"));
  auto merged = common::ParseJks(Read(dst_ / kSecurity / "client-truststore.jks"), "merged",
                                 "op-trust-pw");
  // After the rollback the target's own file is back.
  EXPECT_FALSE(merged.ok());
  absl::StatusOr<common::Jks> written = common::ParseJks(trust->content, "m", "op-trust-pw");
  ASSERT_TRUE(written.ok()) << written.status();
  std::vector<std::string> aliases;
  for (const auto& e : written->entries) {
    aliases.push_back(e.alias);
  }
  EXPECT_THAT(aliases, ::testing::ElementsAre("shared-ca", "new-ca-2023", "wso2carbon", "partner",
                                              "wso2carbon-source"));
  EXPECT_THAT(Logs(), HasSubstr("kept the target's 'new-ca-2023'"));
  EXPECT_THAT(Logs(), HasSubstr("adds the source's partner (SHA256:"));
  EXPECT_THAT(Logs(), HasSubstr("adds the source's wso2carbon-source (SHA256:"));
  EXPECT_THAT(Logs(), ::testing::Not(HasSubstr("op-trust-pw")));
}

TEST_F(CopyKeystoresTest, TruststoreSecretPasswordNeedsEnvParam) {
  common::Jks src, dst;
  src.entries.push_back(common::TrustedCertEntry("partner", 2000, "DER partner cert"));
  dst.entries.push_back(common::TrustedCertEntry("new-ca", 4000, "DER new CA"));
  std::string toml = Read(src_ / "conf/deployment.toml");
  toml.replace(toml.find("[truststore]\n"), 13,
               "[truststore]\npassword = \"$secret{trust_pw}\"\n");
  size_t second = toml.find("password = \"wso2carbon\"", toml.find("[truststore]"));
  if (second != std::string::npos) toml.erase(second, 24);
  Write(src_ / "conf/deployment.toml", toml + "\n[secrets]\ntrust_pw = \"[encrypted]\"\n");
  Write(src_ / kSecurity / "client-truststore.jks", common::WriteJks(src, "vault-pw"));
  Write(dst_ / kSecurity / "client-truststore.jks", common::WriteJks(dst, "wso2carbon"));
  auto refused = PlanStep("copy_keystores");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("set param truststore_password_env"));
  ::setenv("MIMIC_TEST_TRUST_PW", "vault-pw", 1);
  auto ok = PlanStep("copy_keystores", {{"truststore_password_env", "MIMIC_TEST_TRUST_PW"}});
  ::unsetenv("MIMIC_TEST_TRUST_PW");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(Logs(), ::testing::Not(HasSubstr("vault-pw")));
}

// The secure vault: secret-conf.properties carried with the old home's paths rewritten, the
// keystore password file carried (0600, never shown); exact, idempotent, reversible.
TEST_F(CopyKeystoresTest, SecureVaultCarriedWithPathsRewritten) {
  std::string toml = Read(src_ / "conf/deployment.toml");
  toml = absl::StrReplaceAll(toml, {{"password = \"s3cret-db-pass\"", "password = \"$secret{db_pw}\""}});
  toml += "\n[secrets]\ndb_pw = \"[encrypted-db-pw]\"\n";
  Write(src_ / "conf/deployment.toml", toml);
  const std::string conf = absl::StrCat(
      "# written by the cipher tool\ncarbon.secretProvider=org.wso2.securevault.secret.handler."
      "SecretManagerSecretCallbackHandler\nsecretRepositories=file\n"
      "secretRepositories.file.location=", src_.string(), "/conf/security/cipher-text.properties\n"
      "keystore.identity.location=", src_.string(), "/repository/resources/security/partner.p12\n"
      "keystore.identity.type=PKCS12\nkeystore.identity.store.password=identity.store.password\n");
  Write(src_ / "conf/security/secret-conf.properties", conf);
  Write(src_ / "password-persist", "keystore-pw-value\n");

  StepPlan plan = ExpectExactIdempotentReversible("copy_keystores");
  const FileOp* sc = FindOp(plan, "/conf/security/secret-conf.properties");
  ASSERT_NE(sc, nullptr);
  EXPECT_THAT(sc->content, HasSubstr(absl::StrCat("keystore.identity.location=", dst_.string(),
                                                  "/repository/resources/security/partner.p12")));
  EXPECT_THAT(sc->content, Not(HasSubstr(src_.string())));
  const FileOp* pw = FindOp(plan, "/password-persist");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(pw->mode, 0600u);
  EXPECT_THAT(plan.message, HasSubstr("password at start comes from password-persist"));
  EXPECT_THAT(Logs(), HasSubstr("keystore.identity.location: path under the old MI home"));
  for (const char* secret : {"keystore-pw-value", "encrypted-db-pw"}) {
    EXPECT_THAT(Logs() + plan.message, Not(HasSubstr(secret)));
  }
}

TEST_F(CopyKeystoresTest, SecureVaultRefusesAliasWithoutValueOrKeystore) {
  std::string toml = Read(src_ / "conf/deployment.toml");
  toml = absl::StrReplaceAll(toml, {{"password = \"s3cret-db-pass\"", "password = \"$secret{db_pw}\""}});
  Write(src_ / "conf/deployment.toml", toml + "\n[secrets]\nother = \"[x]\"\n");
  auto no_value = PlanStep("copy_keystores");
  EXPECT_EQ(no_value.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_value.status().message(), HasSubstr("secret alias 'db_pw' has no encrypted value"));

  Write(src_ / "conf/deployment.toml", toml + "\n[secrets]\ndb_pw = \"[x]\"\n");
  Write(src_ / "conf/security/secret-conf.properties",
        "keystore.identity.location=repository/resources/security/vault.jks\n");
  auto no_keystore = PlanStep("copy_keystores");
  EXPECT_EQ(no_keystore.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_keystore.status().message(), HasSubstr("vault.jks does not exist in the target"));
  EXPECT_THAT(Logs(), Not(HasSubstr("from password-persist")));
  // The keystore in the source is copied, which satisfies the check.
  Write(src_ / kSecurity / "vault.jks", "vault keystore");
  auto ok = PlanStep("copy_keystores");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(ok->message, HasSubstr("comes from no file: MI asks for it on the console at start"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
