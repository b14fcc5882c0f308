#include "controller/cli/cli_args.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// An environment the test controls: nothing from the machine leaks in (no settings file in the
// current folder or $HOME either: HOME points to an empty folder).
class Env {
 public:
  Env() {
    char tmpl[] = "/tmp/cliargs_XXXXXX";
    dir_ = mkdtemp(tmpl);
    vars_["HOME"] = dir_;
  }
  ~Env() { std::filesystem::remove_all(dir_); }
  std::function<const char*(const char*)> Get() {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }
  void Set(const std::string& k, const std::string& v) { vars_[k] = v; }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<std::string, std::string> vars_;
};

absl::StatusOr<ParsedCommandLine> Parse(const std::string& line, Env& env) {
  std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
  return ParseCommandLine(args, env.Get());
}

std::string Error(const std::string& line, Env& env) {
  auto p = Parse(line, env);
  EXPECT_FALSE(p.ok()) << line;
  return p.ok() ? "" : std::string(p.status().message());
}

TEST(CliArgsTest, EveryCommandHasHelpListingItsFlags) {
  Env env;
  for (const CommandSpec& c : Commands()) {
    auto p = Parse(c.name + " --help", env);
    ASSERT_TRUE(p.ok()) << c.name << ": " << p.status();
    EXPECT_TRUE(p->help);
    ASSERT_NE(p->command, nullptr);
    EXPECT_EQ(p->command->name, c.name);
    std::string help = CommandHelp(c);
    EXPECT_THAT(help, StartsWith("usage: mimic " + c.name + " "));
    for (const std::string& f : c.flags) EXPECT_THAT(help, HasSubstr("\n  " + f)) << c.name;
    // `mimic help CMD` is the same.
    auto h = Parse("help " + c.name, env);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(h->help);
    EXPECT_EQ(h->command, p->command);
    // The overall usage names every command.
    EXPECT_THAT(Usage(), HasSubstr("  mimic " + c.name + " "));
  }
}

TEST(CliArgsTest, ACommandAcceptsOnlyItsOwnFlags) {
  Env env;
  EXPECT_THAT(Error("audit --limit x", env),
              HasSubstr("audit: --limit is not a flag of this command (its flags: --host"));
  EXPECT_THAT(Error("inventory import hosts.ini --force", env),
              HasSubstr("--force is not a flag of this command"));
  EXPECT_THAT(Error("status --check", env), HasSubstr("--check is not a flag"));
  EXPECT_THAT(Error("run --plan p.toml --chek", env), HasSubstr("unknown flag --chek"));
  EXPECT_THAT(Error("run --plan", env), HasSubstr("--plan needs a value (FILE)"));
  EXPECT_THAT(Error("run --check=yes --plan p", env), HasSubstr("--check takes no value"));
  EXPECT_THAT(Error("inventory import h.ini --port 0", env), HasSubstr("must be 1..65535"));
  EXPECT_THAT(Error("run --plan p --output yaml", env), HasSubstr("use text or json"));
  EXPECT_THAT(Error("frobnicate", env), HasSubstr("unknown command 'frobnicate' (commands: run"));
  EXPECT_THAT(Error("inventory hosts.ini", env),
              HasSubstr("mimic inventory needs one of: import, list, graph"));
}

TEST(CliArgsTest, ParsesValuesAndSubcommands) {
  Env env;
  auto p = Parse("run --plan p.toml --limit=mi-prod-*:!mi-prod-3 --check --stage prod", env);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->command->name, "run");
  EXPECT_EQ(p->options.plan_path, "p.toml");
  EXPECT_EQ(p->options.limit, "mi-prod-*:!mi-prod-3");
  EXPECT_TRUE(p->options.check);
  EXPECT_EQ(p->options.stage, "prod");
  auto v = Parse("audit verify R1", env);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->command->name, "audit verify");
  EXPECT_EQ(v->options.args, std::vector<std::string>{"R1"});
  auto a = Parse("audit --status failed", env);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->command->name, "audit");
  auto ver = Parse("--version", env);
  ASSERT_TRUE(ver.ok());
  EXPECT_TRUE(ver->version);
}

TEST(CliArgsTest, DiffAndVerbosityWhereTheyMakeSense) {
  Env env;
  auto p = Parse("run --plan p.toml --check --diff -v", env);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->options.diff);
  EXPECT_EQ(p->options.verbosity, 1);
  auto vv = Parse("rollback R1 --check --diff -vv", env);
  ASSERT_TRUE(vv.ok()) << vv.status();
  EXPECT_TRUE(vv->options.diff);
  EXPECT_EQ(vv->options.verbosity, 2);
  auto r = Parse("resume R1 -vv -v --diff", env);  // -v after -vv keeps the higher level
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.verbosity, 2);
  auto plain = Parse("run --plan p.toml", env);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->options.diff);
  EXPECT_EQ(plain->options.verbosity, 0);
  EXPECT_THAT(Error("status -v", env), HasSubstr("-v is not a flag of this command"));
  EXPECT_THAT(Error("audit --diff", env), HasSubstr("--diff is not a flag of this command"));
  EXPECT_THAT(Error("run --plan p -vvv", env), HasSubstr("unknown flag -vvv"));
  for (const CommandSpec& c : Commands()) {
    if (c.name == "run" || c.name == "resume" || c.name == "rollback") {
      EXPECT_THAT(CommandHelp(c), HasSubstr("--diff")) << c.name;
      EXPECT_THAT(CommandHelp(c), HasSubstr("-vv")) << c.name;
    }
  }
  EXPECT_THAT(Usage(), HasSubstr("MIMIC_LOG_LEVEL"));
}

TEST(CliArgsTest, InventoryAndAuditFromEnvironmentAndSettingsFile) {
  Env env;
  // Built-in default.
  auto d = Parse("status", env);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->options.inventory_path, "inventory.toml");
  EXPECT_FALSE(d->options.inventory_set);
  // Settings file via MIMIC_CONFIG: paths resolve against its folder.
  env.Set("MIMIC_CONFIG", env.Write("mimic.toml", "inventory = \"fleet/inv.toml\"\n"
                                                  "audit = \"state/audit.db\"\noutput = \"json\"\n"));
  auto s = Parse("status", env);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->options.inventory_path, env.dir() + "/fleet/inv.toml");
  EXPECT_EQ(s->options.audit_url, env.dir() + "/state/audit.db");
  EXPECT_EQ(s->options.output, "json");
  // The environment beats the file; a flag beats the environment.
  env.Set("MIMIC_INVENTORY", "/srv/inv.toml");
  env.Set("MIMIC_AUDIT", "postgresql://m@db/m");
  auto e = Parse("status", env);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->options.inventory_path, "/srv/inv.toml");
  EXPECT_EQ(e->options.audit_url, "postgresql://m@db/m");
  auto f = Parse("status --inventory mine.toml", env);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->options.inventory_path, "mine.toml");
  // A bad settings file is an error naming file, line and key.
  env.Set("MIMIC_CONFIG", env.Write("bad.toml", "inventory = \"x\"\ninventroy = \"y\"\n"));
  EXPECT_THAT(Error("status", env), HasSubstr("bad.toml:2: key 'inventroy'"));
  env.Set("MIMIC_CONFIG", env.dir() + "/missing.toml");
  EXPECT_THAT(Error("status", env), HasSubstr("MIMIC_CONFIG names"));
  // ~/.mimic.toml is found when nothing else is.
  Env home;
  home.Write(".mimic.toml", "inventory = \"/opt/fleet/inventory.toml\"\n");
  auto h = Parse("facts", home);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->options.inventory_path, "/opt/fleet/inventory.toml");
}

// The real program: `mimic CMD --help` exits 0 for every command; a wrong flag exits 1.
TEST(CliArgsTest, ProgramHelpAndExitCodes) {
  const std::string mimic = std::string(MIMIC_BINARY_DIR) + "/bin/mimic";
  for (const CommandSpec& c : Commands()) {
    common::SubprocessOptions so;
    so.argv = {mimic};
    for (absl::string_view w : absl::StrSplit(c.name, ' ')) so.argv.emplace_back(w);
    so.argv.push_back("--help");
    auto r = common::RunSubprocess(so);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0) << c.name;
    EXPECT_THAT(r->stdout_text, StartsWith("usage: mimic " + c.name)) << c.name;
  }
  common::SubprocessOptions bad;
  bad.argv = {mimic, "audit", "--limit", "x"};
  auto r = common::RunSubprocess(bad);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->stderr_text, HasSubstr("is not a flag of this command"));
}

}  // namespace
}  // namespace mimic::controller
