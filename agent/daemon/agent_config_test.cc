#include "agent/daemon/agent_config.h"

#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

using ::testing::HasSubstr;

std::string Write(const std::string& text) {
  std::string t = ::testing::TempDir() + "agentcfg_XXXXXX";
  std::string dir = mkdtemp(t.data());
  std::string path = dir + "/agent.toml";
  EXPECT_TRUE(common::WriteFileAtomic(path, text).ok());
  return path;
}

TEST(AgentConfigTest, LoadsAndResolvesRelativePaths) {
  std::string path = Write(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"state\"\nallowed_roots = [\"/opt/wso2\"]\n"
      "allowed_client_subjects = [\"mimic-controller\"]\n"
      "[tls]\ncert = \"agent.pem\"\nkey = \"/etc/mimic/agent.key\"\nclient_ca = \"ca.pem\"\n");
  auto c = LoadAgentConfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string dir = common::Dirname(path);
  EXPECT_EQ(c->state_dir, dir + "/state");
  EXPECT_EQ(c->cert_file, dir + "/agent.pem");
  EXPECT_EQ(c->key_file, "/etc/mimic/agent.key");
  EXPECT_FALSE(c->plaintext);
  EXPECT_EQ(c->allowed_roots, std::vector<std::string>{"/opt/wso2"});
}

TEST(AgentConfigTest, PlaintextOnlyOnLoopback) {
  std::string ok = Write(
      "listen = \"127.0.0.1:0\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n[tls]\nplaintext = true\n");
  EXPECT_TRUE(LoadAgentConfig(ok).ok());
  std::string bad = Write(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n[tls]\nplaintext = true\n");
  auto c = LoadAgentConfig(bad);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("agent.toml:5"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("tls.plaintext"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("mutual TLS"));
}

TEST(AgentConfigTest, BadInputNamesFileLineAndKey) {
  auto c1 = LoadAgentConfig(Write("listen = \"1.2.3.4:1\"\nstate_dir = \"s\"\nallowed_roots = [\"rel\"]\n"));
  ASSERT_FALSE(c1.ok());
  EXPECT_THAT(std::string(c1.status().message()), HasSubstr(":3"));
  EXPECT_THAT(std::string(c1.status().message()), HasSubstr("allowed_roots"));
  auto c2 = LoadAgentConfig(Write("listen = \"1.2.3.4:1\"\nstate_dir = \"s\"\nallowed_roots = [\"/a\"]\n"
                                  "[tls]\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\nfoo = 1\n"));
  ASSERT_FALSE(c2.ok());
  EXPECT_THAT(std::string(c2.status().message()), HasSubstr(":8: key 'tls.foo'"));
  auto c3 = LoadAgentConfig(Write("listen = [1\n"));
  ASSERT_FALSE(c3.ok());
  EXPECT_THAT(std::string(c3.status().message()), HasSubstr("agent.toml:1"));
}

constexpr char kTls[] =
    "[tls]\ncert = \"agent.pem\"\nkey = \"agent.key\"\nclient_ca = \"ca.pem\"\n";

std::string Message(const absl::StatusOr<AgentConfig>& c) { return std::string(c.status().message()); }

// One stolen certificate of the fleet CA must not drive every agent: an empty allow-list of
// client subjects is refused unless the config opts in to "any client of client_ca" by name.
TEST(AgentConfigTest, EmptyClientSubjectListNeedsAnExplicitOptIn) {
  auto absent = LoadAgentConfig(
      Write(absl::StrCat("listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n", kTls)));
  ASSERT_FALSE(absent.ok());
  EXPECT_THAT(Message(absent), HasSubstr("agent.toml:1: key 'allowed_client_subjects'"));
  EXPECT_THAT(Message(absent), HasSubstr("allow_any_client_subject = true"));

  auto empty = LoadAgentConfig(Write(absl::StrCat(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n"
      "allowed_client_subjects = []\n", kTls)));
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(Message(empty), HasSubstr("agent.toml:4: key 'allowed_client_subjects'"));

  auto any = LoadAgentConfig(Write(absl::StrCat(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n"
      "allow_any_client_subject = true\n", kTls)));
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_TRUE(any->allow_any_client_subject);
  EXPECT_TRUE(any->allowed_client_subjects.empty());

  auto both = LoadAgentConfig(Write(absl::StrCat(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n"
      "allowed_client_subjects = [\"mimic-controller\"]\nallow_any_client_subject = true\n", kTls)));
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(Message(both), HasSubstr("agent.toml:5: key 'allow_any_client_subject'"));

  auto blank = LoadAgentConfig(Write(absl::StrCat(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n"
      "allowed_client_subjects = [\"\"]\n", kTls)));
  ASSERT_FALSE(blank.ok());
  EXPECT_THAT(Message(blank), HasSubstr("agent.toml:4: key 'allowed_client_subjects'"));

  // Plaintext (loopback only) has no client certificates: no list is needed, and one given
  // could never be checked.
  auto plain = LoadAgentConfig(Write(
      "listen = \"127.0.0.1:0\"\nstate_dir = \"s\"\nallowed_roots = [\"/x\"]\n"
      "allowed_client_subjects = [\"mimic-controller\"]\n[tls]\nplaintext = true\n"));
  ASSERT_FALSE(plain.ok());
  EXPECT_THAT(Message(plain), HasSubstr("agent.toml:4: key 'allowed_client_subjects'"));
  EXPECT_THAT(Message(plain), HasSubstr("plaintext"));
}

// A root that is "/" (after normalisation, or through a symlink) would let a plan write anywhere.
TEST(AgentConfigTest, RootOfTheFilesystemIsRefusedAsAnAllowedRoot) {
  std::string link_dir = ::testing::TempDir() + "rootlink_XXXXXX";
  link_dir = mkdtemp(link_dir.data());
  ASSERT_EQ(symlink("/", (link_dir + "/slash").c_str()), 0);
  for (const std::string& root : {std::string("/"), std::string("//"), std::string("/./"),
                                  std::string("/opt/.."), std::string("/opt/wso2/../.."),
                                  link_dir + "/slash"}) {
    auto c = LoadAgentConfig(Write(absl::StrCat(
        "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\n"
        "allowed_client_subjects = [\"mimic-controller\"]\n"
        "allowed_roots = [\"/opt/wso2\", \"", root, "\"]\n", kTls)));
    ASSERT_FALSE(c.ok()) << root;
    EXPECT_THAT(Message(c), HasSubstr("agent.toml:4: key 'allowed_roots'")) << root;
  }
  auto fine = LoadAgentConfig(Write(absl::StrCat(
      "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\n"
      "allowed_client_subjects = [\"mimic-controller\"]\n"
      "allowed_roots = [\"/opt/wso2/\", \"/srv//mi\"]\n", kTls)));
  EXPECT_TRUE(fine.ok()) << fine.status();
}

}  // namespace
}  // namespace mimic::agent
