#include "controller/cli/ansible_import.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/config/inventory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr char kIni[] = R"(# The MI fleet, as Ansible knew it
mi-solo.example.com

[web]
web[01:03].example.com mimic_agent_port=7555
mi-edge ansible_host=fd00::5 owner="Ops Team" ansible_password=hunter2 db_password='s3cr3t'

[web:vars]
http_port=8280
greeting = "hello world"

[dev]
mi-dev-1 ansible_host=127.0.0.1 ansible_port=2222 source_home=/opt/wso2mi-1.2.0  # local

[prod:children]
web

; prod settings
[prod:vars]
target_home=/opt/wso2mi-4.2.0

[emea:children]
prod
dev

[all:vars]
source_home=/opt/wso2mi-4.0.0
ansible_user=deploy

[qa]
mi-qa-1:2222 mimic_environment=qa-eu
)";

constexpr char kYaml[] = R"(---
all:
  vars:
    source_home: /opt/wso2mi-4.0.0
    ansible_user: deploy
    ntp_servers: [ntp1, ntp2]
  hosts:
    mi-solo:
      ansible_host: 10.1.0.9
  children:
    staging:
      hosts:
        mi-stg-[a:b]:
      vars:
        tier: "2"
    prod:
      children:
        web:
          hosts:
            web1.example.com:
              mimic_agent_port: 8443
              release: 4.2.0
            web2.example.com: ~
          vars:
            http_port: 8280
        db:
          hosts:
            db1:
              environment: prod-db
              ansible_host: db1.internal
              mimic_tls_server_name: db1.agents
              vault_token: !vault |
                $ANSIBLE_VAULT;1.1;AES256
                61626364
      vars:
        target_home: /opt/wso2mi-4.2.0
)";

class AnsibleImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mimic-ansible-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Imports `text` as file `name`, then loads the result with mimic's own loader.
  common::Inventory ImportAndLoad(const std::string& name, const std::string& text,
                                  std::string* toml = nullptr) {
    absl::StatusOr<std::string> out = ImportAnsibleInventory(Write(name, text), ImportOptions{});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    if (toml != nullptr) *toml = *out;
    absl::StatusOr<common::Inventory> inv =
        common::LoadInventoryFromString(*out, dir_ + "/inventory.toml");
    EXPECT_TRUE(inv.ok()) << inv.status() << "\n" << *out;
    return inv.ok() ? *inv : common::Inventory{};
  }

  absl::Status ImportError(const std::string& name, const std::string& text) {
    return ImportAnsibleInventory(Write(name, text), ImportOptions{}).status();
  }

  std::string dir_;
};

std::vector<std::string> HostNames(const common::Inventory& inv) {
  std::vector<std::string> names;
  for (const common::Host& h : inv.hosts) names.push_back(h.name);
  return names;
}

TEST_F(AnsibleImportTest, IniToInventory) {
  std::string toml;
  common::Inventory inv = ImportAndLoad("hosts.ini", kIni, &toml);
  ASSERT_EQ(inv.hosts.size(), 7u) << toml;
  EXPECT_THAT(HostNames(inv),
              ElementsAre("mi-solo.example.com", "web01.example.com", "web02.example.com",
                          "web03.example.com", "mi-edge", "mi-dev-1", "mi-qa-1"));
  std::vector<std::string> groups;
  for (const common::Group& g : inv.groups) groups.push_back(g.name);
  EXPECT_THAT(groups, ElementsAre("web", "dev", "prod", "emea", "qa"));
  EXPECT_THAT(inv.FindGroup("emea")->children, ElementsAre("prod", "dev"));
  EXPECT_THAT(inv.FindGroup("prod")->children, ElementsAre("web"));
  EXPECT_THAT(inv.vars, ElementsAre(Pair("source_home", "/opt/wso2mi-4.0.0")));

  const common::Host* solo = inv.FindHost("mi-solo.example.com");
  EXPECT_EQ(solo->address, "mi-solo.example.com:7443");
  EXPECT_EQ(solo->environment, "default");
  EXPECT_TRUE(solo->groups.empty());

  const common::Host* web2 = inv.FindHost("web02.example.com");
  EXPECT_EQ(web2->address, "web02.example.com:7555");
  EXPECT_EQ(web2->environment, "prod");  // from the ancestor group prod
  EXPECT_THAT(web2->groups, ElementsAre("web"));
  EXPECT_THAT(web2->all_groups, ElementsAre("emea", "prod", "web"));
  EXPECT_EQ(web2->vars.at("http_port"), "8280");
  EXPECT_EQ(web2->vars.at("greeting"), "hello world");
  EXPECT_EQ(web2->vars.at("target_home"), "/opt/wso2mi-4.2.0");
  EXPECT_EQ(web2->vars.at("source_home"), "/opt/wso2mi-4.0.0");
  EXPECT_EQ(web2->vars.count("mimic_agent_port"), 0u);

  const common::Host* edge = inv.FindHost("mi-edge");
  EXPECT_EQ(edge->address, "[fd00::5]:7443");
  EXPECT_EQ(edge->address_host, "fd00::5");
  EXPECT_EQ(edge->vars.at("owner"), "Ops Team");
  EXPECT_EQ(edge->vars.count("db_password"), 0u);
  EXPECT_EQ(edge->vars.count("ansible_password"), 0u);

  const common::Host* dev = inv.FindHost("mi-dev-1");
  EXPECT_EQ(dev->address, "127.0.0.1:7443");
  EXPECT_EQ(dev->environment, "dev");
  EXPECT_EQ(dev->vars.at("source_home"), "/opt/wso2mi-1.2.0");  // host beats all
  EXPECT_EQ(dev->vars.count("ansible_port"), 0u);

  const common::Host* qa = inv.FindHost("mi-qa-1");
  EXPECT_EQ(qa->environment, "qa-eu");
  EXPECT_EQ(qa->vars.count("mimic_environment"), 0u);

  // No secret reaches the file; what was left out is said, with file:line.
  EXPECT_THAT(toml, Not(HasSubstr("hunter2")));
  EXPECT_THAT(toml, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(toml, HasSubstr("hosts.ini:6: 'db_password' of host 'mi-edge' (a secret"));
  // Listed by name, not only counted.
  EXPECT_THAT(toml, HasSubstr("# Not imported: Ansible connection variables ansible_"));
  EXPECT_THAT(toml, HasSubstr("ansible_password"));
}

// The JSON `ansible-inventory --list` prints: groups with host and child lists, _meta.hostvars.
TEST_F(AnsibleImportTest, AnsibleInventoryListJson) {
  constexpr char kList[] = R"({
    "_meta": {"hostvars": {
      "mi-dev-1": {"ansible_host": "10.0.0.1", "mimic_agent_port": 7001, "source_home": "/opt/a"},
      "mi-prod-1": {"ansible_host": "10.0.0.2", "ansible_user": "ops"},
      "mi-prod-2": {}}},
    "all": {"children": ["ungrouped", "dev", "prod"]},
    "dev": {"hosts": ["mi-dev-1"]},
    "prod": {"hosts": ["mi-prod-1", "mi-prod-2"], "vars": {"target_home": "/opt/b"}},
    "ungrouped": {}
  })";
  std::string toml;
  common::Inventory inv = ImportAndLoad("list.json", kList, &toml);
  ASSERT_EQ(inv.hosts.size(), 3u) << toml;
  EXPECT_EQ(inv.FindHost("mi-dev-1")->address, "10.0.0.1:7001");
  EXPECT_EQ(inv.FindHost("mi-dev-1")->environment, "dev");
  EXPECT_EQ(inv.FindHost("mi-dev-1")->vars.at("source_home"), "/opt/a");
  EXPECT_EQ(inv.FindHost("mi-prod-2")->environment, "prod");
  EXPECT_EQ(inv.FindHost("mi-prod-2")->vars.at("target_home"), "/opt/b");
  EXPECT_THAT(toml, HasSubstr("ansible_host"));  // listed as left out
  EXPECT_THAT(toml, HasSubstr("ansible_user"));
}

// --group imports part of an estate and lists, by name, what it left out.
TEST_F(AnsibleImportTest, GroupImportsPartAndListsTheRest) {
  ImportOptions o;
  o.group = "prod";
  absl::StatusOr<std::string> out = ImportAnsibleInventory(Write("hosts.ini", kIni), o);
  ASSERT_TRUE(out.ok()) << out.status();
  auto inv = common::LoadInventoryFromString(*out, dir_ + "/inventory.toml");
  ASSERT_TRUE(inv.ok()) << inv.status() << "\n" << *out;
  // prod's hosts are web's (its child group).
  EXPECT_THAT(HostNames(*inv), ElementsAre("web01.example.com", "web02.example.com",
                                           "web03.example.com", "mi-edge"));
  EXPECT_THAT(*out, HasSubstr("# Left out by --group prod: hosts mi-solo.example.com, mi-dev-1, "
                              "mi-qa-1\n"));
  EXPECT_THAT(*out, HasSubstr("# Left out by --group prod: groups dev, qa"));
  o.group = "nosuch";
  absl::Status bad = ImportAnsibleInventory(Write("hosts2.ini", kIni), o).status();
  EXPECT_THAT(std::string(bad.message()), HasSubstr("--group 'nosuch' is not a group (groups: "));
}

TEST_F(AnsibleImportTest, OutputIsDeterministic) {
  const std::string path = Write("hosts.ini", kIni);
  absl::StatusOr<std::string> a = ImportAnsibleInventory(path, ImportOptions{});
  absl::StatusOr<std::string> b = ImportAnsibleInventory(path, ImportOptions{});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  // Source order, not sorted: web01 before mi-edge, web before dev.
  EXPECT_NE(a->find("[hosts.\"web01.example.com\"]"), std::string::npos);
  EXPECT_LT(a->find("\"web01.example.com\""), a->find("[hosts.mi-edge]"));
  EXPECT_LT(a->find("[groups.web]"), a->find("[groups.dev]"));
}

TEST_F(AnsibleImportTest, OptionsApply) {
  ImportOptions options;
  options.agent_port = 9443;
  options.default_environment = "legacy";
  options.ca = "pki/ca.pem";
  absl::StatusOr<std::string> out =
      ImportAnsibleInventory(Write("hosts", "[fleet]\nmi-1 ansible_host=10.0.0.1\n"), options);
  ASSERT_TRUE(out.ok()) << out.status();
  absl::StatusOr<common::Inventory> inv =
      common::LoadInventoryFromString(*out, dir_ + "/inventory.toml");
  ASSERT_TRUE(inv.ok()) << inv.status() << "\n" << *out;
  EXPECT_EQ(inv->hosts[0].address, "10.0.0.1:9443");
  EXPECT_EQ(inv->hosts[0].environment, "legacy");
  EXPECT_EQ(inv->controller.ca, dir_ + "/pki/ca.pem");
  options.agent_port = 0;
  EXPECT_EQ(ImportAnsibleInventory(Write("h2", "mi-1\n"), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AnsibleImportTest, YamlToInventory) {
  std::string toml;
  common::Inventory inv = ImportAndLoad("hosts.yml", kYaml, &toml);
  ASSERT_EQ(inv.hosts.size(), 6u) << toml;
  EXPECT_THAT(HostNames(inv), ElementsAre("mi-solo", "mi-stg-a", "mi-stg-b", "web1.example.com",
                                          "web2.example.com", "db1"));
  std::vector<std::string> groups;
  for (const common::Group& g : inv.groups) groups.push_back(g.name);
  EXPECT_THAT(groups, ElementsAre("staging", "prod", "web", "db"));
  EXPECT_THAT(inv.FindGroup("prod")->children, ElementsAre("web", "db"));
  EXPECT_THAT(inv.vars, ElementsAre(Pair("source_home", "/opt/wso2mi-4.0.0")));

  const common::Host* solo = inv.FindHost("mi-solo");
  EXPECT_EQ(solo->address, "10.1.0.9:7443");
  EXPECT_EQ(solo->environment, "default");
  const common::Host* stg = inv.FindHost("mi-stg-b");
  EXPECT_EQ(stg->environment, "staging");
  EXPECT_EQ(stg->vars.at("tier"), "2");
  const common::Host* web1 = inv.FindHost("web1.example.com");
  EXPECT_EQ(web1->address, "web1.example.com:8443");
  EXPECT_EQ(web1->environment, "prod");
  EXPECT_EQ(web1->vars.at("release"), "4.2.0");
  EXPECT_EQ(web1->vars.at("http_port"), "8280");
  EXPECT_EQ(web1->vars.at("target_home"), "/opt/wso2mi-4.2.0");
  const common::Host* db1 = inv.FindHost("db1");
  EXPECT_EQ(db1->address, "db1.internal:7443");
  EXPECT_EQ(db1->environment, "prod-db");
  EXPECT_EQ(db1->tls_server_name, "db1.agents");
  EXPECT_EQ(db1->vars.count("vault_token"), 0u);

  EXPECT_THAT(toml, Not(HasSubstr("ANSIBLE_VAULT")));
  EXPECT_THAT(toml, HasSubstr("hosts.yml:32: 'vault_token' of host 'db1' (vault-encrypted)"));
  EXPECT_THAT(toml, HasSubstr("hosts.yml:6: 'ntp_servers' of group 'all' (a list"));
}

TEST_F(AnsibleImportTest, FormatDetectedWithoutExtension) {
  common::Inventory inv = ImportAndLoad("inventory", "all:\n  hosts:\n    mi-1:\n");
  EXPECT_THAT(HostNames(inv), ElementsAre("mi-1"));
  inv = ImportAndLoad("inventory2", "mi-1\nmi-2 x=1\n");
  EXPECT_THAT(HostNames(inv), ElementsAre("mi-1", "mi-2"));
}

TEST_F(AnsibleImportTest, ErrorsNameFileAndLine) {
  const auto message = [](const absl::Status& s) { return std::string(s.message()); };
  absl::Status s = ImportError("a.ini", "[web]\nok1\nweb[03:01]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message(s), StartsWith(dir_ + "/a.ini:3: "));
  EXPECT_THAT(message(s), HasSubstr("starts after its end"));

  EXPECT_THAT(message(ImportError("b.ini", "[web]\nh1\n[web:bogus]\n")),
              AllOf(StartsWith(dir_ + "/b.ini:3: "), HasSubstr(":bogus")));
  EXPECT_THAT(message(ImportError("c.ini", "[web]\nh1 novalue\n")),
              AllOf(StartsWith(dir_ + "/c.ini:2: "), HasSubstr("key=value")));
  EXPECT_THAT(message(ImportError("d.ini", "[web]\nh1 a=\"open\n")),
              StartsWith(dir_ + "/d.ini:2: "));
  EXPECT_THAT(message(ImportError("e.ini", "\n[web]\nbad/host\n")),
              AllOf(StartsWith(dir_ + "/e.ini:3: "), HasSubstr("bad/host")));
  EXPECT_THAT(message(ImportError("f.ini", "[web]\nh1 mimic_agent_port=99999\n")),
              AllOf(StartsWith(dir_ + "/f.ini:2: "), HasSubstr("mimic_agent_port")));
  EXPECT_THAT(message(ImportError("g.ini", "[a:children]\nb\n[b:children]\na\n[a]\nh1\n")),
              HasSubstr("groups form a cycle: a -> b -> a"));
  EXPECT_THAT(message(ImportError("h.ini", "# nothing\n[web:vars]\nx=1\n")),
              HasSubstr("defines no hosts"));
  EXPECT_THAT(message(ImportError("i.ini", "[web]\nh1 environment=\"eu west\"\n")),
              AllOf(StartsWith(dir_ + "/i.ini:2: "), HasSubstr("environment 'eu west'")));

  EXPECT_THAT(message(ImportError("a.yml", "all:\n  hosts:\n    h1: [unclosed\n")),
              AllOf(StartsWith(dir_ + "/a.yml:"), HasSubstr("YAML")));
  EXPECT_THAT(message(ImportError("b.yml", "all:\n  children:\n    web:\n      host1:\n")),
              AllOf(StartsWith(dir_ + "/b.yml:4: "), HasSubstr("unexpected key 'host1'")));
  EXPECT_THAT(message(ImportError("c.yml", "all:\n  hosts:\n    - h1\n")),
              AllOf(StartsWith(dir_ + "/c.yml:2: "), HasSubstr("must be a mapping")));
  EXPECT_THAT(message(ImportError("d.yml", "web:\n  hosts:\n    h[1:x]:\n")),
              AllOf(StartsWith(dir_ + "/d.yml:3: "), HasSubstr("numbers or single letters")));

  EXPECT_EQ(ImportAnsibleInventory(dir_ + "/missing.ini", ImportOptions{}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(AnsibleImportTest, RangesExpand) {
  common::Inventory inv = ImportAndLoad("r.ini", "[g]\nn[1:3:2]\nx-[a:c]-[0:1]\npad[08:10]\n");
  EXPECT_THAT(HostNames(inv), ElementsAre("n1", "n3", "x-a-0", "x-a-1", "x-b-0", "x-b-1", "x-c-0",
                                          "x-c-1", "pad08", "pad09", "pad10"));
}

}  // namespace
}  // namespace mimic::controller
