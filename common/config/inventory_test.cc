#include "common/config/inventory.h"
#include "common/config/host_pattern.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/config/toml_load.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A fresh folder under the test temp dir.
std::string MakeTempDir() {
  std::string templ = testing::TempDir() + "/inventory_test.XXXXXX";
  char* dir = mkdtemp(templ.data());
  EXPECT_NE(dir, nullptr);
  return std::filesystem::path(templ).lexically_normal().string();
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// The 1-based line of the first occurrence of `needle` in `text`.
int LineOf(const std::string& text, const std::string& needle) {
  size_t pos = text.find(needle);
  EXPECT_NE(pos, std::string::npos) << needle;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

const char kGood[] = R"([controller]
state_dir = "state"
ca = "certs/ca.pem"
cert = "certs/controller.pem"
key = "/etc/mimic/controller.key"
concurrency = 20

[audit]
url = "sqlite:state/audit.db"

[vars]
source_home = "/opt/wso2mi-4.0.0"
target_home = "/opt/wso2mi-4.2.0"
java_home = "/usr/lib/jvm/17"
port_offset = 0

[groups.emea]
vars = { target_home = "/srv/emea/mi-4.2.0", region = "emea" }
children = ["emea-dev"]

[groups.emea-dev]
vars = { region = "emea-dev", tier = "low" }

[hosts.zeta]
address = "10.0.0.9:7001"
environment = "prod"
groups = ["emea"]
vars = { source_home = "/srv/zeta/mi" }

[hosts.alpha]
address = "[fd00::5]:7443"
environment = "dev"
groups = ["emea-dev"]
vars = { tier = "high", debug = true }
tls_server_name = "alpha.mi.example"

[hosts."mi.dev-2"]
address = "mi-dev-2.example.com:7001"
environment = "dev"
)";

TEST(InventoryTest, LoadsEveryFieldOfAGoodInventory) {
  std::string dir = MakeTempDir();
  std::string path = WriteFile(dir, "inventory.toml", kGood);
  absl::StatusOr<Inventory> inv = LoadInventory(path);
  ASSERT_TRUE(inv.ok()) << inv.status();

  EXPECT_EQ(inv->path, path);
  EXPECT_EQ(inv->dir, dir);
  EXPECT_EQ(inv->controller.state_dir, dir + "/state");
  EXPECT_EQ(inv->controller.ca, dir + "/certs/ca.pem");
  EXPECT_EQ(inv->controller.cert, dir + "/certs/controller.pem");
  EXPECT_EQ(inv->controller.key, "/etc/mimic/controller.key");
  EXPECT_FALSE(inv->controller.plaintext);
  EXPECT_EQ(inv->controller.concurrency, 20);
  EXPECT_EQ(inv->audit_url, "sqlite:" + dir + "/state/audit.db");
  EXPECT_EQ(inv->vars.at("port_offset"), "0");

  ASSERT_EQ(inv->groups.size(), 2u);
  EXPECT_EQ(inv->groups[0].name, "emea");
  EXPECT_THAT(inv->groups[0].children, ElementsAre("emea-dev"));
  EXPECT_EQ(inv->groups[0].line, LineOf(kGood, "[groups.emea]"));

  // Hosts keep file order, not key order.
  ASSERT_EQ(inv->hosts.size(), 3u);
  const Host& zeta = inv->hosts[0];
  const Host& alpha = inv->hosts[1];
  const Host& dev2 = inv->hosts[2];
  EXPECT_EQ(zeta.name, "zeta");
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_EQ(dev2.name, "mi.dev-2");

  EXPECT_EQ(zeta.address, "10.0.0.9:7001");
  EXPECT_EQ(zeta.address_host, "10.0.0.9");
  EXPECT_EQ(zeta.port, 7001);
  EXPECT_EQ(zeta.environment, "prod");
  EXPECT_EQ(zeta.tls_server_name, "zeta");
  EXPECT_EQ(zeta.line, LineOf(kGood, "[hosts.zeta]"));
  EXPECT_THAT(zeta.all_groups, ElementsAre("emea"));
  // inventory vars < group vars < host vars
  EXPECT_EQ(zeta.vars.at("source_home"), "/srv/zeta/mi");
  EXPECT_EQ(zeta.vars.at("target_home"), "/srv/emea/mi-4.2.0");
  EXPECT_EQ(zeta.vars.at("java_home"), "/usr/lib/jvm/17");
  EXPECT_EQ(zeta.vars.at("region"), "emea");
  EXPECT_EQ(zeta.vars.count("tier"), 0u);

  EXPECT_EQ(alpha.address_host, "fd00::5");
  EXPECT_EQ(alpha.port, 7443);
  EXPECT_EQ(alpha.tls_server_name, "alpha.mi.example");
  EXPECT_THAT(alpha.groups, ElementsAre("emea-dev"));
  // Parent group first, then the child: the child's vars win over the parent's.
  EXPECT_THAT(alpha.all_groups, ElementsAre("emea", "emea-dev"));
  EXPECT_TRUE(alpha.InGroup("emea"));
  EXPECT_EQ(alpha.vars.at("region"), "emea-dev");
  EXPECT_EQ(alpha.vars.at("tier"), "high");
  EXPECT_EQ(alpha.vars.at("debug"), "true");
  EXPECT_EQ(alpha.vars.at("source_home"), "/opt/wso2mi-4.0.0");
  EXPECT_EQ(alpha.vars.at("target_home"), "/srv/emea/mi-4.2.0");

  EXPECT_EQ(dev2.address_host, "mi-dev-2.example.com");
  EXPECT_TRUE(dev2.all_groups.empty());
  EXPECT_EQ(dev2.vars.at("target_home"), "/opt/wso2mi-4.2.0");
  EXPECT_EQ(inv->FindHost("alpha"), &alpha);
  EXPECT_EQ(inv->FindHost("nope"), nullptr);
}

TEST(InventoryTest, DefaultsAndPlaintextOnLoopback) {
  std::string dir = MakeTempDir();
  std::string path = WriteFile(dir, "inv.toml", R"([controller]
plaintext = true
[hosts.a]
address = "127.0.0.1:7001"
environment = "dev"
[hosts.b]
address = "localhost:7002"
environment = "dev"
[hosts.c]
address = "[::1]:7003"
environment = "dev"
)");
  absl::StatusOr<Inventory> inv = LoadInventory(path);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->controller.plaintext);
  EXPECT_EQ(inv->controller.ca, "");
  EXPECT_EQ(inv->controller.concurrency, 50);
  EXPECT_EQ(inv->controller.state_dir, dir + "/state");
  EXPECT_EQ(inv->audit_url, "sqlite:" + dir + "/state/audit.db");
}

TEST(InventoryTest, AuditUrlForms) {
  std::string dir = MakeTempDir();
  const std::string hosts =
      "[controller]\nplaintext = true\n"
      "[hosts.a]\naddress = \"127.0.0.1:1\"\nenvironment = \"dev\"\n";
  auto load = [&](const std::string& audit) {
    return LoadInventory(WriteFile(dir, "inventory.toml", hosts + "[audit]\n" + audit + "\n"));
  };
  absl::StatusOr<Inventory> inv = load("url = \"db/audit.sqlite\"");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->audit_url, "sqlite:" + dir + "/db/audit.sqlite");
  inv = load("url = \"postgresql://mimic@db.example/audit\"");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->audit_url, "postgresql://mimic@db.example/audit");
  inv = load("url = \"mysql://db/audit\"");
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(std::string(inv.status().message()),
              StartsWith(dir + "/inventory.toml:7: key 'audit.url':"));
  // The audit's signing key: relative to the inventory; "" (the default place) when unset.
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  inv = load("url = \"db/audit.sqlite\"");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->audit_signing_key, "");
  inv = load("signing_key = \"keys/audit.key\"");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->audit_signing_key, dir + "/keys/audit.key");
  inv = load("signing_key = \"\"");
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(std::string(inv.status().message()),
              StartsWith(dir + "/inventory.toml:7: key 'audit.signing_key':"));
}

// Loads `text` as DIR/inventory.toml and expects INVALID_ARGUMENT whose message starts with
// "DIR/inventory.toml:LINE: key 'KEY':" where LINE is the line of `at` in `text`, and contains
// `detail`.
void ExpectError(const std::string& text, const std::string& at, const std::string& key,
                 const std::string& detail) {
  std::string dir = MakeTempDir();
  std::string path = WriteFile(dir, "inventory.toml", text);
  absl::StatusOr<Inventory> inv = LoadInventory(path);
  ASSERT_FALSE(inv.ok()) << "expected an error for " << key;
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inv.status().message()),
              StartsWith(absl::StrCat(path, ":", LineOf(text, at), ": key '", key, "':")));
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr(detail));
}

const char kTls[] = "[controller]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n";

TEST(InventoryTest, MalformedTomlNamesFileLineAndColumn) {
  std::string dir = MakeTempDir();
  std::string text = std::string(kTls) + "[hosts.web1]\naddress = \"10.0.0.1:7001\n";
  std::string path = WriteFile(dir, "inventory.toml", text);
  absl::StatusOr<Inventory> inv = LoadInventory(path);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inv.status().message()), StartsWith(path + ":6:"));
  EXPECT_THAT(std::string(inv.status().message()), testing::ContainsRegex(":6:[0-9]+: "));
}

TEST(InventoryTest, MissingFileIsNotFound) {
  absl::StatusOr<Inventory> inv = LoadInventory(MakeTempDir() + "/nope.toml");
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr("nope.toml"));
}

TEST(InventoryTest, WrongTypeNamesKey) {
  std::string text = std::string(kTls) + "[hosts.web1]\naddress = 7001\nenvironment = \"dev\"\n";
  ExpectError(text, "address = 7001", "hosts.web1.address", "must be a string, not an integer");
}

TEST(InventoryTest, UnknownKeyIsAnError) {
  std::string text = std::string(kTls) +
                     "[hosts.web1]\naddress = \"10.0.0.1:7001\"\nenvironment = \"dev\"\n"
                     "enviroment = \"prod\"\n";
  ExpectError(text, "enviroment =", "hosts.web1.enviroment", "unknown key");
  ExpectError(std::string(kTls) + "concurency = 5\n", "concurency", "controller.concurency",
              "unknown key");
  ExpectError("[hostz.web1]\naddress = \"10.0.0.1:7001\"\n", "[hostz", "hostz", "unknown key");
}

TEST(InventoryTest, MissingAddressAndEnvironment) {
  ExpectError(std::string(kTls) + "[hosts.web1]\nenvironment = \"dev\"\n", "[hosts.web1]",
              "hosts.web1.address", "is required");
  ExpectError(std::string(kTls) + "[hosts.web1]\naddress = \"10.0.0.1:7001\"\n", "[hosts.web1]",
              "hosts.web1.environment", "is required");
}

TEST(InventoryTest, BadAddresses) {
  for (const char* address :
       {"10.0.0.1:70000", "10.0.0.1:0", "10.0.0.1:http", "10.0.0.1", "10.0.0.1:", ":7001",
        "fd00::5:7001", "[fd00::5]7001", "[zz]:7001", "bad host:7001"}) {
    SCOPED_TRACE(address);
    std::string text =
        std::string(kTls) + "[hosts.web1]\nenvironment = \"dev\"\naddress = \"" + address + "\"\n";
    ExpectError(text, "address =", "hosts.web1.address", "");
  }
  ExpectError(std::string(kTls) + "[hosts.web1]\nenvironment = \"dev\"\naddress = \"h:65536\"\n",
              "address =", "hosts.web1.address", "between 1 and 65535");
}

TEST(InventoryTest, DuplicateHosts) {
  // An exact duplicate is a TOML error: file, line and column, and the key.
  std::string dir = MakeTempDir();
  std::string text = std::string(kTls) +
                     "[hosts.web1]\naddress = \"10.0.0.1:7001\"\nenvironment = \"dev\"\n"
                     "[hosts.web1]\naddress = \"10.0.0.2:7001\"\nenvironment = \"dev\"\n";
  std::string path = WriteFile(dir, "inventory.toml", text);
  absl::StatusOr<Inventory> inv = LoadInventory(path);
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(std::string(inv.status().message()), StartsWith(path + ":8:"));
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr("web1"));
  // Names that differ only in case are refused too.
  text = std::string(kTls) +
         "[hosts.web1]\naddress = \"10.0.0.1:7001\"\nenvironment = \"dev\"\n"
         "[hosts.WEB1]\naddress = \"10.0.0.2:7001\"\nenvironment = \"dev\"\n";
  ExpectError(text, "[hosts.WEB1]", "hosts.WEB1", "duplicate host name");
}

TEST(InventoryTest, BadNames) {
  ExpectError(
      std::string(kTls) + "[hosts.\"web 1\"]\naddress = \"10.0.0.1:7001\"\nenvironment = \"dev\"\n",
      "[hosts.\"web 1\"]", "hosts.\"web 1\"", "host names may use only");
  ExpectError(
      std::string(kTls) + "[hosts.web1]\naddress = \"10.0.0.1:7001\"\nenvironment = \"d v\"\n",
      "environment =", "hosts.web1.environment", "");
}

TEST(InventoryTest, GroupsMustExistAndNotCycle) {
  ExpectError(std::string(kTls) +
                  "[groups.emea]\n[hosts.web1]\naddress = \"10.0.0.1:7001\"\n"
                  "environment = \"dev\"\ngroups = [\"emea\", \"apac\"]\n",
              "groups = [", "hosts.web1.groups[1]", "unknown group 'apac' (defined groups: emea)");
  ExpectError(std::string(kTls) +
                  "[groups.a]\nchildren = [\"b\"]\n[groups.b]\n"
                  "children = [\"a\"]\n",
              "children = [\"a\"]", "groups.b.children", "cycle: a -> b -> a");
  ExpectError(std::string(kTls) + "[groups.a]\nchildren = [\"zz\"]\n", "children",
              "groups.a.children", "unknown group 'zz'");
}

TEST(InventoryTest, VarsMustBeScalars) {
  ExpectError(std::string(kTls) +
                  "[hosts.web1]\naddress = \"10.0.0.1:7001\"\nenvironment = \"dev\"\n"
                  "vars = { a = \"x\", homes = [\"/a\"] }\n",
              "vars =", "hosts.web1.vars.homes", "must be a string, integer or boolean");
}

TEST(InventoryTest, PlaintextRefusedOffLoopback) {
  std::string text =
      "[controller]\nplaintext = true\n"
      "[hosts.local]\naddress = \"127.0.0.1:7001\"\nenvironment = \"dev\"\n"
      "[hosts.remote]\naddress = \"10.1.2.3:7001\"\nenvironment = \"dev\"\n";
  ExpectError(text, "plaintext", "controller.plaintext", "mutual TLS is required off loopback");
  ExpectError(text, "plaintext", "controller.plaintext", "'remote'");
}

TEST(InventoryTest, CertificatesRequiredWithoutPlaintext) {
  std::string text =
      "[controller]\nca = \"ca.pem\"\ncert = \"c.pem\"\n"
      "[hosts.web1]\naddress = \"127.0.0.1:7001\"\nenvironment = \"dev\"\n";
  ExpectError(text, "[controller]", "controller.key", "mutual TLS");
  ExpectError(std::string(kTls) + "concurrency = 0\n", "concurrency", "controller.concurrency",
              "between 1 and 10000");
}

TEST(InventoryTest, NoHostsIsAnError) {
  std::string dir = MakeTempDir();
  std::string path = WriteFile(dir, "inventory.toml", kTls);
  absl::StatusOr<Inventory> inv = LoadInventory(path);
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(std::string(inv.status().message()), StartsWith(path + ": key 'hosts':"));
}

TEST(InventoryTest, ParseAddressAndLoopback) {
  std::string host;
  int port = 0;
  ASSERT_TRUE(ParseAddress("[::1]:65535", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 65535);
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.10.20.30"));
  EXPECT_TRUE(IsLoopbackHost("LocalHost"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.example.com"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.256"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
}

TEST(TomlLoadTest, ConfigErrorLineFallbacks) {
  absl::StatusOr<toml::table> t = ParseTomlString("[a]\n\nb = 1\n", "x.toml");
  ASSERT_TRUE(t.ok()) << t.status();
  const toml::table* a = t->get("a")->as_table();
  EXPECT_EQ(ConfigError("x.toml", a->get("b"), "a.b", "bad").message(), "x.toml:3: key 'a.b': bad");
  EXPECT_EQ(ConfigError("x.toml", nullptr, "a.c", "missing", a).message(),
            "x.toml:1: key 'a.c': missing");
  EXPECT_EQ(ConfigError("x.toml", nullptr, "a.c", "missing").message(),
            "x.toml: key 'a.c': missing");
  EXPECT_EQ(JoinKey("hosts", "a b"), "hosts.\"a b\"");
  EXPECT_EQ(JoinKey("", "a"), "a");
  // A directory is not a TOML file.
  EXPECT_FALSE(ParseTomlFile(MakeTempDir()).ok());
}

std::vector<std::string> Names(const std::vector<const Host*>& hosts) {
  std::vector<std::string> names;
  for (const Host* h : hosts) names.push_back(h->name);
  return names;
}

TEST(InventoryTest, SelectHosts) {
  std::string dir = MakeTempDir();
  absl::StatusOr<Inventory> inv = LoadInventory(WriteFile(dir, "inventory.toml", kGood));
  ASSERT_TRUE(inv.ok()) << inv.status();
  auto select = [&](const std::string& limit) {
    absl::StatusOr<std::vector<const Host*>> hosts = SelectHosts(*inv, limit);
    EXPECT_TRUE(hosts.ok()) << hosts.status();
    return hosts.ok() ? Names(*hosts) : std::vector<std::string>{};
  };
  EXPECT_THAT(select(""), ElementsAre("zeta", "alpha", "mi.dev-2"));
  EXPECT_THAT(select("alpha"), ElementsAre("alpha"));
  EXPECT_THAT(select("dev"), ElementsAre("alpha", "mi.dev-2"));
  // A group selects the hosts of its child groups too.
  EXPECT_THAT(select("emea"), ElementsAre("zeta", "alpha"));
  EXPECT_THAT(select("emea-dev"), ElementsAre("alpha"));
  // Union in file order, no duplicates, spaces ignored.
  EXPECT_THAT(select("mi.dev-2, zeta ,alpha,dev"), ElementsAre("zeta", "alpha", "mi.dev-2"));

  absl::StatusOr<std::vector<const Host*>> bad = SelectHosts(*inv, "alpha,staging");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'staging'"));
}

}  // namespace
}  // namespace mimic::common
