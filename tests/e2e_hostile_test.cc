// Hostile input, table-driven, through the real command lines: plans and inventories through
// `mimic run --check`, agent configurations through `mimic-agent --config`, source and target
// MI homes through `mimic-agent local`. Every case expects a clear error naming where (file,
// line, key, or the path in the MI home), the documented exit code (1 bad input; 2 a host
// failed), nothing written (every file of the case's folder and of both homes hashed before and
// after), and no line forged by a name holding a newline.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>


#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/fs.h"
#include "common/config/toml_load.h"
#include "common/mi/capp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;

// Like TreeHash, but safe on FIFOs and devices (their type and mode only: reading a FIFO would
// block), and with owners and link counts, so a changed owner or a new hard link shows.
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  ForEachEntry(root, [&](const std::string& r, const std::string& full, const struct stat& st) {
    std::string meta = absl::StrCat(st.st_mode, " ", st.st_uid, ":", st.st_gid, " ", st.st_nlink);
    if (S_ISDIR(st.st_mode)) {
      out[r] = "dir " + meta;
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t len = readlink(full.c_str(), buf, sizeof(buf));
      out[r] = absl::StrCat("link ", std::string(buf, len > 0 ? len : 0));
    } else if (S_ISREG(st.st_mode)) {
      auto sha = common::Sha256File(full);
      out[r] = absl::StrCat(sha.ok() ? *sha : "?", " ", meta);
    } else {
      out[r] = absl::StrCat("special ", meta, " ", st.st_rdev);
    }
  });
  return out;
}

void Write(const std::string& path, const std::string& text) { WriteText(path, text); }

constexpr char kInventory[] = R"([controller]
plaintext = true
state_dir = "state"
[vars]
source_home = "/opt/wso2mi-4.0.0"
target_home = "/opt/wso2mi-4.2.0"
[hosts.h1]
address = "127.0.0.1:1"
environment = "dev"
)";
constexpr char kPlan[] = "[[steps]]\nname = \"preflight\"\n";

constexpr char kAgentConfig[] = R"(listen = "127.0.0.1:0"
state_dir = "state"
allowed_roots = ["/opt/wso2"]
[tls]
plaintext = true
)";

// The one source and target MI homes every MI-home case copies (made once: keytool is slow).
struct Homes {
  std::string dir;
  std::string source, target;
};
const Homes& Pristine() {
  static const Homes* homes = [] {
    auto* h = new Homes;
    h->dir = MakeTempDir("hostile-homes");
    h->source = h->dir + "/wso2mi-4.0.0";
    h->target = h->dir + "/wso2mi-4.2.0";
    MakeMiHome("4.0.0", h->source, "source", "h1");
    MakeMiHome("4.2.0", h->target, "target", "h1");
    return h;
  }();
  return *homes;
}

enum class Via { kRun, kAgent, kLocal };

// One case's folder: inventory.toml and plan.toml (kRun), agent.toml (kAgent), or a copy of
// the homes in src/ and dst/ with plan.toml and a state dir outside both (kLocal).
struct Env {
  std::string dir;
  std::string source, target;
  std::string local_args;  // replaces `--source SRC` of `mimic-agent local`
  bool check = false;      // `mimic-agent local --check`: the run writes nothing
};

struct Case {
  std::string name;
  Via via;
  std::function<void(Env&)> setup;
  int exit_code;
  std::vector<std::string> expect;  // in the output; "{dir}" is the case's folder
  // A line the output must not hold at its start (a forged line by a newline in a name).
  std::string forged;
};

std::string Repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * n);
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

Case PlanCase(std::string name, std::string plan, std::vector<std::string> expect,
              std::string forged = "") {
  return {std::move(name), Via::kRun,
          [plan](Env& e) { Write(e.dir + "/plan.toml", plan); }, 1, std::move(expect),
          std::move(forged)};
}
Case InventoryCase(std::string name, std::string inventory, std::vector<std::string> expect,
                   std::string forged = "") {
  return {std::move(name), Via::kRun,
          [inventory](Env& e) { Write(e.dir + "/inventory.toml", inventory); }, 1,
          std::move(expect), std::move(forged)};
}
Case AgentCase(std::string name, std::string config, std::vector<std::string> expect) {
  return {std::move(name), Via::kAgent,
          [config](Env& e) { Write(e.dir + "/agent.toml", config); }, 1, std::move(expect)};
}
// A `mimic-agent local` run of `steps` (preflight first) on homes `mutate` makes hostile.
Case HomeCase(std::string name, std::vector<std::string> steps,
              std::function<void(Env&)> mutate, std::vector<std::string> expect,
              int exit_code = 2) {
  return {std::move(name), Via::kLocal,
          [steps, mutate](Env& e) {
            std::string plan = "[[steps]]\nname = \"preflight\"\nparams = { min_free_mb = 0 }\n";
            for (const std::string& s : steps) absl::StrAppend(&plan, "[[steps]]\nname = \"", s, "\"\n");
            std::vector<std::string> runs = steps;
            runs.push_back("preflight");
            plan += SkipAllBut(runs, "a hostile-input case runs only these steps");
            Write(e.dir + "/plan.toml", plan);
            mutate(e);
          },
          exit_code, std::move(expect)};
}

void MakeFifo(const std::string& path) { ASSERT_EQ(mkfifo(path.c_str(), 0644), 0) << path; }
// `at` becomes a second name of a new file `name` in the case's outside/ folder (outside the
// allowed roots, which are the two homes); whatever was at `at` is replaced.
void HardLinkOutside(Env& e, const std::string& name, const std::string& at) {
  const std::string outside = e.dir + "/outside/" + name;
  Write(outside, "root:$6$hostile$NotToBeCopiedAnywhere:19000:0:99999:7:::\n");
  std::error_code ec;
  std::filesystem::remove(at, ec);
  ASSERT_EQ(link(outside.c_str(), at.c_str()), 0) << at << ": " << std::strerror(errno);
}
void Symlink(const std::string& to, const std::string& at) {
  std::error_code ec;
  std::filesystem::remove(at, ec);
  ASSERT_EQ(symlink(to.c_str(), at.c_str()), 0) << at;
}
std::string Zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<common::ZipEntry> entries;
  for (const auto& [name, content] : files) {
    common::ZipEntry e;
    e.name = name;
    e.data = content;
    entries.push_back(std::move(e));
  }
  absl::StatusOr<std::string> zip = common::WriteZip(entries);
  EXPECT_TRUE(zip.ok()) << zip.status();
  return zip.value_or("");
}

constexpr char kCapps[] = "/repository/deployment/server/carbonapps/";
constexpr char kToml[] = "/conf/deployment.toml";

std::vector<Case> Cases() {
  const std::string merge = "[[steps]]\nname = \"merge_config\"\n";
  std::vector<Case> c;
  // ---- plans (mimic run --check): exit 1, FILE:LINE: key 'K'
  c.push_back(PlanCase("plan_syntax_error", "[[steps]]\nname = \"preflight\n",
                       {"{dir}/plan.toml:2:"}));
  c.push_back(PlanCase("plan_duplicate_key", "[[steps]]\nname = \"preflight\"\nname = \"verify\"\n",
                       {"{dir}/plan.toml:3:", "name"}));
  c.push_back(PlanCase("plan_duplicate_table",
                       "[migration]\npath = \"auto\"\n[migration]\npath = \"auto\"\n" +
                           std::string(kPlan),
                       {"{dir}/plan.toml:3:"}));
  c.push_back(PlanCase("plan_invalid_utf8", "[[steps]]\nname = \"pre\xff\xfe\"\n",
                       {"{dir}/plan.toml:2:"}));
  c.push_back(PlanCase("plan_nul_byte", std::string("[[steps]]\nname = \"pre\0flight\"\n", 29),
                       {"{dir}/plan.toml:2:"}));
  c.push_back(PlanCase("plan_escaped_nul_in_step_name",
                       "[[steps]]\nname = \"pre\\u0000flight\"\n",
                       {"{dir}/plan.toml:2: key 'steps[0].name': unknown step"}));
  c.push_back(PlanCase("plan_step_name_with_newline",
                       "[[steps]]\nname = \"preflight\\nmimic: rollout OK\"\n",
                       {"{dir}/plan.toml:2: key 'steps[0].name': unknown step"},
                       "mimic: rollout OK"));
  c.push_back(PlanCase("plan_stage_name_with_newline",
                       std::string(kPlan) + "[[stages]]\nname = \"dev\\nFORGED\"\n",
                       {"{dir}/plan.toml:4: key 'stages[0].name': stage names may use only"},
                       "FORGED"));
  c.push_back(PlanCase("plan_deeply_nested_arrays",
                       std::string(kPlan) + "x = " + Repeat("[", 100000) + Repeat("]", 100000) + "\n",
                       {"{dir}/plan.toml:3:"}));
  c.push_back(PlanCase("plan_deeply_nested_inline_tables",
                       std::string(kPlan) + "x = " + Repeat("{a=", 100000) + "1" +
                           Repeat("}", 100000) + "\n",
                       {"{dir}/plan.toml:3:"}));
  c.push_back(PlanCase("plan_huge", std::string(kPlan) + "# " + std::string(common::kMaxConfigFileBytes + (1 << 20), 'x') + "\n",
                       {"{dir}/plan.toml: ", "at most 67108864 bytes"}));
  c.push_back(PlanCase("plan_unknown_step", "[[steps]]\nname = \"rm_rf\"\n",
                       {"{dir}/plan.toml:2: key 'steps[0].name': unknown step 'rm_rf'"}));
  c.push_back(PlanCase("plan_bad_conflict", merge + "params = { conflict = \"whatever\" }\n",
                       {"{dir}/plan.toml:3: key 'steps[0].params.conflict'",
                        "one of: source, target, fail"}));
  c.push_back(PlanCase("plan_unknown_param", merge + "params = { conflcit = \"source\" }\n",
                       {"{dir}/plan.toml:3: key 'steps[0].params.conflcit'",
                        "no parameter 'conflcit'"}));
  c.push_back(PlanCase("plan_exec_without_command", "[[steps]]\nname = \"exec\"\n",
                       {"{dir}/plan.toml:1: key 'steps[0].params': exec needs param command"}));
  c.push_back(PlanCase("plan_bad_port_param",
                       "[[steps]]\nname = \"verify\"\nparams = { probe_port = 0 }\n",
                       {"{dir}/plan.toml:3: key 'steps[0].params.probe_port'", "1 to 65535"}));
  c.push_back(PlanCase("plan_relative_backup_dir",
                       "[[steps]]\nname = \"backup_databases\"\nparams = { backup_dir = \"../x\" }\n",
                       {"{dir}/plan.toml:3: key 'steps[0].params.backup_dir'", "absolute path"}));
  c.push_back(PlanCase("plan_param_array", merge + "params = { conflict = [\"source\"] }\n",
                       {"{dir}/plan.toml:3: key 'steps[0].params.conflict'",
                        "must be a string, integer or boolean"}));
  c.push_back(PlanCase("plan_settings_on_wrong_step",
                       std::string(kPlan) + "[steps.settings]\na = 1\n",
                       {"{dir}/plan.toml:3: key 'steps[0].settings'"}));
  c.push_back(PlanCase("plan_templated_param_bad_for_host",
                       merge + "params = { conflict = \"{{source_home}}\" }\n",
                       {"{dir}/plan.toml:3: key 'steps[0].params.conflict': for host 'h1'",
                        "one of: source, target, fail"}));
  c.push_back(PlanCase("plan_unknown_variable",
                       "[migration]\nsource_home = \"{{nope}}\"\n" + std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.source_home'",
                        "unknown variable 'nope'"}));
  c.push_back(PlanCase("plan_unclosed_template",
                       "[migration]\nsource_home = \"{{source_home\"\n" + std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.source_home'", "closing"}));
  c.push_back(PlanCase("plan_relative_home",
                       "[migration]\nsource_home = \"opt/mi\"\n" + std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.source_home'", "absolute path"}));
  c.push_back(PlanCase("plan_dotdot_home",
                       "[migration]\ntarget_home = \"/opt/wso2mi-4.2.0/../wso2mi-4.0.0\"\n" +
                           std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.target_home'", "holds a '..' component"}));
  c.push_back(PlanCase("plan_same_homes",
                       "[migration]\ntarget_home = \"{{source_home}}\"\n" + std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.target_home'", "the same"}));
  c.push_back(PlanCase("plan_bad_path",
                       "[migration]\npath = \"4.2.0->4.0.0\"\n" + std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.path'", "unsupported"}));
  c.push_back(PlanCase("plan_negative_timeout",
                       "[migration]\ntimeout = \"-5m\"\n" + std::string(kPlan),
                       {"{dir}/plan.toml:2: key 'migration.timeout'"}));
  c.push_back(PlanCase("plan_batch_zero_percent",
                       std::string(kPlan) + "[[stages]]\nname = \"dev\"\nbatch = \"0%\"\n",
                       {"{dir}/plan.toml:5: key 'stages[0].batch'"}));
  c.push_back(PlanCase("plan_unknown_environment",
                       std::string(kPlan) + "[[stages]]\nname = \"x\"\nenvironments = [\"qa\"]\n",
                       {"{dir}/plan.toml:5: key 'stages[0].environments'"}));
  c.push_back(PlanCase("plan_empty", "", {"{dir}/plan.toml: key 'steps'", "no steps"}));
  c.push_back({"plan_missing", Via::kRun, [](Env& e) { unlink((e.dir + "/plan.toml").c_str()); },
               1, {"{dir}/plan.toml"}});
  c.push_back({"plan_is_a_directory", Via::kRun,
               [](Env& e) {
                 unlink((e.dir + "/plan.toml").c_str());
                 mkdir((e.dir + "/plan.toml").c_str(), 0755);
               },
               1, {"{dir}/plan.toml: not a regular file"}});
  c.push_back({"plan_is_a_fifo", Via::kRun,
               [](Env& e) {
                 unlink((e.dir + "/plan.toml").c_str());
                 MakeFifo(e.dir + "/plan.toml");
               },
               1, {"{dir}/plan.toml: not a regular file"}});
  c.push_back({"plan_links_to_dev_zero", Via::kRun,
               [](Env& e) { Symlink("/dev/zero", e.dir + "/plan.toml"); }, 1,
               {"{dir}/plan.toml: not a regular file"}});

  // ---- inventories (mimic run --check)
  c.push_back(InventoryCase("inventory_syntax_error", "[hosts.h1\n", {"{dir}/inventory.toml:1:"}));
  c.push_back(InventoryCase("inventory_duplicate_host",
                            std::string(kInventory) + "[hosts.h1]\naddress = \"127.0.0.1:2\"\n",
                            {"{dir}/inventory.toml:10:"}));
  c.push_back(InventoryCase(
      "inventory_host_name_with_newline",
      std::string(kInventory) +
          "[hosts.\"h2\\nmimic: h1 OK\"]\naddress = \"127.0.0.1:2\"\nenvironment = \"dev\"\n",
      {"{dir}/inventory.toml:10:"}, "mimic: h1 OK"));
  c.push_back(InventoryCase(
      "inventory_host_name_invalid_utf8",
      std::string(kInventory) + "[hosts.\"h\xc3\x28\"]\naddress = \"127.0.0.1:2\"\n",
      {"{dir}/inventory.toml:10:"}));
  c.push_back(InventoryCase("inventory_address_without_port",
                            absl::StrReplaceAll(kInventory, {{"127.0.0.1:1", "127.0.0.1"}}),
                            {"{dir}/inventory.toml:8: key 'hosts.h1.address'"}));
  c.push_back(InventoryCase("inventory_port_out_of_range",
                            absl::StrReplaceAll(kInventory, {{"127.0.0.1:1", "127.0.0.1:70000"}}),
                            {"{dir}/inventory.toml:8: key 'hosts.h1.address'"}));
  c.push_back(InventoryCase("inventory_plaintext_off_loopback",
                            absl::StrReplaceAll(kInventory, {{"127.0.0.1:1", "10.1.2.3:7443"}}),
                            {"{dir}/inventory.toml:", "plaintext"}));
  c.push_back(InventoryCase("inventory_unknown_key", std::string(kInventory) + "adress = \"x\"\n",
                            {"{dir}/inventory.toml:10: key 'hosts.h1.adress'"}));
  c.push_back(InventoryCase(
      "inventory_group_cycle",
      std::string(kInventory) + "[groups.a]\nchildren = [\"b\"]\n[groups.b]\nchildren = [\"a\"]\n",
      {"{dir}/inventory.toml:", "groups."}));
  c.push_back(InventoryCase("inventory_undefined_group",
                            std::string(kInventory) + "groups = [\"nope\"]\n",
                            {"{dir}/inventory.toml:10: key 'hosts.h1.groups[0]': unknown group 'nope'"}));
  c.push_back(InventoryCase("inventory_var_array",
                            std::string(kInventory) + "vars = { x = [1] }\n",
                            {"{dir}/inventory.toml:10: key 'hosts.h1.vars.x'"}));
  c.push_back(InventoryCase("inventory_concurrency_zero",
                            "[controller]\nconcurrency = 0\n" +
                                std::string(kInventory).substr(std::string("[controller]\n").size()),
                            {"{dir}/inventory.toml:2: key 'controller.concurrency'"}));
  c.push_back(InventoryCase("inventory_nul_byte", std::string(kInventory) + std::string("x = \"\0\"\n", 7),
                            {"{dir}/inventory.toml:10:"}));
  c.push_back(InventoryCase(
      "inventory_deeply_nested",
      std::string(kInventory) + "[vars2]\nx = " + Repeat("[", 50000) + Repeat("]", 50000) + "\n",
      {"{dir}/inventory.toml:"}));
  c.push_back({"inventory_is_a_fifo", Via::kRun,
               [](Env& e) {
                 unlink((e.dir + "/inventory.toml").c_str());
                 MakeFifo(e.dir + "/inventory.toml");
               },
               1, {"{dir}/inventory.toml: not a regular file"}});

  // ---- agent configuration (mimic-agent --config): exit 1, FILE:LINE: key 'K'
  c.push_back(AgentCase("agent_syntax_error", "listen = \n", {"{dir}/agent.toml:1:"}));
  c.push_back(AgentCase("agent_unknown_key", std::string(kAgentConfig) + "alow_exec = true\n",
                        {"{dir}/agent.toml:6: key 'tls.alow_exec'"}));
  c.push_back(AgentCase("agent_duplicate_key",
                        "allow_exec = false\nallow_exec = true\n" + std::string(kAgentConfig),
                        {"{dir}/agent.toml:2:"}));
  c.push_back(AgentCase("agent_relative_root",
                        absl::StrReplaceAll(kAgentConfig, {{"[\"/opt/wso2\"]", "[\"opt\"]"}}),
                        {"{dir}/agent.toml:3: key 'allowed_roots'"}));
  c.push_back(AgentCase("agent_plaintext_off_loopback",
                        absl::StrReplaceAll(kAgentConfig, {{"127.0.0.1:0", "0.0.0.0:7443"}}),
                        {"{dir}/agent.toml:", "plaintext"}));
  c.push_back(AgentCase("agent_threads_wrong_type",
                        "executor_threads = \"many\"\n" + std::string(kAgentConfig),
                        {"{dir}/agent.toml:1: key 'executor_threads'"}));
  c.push_back({"agent_config_is_a_fifo", Via::kAgent,
               [](Env& e) { MakeFifo(e.dir + "/agent.toml"); }, 1,
               {"{dir}/agent.toml: not a regular file"}});

  // ---- source and target MI homes (mimic-agent local): exit 2, the step names the path
  c.push_back(HomeCase(
      "home_toml_symlink_out", {"merge_config"},
      [](Env& e) { Symlink("/etc/passwd", e.source + kToml); }, {"conf/deployment.toml"}));
  c.push_back(HomeCase(
      "home_capp_symlink_out", {"copy_carbonapps"},
      [](Env& e) { Symlink("/etc/passwd", e.source + kCapps + "evil.car"); }, {"evil.car"}));
  c.push_back(HomeCase("home_capps_dir_symlink_out", {"copy_carbonapps"},
                       [](Env& e) {
                         std::filesystem::remove_all(e.source + kCapps);
                         Symlink(e.dir, e.source + std::string(kCapps).substr(
                                                      0, std::string(kCapps).size() - 1));
                       },
                       {"carbonapps"}));
  // FIFOs and devices in a home are refused (preflight names the first), nothing written.
  c.push_back(HomeCase("home_fifo_capp", {"copy_carbonapps"},
                       [](Env& e) { MakeFifo(e.source + kCapps + "evil.car"); },
                       {"evil.car", "a FIFO"}));
  c.push_back(HomeCase("home_fifo_keystore", {"copy_keystores"},
                       [](Env& e) { MakeFifo(e.source + "/repository/resources/security/x.jks"); },
                       {"x.jks", "a FIFO"}));
  c.push_back(HomeCase("home_device_in_dropins", {"copy_custom_components"},
                       [](Env& e) {
                         ASSERT_EQ(mknod((e.source + "/dropins/zero.jar").c_str(), S_IFCHR | 0644,
                                         makedev(1, 5)),
                                   0);
                       },
                       {"zero.jar", "a device"}));
  c.push_back(HomeCase("home_fifo_deployment_artifact", {"copy_deployment"},
                       [](Env& e) {
                         MakeFifo(e.source +
                                  "/repository/deployment/server/synapse-configs/default/api/x.xml");
                       },
                       {"x.xml", "a FIFO"}));
  c.push_back(HomeCase("home_fifo_in_target_conf", {"merge_config"},
                       [](Env& e) { MakeFifo(e.target + "/conf/extra.toml"); },
                       {"conf/extra.toml", "a FIFO"}));
  // Hard links: a file of a home that has another name (perhaps outside the allowed roots:
  // here a shadow-like file beside the homes) is neither read nor replaced.
  c.push_back(HomeCase("home_capp_hardlinked_outside", {"copy_carbonapps"},
                       [](Env& e) {
                         HardLinkOutside(e, "shadow", e.source + kCapps + "shadow.car");
                       },
                       {"shadow.car", "2 names (hard links)"}));
  c.push_back(HomeCase("home_toml_hardlinked_outside", {"merge_config"},
                       [](Env& e) { HardLinkOutside(e, "shadow", e.source + kToml); },
                       {"conf/deployment.toml", "2 names (hard links)"}));
  c.push_back(HomeCase(
      "home_keystore_hardlinked_outside", {"copy_keystores"},
      [](Env& e) {
        HardLinkOutside(e, "shadow", e.source + "/repository/resources/security/stolen.jks");
      },
      {"stolen.jks", "2 names (hard links)"}));
  // A target file a write would replace, linked to a file outside: the write would split the
  // link silently (mimic replaces files by rename, so the other name would keep its bytes).
  c.push_back(HomeCase("home_target_toml_hardlinked_outside", {"merge_config"},
                       [](Env& e) { HardLinkOutside(e, "managed.toml", e.target + kToml); },
                       {"conf/deployment.toml", "2 names (hard links)"}));
  c.push_back(HomeCase("home_target_capp_hardlinked_outside", {"copy_carbonapps"},
                       [](Env& e) {
                         const std::string capps = e.source + kCapps;
                         std::string name;
                         for (const auto& f : std::filesystem::directory_iterator(capps)) {
                           if (f.path().extension() == ".car") name = f.path().filename();
                         }
                         ASSERT_FALSE(name.empty());
                         HardLinkOutside(e, "old.car", e.target + kCapps + name);
                       },
                       {"carbonapps/", "2 names (hard links)"}));
  c.push_back(HomeCase(
      "home_toml_invalid_utf8", {"merge_config"},
      [](Env& e) {
        Write(e.source + kToml, ReadText(e.source + kToml) + "\n[x]\ny = \"\xff\"\n");
      },
      {"conf/deployment.toml:"}));
  c.push_back(HomeCase(
      "home_toml_duplicate_key", {"merge_config"},
      [](Env& e) {
        Write(e.source + kToml, ReadText(e.source + kToml) + "\n[x]\ny = 1\ny = 2\n");
      },
      {"conf/deployment.toml:"}));
  c.push_back(HomeCase(
      "home_toml_deeply_nested", {"merge_config"},
      [](Env& e) {
        Write(e.source + kToml, ReadText(e.source + kToml) + "\n[x]\ny = " +
                                    Repeat("[", 100000) + Repeat("]", 100000) + "\n");
      },
      {"conf/deployment.toml:"}));
  c.push_back(HomeCase(
      "home_toml_huge", {"merge_config"},
      [](Env& e) {
        Write(e.source + kToml,
              ReadText(e.source + kToml) + "\n# " + std::string(common::kMaxConfigFileBytes + (1 << 20), 'x') + "\n");
      },
      {"conf/deployment.toml", "at most 67108864 bytes"}));
  // A hostile CApp is refused where a step opens it (the dry run reads the planned copy).
  c.push_back(HomeCase(
      "home_capp_zip_slip", {"copy_carbonapps", "migrate_datamapper"},
      [](Env& e) {
        e.check = true;
        Write(e.source + kCapps + "slip.car", Zip({{"../../../../tmp/evil.xml", "x"}}));
      },
      {"slip.car", "zip slip"}));
  c.push_back(HomeCase(
      "home_capp_not_a_zip", {"copy_carbonapps", "migrate_datamapper"},
      [](Env& e) {
        e.check = true;
        Write(e.source + kCapps + "junk.car", "not a zip at all");
      },
      {"junk.car", "not a valid zip archive"}));
  c.push_back(HomeCase(
      "home_target_toml_symlink_to_source", {"merge_config"},
      [](Env& e) { Symlink(e.source + kToml, e.target + kToml); }, {"conf/deployment.toml"}));
  c.push_back(HomeCase("home_source_dotdot", {"copy_carbonapps"},
                       [](Env& e) {
                         e.local_args = "--source " + ShellQuote(e.source + "/../src");
                       },
                       {"'..'"}, 1));
  return c;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class HostileInputTest : public ::testing::TestWithParam<Case> {};

TEST_P(HostileInputTest, RefusedClearlyAndNothingWritten) {
  const Case& k = GetParam();
  Env e;
  e.dir = MakeTempDir("hostile-" + k.name);
  std::string command;
  switch (k.via) {
    case Via::kRun:
      Write(e.dir + "/inventory.toml", kInventory);
      Write(e.dir + "/plan.toml", kPlan);
      break;
    case Via::kAgent:
      break;
    case Via::kLocal: {
      const Homes& p = Pristine();
      e.source = e.dir + "/src";
      e.target = e.dir + "/dst";
      ASSERT_EQ(RunCommand("cp -a " + ShellQuote(p.source) + " " + ShellQuote(e.source) +
                           " && cp -a " + ShellQuote(p.target) + " " + ShellQuote(e.target))
                    .exit_code,
                0);
      break;
    }
  }
  k.setup(e);
  if (HasFatalFailure()) return;
  switch (k.via) {
    case Via::kRun:
      command = absl::StrCat(ShellQuote(MimicBinary()),
                             " run --check --inventory ", ShellQuote(e.dir + "/inventory.toml"),
                             " --plan ", ShellQuote(e.dir + "/plan.toml"));
      break;
    case Via::kAgent:
      command = absl::StrCat(ShellQuote(AgentBinary()), " --config ",
                             ShellQuote(e.dir + "/agent.toml"));
      break;
    case Via::kLocal:
      command = absl::StrCat(
          ShellQuote(AgentBinary()), " local ",
          e.local_args.empty() ? "--source " + ShellQuote(e.source) : e.local_args, " --target ",
          ShellQuote(e.target), " --state-dir ", ShellQuote(e.dir + "/state"), " --plan ",
          ShellQuote(e.dir + "/plan.toml"), e.check ? " --check" : "");
      break;
  }
  // The state dir of a local run journals the refused run; everything else must not change.
  const auto before = Snapshot(e.dir);
  // Bounded: a FIFO that blocked a read would otherwise hang the suite.
  CommandResult r = RunCommand("cd " + ShellQuote(e.dir) + " && timeout -s KILL 120 " + command +
                               " </dev/null");
  auto after = Snapshot(e.dir);
  std::erase_if(after, [](const auto& kv) { return kv.first.starts_with("state"); });
  EXPECT_EQ(r.exit_code, k.exit_code) << r.output;
  for (std::string want : k.expect) {
    want = absl::StrReplaceAll(want, {{"{dir}", e.dir}});
    EXPECT_THAT(r.output, HasSubstr(want)) << k.name;
  }
  if (!k.forged.empty()) {
    EXPECT_THAT(r.output, ::testing::Not(HasSubstr("\n" + k.forged))) << r.output;
    EXPECT_FALSE(r.output.starts_with(k.forged)) << r.output;
  }
  auto before_no_state = before;
  std::erase_if(before_no_state, [](const auto& kv) { return kv.first.starts_with("state"); });
  EXPECT_EQ(after, before_no_state) << k.name << ": something was written";
  EXPECT_LT(r.output.size(), 64u * 1024) << "an error should be short";
}

INSTANTIATE_TEST_SUITE_P(Table, HostileInputTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(HostileInputTest, TableHasAtLeastFiftyCases) { EXPECT_GE(Cases().size(), 50u); }

}  // namespace
}  // namespace mimic::testing
