// What the operator changed outside deployment.toml (agent/steps/conf_edits.h), on MI homes from
// the generator: a source home with the operator's edits (tests/mi_home, source profile: -Xmx
// raised and a -D property added in bin/micro-integrator.sh, a log4j2 logger level, an endpoint in
// conf/file.properties) and a fresh target home, on the three migration paths.
#include "agent/steps/conf_edits.h"

#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::conf_edits {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::FindOp;
using testing::Read;
using testing::Tree;
using testing::Write;

constexpr char kScript[] = "bin/micro-integrator.sh";
constexpr char kWrapper[] = "bin/yajsw/wrapper.conf";
constexpr char kLog4j2[] = "conf/log4j2.properties";
constexpr char kFileProps[] = "conf/file.properties";

class ConfEditsTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("conf_edits_"));
    GuardHomes();
  }
  void TearDown() override { fs::remove_all(root_); }

  void MakeHomes(const std::string& from, const std::string& to) {
    src_ = root_ / ("homes/wso2mi-" + from);
    dst_ = root_ / ("homes/wso2mi-" + to);
    for (auto [version, dest, profile] :
         {std::tuple(from, src_, mi_home::Profile::kSource),
          std::tuple(to, dst_, mi_home::Profile::kTarget)}) {
      mi_home::Options o;
      o.version = version;
      o.dest = dest.string();
      o.profile = profile;
      o.keystores = false;
      ASSERT_TRUE(mi_home::MakeMiHome(o).ok()) << version;
    }
    from_ = from;
    to_ = to;
  }

  absl::StatusOr<ConfEdits> PlanEdits(const std::set<std::string>& keep = {}) {
    StepContext ctx = Context("merge_config", {}, true, Run("current"));
    Homes homes{src_.string(), dst_.string()};
    Versions versions{from_, to_};
    return PlanConfEdits(ctx, homes, versions, keep);
  }

  absl::StatusOr<StepPlan> PlanMergeConfig(const std::map<std::string, std::string>& params = {}) {
    std::unique_ptr<Step> step = MakeStep("merge_config");
    StepContext ctx = Context("merge_config", params, true, Run("current"));
    ctx.source_version = from_;
    ctx.target_version = to_;
    return step->Plan(ctx);
  }

  // The op writing MI_HOME-relative `rel` in the target, or null.
  static const FileOp* OpFor(const ConfEdits& e, const fs::path& home, const std::string& rel) {
    for (const FileOp& op : e.ops) {
      if (op.path == (home / rel).string()) return &op;
    }
    return nullptr;
  }

  std::string Shipped(const std::string& version, const std::string& rel) {
    return common::ShippedConfigFiles(version)->at(rel).text;
  }

  std::string from_, to_;
};

// ---- the three paths: the operator's edits land in the target version's own files -----------

class ConfEditsPathTest : public ConfEditsTest,
                          public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(ConfEditsPathTest, OperatorEditsAreMergedIntoTheTargetVersionsFiles) {
  MakeHomes(GetParam().first, GetParam().second);
  absl::StatusOr<ConfEdits> e = PlanEdits();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->not_carried, IsEmpty());
  std::vector<std::string> keys;
  for (const auto& c : e->changes) {
    keys.push_back(c.key());
    EXPECT_EQ(c.action(), "merge") << c.key();
  }
  EXPECT_THAT(keys, ElementsAre(kScript, kFileProps, kLog4j2));

  const FileOp* script = OpFor(*e, dst_, kScript);
  ASSERT_NE(script, nullptr);
  // The operator's heap and -D property, in the target version's script.
  EXPECT_THAT(script->content, HasSubstr("JVM_MEM_OPTS=\"-Xms256m -Xmx4096m\""));
  EXPECT_THAT(script->content, HasSubstr("    -Dcom.sun.management.jmxremote \\\n"
                                         "    -Dcom.example.ops.tracing=true \\\n"));
  EXPECT_THAT(script->content, Not(HasSubstr("-Xmx1024m\"")));
  // The target version's own lines are kept (4.2.0 supports JDK 11 to 17 only).
  if (to_ == "4.2.0") {
    EXPECT_THAT(script->content, HasSubstr("-DenableLivenessProbe=true"));
    EXPECT_THAT(script->content, HasSubstr("supported only between JDK 11 and JDK 17"));
  }
  EXPECT_EQ(script->expected_sha256, common::Sha256Hex(Read(dst_ / kScript)));

  const FileOp* log4j2 = OpFor(*e, dst_, kLog4j2);
  ASSERT_NE(log4j2, nullptr);
  EXPECT_THAT(log4j2->content, HasSubstr("logger.ModuleDeployer.level = INFO\n"));
  if (to_ == "4.2.0") {
    EXPECT_THAT(log4j2->content, HasSubstr("appender.OPEN_TELEMETRY.type = RollingFile"));
  }
  const FileOp* props = OpFor(*e, dst_, kFileProps);
  ASSERT_NE(props, nullptr);
  EXPECT_THAT(props->content, HasSubstr("stockQuoteEP=http://quotes.example.com:9000/"));
  // Unchanged shipped files and the untouched wrapper.conf are not written.
  EXPECT_EQ(OpFor(*e, dst_, kWrapper), nullptr);
  EXPECT_GT(e->unchanged, 5);
  EXPECT_THAT(Logs(), HasSubstr("+   JVM_MEM_OPTS=\"-Xms256m -Xmx4096m\""));
}

INSTANTIATE_TEST_SUITE_P(Paths, ConfEditsPathTest,
                         ::testing::Values(std::pair("1.2.0", "4.0.0"), std::pair("4.0.0", "4.2.0"),
                                           std::pair("1.2.0", "4.2.0")));

// Through merge_config: check mode exact, a second run a no-op, rollback byte for byte, the
// script keeps its mode 0755.
TEST_F(ConfEditsTest, MergeConfigCarriesThemExactlyAndReversibly) {
  MakeHomes("4.0.0", "4.2.0");
  StepPlan plan = ExpectExactIdempotentReversible(
      "merge_config", [&] { return PlanMergeConfig(); }, "up to date", false);
  std::vector<std::string> paths = testing::OpPaths(plan, dst_);
  EXPECT_THAT(paths, Contains(kScript));
  EXPECT_THAT(paths, Contains(kLog4j2));
  EXPECT_THAT(paths, Contains("conf/deployment.toml"));
  EXPECT_THAT(plan.message, HasSubstr("outside deployment.toml: 3 files carried"));
  ASSERT_TRUE(ApplyAs("r2", PlanMergeConfig()->changes).ok());
  EXPECT_EQ(common::FileMode((dst_ / kScript).string()), 0755u);
  EXPECT_THAT(Read(dst_ / kScript), HasSubstr("-Dcom.example.ops.tracing=true"));
  absl::StatusOr<StepPlan> again = PlanMergeConfig();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->changes.empty());
}

// 4.2.0 renumbered wrapper.conf's JVM options right below the heap lines: an -Xmx raised there
// cannot be placed by a merge. The step fails with the three sides' lines and writes nothing.
TEST_F(ConfEditsTest, ConflictFailsWithTheLinesAndWritesNothing) {
  MakeHomes("4.0.0", "4.2.0");
  std::string wrapper = Read(src_ / kWrapper);
  ASSERT_NE(wrapper.find("wrapper.java.additional.2 = -Xmx1024m"), std::string::npos);
  wrapper.replace(wrapper.find("-Xmx1024m"), 9, "-Xmx6g");
  wrapper.replace(wrapper.find("wrapper.java.additional.3 = -XX:MaxPermSize=256m"), 48,
                  "wrapper.java.additional.3 = -Djavax.net.ssl.keyStorePassword=Wr4pp3rS3cret");
  Write(src_ / kWrapper, wrapper);
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanMergeConfig();
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  const std::string msg(plan.status().message());
  EXPECT_THAT(msg, HasSubstr("bin/yajsw/wrapper.conf: the operator's edit conflicts with MI 4.2.0"));
  EXPECT_THAT(msg, HasSubstr("| wrapper.java.additional.2 = -Xmx6g"));             // source
  EXPECT_THAT(msg, HasSubstr("| wrapper.java.additional.3 = -XX:MaxPermSize=256m"));  // base
  EXPECT_THAT(msg, HasSubstr("| wrapper.java.additional.3 = -XX:+HeapDumpOnOutOfMemoryError"));
  EXPECT_THAT(msg, HasSubstr("nothing was written"));
  EXPECT_THAT(msg + Logs(), Not(HasSubstr("Wr4pp3rS3cret")));
  EXPECT_EQ(Tree(dst_), before);

  // The operator decides to keep the target's file: the conflict is reported, not fatal.
  absl::StatusOr<StepPlan> kept = PlanMergeConfig({{"keep_target", "bin/yajsw/wrapper.conf"}});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(FindOp(*kept, kWrapper), nullptr);
  EXPECT_NE(FindOp(*kept, kScript), nullptr);
  EXPECT_THAT(Logs(), HasSubstr("bin/yajsw/wrapper.conf: edited by the operator; conflicts with "
                                "the target's file, which is kept (keep_target)"));
}

// An edit to a file MI regenerates from deployment.toml at start is listed, never carried.
TEST_F(ConfEditsTest, TemplatedFilesAreListedNotCarried) {
  MakeHomes("4.0.0", "4.2.0");
  Write(src_ / "conf/axis2/axis2.xml", "<axisconfig><!-- edited by hand --></axisconfig>\n");
  absl::StatusOr<ConfEdits> e = PlanEdits();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->regenerated, ElementsAre("conf/axis2/axis2.xml"));
  EXPECT_EQ(OpFor(*e, dst_, "conf/axis2/axis2.xml"), nullptr);
  absl::StatusOr<StepPlan> plan = PlanMergeConfig();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Logs(), HasSubstr("regenerates it from deployment.toml at start"));
  EXPECT_THAT(Logs(), HasSubstr("conf/axis2/axis2.xml"));
  // A template in the source home counts too (a file this table does not know).
  Write(src_ / "repository/resources/conf/templates/conf/etc/jmx.xml.j2", "{{ jmx }}");
  Write(src_ / "conf/etc/jmx.xml", "<JMX/>\n");
  e = PlanEdits();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->regenerated, Contains("conf/etc/jmx.xml"));
  EXPECT_EQ(OpFor(*e, dst_, "conf/etc/jmx.xml"), nullptr);
}

// A conf/ file the operator added is created in the target (its mode kept); one the target holds
// with other bytes is listed and left.
TEST_F(ConfEditsTest, AddedFilesAreCarriedWhenTheTargetHasNone) {
  MakeHomes("4.0.0", "4.2.0");
  Write(src_ / "conf/partner/routes.properties", "route.a=https://a.example.com\n");
  fs::permissions(src_ / "conf/partner/routes.properties", fs::perms(0640));
  Write(src_ / "conf/jaas.conf", "Client { source; };\n");
  Write(dst_ / "conf/jaas.conf", "Client { target; };\n");
  absl::StatusOr<ConfEdits> e = PlanEdits();
  ASSERT_TRUE(e.ok()) << e.status();
  const FileOp* added = OpFor(*e, dst_, "conf/partner/routes.properties");
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->expected_sha256, "");
  EXPECT_EQ(added->mode, 0640u);
  EXPECT_EQ(OpFor(*e, dst_, "conf/jaas.conf"), nullptr);
  EXPECT_THAT(e->not_carried,
              Contains(HasSubstr("conf/jaas.conf: added by the operator; the target holds another")));
  bool add = false;
  for (const auto& c : e->changes) {
    add |= c.key() == "conf/partner/routes.properties" && c.action() == "add";
  }
  EXPECT_TRUE(add);
  // Through merge_config: the new folder is part of the plan, and of the rollback.
  StepPlan plan = ExpectExactIdempotentReversible(
      "merge_config", [&] { return PlanMergeConfig(); }, "up to date", false);
  EXPECT_THAT(testing::OpPaths(plan, dst_), Contains("conf/partner"));
  EXPECT_FALSE(fs::exists(dst_ / "conf/partner"));
}

// deployment.toml is merge_config's own merge, secret-conf.properties copy_keystores': not here.
TEST_F(ConfEditsTest, FilesOtherStepsCarryAreLeftToThem) {
  MakeHomes("4.0.0", "4.2.0");
  Write(src_ / "conf/security/secret-conf.properties", "keystore.identity.location=/old/x.jks\n");
  absl::StatusOr<ConfEdits> e = PlanEdits();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(OpFor(*e, dst_, "conf/security/secret-conf.properties"), nullptr);
  EXPECT_EQ(OpFor(*e, dst_, "conf/deployment.toml"), nullptr);
  for (const std::string& n : e->not_carried) EXPECT_THAT(n, Not(HasSubstr("secret-conf")));
}

// A source version mimic has no table for: nothing carried, and said so.
TEST_F(ConfEditsTest, UnknownSourceVersionIsSaidNotGuessed) {
  MakeHomes("4.0.0", "4.2.0");
  from_ = "4.1.0";
  absl::StatusOr<ConfEdits> e = PlanEdits();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->ops.empty());
  EXPECT_THAT(e->not_carried, ElementsAre(HasSubstr("MI 4.1.0: mimic does not know")));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::conf_edits
