#include "common/mi/toml_merge.h"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "common/base/redact.h"
#include "common/mi/shipped_defaults.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string ReadFixture(const std::string& rel) {
  std::ifstream in(mi_home::FixturesDir() + "/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// WSO2's shipped deployment.toml of `version`, as mimic embeds it (shipped_defaults.cc, made
// from WSO2's files; EmbeddedDefaultsAreWso2sFiles compares them when the fixtures are present).
std::string Default(const std::string& version) { return *ShippedDeploymentToml(version); }

TEST(ShippedTomlTest, EmbeddedDefaultsAreWso2sFiles) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  for (const char* v : {"1.2.0", "4.0.0", "4.2.0"}) {
    EXPECT_EQ(Default(v), ReadFixture(std::string("mi/") + v + "/conf/deployment.toml")) << v;
  }
}

// A production MI 4.0.0 deployment.toml as an operator would have it.
constexpr char kOperator400[] = R"(# mi-prod-01: production Micro Integrator
[server]
hostname = "mi-prod-01.example.com"
offset = 5
hot_deployment = false

[super_admin]
username = "admin"
password = "$secret{admin_password}"
create_admin_account = true

[user_store]
class = "org.wso2.micro.integrator.security.user.core.jdbc.JDBCUserStoreManager"
type = "database"

[realm_manager]
data_source = "WSO2CarbonDB"

[[datasource]]
id = "WSO2CarbonDB"
url = "jdbc:postgresql://db.example.com:5432/userdb"
username = "mi_user"
password = "$secret{db_password}"
driver = "org.postgresql.Driver"
pool_options.maxActive = 50
pool_options.maxWait = 60000
pool_options.testOnBorrow = true

# Reporting database of the data services
[[datasource]]
id = "ReportsDB"
url = "jdbc:mysql://reports:Url!Plain@reports.example.com:3306/reports?useSSL=true"
username = "reports"
password = "Rep0rts!Plain"
driver = "com.mysql.cj.jdbc.Driver"

[keystore.primary]
file_name = "repository/resources/security/prod-keystore.jks"
password = "$secret{keystore_password}"
alias = "mi-prod"
key_password = "$secret{keystore_password}"

[truststore]
file_name = "repository/resources/security/client-truststore.jks"
password = "Trust!Plain"
alias = "symmetric.key.value"
algorithm = "AES"

[transport.http]
socket_timeout = 120000   # milliseconds
listener.port = 8290

[transport.jms]
sender_enable = true
listener_enable = true

[[transport.jms.listener]]
name = "myQueueListener"
parameter.initial_naming_factory = "org.apache.activemq.jndi.ActiveMQInitialContextFactory"
parameter.provider_url = "tcp://activemq.example.com:61616"
parameter.connection_factory_name = "QueueConnectionFactory"
parameter.connection_factory_type = "queue"

# HL7 over MLLP, port 9292
[[custom_transport.listener]]
class = "org.wso2.micro.integrator.business.messaging.hl7.transport.HL7TransportListener"
protocol = "hl7"
parameter.'transport.hl7.TimeOut' = 10000
parameter.'transport.hl7.ValidateMessage' = false

[[custom_transport.sender]]
class = "org.wso2.micro.integrator.business.messaging.hl7.transport.HL7TransportSender"
protocol = "hl7"

[management_api]
protocols = "https"

[management_api.cors]
allowed_origins = [
  "https://dashboard.example.com",
  "https://ops.example.com",   # ops console
]

[[internal_apis.users]]
user.name = "ops"
user.password = "$secret{ops_password}"

[[internal_apis.users]]
user.name = "monitor"
user.password = "Mon!Plain"

[mediation]
synapse.global_timeout_interval = "120000"

[system.parameter]
'allowed.hosts' = ["a.example.com", "b.example.com"]
retry_policy = { count = 3, delay = 1000 }
banner = """
Production
MI"""

[opentracing]
enable = true
jaeger.sampler.manager_host = "jaeger.example.com"
jaeger.sender.agent_host = "jaeger-agent.example.com"
jaeger.sender.agent_port = 6831
jaeger.reporter.log_spans = true

[secrets]
admin_password = "[Adm1n!Plain]"
db_password = "[Db!Plain]"
keystore_password = "[Ks!Plain]"
ops_password = "[Ops!Plain]"
)";

const std::vector<std::string> kPlainSecrets = {"Adm1n!Plain", "Db!Plain",      "Ks!Plain",
                                                "Ops!Plain",   "Rep0rts!Plain", "Trust!Plain",
                                                "Mon!Plain",   "Url!Plain",     "$secret{"};

MergeOptions Opts(const std::string& from, const std::string& to) {
  MergeOptions o;
  o.from_version = from;
  o.to_version = to;
  return o;
}

toml::table Parse(const std::string& text) { return toml::parse(text, std::string_view("merged")); }

const mimic::v1::ConfigChange* FindChange(const MergeResult& r, const std::string& key) {
  for (const auto& c : r.changes) {
    if (c.key() == key) return &c;
  }
  return nullptr;
}

// Every key of a TOML document, spelled as the change list spells it.
void FlattenKeys(const toml::node& n, const std::string& key, std::vector<std::string>& out) {
  auto quote = [](std::string_view k) {
    bool bare =
        !k.empty() &&
        k.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
            std::string_view::npos;
    return bare ? std::string(k) : "'" + std::string(k) + "'";
  };
  if (const auto* t = n.as_table(); t != nullptr && !t->is_inline()) {
    for (const auto& [k, v] : *t) {
      FlattenKeys(v, key.empty() ? quote(k.str()) : key + "." + quote(k.str()), out);
    }
  } else if (n.is_array_of_tables() && !n.as_array()->empty() &&
             !n.as_array()->get(0)->as_table()->is_inline()) {
    for (size_t i = 0; i < n.as_array()->size(); ++i) {
      FlattenKeys(*n.as_array()->get(i), key + "[" + std::to_string(i) + "]", out);
    }
  } else {
    out.push_back(key);
  }
}

class Merge400To420Test : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_ = Opts("4.0.0", "4.2.0");
    opts_.target_default_text = Default("4.2.0");
    auto r = MergeDeploymentToml(kOperator400, "old/deployment.toml", Default("4.2.0"),
                                 "new/deployment.toml", opts_);
    ASSERT_TRUE(r.ok()) << r.status();
    result_ = *r;
    merged_ = Parse(result_.merged_text);
  }
  MergeOptions opts_;
  MergeResult result_;
  toml::table merged_;
};

TEST_F(Merge400To420Test, CarriesEveryOperatorValue) {
  const toml::table& m = merged_;
  EXPECT_EQ(m["server"]["hostname"].value_or(std::string()), "mi-prod-01.example.com");
  EXPECT_EQ(m["server"]["offset"].value_or(0), 5);
  EXPECT_EQ(m["server"]["hot_deployment"].value_or(true), false);
  EXPECT_EQ(m["super_admin"]["password"].value_or(std::string()), "$secret{admin_password}");
  EXPECT_EQ(m["user_store"]["type"].value_or(std::string()), "database");
  EXPECT_EQ(m["realm_manager"]["data_source"].value_or(std::string()), "WSO2CarbonDB");
  ASSERT_EQ(m["datasource"].as_array()->size(), 2u);
  EXPECT_EQ(m["datasource"][0]["id"].value_or(std::string()), "WSO2CarbonDB");
  EXPECT_EQ(m["datasource"][0]["pool_options"]["maxActive"].value_or(0), 50);
  EXPECT_EQ(m["datasource"][1]["driver"].value_or(std::string()), "com.mysql.cj.jdbc.Driver");
  EXPECT_EQ(m["keystore"]["primary"]["file_name"].value_or(std::string()),
            "repository/resources/security/prod-keystore.jks");
  EXPECT_EQ(m["keystore"]["primary"]["alias"].value_or(std::string()), "mi-prod");
  EXPECT_EQ(m["truststore"]["password"].value_or(std::string()), "Trust!Plain");
  EXPECT_EQ(m["transport"]["http"]["socket_timeout"].value_or(0), 120000);
  EXPECT_EQ(m["transport"]["http"]["listener"]["port"].value_or(0), 8290);
  EXPECT_EQ(m["transport"]["jms"]["listener_enable"].value_or(false), true);
  EXPECT_EQ(
      m["transport"]["jms"]["listener"][0]["parameter"]["provider_url"].value_or(std::string()),
      "tcp://activemq.example.com:61616");
  EXPECT_EQ(m["custom_transport"]["listener"][0]["parameter"]["transport.hl7.TimeOut"].value_or(0),
            10000);
  EXPECT_EQ(m["custom_transport"]["sender"][0]["protocol"].value_or(std::string()), "hl7");
  EXPECT_EQ(m["management_api"]["cors"]["allowed_origins"].as_array()->size(), 2u);
  EXPECT_EQ(m["system"]["parameter"]["retry_policy"]["count"].value_or(0), 3);
  EXPECT_EQ(m["system"]["parameter"]["allowed.hosts"][1].value_or(std::string()), "b.example.com");
  EXPECT_EQ(m["system"]["parameter"]["banner"].value_or(std::string()), "Production\nMI");
  EXPECT_EQ(m["mediation"]["synapse"]["global_timeout_interval"].value_or(std::string()), "120000");
  EXPECT_EQ(m["secrets"]["db_password"].value_or(std::string()), "[Db!Plain]");
}

TEST_F(Merge400To420Test, KeepsTargetCommentsAndLayout) {
  const std::string& t = result_.merged_text;
  EXPECT_THAT(t, HasSubstr("## Following are set of example configs."));
  EXPECT_THAT(t, HasSubstr("# [[transport.phase_order]]"));
  EXPECT_THAT(t, HasSubstr("# dashboard_url = \"https://localhost:9743/dashboard/api/\""));
  // Changed keys are edited in place; a missing key goes after the last key of its table; the
  // comment above the source's [server] comes along.
  EXPECT_THAT(
      t, StartsWith(
             "# mi-prod-01: production Micro Integrator\n"
             "[server]\nhostname = \"mi-prod-01.example.com\"\noffset = 5\nhot_deployment = false\n"
             "# offset  = 10\n\n[user_store]\ntype = \"database\"\nclass = "));
  // Source formatting of values (trailing comments, multi-line arrays) travels with new tables.
  EXPECT_THAT(t, HasSubstr("[transport.http]\nsocket_timeout = 120000   # milliseconds\n"));
  EXPECT_THAT(t, HasSubstr("allowed_origins = [\n  \"https://dashboard.example.com\",\n"));
  // Comments directly above a source table come along with it.
  EXPECT_THAT(t, HasSubstr("# HL7 over MLLP, port 9292\n[[custom_transport.listener]]\n"));
  EXPECT_THAT(
      t,
      HasSubstr("# Reporting database of the data services\n[[datasource]]\nid = \"ReportsDB\""));
}

TEST_F(Merge400To420Test, MapsOpentracingToOpentelemetry) {
  EXPECT_FALSE(merged_.contains("opentracing"));
  EXPECT_EQ(merged_["opentelemetry"]["enable"].value_or(false), true);
  EXPECT_EQ(merged_["opentelemetry"]["type"].value_or(std::string()), "jaeger");
  EXPECT_EQ(merged_["opentelemetry"]["host"].value_or(std::string()), "jaeger-agent.example.com");
  EXPECT_EQ(merged_["opentelemetry"]["port"].value_or(0), 6831);
  const auto* host = FindChange(result_, "opentelemetry.host");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->action(), "rename");
  EXPECT_THAT(host->note(), HasSubstr("renamed from opentracing.jaeger.sender.agent_host"));
  const auto* type = FindChange(result_, "opentelemetry.type");
  ASSERT_NE(type, nullptr);
  EXPECT_EQ(type->action(), "rename");
  EXPECT_EQ(type->new_value(), "\"jaeger\"");
  for (const char* dropped :
       {"opentracing.jaeger.reporter.log_spans", "opentracing.jaeger.sampler.manager_host"}) {
    const auto* c = FindChange(result_, dropped);
    ASSERT_NE(c, nullptr) << dropped;
    EXPECT_EQ(c->action(), "drop");
    EXPECT_THAT(c->note(), HasSubstr("no equivalent in 4.2.0"));
  }
  EXPECT_THAT(result_.warnings,
              testing::Contains(HasSubstr("opentracing.jaeger.reporter.log_spans")));
}

TEST_F(Merge400To420Test, InternalUsersStayAdmins) {
  const auto* users = merged_["internal_apis"]["users"].as_array();
  ASSERT_NE(users, nullptr);
  ASSERT_EQ(users->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*users)[i].as_table()->at_path("user.is_admin").value_or(false), true);
  }
  const auto* c = FindChange(result_, "internal_apis.users[1].user.is_admin");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->action(), "add");
  EXPECT_EQ(c->new_value(), "true");
  EXPECT_THAT(c->note(), HasSubstr("non-admin"));
}

TEST_F(Merge400To420Test, ReportsEveryKeyWithActions) {
  std::vector<std::string> keys;
  FlattenKeys(toml::parse(kOperator400), "", keys);
  for (const std::string& k : keys) {
    bool found = false;
    for (const auto& c : result_.changes) {
      found |= c.key() == k || c.note().find("renamed from " + k) != std::string::npos;
    }
    EXPECT_TRUE(found) << "source key not accounted for: " << k;
  }
  auto action = [&](const std::string& key) {
    const auto* c = FindChange(result_, key);
    return c == nullptr ? std::string("<none>") : c->action();
  };
  EXPECT_EQ(action("server.hostname"), "change");
  EXPECT_EQ(action("server.offset"), "add");
  EXPECT_EQ(action("truststore.alias"), "keep");
  EXPECT_EQ(action("datasource[0].pool_options.maxActive"), "add");
  EXPECT_EQ(action("custom_transport.listener[0].parameter.'transport.hl7.TimeOut'"), "add");
  const auto* hostname = FindChange(result_, "server.hostname");
  EXPECT_EQ(hostname->old_value(), "\"localhost\"");
  EXPECT_EQ(hostname->new_value(), "\"mi-prod-01.example.com\"");
  EXPECT_EQ(hostname->file(), "new/deployment.toml");
  // The target still held its shipped defaults: no conflicts.
  EXPECT_THAT(result_.warnings, Not(testing::Contains(HasSubstr("conflict"))));
}

TEST_F(Merge400To420Test, NoSecretValueInChangesOrWarnings) {
  const auto* pw = FindChange(result_, "keystore.primary.password");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(pw->action(), "change");
  EXPECT_EQ(pw->old_value(), kRedacted);  // the target's "wso2carbon"
  EXPECT_EQ(pw->new_value(), kRedacted);
  EXPECT_TRUE(pw->redacted());
  const auto* url = FindChange(result_, "datasource[1].url");
  ASSERT_NE(url, nullptr);
  EXPECT_TRUE(url->redacted());
  EXPECT_THAT(url->new_value(), HasSubstr("reports.example.com"));
  for (const auto& c : result_.changes) {
    for (const std::string& s : kPlainSecrets) {
      EXPECT_THAT(c.old_value() + c.new_value() + c.note(), Not(HasSubstr(s))) << c.key();
    }
  }
  for (const std::string& w : result_.warnings) {
    for (const std::string& s : kPlainSecrets) EXPECT_THAT(w, Not(HasSubstr(s)));
  }
}

TEST_F(Merge400To420Test, IsIdempotent) {
  auto again = MergeDeploymentToml(kOperator400, "old/deployment.toml", result_.merged_text,
                                   "new/deployment.toml", opts_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->merged_text, result_.merged_text);
  for (const auto& c : again->changes) {
    EXPECT_THAT(c.action(), testing::AnyOf("keep", "drop")) << c.key();
    if (c.action() == "drop") {
      EXPECT_THAT(c.key(), StartsWith("opentracing."));
    }
  }
}

// The operator already edited the target: hostname and a datasource differ from the 4.2.0 default.
std::string EditedTarget() {
  std::string t = Default("4.2.0");
  t.replace(t.find("hostname = \"localhost\""), 22, "hostname = \"mi-new.example.com\"");
  return t + "\n[[datasource]]\nid = \"WSO2CarbonDB\"\nurl = \"jdbc:h2:./db\"\n";
}

TEST(MergeConflictTest, SourceWinsAndWarns) {
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.target_default_text = Default("4.2.0");
  auto r = MergeDeploymentToml(kOperator400, "old", EditedTarget(), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["server"]["hostname"].value_or(std::string()), "mi-prod-01.example.com");
  EXPECT_EQ(m["datasource"].as_array()->size(), 2u);
  EXPECT_EQ(m["datasource"][0]["url"].value_or(std::string()),
            "jdbc:postgresql://db.example.com:5432/userdb");
  EXPECT_THAT(r->warnings, testing::Contains(HasSubstr("conflict at server.hostname")));
  EXPECT_THAT(r->warnings, testing::Contains(HasSubstr("conflict at datasource")));
  EXPECT_THAT(r->warnings, Not(testing::Contains(HasSubstr("keystore.primary.password"))));
  EXPECT_EQ(FindChange(*r, "datasource[0].url")->action(), "change");
  EXPECT_EQ(FindChange(*r, "datasource[1].id")->action(), "add");
}

TEST(MergeConflictTest, TargetKeepsOperatorEditsOnly) {
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.target_default_text = Default("4.2.0");
  o.conflict = "target";
  auto r = MergeDeploymentToml(kOperator400, "old", EditedTarget(), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["server"]["hostname"].value_or(std::string()), "mi-new.example.com");
  EXPECT_EQ(m["datasource"].as_array()->size(), 1u);
  EXPECT_EQ(m["datasource"][0]["url"].value_or(std::string()), "jdbc:h2:./db");
  // Untouched defaults are not conflicts: the source still wins there.
  EXPECT_EQ(m["keystore"]["primary"]["alias"].value_or(std::string()), "mi-prod");
  const auto* c = FindChange(*r, "server.hostname");
  EXPECT_EQ(c->action(), "drop");
  EXPECT_THAT(c->note(), HasSubstr("conflict = target"));
  EXPECT_EQ(FindChange(*r, "datasource[1].url")->action(), "drop");
}

TEST(MergeConflictTest, FailNamesTheKey) {
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.target_default_text = Default("4.2.0");
  o.conflict = "fail";
  auto r = MergeDeploymentToml(kOperator400, "old", EditedTarget(), "new", o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("server.hostname"));
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("mi-new")));
  // Into the pristine default there is nothing to conflict with.
  EXPECT_TRUE(MergeDeploymentToml(kOperator400, "old", Default("4.2.0"), "new", o).ok());
}

TEST(MergeConflictTest, WithoutDefaultsEveryDifferenceIsAConflict) {
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.conflict = "target";
  auto r = MergeDeploymentToml(kOperator400, "old", Default("4.2.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["server"]["hostname"].value_or(std::string()), "localhost");
  EXPECT_EQ(m["server"]["offset"].value_or(0), 5);  // additions are never conflicts
}

TEST(MergeOverridesTest, OverridesWinAndFollowTheRules) {
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.target_default_text = Default("4.2.0");
  o.conflict = "fail";
  o.overrides_toml =
      "[server]\noffset = 20\n\n[[internal_apis.users]]\nuser.name = \"admin2\"\nuser.password = "
      "\"x\"\n";
  auto r = MergeDeploymentToml(kOperator400, "old", EditedTarget(), "new", o);
  EXPECT_FALSE(r.ok());  // hostname still conflicts
  o.conflict = "source";
  r = MergeDeploymentToml(kOperator400, "old", EditedTarget(), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["server"]["offset"].value_or(0), 20);
  ASSERT_EQ(m["internal_apis"]["users"].as_array()->size(), 1u);
  EXPECT_EQ(m["internal_apis"]["users"][0]["user"]["name"].value_or(std::string()), "admin2");
  EXPECT_EQ(m["internal_apis"]["users"][0]["user"]["is_admin"].value_or(false), true);
  EXPECT_THAT(FindChange(*r, "internal_apis.users[1].user.name")->note(), HasSubstr("superseded"));
  auto again = MergeDeploymentToml(kOperator400, "old", r->merged_text, "new", o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->merged_text, r->merged_text);
}

TEST(Merge120Test, KeystoreTlsBecomesPrimaryWithPaths) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", Opts("1.2.0", "4.0.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_FALSE(m["keystore"].as_table()->contains("tls"));
  EXPECT_EQ(m["keystore"]["primary"]["file_name"].value_or(std::string()),
            "repository/resources/security/custom.jks");
  EXPECT_EQ(m["truststore"]["file_name"].value_or(std::string()),
            "repository/resources/security/client-truststore.jks");
  const auto* f = FindChange(*r, "keystore.primary.file_name");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->action(), "rename");
  EXPECT_THAT(f->note(), HasSubstr("renamed from keystore.tls.file_name"));
  EXPECT_THAT(f->note(), HasSubstr("relative to MI_HOME"));
  const auto* pw = FindChange(*r, "keystore.primary.password");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(pw->action(), "keep");  // equal after the rename: nothing to write
  EXPECT_EQ(pw->new_value(), kRedacted);
  const auto* ts = FindChange(*r, "truststore.file_name");
  EXPECT_EQ(ts->action(), "keep");
  EXPECT_THAT(ts->note(), HasSubstr("relative to MI_HOME"));
  EXPECT_THAT(r->merged_text, HasSubstr("# [[service_catalog]]"));
}

TEST(Merge120Test, PrimaryWinsOverTlsAtOrAboveTheUpdateLevel) {
  std::string source =
      Default("1.2.0") + "\n[keystore.primary]\nfile_name = \"prod.jks\"\nalias = \"prod\"\n";
  MergeOptions o = Opts("1.2.0", "4.0.0");
  o.source_update_level = "1";
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["keystore"]["primary"]["file_name"].value_or(std::string()),
            "repository/resources/security/prod.jks");
  EXPECT_EQ(m["keystore"]["primary"]["alias"].value_or(std::string()), "prod");
  const auto* tls = FindChange(*r, "keystore.tls.alias");
  ASSERT_NE(tls, nullptr);
  EXPECT_EQ(tls->action(), "drop");
  EXPECT_THAT(tls->note(), HasSubstr("[keystore.primary]"));
  EXPECT_THAT(tls->note(), HasSubstr("update level 1 >= 1"));
}

// Below the update level of 2020-09-17 a 1.2.0 server read [keystore.tls]: it is what becomes
// [keystore.primary], and a [keystore.primary] of the source (ignored by that server) is not.
TEST(Merge120Test, TlsIsWhatTheServerReadBelowTheUpdateLevel) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
  source += "\n[keystore.primary]\nfile_name = \"ignored.jks\"\nalias = \"ignored\"\n";
  MergeOptions o = Opts("1.2.0", "4.0.0");
  o.source_update_level = "7";
  o.keystore_primary_update_level = 8;
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["keystore"]["primary"]["file_name"].value_or(std::string()),
            "repository/resources/security/custom.jks");
  EXPECT_EQ(m["keystore"]["primary"]["alias"].value_or(std::string()), "wso2carbon");
  const auto* f = FindChange(*r, "keystore.primary.file_name");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->action(), "rename");
  EXPECT_THAT(f->note(), HasSubstr("update level 7 < 8"));
  bool dropped = false;  // the source's own [keystore.primary] alias ("ignored")
  for (const auto& c : r->changes) {
    if (c.key() == "keystore.primary.alias" && c.action() == "drop") {
      dropped = true;
      EXPECT_THAT(c.note(), HasSubstr("[keystore.primary] not carried"));
    }
  }
  EXPECT_TRUE(dropped);
  EXPECT_THAT(absl::StrJoin(r->warnings, "\n"), HasSubstr("update level 7 < 8"));
}

// The same source at the update level: [keystore.tls] was ignored by the server, so it is not
// carried (the target keeps its default primary keystore, as the source server had).
TEST(Merge120Test, TlsIgnoredAtTheUpdateLevel) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
  MergeOptions o = Opts("1.2.0", "4.0.0");
  o.source_update_level = "8";
  o.keystore_primary_update_level = 8;
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["keystore"]["primary"]["file_name"].value_or(std::string()),
            "repository/resources/security/wso2carbon.jks");
  const auto* f = FindChange(*r, "keystore.tls.file_name");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->action(), "drop");
  EXPECT_THAT(f->note(), HasSubstr("update level 8 >= 8"));
}

// No update level at all: the choice is said as an assumption.
TEST(Merge120Test, NoUpdateLevelSaysWhatItAssumed) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", Opts("1.2.0", "4.0.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto* f = FindChange(*r, "keystore.primary.file_name");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->action(), "rename");
  EXPECT_THAT(f->note(), HasSubstr("no update level found"));
  EXPECT_THAT(f->note(), HasSubstr("assumed"));
  EXPECT_THAT(absl::StrJoin(r->warnings, "\n"), HasSubstr("no update level found"));
}

// 1.2.0 fixed the internal keystore (carbon.xml InternalKeyStore) to wso2carbon.jks; 4.x makes it
// follow [keystore.primary]. With a custom primary keystore and wso2carbon.jks in the target,
// [keystore.internal] is written so internal encryption keeps its key.
TEST(Merge120Test, CustomPrimaryKeepsInternalKeystoreOnWso2carbon) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
  MergeOptions o = Opts("1.2.0", "4.0.0");
  o.target_has_wso2carbon_jks = true;
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["keystore"]["internal"]["file_name"].value_or(std::string()),
            "repository/resources/security/wso2carbon.jks");
  EXPECT_EQ(m["keystore"]["internal"]["alias"].value_or(std::string()), "wso2carbon");
  EXPECT_EQ(m["keystore"]["internal"]["type"].value_or(std::string()), "JKS");
  EXPECT_EQ(m["keystore"]["internal"]["password"].value_or(std::string()), "wso2carbon");
  EXPECT_EQ(m["keystore"]["internal"]["key_password"].value_or(std::string()), "wso2carbon");
  const auto* f = FindChange(*r, "keystore.internal.file_name");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->action(), "add");
  EXPECT_THAT(f->note(), HasSubstr("wso2carbon.jks"));
  // The management API's TLS certificate changes all the same: said, with what to do.
  EXPECT_THAT(absl::StrJoin(r->warnings, "\n"), HasSubstr("management API"));
  // Merging again changes nothing.
  auto again = MergeDeploymentToml(source, "old", r->merged_text, "new", o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->merged_text, r->merged_text);
}

TEST(Merge120Test, CustomPrimaryWithoutWso2carbonJksWarnsWhatToDo) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28, "file_name = \"custom.jks\"");
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", Opts("1.2.0", "4.0.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_FALSE(m["keystore"].as_table()->contains("internal"));
  EXPECT_THAT(absl::StrJoin(r->warnings, "\n"), HasSubstr("[keystore.internal]"));
}

// The default primary keystore (or a 4.0.0 source) needs no [keystore.internal].
TEST(Merge120Test, DefaultPrimaryAddsNoInternalKeystore) {
  MergeOptions o = Opts("1.2.0", "4.0.0");
  o.target_has_wso2carbon_jks = true;
  auto r = MergeDeploymentToml(Default("1.2.0"), "old", Default("4.0.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(Parse(r->merged_text)["keystore"].as_table()->contains("internal"));
  EXPECT_THAT(absl::StrJoin(r->warnings, "\n"), Not(HasSubstr("management API")));
}

TEST(Merge120Test, ChainedTo420WithZipkin) {
  std::string source = Default("1.2.0") +
                       "\n[opentracing]\nenable = true\nzipkin.enable = true\n"
                       "zipkin.backend.url = \"http://zipkin:9411/api/v2/spans\"\n"
                       "jaeger.sender.agent_host = \"unused\"\n";
  MergeOptions o = Opts("1.2.0", "4.2.0");
  o.target_default_text = Default("4.2.0");
  auto r = MergeDeploymentToml(source, "old", Default("4.2.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  toml::table m = Parse(r->merged_text);
  EXPECT_EQ(m["keystore"]["primary"]["file_name"].value_or(std::string()),
            "repository/resources/security/wso2carbon.jks");
  EXPECT_EQ(m["opentelemetry"]["type"].value_or(std::string()), "zipkin");
  EXPECT_EQ(m["opentelemetry"]["url"].value_or(std::string()), "http://zipkin:9411/api/v2/spans");
  EXPECT_FALSE(m["opentelemetry"].as_table()->contains("host"));
  EXPECT_EQ(FindChange(*r, "opentracing.jaeger.sender.agent_host")->action(), "drop");
}

// Operator comments (change tickets) above a table, above a key and after a value travel with
// what they describe into tables and keys the target already has; merging again adds nothing.
TEST(MergeCommentsTest, TicketCommentsTravelIntoExistingTablesAndKeys) {
  const std::string source =
      "# CHG-1001: production host\n"
      "[server]\n"
      "# CHG-1002: the name clients use\n"
      "hostname = \"mi-prod-01.example.com\"  # CHG-1003\n"
      "offset = 5  # CHG-1004\n"
      "\n"
      "[keystore.primary]\n"
      "file_name = \"repository/resources/security/wso2carbon.jks\"\n"
      "# CHG-1005: same value as the target's\n"
      "alias = \"wso2carbon\"  # CHG-1006\n";
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.target_default_text = Default("4.2.0");
  auto r = MergeDeploymentToml(source, "old", Default("4.2.0"), "new", o);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string& t = r->merged_text;
  EXPECT_THAT(t, StartsWith("# CHG-1001: production host\n[server]\n"
                            "# CHG-1002: the name clients use\n"
                            "hostname = \"mi-prod-01.example.com\"  # CHG-1003\n"
                            "offset = 5  # CHG-1004\n"));
  EXPECT_THAT(t, HasSubstr("# CHG-1005: same value as the target's\n"
                           "alias = \"wso2carbon\"  # CHG-1006\n"));
  auto again = MergeDeploymentToml(source, "old", t, "new", o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->merged_text, t);
}

// A renamed key keeps its comments (1.2.0 [keystore.tls] -> [keystore.primary]).
TEST(MergeCommentsTest, CommentsFollowARenamedKey) {
  std::string source = Default("1.2.0");
  source.replace(source.find("file_name = \"wso2carbon.jks\""), 28,
                 "# CHG-2001: CA-signed keystore\nfile_name = \"custom.jks\"  # CHG-2002");
  auto r = MergeDeploymentToml(source, "old", Default("4.0.0"), "new", Opts("1.2.0", "4.0.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->merged_text,
              HasSubstr("# CHG-2001: CA-signed keystore\n"
                        "file_name = \"repository/resources/security/custom.jks\"  # CHG-2002\n"));
}

TEST(MergeLayoutTest, MultiLineValuesDottedKeysAndNewTables) {
  const std::string target =
      "# top\n[a]\narr = [\n  1,\n  2,\n]  # trailing\nx = 1\n\n# about "
      "b\n[transport]\njms.sender_enable = true\n";
  const std::string source =
      "[a]\narr = [3]\nx = 2\ny = \"\"\"\nm\n\"\"\"\n[transport.jms]\nlistener_enable = true\n"
      "# new table\n[c.d]\nk = 'v'\n";
  auto r = MergeDeploymentToml(source, "old", target, "new", Opts("4.0.0", "4.2.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(
      r->merged_text,
      "# top\n[a]\narr = [3]  # trailing\nx = 2\ny = \"\"\"\nm\n\"\"\"\n\n# about b\n[transport]\n"
      "jms.sender_enable = true\njms.listener_enable = true\n\n# new table\n[c.d]\nk = 'v'\n");
}

TEST(MergeLayoutTest, ReplacesScatteredArrayBlocksWithSubTables) {
  const std::string target =
      "[[ds]]\nid = \"A\"\n[ds.pool]\nmax = 1\n# trailing comment stays\n\n[server]\nx = "
      "1\n\n[[ds]]\nid = \"B\"\n";
  auto r =
      MergeDeploymentToml("[[ds]]\nid = \"C\"\n", "old", target, "new", Opts("4.0.0", "4.2.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->merged_text, "[[ds]]\nid = \"C\"\n# trailing comment stays\n\n[server]\nx = 1\n\n");
  EXPECT_EQ(FindChange(*r, "ds[0].id")->action(), "change");
  EXPECT_EQ(FindChange(*r, "ds[0].pool.max")->action(), "remove");
  EXPECT_EQ(FindChange(*r, "ds[1].id")->action(), "remove");
}

TEST(MergeLayoutTest, KeepsCrlfLineEndings) {
  auto r = MergeDeploymentToml(
      "[server]\nhostname = \"h\"\noffset = 1\n[management_api]\nprotocols = \"https\"\n", "old",
      "[server]\r\nhostname = \"localhost\"  # name\r\n", "new", Opts("4.0.0", "4.2.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->merged_text,
            "[server]\r\nhostname = \"h\"  # name\r\noffset = "
            "1\r\n\r\n[management_api]\r\nprotocols = \"https\"\r\n");
}

TEST(MergeLayoutTest, ReportsKeysTheTargetShapesDifferently) {
  const std::string target = "[transport]\nhttp = { socket_timeout = 1 }\n";
  auto r = MergeDeploymentToml("[transport.http]\nsocket_timeout = 5\n", "old", target, "new",
                               Opts("4.0.0", "4.2.0"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->merged_text, target);
  const auto* c = FindChange(*r, "transport.http.socket_timeout");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->action(), "drop");
  EXPECT_THAT(r->warnings,
              testing::Contains(HasSubstr("the target defines transport.http as a value")));
}

TEST(MergeErrorsTest, ParseErrorNamesFileLineColumn) {
  auto r = MergeDeploymentToml("[server]\nhostname = \n", "old/conf/deployment.toml",
                               Default("4.2.0"), "new", Opts("4.0.0", "4.2.0"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith("old/conf/deployment.toml:2:12: "));
  auto t = MergeDeploymentToml("", "old", "[a\n", "new/deployment.toml", Opts("4.0.0", "4.2.0"));
  EXPECT_THAT(std::string(t.status().message()), StartsWith("new/deployment.toml:1:"));
}

TEST(MergeErrorsTest, RejectsBadOptions) {
  EXPECT_EQ(MergeDeploymentToml("", "a", "", "b", Opts("4.2.0", "4.0.0")).status().code(),
            absl::StatusCode::kInvalidArgument);
  MergeOptions o = Opts("4.0.0", "4.2.0");
  o.conflict = "newest";
  EXPECT_EQ(MergeDeploymentToml("", "a", "", "b", o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Found by fuzz_toml_merge: EI 7.1's HL7 package inside a table's own name. The class-name rewrite
// renamed the table with the values, and the merge then looked the table up by its old name
// (a null dereference). Now the merge refuses it, naming the table, and writes nothing.
TEST(MergeHl7ClassNamesTest, OldHl7PackageInATableNameIsRefusedNotRewritten) {
  const std::string source =
      "[[transport.org.wso2.carbon.business.messaging.hl7.listener]]\n"
      "name = \"x\"\n"
      "class = \"org.wso2.carbon.business.messaging.hl7.transport.HL7TransportListener\"\n";
  auto r = MergeDeploymentToml(source, "old/deployment.toml", Default("4.0.0"),
                               "new/deployment.toml", Opts("1.2.0", "4.0.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("[[transport.org.wso2.carbon.business.messaging.hl7.listener]]"))
      << r.status();
}

}  // namespace
}  // namespace mimic::common
