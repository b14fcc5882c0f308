// JKS read/merge/write against keystores keytool makes; keytool (a JDK) must accept what we
// write with the password, list every entry, and a wrong password must be caught.
#include "common/mi/jks.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class JksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/jks_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_.data()), nullptr);
    std::ofstream(dir_ + "/pw") << "store-pw-1";
  }
  void TearDown() override { fs::remove_all(dir_); }

  SubprocessResult Tool(std::vector<std::string> argv) {
    SubprocessOptions o;
    o.argv = std::move(argv);
    o.merge_stderr = true;
    o.timeout = absl::Minutes(2);
    absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SubprocessResult{};
  }
  // A self-signed certificate (DER) named `cn`, made with openssl.
  std::string Cert(const std::string& cn) {
    const std::string pem = dir_ + "/" + cn + ".pem";
    auto r = Tool({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                   dir_ + "/" + cn + ".key", "-subj", "/CN=" + cn, "-days", "30", "-out", pem});
    EXPECT_TRUE(r.ok()) << r.stdout_text;
    return pem;
  }
  // keytool -importcert; the store password from a file, never on argv.
  void Import(const std::string& store, const std::string& alias, const std::string& pem) {
    auto r = Tool({"keytool", "-J-XX:TieredStopAtLevel=1", "-importcert", "-noprompt", "-alias",
                   alias, "-file", pem, "-keystore", store, "-storetype", "JKS",
                   "-storepass:file", dir_ + "/pw"});
    ASSERT_TRUE(r.ok()) << r.stdout_text;
  }
  std::string List(const std::string& store) {
    auto r = Tool({"keytool", "-J-XX:TieredStopAtLevel=1", "-list", "-keystore", store,
                   "-storepass:file", dir_ + "/pw"});
    EXPECT_TRUE(r.ok()) << r.stdout_text;
    return r.stdout_text;
  }
  std::string dir_;
};

TEST_F(JksTest, MergeKeepsTargetEntriesAddsOperatorsAndKeytoolAcceptsIt) {
  const std::string shared = Cert("shared-ca"), partner = Cert("partner-ca"),
                    new_ca = Cert("new-ca"), old_self = Cert("old-self"),
                    new_self = Cert("new-self");
  const std::string src = dir_ + "/src.jks", dst = dir_ + "/dst.jks";
  Import(src, "shared", shared);
  Import(src, "partner", partner);
  Import(src, "wso2carbon", old_self);
  Import(dst, "shared", shared);
  Import(dst, "newca", new_ca);
  Import(dst, "wso2carbon", new_self);

  auto s = ParseJks(*ReadFile(src), "src.jks", "store-pw-1");
  ASSERT_TRUE(s.ok()) << s.status();
  auto t = ParseJks(*ReadFile(dst), "dst.jks", "store-pw-1");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->entries.size(), 3u);
  auto wrong = ParseJks(*ReadFile(dst), "dst.jks", "not-it");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(wrong.status().message(), ::testing::Not(HasSubstr("not-it")));
  // Unchanged entries write back to the same bytes.
  EXPECT_EQ(WriteJks(*t, "store-pw-1"), *ReadFile(dst));

  TruststoreMerge m = MergeTruststores(*s, *t);
  EXPECT_EQ(m.kept.size(), 3u);
  ASSERT_EQ(m.added.size(), 2u);
  // keytool stores entries in no particular order: check both, whatever the order.
  const std::string added = m.added[0] + " | " + m.added[1];
  EXPECT_THAT(added, HasSubstr("partner (SHA256:"));
  EXPECT_THAT(added, HasSubstr("wso2carbon-source (SHA256:"));
  const std::string merged = WriteJks(m.merged, "store-pw-1");
  // Deterministic: the same inputs give the same bytes (a check run is exact).
  EXPECT_EQ(WriteJks(MergeTruststores(*s, *t).merged, "store-pw-1"), merged);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/merged.jks", merged).ok());
  const std::string listed = List(dir_ + "/merged.jks");
  EXPECT_THAT(listed, HasSubstr("5 entries"));
  for (const char* alias : {"shared,", "newca,", "wso2carbon,", "partner,", "wso2carbon-source,"}) {
    EXPECT_THAT(listed, HasSubstr(alias));
  }
  // Merging again adds nothing: a second run is a no-op.
  auto again = ParseJks(merged, "merged.jks", "store-pw-1");
  ASSERT_TRUE(again.ok()) << again.status();
  TruststoreMerge m2 = MergeTruststores(*s, *again);
  EXPECT_TRUE(m2.added.empty());
  EXPECT_EQ(WriteJks(m2.merged, "store-pw-1"), merged);
}

TEST(JksParseTest, RefusesNonJksAndDamage) {
  EXPECT_FALSE(IsJks("PK\x03\x04"));
  auto bad = ParseJks("not a keystore", "x.jks", "pw");
  EXPECT_THAT(bad.status().message(), HasSubstr("x.jks: not a JKS keystore"));
  Jks one;
  one.entries.push_back(TrustedCertEntry("a", 1, "DER"));
  std::string bytes = WriteJks(one, "pw");
  EXPECT_TRUE(ParseJks(bytes, "x.jks", "pw").ok());
  auto truncated = ParseJks(bytes.substr(0, bytes.size() - 5), "x.jks", "pw");
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated or damaged"));
  bytes[20] ^= 1;
  EXPECT_EQ(ParseJks(bytes, "x.jks", "pw").status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace mimic::common
