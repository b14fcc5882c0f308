#include "agent/daemon/agent_config.h"

#include <stdlib.h>

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

}  // namespace
}  // namespace mimic::agent
