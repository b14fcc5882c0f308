#include "common/config/plan.h"

#include <stdlib.h>
#include <toml++/toml.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::vector<std::string> kKnownSteps = {
    "preflight", "backup_databases", "merge_config", "copy_carbonapps", "exec", "verify"};

std::string MakeTempDir() {
  std::string templ = testing::TempDir() + "/plan_test.XXXXXX";
  EXPECT_NE(mkdtemp(templ.data()), nullptr);
  return templ;
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

int LineOf(const std::string& text, const std::string& needle) {
  size_t pos = text.find(needle);
  EXPECT_NE(pos, std::string::npos) << needle;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

const char kGood[] = R"(# a full plan
[migration]
path = "4.0.0->4.2.0"
source_home = "{{source_home}}"
target_home = "{{ target_home }}/current"
timeout = "1h30m"

[[steps]]
name = "preflight"
params = { min_free_mb = 3, require_java = true, java = "/opt/{{region}}/bin/java" }

[[steps]]
name = "merge_config"
params = { conflict = "source" }
[steps.settings]
keep = ["a", "b"]
[steps.settings.rename]
old = "new"

[[steps]]
name = "verify"

[[stages]]
name = "dev"
environments = ["dev"]
batch = 1
approval = false

[[stages]]
name = "prod"
environments = ["prod"]
groups = ["emea"]
batch = [1, "10%", "50%"]
concurrency = 10
max_fail_percentage = 20
unreachable_is_failure = false
pause = "10m"
approval = true

[rollout]
max_failures = 3
)";

TEST(PlanTest, LoadsEveryFieldOfAGoodPlan) {
  std::string dir = MakeTempDir();
  std::string path = WriteFile(dir, "plan.toml", kGood);
  absl::StatusOr<Plan> plan = LoadPlan(path, kKnownSteps);
  ASSERT_TRUE(plan.ok()) << plan.status();

  EXPECT_EQ(plan->path, path);
  EXPECT_EQ(plan->sha256, Sha256Hex(kGood));
  EXPECT_EQ(plan->sha256.size(), 64u);
  EXPECT_EQ(plan->sha256.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(plan->migration_path, "4.0.0->4.2.0");
  EXPECT_EQ(plan->source_home, "{{source_home}}");
  EXPECT_EQ(plan->target_home, "{{ target_home }}/current");
  EXPECT_EQ(plan->timeout_seconds, 5400);
  EXPECT_EQ(plan->rollout_max_failures, 3);

  ASSERT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(plan->steps[0].name, "preflight");
  EXPECT_EQ(plan->steps[0].params.at("min_free_mb"), "3");
  EXPECT_EQ(plan->steps[0].params.at("require_java"), "true");
  EXPECT_EQ(plan->steps[0].params.at("java"), "/opt/{{region}}/bin/java");
  EXPECT_EQ(plan->steps[0].params_toml, "");
  EXPECT_EQ(plan->steps[0].line, LineOf(kGood, "[[steps]]"));
  const StepConfig& merge = plan->steps[1];
  EXPECT_EQ(merge.name, "merge_config");
  EXPECT_EQ(merge.line, LineOf(kGood, "[[steps]]\nname = \"merge_config\""));
  EXPECT_EQ(merge.params.at("conflict"), "source");
  // The settings round-trip as TOML text.
  toml::table settings = toml::parse(merge.params_toml);
  EXPECT_EQ(settings.at_path("keep[1]").value_or(std::string()), "b");
  EXPECT_EQ(settings.at_path("rename.old").value_or(std::string()), "new");
  EXPECT_EQ(plan->steps[2].name, "verify");

  ASSERT_EQ(plan->stages.size(), 2u);
  const Stage& dev = plan->stages[0];
  EXPECT_EQ(dev.name, "dev");
  EXPECT_THAT(dev.environments, ElementsAre("dev"));
  EXPECT_TRUE(dev.groups.empty());
  EXPECT_THAT(dev.batches, ElementsAre(BatchSpec{false, 1}));
  EXPECT_EQ(dev.concurrency, 0);
  EXPECT_EQ(dev.max_fail_percentage, -1);
  EXPECT_EQ(dev.max_failures, 0);  // default: stop at the first failure
  EXPECT_TRUE(dev.unreachable_is_failure);
  EXPECT_EQ(dev.pause_seconds, 0);
  EXPECT_FALSE(dev.approval);
  EXPECT_EQ(dev.line, LineOf(kGood, "[[stages]]"));

  const Stage& prod = plan->stages[1];
  EXPECT_THAT(prod.environments, ElementsAre("prod"));
  EXPECT_THAT(prod.groups, ElementsAre("emea"));
  EXPECT_THAT(prod.batches,
              ElementsAre(BatchSpec{false, 1}, BatchSpec{true, 10}, BatchSpec{true, 50}));
  EXPECT_EQ(prod.concurrency, 10);
  EXPECT_EQ(prod.max_fail_percentage, 20);
  EXPECT_EQ(prod.max_failures, -1);  // a percentage given: no count limit unless set
  EXPECT_FALSE(prod.unreachable_is_failure);
  EXPECT_EQ(prod.pause_seconds, 600);
  EXPECT_TRUE(prod.approval);

  EXPECT_EQ(plan->LineOf("migration.target_home"), LineOf(kGood, "target_home ="));
  EXPECT_EQ(plan->LineOf("stages[1].groups"), LineOf(kGood, "groups = [\"emea\"]"));
}

TEST(PlanTest, DefaultsWithoutMigrationAndStages) {
  std::string dir = MakeTempDir();
  absl::StatusOr<Plan> plan =
      LoadPlan(WriteFile(dir, "plan.toml", "[[steps]]\nname = \"preflight\"\n"), kKnownSteps);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->migration_path, "auto");
  EXPECT_EQ(plan->source_home, "{{source_home}}");
  EXPECT_EQ(plan->target_home, "{{target_home}}");
  EXPECT_EQ(plan->timeout_seconds, 7200);
  EXPECT_EQ(plan->rollout_max_failures, -1);
  ASSERT_EQ(plan->stages.size(), 1u);
  EXPECT_EQ(plan->stages[0].name, "all");
  EXPECT_TRUE(plan->stages[0].environments.empty());
  EXPECT_TRUE(plan->stages[0].groups.empty());
  EXPECT_THAT(plan->stages[0].batches, ElementsAre(BatchSpec{true, 100}));
  EXPECT_EQ(plan->stages[0].max_failures, 0);
}

TEST(PlanTest, ShaChangesWithTheBytes) {
  std::string dir = MakeTempDir();
  absl::StatusOr<Plan> a =
      LoadPlan(WriteFile(dir, "a.toml", "[[steps]]\nname = \"preflight\"\n"), kKnownSteps);
  absl::StatusOr<Plan> b =
      LoadPlan(WriteFile(dir, "b.toml", "[[steps]]\nname = \"preflight\" \n"), kKnownSteps);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->sha256, b->sha256);
}

// Expects LoadPlan of `text` to fail with "DIR/plan.toml:LINE: key 'KEY':" (LINE: where `at`
// is in `text`) and `detail` in the message.
void ExpectError(const std::string& text, const std::string& at, const std::string& key,
                 const std::string& detail) {
  std::string path = WriteFile(MakeTempDir(), "plan.toml", text);
  absl::StatusOr<Plan> plan = LoadPlan(path, kKnownSteps);
  ASSERT_FALSE(plan.ok()) << "expected an error for " << key;
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()),
              StartsWith(absl::StrCat(path, ":", LineOf(text, at), ": key '", key, "':")));
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr(detail));
}

const char kStep[] = "[[steps]]\nname = \"preflight\"\n";

TEST(PlanTest, UnknownStepListsKnownOnes) {
  ExpectError(std::string(kStep) + "[[steps]]\nname = \"merge_confg\"\n", "merge_confg",
              "steps[1].name",
              "unknown step 'merge_confg' (known steps: preflight, backup_databases, "
              "merge_config, copy_carbonapps, exec, verify)");
}

TEST(PlanTest, UnknownKeysAreErrors) {
  ExpectError(std::string(kStep) + "param = { a = 1 }\n", "param", "steps[0].param", "unknown key");
  ExpectError(std::string(kStep) + "[[stages]]\nname = \"dev\"\nenvironment = [\"dev\"]\n",
              "environment =", "stages[0].environment", "unknown key");
  ExpectError("[migration]\npaht = \"auto\"\n" + std::string(kStep), "paht", "migration.paht",
              "unknown key");
  ExpectError(std::string(kStep) + "[rollouts]\nmax_failures = 1\n", "[rollouts]", "rollouts",
              "unknown key");
}

TEST(PlanTest, WrongTypes) {
  ExpectError(std::string(kStep) + "[[stages]]\nname = \"dev\"\napproval = \"yes\"\n", "approval",
              "stages[0].approval", "must be a boolean");
  ExpectError(std::string(kStep) + "[[stages]]\nname = \"dev\"\nenvironments = \"dev\"\n",
              "environments", "stages[0].environments", "must be an array of strings");
  ExpectError(std::string(kStep) + "params = { list = [1] }\n", "params", "steps[0].params.list",
              "must be a string, integer or boolean");
  ExpectError("[[steps]]\nname = 5\n", "name = 5", "steps[0].name", "must be a string");
}

TEST(PlanTest, BadValues) {
  ExpectError("[migration]\npath = \"4.2.0->4.0.0\"\n" + std::string(kStep),
              "path =", "migration.path",
              "allowed: auto, 1.2.0->4.0.0, 4.0.0->4.2.0, 1.2.0->4.2.0");
  ExpectError("[migration]\ntimeout = \"2 hours\"\n" + std::string(kStep), "timeout",
              "migration.timeout", "not a duration");
  const std::string stage = std::string(kStep) + "[[stages]]\nname = \"dev\"\n";
  ExpectError(stage + "batch = \"150%\"\n", "batch", "stages[0].batch", "1% to 100%");
  ExpectError(stage + "batch = 0\n", "batch", "stages[0].batch", "at least 1");
  ExpectError(stage + "batch = [1, \"ten%\"]\n", "batch", "stages[0].batch[1]", "'ten%'");
  ExpectError(stage + "batch = []\n", "batch", "stages[0].batch", "empty");
  ExpectError(stage + "max_fail_percentage = 101\n", "max_fail", "stages[0].max_fail_percentage",
              "between 0 and 100");
  ExpectError(stage + "max_failures = -2\n", "max_failures", "stages[0].max_failures", "-1");
  ExpectError(stage + "pause = \"-5m\"\n", "pause", "stages[0].pause", "not a duration");
  ExpectError(stage + "[[stages]]\nname = \"dev\" # again\n", "# again", "stages[1].name",
              "duplicate stage name 'dev'");
}

TEST(PlanTest, StepsAndStagesMissingOrMalformed) {
  std::string path = WriteFile(MakeTempDir(), "plan.toml", "[migration]\npath = \"auto\"\n");
  absl::StatusOr<Plan> plan = LoadPlan(path, kKnownSteps);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), StartsWith(path + ": key 'steps':"));
  ExpectError("steps = [\"preflight\"]\n", "steps", "steps", "array of tables");
  ExpectError(std::string(kStep) + "[[stages]]\nbatch = 1\n", "[[stages]]", "stages[0].name",
              "is required");
}

TEST(PlanTest, MalformedTomlNamesFileLineAndColumn) {
  std::string path =
      WriteFile(MakeTempDir(), "plan.toml", "[[steps]]\nname = \"preflight\"\nparams = {\n");
  absl::StatusOr<Plan> plan = LoadPlan(path, kKnownSteps);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()),
              testing::ContainsRegex("plan\\.toml:[34]:[0-9]+: "));
}

TEST(PlanTest, MissingFileFails) {
  EXPECT_FALSE(LoadPlan(MakeTempDir() + "/none.toml", kKnownSteps).ok());
}

// Hosts named h0..h{n-1}, for batching.
std::vector<Host> MakeHosts(int n) {
  std::vector<Host> hosts(n);
  for (int i = 0; i < n; ++i) hosts[i].name = absl::StrCat("h", i);
  return hosts;
}

std::vector<size_t> BatchSizes(std::vector<BatchSpec> specs, int n) {
  std::vector<Host> hosts = MakeHosts(n);
  std::vector<const Host*> ptrs;
  for (const Host& h : hosts) ptrs.push_back(&h);
  Stage stage;
  stage.name = "s";
  stage.batches = std::move(specs);
  absl::StatusOr<std::vector<std::vector<const Host*>>> batches = MakeBatches(stage, ptrs);
  EXPECT_TRUE(batches.ok()) << batches.status();
  std::vector<size_t> sizes;
  size_t next = 0;
  for (const auto& batch : *batches) {
    sizes.push_back(batch.size());
    for (const Host* h : batch) EXPECT_EQ(h, ptrs[next++]);  // order kept, each host once
  }
  EXPECT_EQ(next, ptrs.size());
  return sizes;
}

TEST(PlanTest, MakeBatches) {
  const BatchSpec one{false, 1}, ten{true, 10}, half{true, 50};
  // 1, ceil(2.1)=3, ceil(10.5)=11, then 50% again but only 6 are left.
  EXPECT_THAT(BatchSizes({one, ten, half}, 21), ElementsAre(1, 3, 11, 6));
  EXPECT_THAT(BatchSizes({one, ten, half}, 100), ElementsAre(1, 10, 50, 39));
  EXPECT_THAT(BatchSizes({one, ten, half}, 1), ElementsAre(1));
  EXPECT_THAT(BatchSizes({one, ten, half}, 3), ElementsAre(1, 1, 1));
  EXPECT_THAT(BatchSizes({{false, 2}}, 5), ElementsAre(2, 2, 1));
  EXPECT_THAT(BatchSizes({{true, 25}}, 10), ElementsAre(3, 3, 3, 1));
  EXPECT_THAT(BatchSizes({{true, 1}}, 3), ElementsAre(1, 1, 1));
  EXPECT_THAT(BatchSizes({{true, 100}}, 7), ElementsAre(7));
  EXPECT_THAT(BatchSizes({{false, 5}, half}, 4), ElementsAre(4));
  EXPECT_TRUE(BatchSizes({one}, 0).empty());

  Stage bad;
  bad.batches = {};
  std::vector<Host> hosts = MakeHosts(2);
  EXPECT_FALSE(MakeBatches(bad, {&hosts[0], &hosts[1]}).ok());
  bad.batches = {{true, 0}};
  EXPECT_FALSE(MakeBatches(bad, {&hosts[0]}).ok());
}

TEST(PlanTest, ExpandVars) {
  std::map<std::string, std::string> vars = {{"a", "1"}, {"home", "/opt/mi"}, {"x.y", "z"}};
  EXPECT_EQ(*ExpandVars("{{home}}/conf", vars), "/opt/mi/conf");
  EXPECT_EQ(*ExpandVars("{{ a }}-{{a}}-{{x.y}}", vars), "1-1-z");
  EXPECT_EQ(*ExpandVars("plain } { text", vars), "plain } { text");
  EXPECT_EQ(*ExpandVars("", vars), "");

  absl::StatusOr<std::string> bad = ExpandVars("{{home}}/{{target_home}}", vars);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unknown variable 'target_home'"));
  EXPECT_THAT(std::string(ExpandVars("{{home", vars).status().message()), HasSubstr("closing"));
  EXPECT_FALSE(ExpandVars("{{}}", vars).ok());
}

const char kInventory[] = R"([controller]
plaintext = true
[vars]
source_home = "/opt/wso2mi-4.0.0"
target_home = "/opt/wso2mi-4.2.0"
region = "global"
[groups.emea]
[hosts.d1]
address = "127.0.0.1:7001"
environment = "dev"
[hosts.p1]
address = "127.0.0.1:7002"
environment = "prod"
groups = ["emea"]
[hosts.p2]
address = "127.0.0.1:7003"
environment = "prod"
)";

struct Loaded {
  Inventory inventory;
  absl::StatusOr<Plan> plan;
};

// Loads kInventory (with `inventory_extra` appended) and `plan_text`, both from one folder.
Loaded Load(const std::string& plan_text, const std::string& inventory_extra = "") {
  std::string dir = MakeTempDir();
  absl::StatusOr<Inventory> inv =
      LoadInventory(WriteFile(dir, "inventory.toml", kInventory + inventory_extra));
  EXPECT_TRUE(inv.ok()) << inv.status();
  return {*std::move(inv), LoadPlan(WriteFile(dir, "plan.toml", plan_text), kKnownSteps)};
}

TEST(PlanTest, SelectStageHostsIntersectsEnvironmentsAndGroups) {
  Loaded l = Load(std::string(kStep) +
                  "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\n"
                  "[[stages]]\nname = \"emea\"\nenvironments = [\"prod\"]\ngroups = [\"emea\"]\n"
                  "[[stages]]\nname = \"rest\"\nenvironments = [\"prod\"]\n");
  ASSERT_TRUE(l.plan.ok()) << l.plan.status();
  std::vector<const Host*> all;
  for (const Host& h : l.inventory.hosts) all.push_back(&h);
  auto names = [&](int stage) {
    std::vector<std::string> out;
    for (const Host* h : SelectStageHosts(l.plan->stages[stage], all)) out.push_back(h->name);
    return out;
  };
  EXPECT_THAT(names(0), ElementsAre("d1"));
  EXPECT_THAT(names(1), ElementsAre("p1"));
  EXPECT_THAT(names(2), ElementsAre("p1", "p2"));
  // p1 is in stages "emea" and "rest": refused.
  absl::Status s = ValidatePlanAgainstInventory(*l.plan, l.inventory);
  EXPECT_THAT(std::string(s.message()), HasSubstr("host 'p1' is in stage 'emea'"));
  EXPECT_THAT(
      std::string(s.message()),
      HasSubstr(absl::StrCat(":", l.plan->LineOf("stages[2].name"), ": key 'stages[2].name'")));
  EXPECT_EQ(l.plan->LineOf("stages[2].name"), 11);
}

TEST(PlanTest, ValidatePlanAgainstInventory) {
  Loaded ok = Load(std::string(kStep) +
                   "params = { java = \"/opt/{{region}}/java\" }\n"
                   "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\n"
                   "[[stages]]\nname = \"prod\"\ngroups = [\"emea\"]\n");
  ASSERT_TRUE(ok.plan.ok()) << ok.plan.status();
  EXPECT_TRUE(ValidatePlanAgainstInventory(*ok.plan, ok.inventory).ok());

  auto expect_error = [](const std::string& plan_text, const std::string& at,
                         const std::string& key, const std::string& detail,
                         const std::string& inventory_extra = "") {
    Loaded l = Load(plan_text, inventory_extra);
    ASSERT_TRUE(l.plan.ok()) << l.plan.status();
    absl::Status s = ValidatePlanAgainstInventory(*l.plan, l.inventory);
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        std::string(s.message()),
        StartsWith(absl::StrCat(l.plan->path, ":", LineOf(plan_text, at), ": key '", key, "':")));
    EXPECT_THAT(std::string(s.message()), HasSubstr(detail));
  };
  expect_error(std::string(kStep) + "[[stages]]\nname = \"qa\"\nenvironments = [\"qa\"]\n",
               "environments", "stages[0].environments", "environment 'qa'");
  expect_error(std::string(kStep) + "[[stages]]\nname = \"x\"\ngroups = [\"apac\"]\n", "groups",
               "stages[0].groups", "group 'apac' is not defined");
  // Only d1 lacks the variable: the message names it and where it is in the inventory.
  expect_error("[migration]\ntarget_home = \"{{new_home}}\"\n" + std::string(kStep), "target_home",
               "migration.target_home", "for host 'p1' (", "[hosts.d1.vars]\nnew_home = \"/x\"\n");
  expect_error("[migration]\ntarget_home = \"{{new_home}}\"\n" + std::string(kStep), "target_home",
               "migration.target_home", "inventory.toml:11): unknown variable 'new_home'",
               "[hosts.d1.vars]\nnew_home = \"/x\"\n");
  expect_error("[migration]\ntarget_home = \"{{new_home}}\"\n" + std::string(kStep), "target_home",
               "migration.target_home", "unknown variable 'new_home'");
  expect_error(std::string(kStep) + "params = { java = \"{{nope}}\" }\n", "params",
               "steps[0].params.java", "unknown variable 'nope'");
  expect_error("[migration]\ntarget_home = \"{{source_home}}\"\n" + std::string(kStep),
               "target_home", "migration.target_home", "the same");
  expect_error("[migration]\ntarget_home = \"/opt/x/../wso2mi-4.0.0\"\n" + std::string(kStep),
               "target_home", "migration.target_home", "holds a '..' component");
  expect_error("[migration]\ntarget_home = \"{{target_home}}/./x\"\n" + std::string(kStep),
               "target_home", "migration.target_home", "holds a '.' component");
  expect_error("[migration]\nsource_home = \"relative/{{region}}\"\n" + std::string(kStep),
               "source_home", "migration.source_home", "absolute path");
}

// Every step param is checked by the controller against the schema the agent's steps read
// with (common/config/step_params.h): a plan the agent would refuse never starts a rollout.
TEST(PlanTest, StepParamsAreCheckedBeforeTheRollout) {
  const std::string merge = "[[steps]]\nname = \"merge_config\"\n";
  ExpectError(merge + "params = { conflict = \"whatever\" }\n", "conflict", "steps[0].params.conflict",
              "merge_config: param conflict = \"whatever\": must be one of: source, target, fail");
  ExpectError(merge + "params = { conflcit = \"source\" }\n", "conflcit", "steps[0].params.conflcit",
              "merge_config: no parameter 'conflcit' (its parameters: conflict, keep_target, "
              "keystore_primary_update_level)");
  ExpectError(std::string(kStep) + "params = { note = \"x\" }\n", "note", "steps[0].params.note",
              "its parameters: require_java, min_free_mb, java");
  ExpectError(std::string(kStep) + "params = { require_java = \"yes\" }\n", "require_java",
              "steps[0].params.require_java", "must be true or false");
  ExpectError(std::string(kStep) + "params = { min_free_mb = -1 }\n", "min_free_mb",
              "steps[0].params.min_free_mb", "must be a whole number from 0 to");
  ExpectError("[[steps]]\nname = \"verify\"\nparams = { probe_port = 70000 }\n", "probe_port",
              "steps[0].params.probe_port", "a whole number from 1 to 65535");
  ExpectError("[[steps]]\nname = \"exec\"\nparams = { timeout_seconds = 5 }\n", "params",
              "steps[0].params", "exec needs param command");
  ExpectError("[[steps]]\nname = \"exec\"\n", "[[steps]]", "steps[0].params",
              "exec needs param command");
  ExpectError("[[steps]]\nname = \"exec\"\nparams = { command = \"true\", chdir = \"rel\" }\n",
              "chdir", "steps[0].params.chdir", "must be an absolute path");
  ExpectError("[[steps]]\nname = \"backup_databases\"\nparams = { \"password.DB\" = \"a b\" }\n",
              "password.DB", "steps[0].params.\"password.DB\"",
              "the name of an environment variable");
  ExpectError("[[steps]]\nname = \"backup_databases\"\nparams = { \"command.\" = \"x\" }\n",
              "command.", "steps[0].params.\"command.\"", "no parameter 'command.'");
  ExpectError(std::string(kStep) + "[steps.settings]\na = 1\n", "[steps.settings]",
              "steps[0].settings", "preflight takes no [steps.settings]");
  // Good ones load.
  Loaded ok = Load(merge + "params = { conflict = \"fail\" }\n[steps.settings]\na = 1\n"
                   "[[steps]]\nname = \"backup_databases\"\n"
                   "params = { \"command.DB\" = \"dump {{out}}\", \"password.DB\" = \"DB_PW\", "
                   "timeout_seconds = 60 }\n");
  ASSERT_TRUE(ok.plan.ok()) << ok.plan.status();
}

// A value with {{vars}} is checked per host once expanded, naming the host.
TEST(PlanTest, TemplatedStepParamsAreCheckedPerHost) {
  const std::string plan = "[[steps]]\nname = \"merge_config\"\nparams = { conflict = \"{{how}}\" }\n";
  Loaded l = Load(plan, "[hosts.p2.vars]\nhow = \"whatever\"\n");
  // The name is checked at load even when the value is a template.
  ExpectError("[[steps]]\nname = \"merge_config\"\nparams = { confict = \"{{how}}\" }\n", "confict",
              "steps[0].params.confict", "no parameter 'confict'");
  ASSERT_TRUE(l.plan.ok()) << l.plan.status();
  l.inventory.vars["how"] = "target";
  for (Host& h : l.inventory.hosts) {
    if (h.name != "p2") h.vars["how"] = "target";
  }
  absl::Status s = ValidatePlanAgainstInventory(*l.plan, l.inventory);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              StartsWith(absl::StrCat(l.plan->path, ":3: key 'steps[0].params.conflict': for host "
                                      "'p2' (")));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("param conflict = \"whatever\": must be one of: source, target, fail"));
}

}  // namespace
}  // namespace mimic::common
