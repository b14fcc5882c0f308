// End to end: three real mimic-agent processes on 127.0.0.1:0 with mutual TLS, the real
// `mimic` binary, MI 4.0.0 source homes and fresh 4.2.0 targets built from the fixtures.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fcntl.h>
#include <iterator>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "controller/audit/audit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kHosts = {"mi-dev-1", "mi-prod-1", "mi-prod-2"};

// Built once: certificates and pristine source/target homes, copied for each test.
std::string* g_pristine = nullptr;

class FleetTest : public ::testing::Test {
 protected:
  // ControllerKillTest derives from this suite, so this runs once per suite: build once.
  static void SetUpTestSuite() {
    if (g_pristine != nullptr) return;
    g_pristine = new std::string(MakeTempDir("pristine"));
    MakeCerts(*g_pristine + "/certs", kHosts);
    for (const std::string& h : kHosts) {
      MakeMiHome("4.0.0", *g_pristine + "/mi/" + h + "/wso2mi-4.0.0", "source", h);
      MakeMiHome("4.2.0", *g_pristine + "/mi/" + h + "/wso2mi-4.2.0", "target", h);
    }
  }

  void SetUp() override {
    dir_ = MakeTempDir("fleet");
    CommandResult r = RunCommand("cp -a " + ShellQuote(*g_pristine + "/certs") + " " +
                                 ShellQuote(*g_pristine + "/mi") + " " + ShellQuote(dir_));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void TearDown() override { agents_.clear(); }

  std::string Root(const std::string& host) { return dir_ + "/mi/" + host; }
  std::string Source(const std::string& host) { return Root(host) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& host) { return Root(host) + "/wso2mi-4.2.0"; }
  std::string StateDir(const std::string& host) { return dir_ + "/agent-state/" + host; }

  // Starts the three agents; the hosts in `holds` run the testing agent, holding every run
  // before the given step until the test releases it (AgentProcess::WaitReached/Release).
  void StartAgents(const std::map<std::string, int>& holds = {}) {
    for (const std::string& h : kHosts) {
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = StateDir(h);
      o.allowed_roots = {Root(h)};
      if (auto it = holds.find(h); it != holds.end()) {
        o.gate = true;
        o.hold_steps = {it->second};
      }
      agents_.push_back(std::make_unique<AgentProcess>(o));
      ASSERT_TRUE(agents_.back()->Start());
    }
  }

  AgentProcess& Agent(const std::string& host) {
    return *agents_[std::find(kHosts.begin(), kHosts.end(), host) - kHosts.begin()];
  }

  // The audit, read after the controller was killed: `run_id` is registered and unfinished
  // (no finish time, no run_finished event).
  void ExpectUnfinishedInAudit(const std::string& rollout, const std::string& run_id) {
    auto audit = OpenAudit();
    ASSERT_NE(audit, nullptr);
    auto run = audit->GetRun(run_id);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->finished_at_us, 0) << run_id << " " << run->status;
    auto events = audit->Events(rollout);
    ASSERT_TRUE(events.ok()) << events.status();
    for (const auto& e : *events) {
      EXPECT_FALSE(e.run_id() == run_id && e.has_run_finished()) << run_id << " finished";
    }
  }

  // inventory.toml for the running agents. `client` names the controller certificate.
  std::string WriteInventory(const std::string& client = "controller", bool plaintext = false,
                             const std::string& name = "inventory.toml") {
    std::string inv = "[controller]\nstate_dir = \"controller-state\"\n";
    if (plaintext) {
      inv += "plaintext = true\n";
    } else {
      absl::StrAppend(&inv, "ca = \"certs/ca.pem\"\ncert = \"certs/", client,
                      ".pem\"\nkey = \"certs/", client, ".key\"\n");
    }
    for (size_t i = 0; i < kHosts.size(); ++i) {
      absl::StrAppend(&inv, "\n[hosts.", kHosts[i], "]\naddress = \"", agents_[i]->address(),
                      "\"\nenvironment = \"", i == 0 ? "dev" : "prod", "\"\nvars = { source_home = \"",
                      Source(kHosts[i]), "\", target_home = \"", Target(kHosts[i]), "\" }\n");
    }
    std::string path = dir_ + "/" + name;
    WriteText(path, inv);
    return path;
  }

  std::string WritePlan(const std::string& extra_migration = "",
                        const std::string& name = "plan.toml") {
    std::string plan = absl::StrCat(
        "[migration]\npath = \"4.0.0->4.2.0\"\n", extra_migration,
        "\n[[steps]]\nname = \"preflight\"\n"
        "[[steps]]\nname = \"snapshot_target\"\n"
        "[[steps]]\nname = \"copy_secondary_userstores\"\n"
        "[[steps]]\nname = \"copy_carbonapps\"\n"
        "[[steps]]\nname = \"copy_registry\"\n"
        "[[steps]]\nname = \"copy_deployment\"\n"
        "[[steps]]\nname = \"migrate_datamapper\"\n"
        "[[steps]]\nname = \"copy_custom_components\"\n"
        "[[steps]]\nname = \"copy_keystores\"\n"
        "[[steps]]\nname = \"merge_config\"\nparams = { conflict = \"source\" }\n"
        "[[steps]]\nname = \"hl7_transport\"\n"
        "[[skip]]\nstep = \"migrate_userstore_config\"\nreason = \"the default user store\"\n"
        "\n[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nbatch = 1\n"
        "\n[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = 2\nconcurrency = 2\n");
    std::string path = dir_ + "/" + name;
    WriteText(path, plan);
    return path;
  }

  CommandResult Mimic(const std::string& args) { return RunMimic(dir_, args); }

  static std::string RolloutId(const std::string& output) { return RolloutIdFrom(output); }

  pid_t StartMimic(const std::vector<std::string>& args, const std::string& out_path) {
    return mimic::testing::StartMimic(dir_, args, out_path);
  }


  std::unique_ptr<controller::Audit> OpenAudit() {
    auto a = controller::Audit::Open(dir_ + "/controller-state/audit.db");
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  // host -> set of "path action sha256_after" from the rollout's file changes.
  std::map<std::string, std::set<std::string>> ChangeList(controller::Audit& audit,
                                                          const std::string& rollout) {
    std::map<std::string, std::set<std::string>> out;
    auto d = audit.GetRollout(rollout);
    EXPECT_TRUE(d.ok()) << d.status();
    if (!d.ok()) return out;
    for (const auto& run : d->runs) {
      auto fc = audit.FileChanges(run.run_id);
      EXPECT_TRUE(fc.ok());
      for (const auto& c : *fc) {
        out[run.host].insert(absl::StrCat(c.path, " ", c.action, " ", c.sha256_after));
      }
    }
    return out;
  }

  // Every run of the rollout has events 1..N with no gap or duplicate, ending in run_finished.
  void ExpectCompleteEvents(controller::Audit& audit, const std::string& rollout) {
    auto events = audit.Events(rollout);
    ASSERT_TRUE(events.ok()) << events.status();
    std::map<std::string, std::vector<uint64_t>> seqs;
    std::map<std::string, bool> finished;
    for (const auto& e : *events) {
      seqs[e.run_id()].push_back(e.seq());
      if (e.has_run_finished()) finished[e.run_id()] = true;
    }
    EXPECT_EQ(seqs.size(), kHosts.size());
    for (auto& [run, s] : seqs) {
      std::sort(s.begin(), s.end());
      for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i], i + 1) << run;
      EXPECT_TRUE(finished[run]) << run << " has no run_finished event";
    }
  }

  std::map<std::string, std::string> AllTargetsAndStates() {
    std::map<std::string, std::string> all;
    for (const std::string& h : kHosts) {
      for (auto& [k, v] : TreeHash(Target(h))) all[h + "/target/" + k] = v;
      for (auto& [k, v] : TreeHash(StateDir(h))) all[h + "/state/" + k] = v;
    }
    return all;
  }

  std::string dir_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

void ExpectSameFile(const std::string& a, const std::string& b) {
  auto ha = common::Sha256File(a);
  auto hb = common::Sha256File(b);
  ASSERT_TRUE(ha.ok()) << a;
  ASSERT_TRUE(hb.ok()) << b;
  EXPECT_EQ(*ha, *hb) << a << " vs " << b;
}

TEST_F(FleetTest, CheckThenMigrateThenRerunThenRollback) {
  StartAgents();
  std::string inv = WriteInventory();
  std::string plan = WritePlan();
  std::map<std::string, std::map<std::string, std::string>> before;
  for (const std::string& h : kHosts) before[h] = TreeHash(Target(h));
  auto sources_before = TreeHash(Root(kHosts[0]) + "/wso2mi-4.0.0");

  // 2. --check writes nothing and reports the change list.
  auto all_before = AllTargetsAndStates();
  CommandResult check = Mimic("run --inventory inventory.toml --plan plan.toml --check");
  ASSERT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(AllTargetsAndStates(), all_before) << "--check changed a target or a state dir";
  std::string check_id = RolloutId(check.output);
  ASSERT_FALSE(check_id.empty()) << check.output;

  // 1. The real migration.
  CommandResult run = Mimic("run --inventory inventory.toml --plan plan.toml");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::string run_id = RolloutId(run.output);
  EXPECT_THAT(run.output, HasSubstr("HOST"));
  for (const std::string& h : kHosts) EXPECT_THAT(run.output, HasSubstr(h));

  for (const std::string& h : kHosts) {
    const std::string s = Source(h), t = Target(h);
    // CApps, including the Data Mapper sample.
    auto capps = common::ListFilesRecursive(s + "/repository/deployment/server/carbonapps");
    ASSERT_TRUE(capps.ok());
    ASSERT_GE(capps->size(), 2u);
    for (const auto& f : *capps) {
      const std::string from = s + "/repository/deployment/server/carbonapps/" + f;
      const std::string to = t + "/repository/deployment/server/carbonapps/" + f;
      if (absl::StartsWith(f, "1_1_3_synapse-config")) {
        // The Data Mapper sample: re-packed with its stylesheets migrated for MI 4.2.
        ASSERT_TRUE(common::PathExists(to));
        CommandResult u = RunCommand("unzip -p " + ShellQuote(to) + " '*_xsltStyleSheet.xml'");
        EXPECT_THAT(u.output, HasSubstr("exclude-result-prefixes=\"xs\""));
        EXPECT_THAT(u.output, ::testing::Not(HasSubstr("prefixes=\"xs own")));
        continue;
      }
      ExpectSameFile(from, to);
    }
    // The file registry came along.
    ExpectSameFile(s + "/registry/governance/custom/endpoint-config.xml",
                   t + "/registry/governance/custom/endpoint-config.xml");
    // Artifacts: the operator's API, and the operator-modified shipped main.xml.
    const std::string syn = "/repository/deployment/server/synapse-configs/default/";
    ExpectSameFile(s + syn + "api/HelloApi.xml", t + syn + "api/HelloApi.xml");
    ExpectSameFile(s + syn + "sequences/main.xml", t + syn + "sequences/main.xml");
    // Custom components and keystores.
    auto dropins = common::ListFilesRecursive(s + "/dropins");
    ASSERT_TRUE(dropins.ok());
    ASSERT_FALSE(dropins->empty());
    for (const auto& f : *dropins) ExpectSameFile(s + "/dropins/" + f, t + "/dropins/" + f);
    auto libs = common::ListFilesRecursive(s + "/lib");
    ASSERT_TRUE(libs.ok());
    for (const auto& f : *libs) {
      if (f == "commons-lang3-3.9.jar") {
        // The target's plugins hold commons-lang3 in another version: not carried (two
        // versions on the classpath), reported by copy_custom_components.
        EXPECT_FALSE(common::PathExists(t + "/lib/" + f));
        continue;
      }
      ExpectSameFile(s + "/lib/" + f, t + "/lib/" + f);
    }
    auto sec = common::ListFilesRecursive(s + "/repository/resources/security");
    ASSERT_TRUE(sec.ok());
    ASSERT_GE(sec->size(), 3u);
    for (const auto& f : *sec) {
      // client-truststore.jks is merged (the target's CAs plus the source's), not copied:
      // e2e_paths_test checks the merge certificate by certificate.
      if (f == "client-truststore.jks") continue;
      ExpectSameFile(s + "/repository/resources/security/" + f,
                     t + "/repository/resources/security/" + f);
    }
    // Settings carried into the target's deployment.toml, target comments kept.
    std::string merged = ReadText(t + "/conf/deployment.toml");
    EXPECT_THAT(merged, HasSubstr("mi-" + h + ".example.com"));
    EXPECT_THAT(merged, HasSubstr("[[datasource]]"));
    EXPECT_THAT(merged, HasSubstr("## Following are set of example configs"));
  }
  // The source home is never written.
  EXPECT_EQ(TreeHash(Root(kHosts[0]) + "/wso2mi-4.0.0"), sources_before);

  auto audit = OpenAudit();
  ASSERT_NE(audit, nullptr);
  ExpectCompleteEvents(*audit, run_id);
  auto detail = audit->GetRollout(run_id);
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(detail->rollout.plan_sha256, *common::Sha256File(plan));
  EXPECT_FALSE(detail->rollout.os_user.empty());
  EXPECT_THAT(detail->rollout.cert_subject, HasSubstr("mimic-controller"));
  // Every file change carries sha256 after, and the check reported exactly the same list.
  auto check_list = ChangeList(*audit, check_id);
  auto run_list = ChangeList(*audit, run_id);
  EXPECT_EQ(check_list, run_list);
  for (const std::string& h : kHosts) EXPECT_GE(run_list[h].size(), 8u) << h;
  // No secret reached the audit.
  auto events = audit->Events(run_id);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) {
    std::string text = e.DebugString();
    EXPECT_THAT(text, ::testing::Not(HasSubstr("$secret{")));
    EXPECT_THAT(text, ::testing::Not(HasSubstr("wso2carbon\"")));  // keystore password value
  }

  // 3. A second run changes nothing.
  std::map<std::string, std::map<std::string, std::string>> after_first;
  for (const std::string& h : kHosts) after_first[h] = TreeHash(Target(h));
  CommandResult again = Mimic("run --inventory inventory.toml --plan plan.toml");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  std::string again_id = RolloutId(again.output);
  audit = OpenAudit();
  EXPECT_TRUE(ChangeList(*audit, again_id).empty());
  for (const std::string& h : kHosts) EXPECT_EQ(TreeHash(Target(h)), after_first[h]) << h;
  EXPECT_THAT(again.output, ::testing::Not(HasSubstr("changed ")));

  // 4. Rollback puts every target back byte for byte.
  CommandResult rb = Mimic("rollback " + run_id + " --inventory inventory.toml");
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  for (const std::string& h : kHosts) EXPECT_EQ(TreeHash(Target(h)), before[h]) << h;

  // status and report read the audit.
  CommandResult st = Mimic("status --inventory inventory.toml");
  EXPECT_EQ(st.exit_code, 0) << st.output;
  EXPECT_THAT(st.output, HasSubstr(run_id));
  CommandResult rep = Mimic("report " + run_id + " --format json --inventory inventory.toml");
  EXPECT_EQ(rep.exit_code, 0) << rep.output;
  EXPECT_THAT(rep.output, HasSubstr("\"sha256_after\""));

  CommandResult junit = Mimic("report " + run_id + " --format junit -o junit.xml --inventory inventory.toml");
  ASSERT_EQ(junit.exit_code, 0) << junit.output;
  CommandResult valid = RunCommand("xmllint --noout --schema " +
                                   ShellQuote(SourceDir() + "/tests/testdata/junit.xsd") + " " +
                                   ShellQuote(dir_ + "/junit.xml"));
  EXPECT_EQ(valid.exit_code, 0) << valid.output;
  CommandResult html = Mimic("report " + run_id + " --format html -o report.html --inventory inventory.toml");
  ASSERT_EQ(html.exit_code, 0) << html.output;
  EXPECT_THAT(ReadText(dir_ + "/report.html"), ::testing::Not(HasSubstr("https://")));
  // What a person sees: the page rendered by a real headless Chromium, with no network.
  ASSERT_TRUE(common::PathExists("/usr/bin/chromium"))
      << "install chromium: bash deploy/install-deps.sh --tests";
  const std::string chromium =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--user-data-dir=" + ShellQuote(MakeTempDir("chromium")) + " ";
  CommandResult dom = RunCommand(chromium + "--dump-dom " + ShellQuote("file://" + dir_ + "/report.html") +
                                 " 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  for (const std::string& h : kHosts) EXPECT_THAT(dom.output, HasSubstr(">" + h + "<"));
  EXPECT_THAT(dom.output, HasSubstr("Hosts × steps"));
  EXPECT_THAT(dom.output, HasSubstr("class=\"badge changed\""));
  EXPECT_THAT(dom.output, HasSubstr("migrate_datamapper"));
  EXPECT_THAT(dom.output, HasSubstr("sequences/main.xml"));
  CommandResult shot = RunCommand(chromium + "--window-size=1280,1600 --screenshot=" +
                                  ShellQuote(dir_ + "/report.png") + " " +
                                  ShellQuote("file://" + dir_ + "/report.html") + " 2>&1");
  EXPECT_EQ(shot.exit_code, 0) << shot.output;
  EXPECT_GT(ReadText(dir_ + "/report.png").size(), 10000u);

  // The audit's hash chain holds, and an edited row is caught.
  CommandResult v1 = Mimic("audit verify " + run_id + " --inventory inventory.toml");
  EXPECT_EQ(v1.exit_code, 0) << v1.output;
  audit.reset();
  CommandResult edit = RunCommand(
      "sqlite3 " + ShellQuote(dir_ + "/controller-state/audit.db") +
      " \"DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;"
      " UPDATE events SET message = 'all fine' WHERE rollout_id = '" + run_id +
      "' AND kind = 'step_finished' AND rowid = (SELECT MIN(rowid) FROM events WHERE rollout_id = '" +
      run_id + "' AND kind = 'step_finished');\"");
  ASSERT_EQ(edit.exit_code, 0) << edit.output;
  CommandResult v2 = Mimic("audit verify " + run_id + " --inventory inventory.toml");
  EXPECT_EQ(v2.exit_code, 2) << v2.output;
  EXPECT_THAT(v2.output, HasSubstr("TAMPERED"));
}

TEST_F(FleetTest, ControllerWithoutFleetCertificateOrPlaintextIsRefused) {
  StartAgents();
  WritePlan();
  auto before = AllTargetsAndStates();
  WriteInventory("rogue-controller", false, "rogue.toml");
  CommandResult rogue = Mimic("run --inventory rogue.toml --plan plan.toml");
  EXPECT_EQ(rogue.exit_code, 2) << rogue.output;
  EXPECT_THAT(rogue.output, HasSubstr("unreachable"));
  WriteInventory("", true, "plain.toml");
  CommandResult plain = Mimic("run --inventory plain.toml --plan plan.toml");
  EXPECT_EQ(plain.exit_code, 2) << plain.output;
  EXPECT_THAT(plain.output, HasSubstr("unreachable"));
  EXPECT_EQ(AllTargetsAndStates(), before);
}

TEST_F(FleetTest, PathsOutsideAllowedRootsAreRefused) {
  StartAgents();
  WriteInventory();
  auto before = AllTargetsAndStates();
  std::string outside = MakeTempDir("outside");
  // Absolute elsewhere, "..", and a symlink leading out of the root.
  ASSERT_EQ(symlink(outside.c_str(), (Root(kHosts[2]) + "/escape").c_str()), 0);
  struct Case {
    std::string target;
    std::string host;
  } cases[] = {{outside, kHosts[0]},
               // Lexically this is the host's own target, inside the root: only the '..'
               // rule refuses it.
               {Root(kHosts[1]) + "/../" + kHosts[1] + "/wso2mi-4.2.0", kHosts[1]},
               {Root(kHosts[2]) + "/escape/mi", kHosts[2]}};
  for (const Case& c : cases) {
    WritePlan("target_home = \"" + c.target + "\"\n", "bad-plan.toml");
    CommandResult r = Mimic("run --inventory inventory.toml --plan bad-plan.toml --limit " + c.host);
    if (absl::StrContains(c.target, "/../")) {
      // Refused by the controller before any agent is asked (bad input: exit 1).
      EXPECT_EQ(r.exit_code, 1) << r.output;
      EXPECT_THAT(r.output, HasSubstr("'..'"));
    } else {
      EXPECT_EQ(r.exit_code, 2) << r.output;
      EXPECT_THAT(r.output, HasSubstr("refused")) << r.output;
    }
  }
  EXPECT_TRUE(TreeHash(outside).empty());
  unlink((Root(kHosts[2]) + "/escape").c_str());
  EXPECT_EQ(AllTargetsAndStates(), before);
}

TEST_F(FleetTest, SymlinkInsideSourceLeadingOutIsRefusedByTheStep) {
  StartAgents();
  WriteInventory();
  WritePlan();
  std::string outside = MakeTempDir("secret");
  WriteText(outside + "/stolen.car", "not yours");
  ASSERT_EQ(symlink((outside + "/stolen.car").c_str(),
                    (Source(kHosts[0]) + "/repository/deployment/server/carbonapps/evil.car").c_str()),
            0);
  const std::string capps = Target(kHosts[0]) + "/repository/deployment/server/carbonapps";
  auto before = TreeHash(capps);
  CommandResult r = Mimic("run --inventory inventory.toml --plan plan.toml --limit mi-dev-1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("evil.car"));
  EXPECT_FALSE(common::PathExists(capps + "/evil.car"));
  // The step refused as a whole: not even the honest CApps beside evil.car were copied.
  EXPECT_EQ(TreeHash(capps), before);
}

TEST_F(FleetTest, MalformedInventoryAndPlanExitOneNamingFileLineAndKey) {
  StartAgents();
  WriteInventory();
  WritePlan();
  WriteText(dir_ + "/bad-inv.toml",
            "[controller]\nplaintext = true\n\n[hosts.a]\naddress = 12\nenvironment = \"dev\"\n");
  CommandResult r1 = Mimic("run --inventory bad-inv.toml --plan plan.toml");
  EXPECT_EQ(r1.exit_code, 1) << r1.output;
  EXPECT_THAT(r1.output, HasSubstr("bad-inv.toml:5"));
  EXPECT_THAT(r1.output, HasSubstr("hosts.a.address"));

  WriteText(dir_ + "/bad-plan.toml",
            "[migration]\npath = \"4.0.0->4.2.0\"\n\n[[steps]]\nname = \"preflight\"\n\n"
            "[[steps]]\nname = \"copy_everything\"\n");
  CommandResult r2 = Mimic("run --inventory inventory.toml --plan bad-plan.toml");
  EXPECT_EQ(r2.exit_code, 1) << r2.output;
  EXPECT_THAT(r2.output, HasSubstr("bad-plan.toml:8"));
  EXPECT_THAT(r2.output, HasSubstr("copy_everything"));

  WriteText(dir_ + "/broken.toml", "[migration\npath = 1\n");
  CommandResult r3 = Mimic("run --inventory inventory.toml --plan broken.toml");
  EXPECT_EQ(r3.exit_code, 1) << r3.output;
  EXPECT_THAT(r3.output, HasSubstr("broken.toml:1"));
}

TEST_F(FleetTest, ControllerKilledMidRunResumesWithEveryEventOnce) {
  // The dev host's run is held before step 5 (copy_deployment) when the controller dies.
  constexpr int kHeldAt = 5;
  StartAgents({{"mi-dev-1", kHeldAt}});
  WriteInventory();
  WritePlan();
  std::string out_path = dir_ + "/controller.out";
  pid_t pid = StartMimic({"run", "--inventory", "inventory.toml", "--plan", "plan.toml"}, out_path);
  const std::string held = Agent("mi-dev-1").WaitReached(kHeldAt);
  ASSERT_FALSE(held.empty()) << ReadText(out_path);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  const std::string rollout = held.substr(0, held.rfind('.'));  // run ids: <rollout>.<host>
  ASSERT_EQ(held, rollout + ".mi-dev-1");
  ASSERT_NO_FATAL_FAILURE(ExpectUnfinishedInAudit(rollout, held));
  Agent("mi-dev-1").Release(kHeldAt);

  CommandResult resumed = Mimic("resume " + rollout + " --inventory inventory.toml");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto audit = OpenAudit();
  ASSERT_NE(audit, nullptr);
  ExpectCompleteEvents(*audit, rollout);
  // Each host was migrated by exactly one run.
  for (const std::string& h : kHosts) {
    auto runs = common::ListFilesRecursive(StateDir(h) + "/runs");
    ASSERT_TRUE(runs.ok());
    std::set<std::string> run_dirs;
    for (const auto& f : *runs) run_dirs.insert(f.substr(0, f.find('/')));
    EXPECT_EQ(run_dirs.size(), 1u) << h;
    ExpectSameFile(Source(h) + "/dropins/custom-handler_1.0.0.jar",
                   Target(h) + "/dropins/custom-handler_1.0.0.jar");
  }
}

// The controller is killed at named points of a rollout, each with runs held in flight by the
// agents' gates; `mimic resume` always ends with every host migrated exactly once and every
// event in the audit.
struct KillPoint {
  const char* name;
  std::vector<std::string> hosts;  // each holds its run before `step` when the kill comes
  int step;
};
const KillPoint kKillPoints[] = {
    {"DevRunBeforeItsFirstStep", {"mi-dev-1"}, 0},
    {"DevRunMidway", {"mi-dev-1"}, 5},
    {"DevDoneProdBatchBeforeItsFirstStep", {"mi-prod-1", "mi-prod-2"}, 0},
    {"ProdBatchMidway", {"mi-prod-1", "mi-prod-2"}, 7},
};

class ControllerKillTest : public FleetTest, public ::testing::WithParamInterface<int> {};

TEST_P(ControllerKillTest, ResumeAfterAKillAtThisPointMigratesEachHostOnce) {
  const KillPoint& point = kKillPoints[GetParam()];
  std::map<std::string, int> holds;
  for (const std::string& h : point.hosts) holds[h] = point.step;
  StartAgents(holds);
  WriteInventory();
  WritePlan();
  std::string out_path = dir_ + "/controller.out";
  pid_t pid = StartMimic({"run", "--inventory", "inventory.toml", "--plan", "plan.toml"}, out_path);
  std::vector<std::string> held;
  for (const std::string& h : point.hosts) {
    held.push_back(Agent(h).WaitReached(point.step));
    ASSERT_FALSE(held.back().empty()) << ReadText(out_path);
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  const std::string rollout = held[0].substr(0, held[0].rfind('.'));
  ASSERT_EQ(held[0], rollout + "." + point.hosts[0]);
  // The kill came while these runs were in flight: none of them had finished.
  for (const std::string& run : held) ASSERT_NO_FATAL_FAILURE(ExpectUnfinishedInAudit(rollout, run));
  for (const std::string& h : point.hosts) Agent(h).Release(point.step);
  CommandResult resumed = Mimic("resume " + rollout + " --inventory inventory.toml");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto audit = OpenAudit();
  ExpectCompleteEvents(*audit, rollout);
  for (const std::string& h : kHosts) {
    auto runs = common::ListFilesRecursive(StateDir(h) + "/runs");
    ASSERT_TRUE(runs.ok());
    std::set<std::string> run_dirs;
    for (const auto& f : *runs) run_dirs.insert(f.substr(0, f.find('/')));
    EXPECT_EQ(run_dirs.size(), 1u) << h;
  }
  auto v = audit->VerifyChain(rollout);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->reason;
}

INSTANTIATE_TEST_SUITE_P(KillPoints, ControllerKillTest,
                         ::testing::Range(0, static_cast<int>(std::size(kKillPoints))),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(kKillPoints[info.param].name);
                         });

TEST_F(FleetTest, AnsibleInventoryImportGivesAnInventoryMimicRunsWith) {
  StartAgents();
  std::string full = ReadText(WritePlan());
  WriteText(dir_ + "/plan.toml", full.substr(0, full.find("\n[[stages]]\nname = \"prod\"")));
  std::string ini = "[dev]\nmi-dev-1 ansible_host=127.0.0.1 mimic_agent_port=" +
                    std::to_string(agents_[0]->port()) + "\n\n[dev:vars]\nsource_home=" +
                    Source(kHosts[0]) + "\ntarget_home=" + Target(kHosts[0]) + "\n";
  WriteText(dir_ + "/hosts.ini", ini);
  CommandResult imp = Mimic("inventory import hosts.ini -o imported.toml");
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  CommandResult again = Mimic("inventory import hosts.ini -o imported.toml");
  EXPECT_EQ(again.exit_code, 1) << "an existing file must not be overwritten";
  // The imported inventory drives a real (checked) rollout of the dev stage.
  CommandResult run = Mimic("run --inventory imported.toml --plan plan.toml --check --stage dev");
  EXPECT_EQ(run.exit_code, 0) << run.output << ReadText(dir_ + "/imported.toml");
  WriteText(dir_ + "/broken.ini", "[dev]\nweb[01:\n");
  CommandResult bad = Mimic("inventory import broken.ini");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("broken.ini:2"));
}

TEST_F(FleetTest, ApprovalGateBlocksUntilApprovedAndTheDigestRuleRefusesAnUntestedPlan) {
  StartAgents();
  WriteInventory();
  std::string plan = WritePlan();
  std::string text = ReadText(plan) + "approval = true\n";  // on the last stage: prod
  WriteText(plan, text);
  auto prod_before = TreeHash(Target(kHosts[1]));
  std::string out_path = dir_ + "/gated.out";
  pid_t pid = StartMimic({"run", "--inventory", "inventory.toml", "--plan", "plan.toml"}, out_path);
  ASSERT_TRUE(WaitForText(out_path, "waits for approval")) << ReadText(out_path);
  // dev is migrated, prod is untouched while the gate is closed.
  EXPECT_TRUE(common::PathExists(Target(kHosts[0]) + "/dropins/custom-handler_1.0.0.jar"));
  EXPECT_EQ(TreeHash(Target(kHosts[1])), prod_before);
  std::string rollout = RolloutId(ReadText(out_path));
  CommandResult approve = Mimic("approve " + rollout + " --inventory inventory.toml");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  EXPECT_THAT(approve.output, HasSubstr("approved by"));
  ASSERT_EQ(WaitExit(pid), 0) << ReadText(out_path);
  EXPECT_TRUE(common::PathExists(Target(kHosts[1]) + "/dropins/custom-handler_1.0.0.jar"));
  auto audit = OpenAudit();
  auto d = audit->GetRollout(rollout);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->approvals.size(), 1u);
  EXPECT_EQ(d->approvals[0].stage, "prod");
  EXPECT_FALSE(d->approvals[0].forced);
  audit.reset();

  // A changed plan (another sha256) has not been through dev: prod alone is refused...
  WriteText(plan, text + "# tweaked after dev\n");
  CommandResult refused = Mimic("run --inventory inventory.toml --plan plan.toml --stage prod");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("succeeded in stage 'dev'"));
  // ...unless forced, which the audit records.
  CommandResult forced =
      Mimic("run --inventory inventory.toml --plan plan.toml --stage prod --force");
  EXPECT_THAT(forced.output, HasSubstr("forced past the digest rule"));
  audit = OpenAudit();
  auto d2 = audit->GetRollout(RolloutId(forced.output));
  ASSERT_TRUE(d2.ok());
  ASSERT_FALSE(d2->approvals.empty());
  EXPECT_TRUE(d2->approvals[0].forced);
}

}  // namespace
}  // namespace mimic::testing
