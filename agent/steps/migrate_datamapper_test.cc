// migrate_datamapper on a target MI 4.2.0 home built from shared/fixtures/mi/4.2.0 with the real
// Data Mapper sample CApp: the plan touches exactly the files that need the rewrite, planning
// writes nothing, apply rewrites them, a second plan is empty, rollback restores the bytes,
// hostile CApps fail the step, other paths skip it, and WSO2's tool (a fake jar with the same
// contract, built with javac when available) can do the CApp rewrite instead.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/steps/catalog_extra.h"
#include "agent/steps/change_set.h"
#include "agent/steps/snapshot.h"
#include "agent/steps/step.h"
#include "common/capp.h"
#include "common/fs.h"
#include "common/path_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kCapps[] = "repository/deployment/server/carbonapps";
constexpr char kSampleName[] = "1_1_3_synapse-configCompositeApplication_1.0.0.car";
constexpr char kLoose[] = "registry/governance/datamapper/orders_xsltStyleSheet.xml";
constexpr char kLooseDone[] = "registry/governance/datamapper/done_xsltStyleSheet.xml";
constexpr char kLooseOther[] = "registry/governance/datamapper/orders.dmc";

// rel path -> "d <mode>" or "f <mode> <sha256>", for everything under `root`.
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    const std::string mode = std::to_string(st.st_mode & 07777);
    const std::string rel = fs::relative(e.path(), root).string();
    out[rel] =
        e.is_directory() ? "d " + mode : "f " + mode + " " + *common::Sha256File(e.path().string());
  }
  return out;
}

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}
std::string Read(const fs::path& p) { return *common::ReadFile(p.string()); }

std::string Stylesheet(const char* prefixes) {
  return absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><xsl:stylesheet "
      "xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" ",
      prefixes,
      " version=\"2.0\"><xsl:template match=\"/\"><out/></xsl:template>"
      "</xsl:stylesheet>");
}

// A CApp of WSO2's tool contract: reads <dir>/*.car, writes <dir>/../migrated_capps/*.car.
constexpr char kFakeTool[] = R"java(
import java.nio.file.*;
import java.util.zip.*;
public class FakeTool {
  public static void main(String[] a) throws Exception {
    Path in = Paths.get(a[0]);
    if (!Files.isDirectory(in)) { System.err.println(in + " is not a directory"); System.exit(1); }
    Path tmp = in.resolveSibling("tmp"), out = in.resolveSibling("migrated_capps");
    Files.createDirectory(tmp);
    Files.createDirectory(out);
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(in, "*.car")) {
      for (Path car : ds) {
        try (ZipInputStream zin = new ZipInputStream(Files.newInputStream(car));
             ZipOutputStream zout =
                 new ZipOutputStream(Files.newOutputStream(out.resolve(car.getFileName())))) {
          for (ZipEntry e; (e = zin.getNextEntry()) != null;) {
            byte[] data = zin.readAllBytes();
            if (e.getName().endsWith("_xsltStyleSheet.xml")) {
              data = new String(data, "UTF-8").replace(
                  "extension-element-prefixes=\"xs own notXSLTCompatible firstElementOfTheInput\"",
                  "extension-element-prefixes=\"own notXSLTCompatible firstElementOfTheInput\" "
                  + "exclude-result-prefixes=\"xs\"").getBytes("UTF-8");
            }
            zout.putNextEntry(new ZipEntry(e.getName()));
            zout.write(data);
            zout.closeEntry();
          }
        }
        System.out.println("Migrated " + car.getFileName());
      }
    }
    Files.delete(tmp);
    System.out.println("Migration completed successfully. Migrated carbon applications are "
        + "available in " + out);
  }
}
)java";

class MigrateDatamapperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/dmstep_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = fs::canonical(tmpl);
    dst_ = root_ / "homes/wso2mi-4.2.0";
    src_ = root_ / "homes/wso2mi-4.0.0";
    CopyHome("4.2.0", dst_, {"conf", "repository", "updates"});
    CopyHome("4.0.0", src_, {"updates"});
    guard_ =
        std::make_unique<common::PathGuard>(std::vector<std::string>{(root_ / "homes").string()});
    sample_ = Read(fs::path(MIMIC_FIXTURES_DIR) / "mi/samples/carbonapps" / kSampleName);
    Write(dst_ / kCapps / kSampleName, sample_);
    std::vector<common::ZipEntry> plain = {
        {"artifacts.xml", "<artifacts><artifact name=\"Orders\"/></artifacts>", false, 0, 0,
         1546622576, common::kZipDeflate},
        {"OrdersApi_1.0.0/", "", true, 0, 0, 1546622576, common::kZipDeflate},
        {"OrdersApi_1.0.0/OrdersApi-1.0.0.xml", "<api name=\"Orders\" context=\"/orders\"/>", false,
         0, 0, 1546622576, common::kZipDeflate}};
    Write(dst_ / kCapps / "OrdersCompositeApplication_1.0.0.car", *common::WriteZip(plain));
    Write(dst_ / kLoose, Stylesheet(common::kOldXsltPrefixes));
    Write(dst_ / kLooseDone, Stylesheet(common::kNewXsltPrefixes));
    Write(dst_ / kLooseOther, common::kOldXsltPrefixes);  // not a stylesheet: left alone
  }
  void TearDown() override { fs::remove_all(root_); }

  static void CopyHome(const std::string& version, const fs::path& home,
                       const std::vector<std::string>& dirs) {
    const fs::path from = fs::path(MIMIC_FIXTURES_DIR) / "mi" / version;
    for (const std::string& dir : dirs) {
      fs::create_directories(home / dir);
      for (const auto& e : fs::recursive_directory_iterator(from / dir)) {
        const fs::path to = home / dir / fs::relative(e.path(), from / dir);
        if (e.is_directory()) {
          fs::create_directories(to);
        } else {
          fs::copy_file(e.path(), to);
          fs::permissions(to, fs::perms(0644));
        }
      }
    }
  }

  absl::StatusOr<StepPlan> PlanStep(const std::string& from, const std::string& to,
                                    const std::map<std::string, std::string>& params = {}) {
    std::unique_ptr<Step> step = NewMigrateDatamapperStep();
    spec_.Clear();
    spec_.set_name(step->name());
    for (const auto& [k, v] : params) (*spec_.mutable_params())[k] = v;
    StepContext ctx;
    ctx.plan = &plan_;
    ctx.spec = &spec_;
    ctx.source_home = src_.string();
    ctx.target_home = dst_.string();
    ctx.source_version = from;
    ctx.target_version = to;
    ctx.guard = guard_.get();
    ctx.check = true;
    ctx.state_dir = (root_ / "state").string();
    ctx.run_dir = Run("current");
    ctx.log = [this](LogLevel, const std::string& text) { logs_.push_back(text); };
    return step->Plan(ctx);
  }

  std::string Run(const std::string& id) { return (root_ / "state/runs" / id).string(); }

  absl::Status ApplyAs(const std::string& id, const ChangeSet& cs) {
    auto snap = Snapshot::Open(Run(id));
    if (!snap.ok()) return snap.status();
    return ApplyChangeSet(cs, **snap, nullptr);
  }

  std::vector<std::string> OpPaths(const StepPlan& plan) const {
    std::vector<std::string> out;
    for (const FileOp& op : plan.changes.ops) {
      out.push_back(op.path.substr(dst_.string().size() + 1));
    }
    return out;
  }

  // The sample CApp in the target holds migrated stylesheets and every other entry unchanged.
  void ExpectSampleMigrated() {
    auto before = common::ReadZipFromBytes(sample_, "sample");
    auto after = common::ReadZip((dst_ / kCapps / kSampleName).string());
    ASSERT_TRUE(before.ok() && after.ok()) << after.status();
    ASSERT_EQ(after->size(), before->size());
    for (size_t i = 0; i < before->size(); ++i) {
      EXPECT_EQ((*after)[i].name, (*before)[i].name);
      EXPECT_EQ((*after)[i].data, common::MigrateXsltStyleSheet((*before)[i].data, nullptr))
          << (*after)[i].name;
    }
  }

  fs::path root_, src_, dst_;
  std::string sample_;
  std::unique_ptr<common::PathGuard> guard_;
  mimic::v1::HostPlan plan_;
  mimic::v1::StepSpec spec_;
  std::vector<std::string> logs_;
};

TEST_F(MigrateDatamapperTest, PlansAppliesIsIdempotentAndRollsBack) {
  const auto before = Tree(dst_);
  const auto src_before = Tree(src_);
  absl::StatusOr<StepPlan> plan = PlanStep("4.0.0", "4.2.0");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED);
  EXPECT_THAT(OpPaths(*plan), UnorderedElementsAre(absl::StrCat(kCapps, "/", kSampleName), kLoose));
  EXPECT_EQ(Tree(dst_), before) << "planning wrote into the target";
  EXPECT_THAT(plan->message, HasSubstr("3 Data Mapper stylesheets to migrate"));
  EXPECT_THAT(plan->message, HasSubstr("2 CApps, 2 registry stylesheets checked"));
  for (const FileOp& op : plan->changes.ops) {
    EXPECT_EQ(op.kind, FileOp::Kind::kWrite);
    EXPECT_TRUE(op.has_content);
    EXPECT_EQ(op.expected_sha256, *common::Sha256File(op.path));
    EXPECT_EQ(op.new_sha256, common::Sha256Hex(op.content));
    EXPECT_EQ(op.new_size, op.content.size());
    EXPECT_EQ(op.mode, 0644u);
  }
  EXPECT_EQ(plan->changes.ops[0].note, "2 Data Mapper stylesheets migrated (Saxon 10)");

  ASSERT_TRUE(ApplyAs("r1", plan->changes).ok());
  ExpectSampleMigrated();
  EXPECT_EQ(Read(dst_ / kLoose), Stylesheet(common::kNewXsltPrefixes));
  EXPECT_EQ(Read(dst_ / kLooseOther), common::kOldXsltPrefixes);
  EXPECT_EQ(
      ::system(absl::StrCat("unzip -tq '", (dst_ / kCapps / kSampleName).string(), "' >/dev/null")
                   .c_str()),
      0);

  absl::StatusOr<StepPlan> again = PlanStep("4.0.0", "4.2.0");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->changes.empty());
  EXPECT_THAT(again->message, HasSubstr("up to date"));

  absl::StatusOr<ChangeSet> rollback = PlanRollback(Run("r1"), false);
  ASSERT_TRUE(rollback.ok()) << rollback.status();
  ASSERT_TRUE(ApplyAs("r1-rollback", *rollback).ok());
  EXPECT_EQ(Tree(dst_), before) << "rollback left a difference";
  EXPECT_EQ(Read(dst_ / kCapps / kSampleName), sample_);
  EXPECT_EQ(Tree(src_), src_before);
}

TEST_F(MigrateDatamapperTest, AppliesOnlyWhenTheChainCrosses40To42) {
  absl::StatusOr<StepPlan> chained = PlanStep("1.2.0", "4.2.0");  // path C
  ASSERT_TRUE(chained.ok()) << chained.status();
  EXPECT_EQ(chained->changes.ops.size(), 2u);

  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"1.2.0", "4.0.0"}, {"4.2.0", "4.2.0"}, {"4.2.0", "4.0.0"}}) {
    absl::StatusOr<StepPlan> plan = PlanStep(from, to);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED) << from << "->" << to;
    EXPECT_TRUE(plan->changes.empty());
    EXPECT_THAT(plan->message, HasSubstr("only from 4.0.0 to 4.2.0"));
  }

  // Without preflight's facts, both versions are detected from the homes (4.0.0 -> 4.2.0).
  absl::StatusOr<StepPlan> detected = PlanStep("", "");
  ASSERT_TRUE(detected.ok()) << detected.status();
  EXPECT_EQ(detected->changes.ops.size(), 2u);
}

TEST_F(MigrateDatamapperTest, HostileCappFailsTheStepAndNothingIsPlanned) {
  std::vector<common::ZipEntry> evil = {
      {"artifacts.xml", "<artifacts/>", false, 0, 0, 1546622576, common::kZipDeflate},
      {"../../../conf/deployment.toml", "owned", false, 0, 0, 1546622576, common::kZipDeflate}};
  Write(dst_ / kCapps / "Evil_1.0.0.car", *common::WriteZip(evil));
  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("4.0.0", "4.2.0");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("Evil_1.0.0.car"));
  EXPECT_THAT(plan.status().message(), HasSubstr("../../../conf/deployment.toml"));
  EXPECT_EQ(Tree(dst_), before);
}

TEST_F(MigrateDatamapperTest, SymlinkedCappNeedingMigrationIsRefused) {
  // A symlinked CApp (inside the roots) that needs nothing is fine...
  const std::string orders = "OrdersCompositeApplication_1.0.0.car";
  fs::rename(dst_ / kCapps / orders, root_ / "homes" / orders);
  fs::create_symlink(root_ / "homes" / orders, dst_ / kCapps / orders);
  absl::StatusOr<StepPlan> ok = PlanStep("4.0.0", "4.2.0");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->changes.ops.size(), 2u);
  // ...one that needs the rewrite is refused: mimic never writes over a symlink.
  fs::rename(dst_ / kCapps / kSampleName, root_ / "homes/elsewhere.car");
  fs::create_symlink(root_ / "homes/elsewhere.car", dst_ / kCapps / kSampleName);
  absl::StatusOr<StepPlan> plan = PlanStep("4.0.0", "4.2.0");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr(kSampleName));
}

TEST_F(MigrateDatamapperTest, FailingToolFailsTheStep) {
  Write(root_ / "tool/fake.jar", "not a jar");
  absl::StatusOr<StepPlan> plan = PlanStep(
      "4.0.0", "4.2.0", {{"tool_jar", (root_ / "tool/fake.jar").string()}, {"java", "false"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("exited with status 1"));

  plan = PlanStep("4.0.0", "4.2.0", {{"tool_jar", "relative.jar"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MigrateDatamapperTest, RunsWso2ToolInScratchWhenGivenAJar) {
  if (::system("command -v javac >/dev/null 2>&1 && command -v jar >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no javac/jar to build the fake tool";
  }
  const fs::path tool = root_ / "tool";
  Write(tool / "FakeTool.java", kFakeTool);
  const std::string build =
      absl::StrCat("cd '", tool.string(),
                   "' && javac -d classes FakeTool.java && "
                   "jar cfe data-mapper-config-migration-service-1.0.1.jar FakeTool -C classes .");
  ASSERT_EQ(::system(build.c_str()), 0);
  const std::string jar = (tool / "data-mapper-config-migration-service-1.0.1.jar").string();

  const auto before = Tree(dst_);
  absl::StatusOr<StepPlan> plan = PlanStep("4.0.0", "4.2.0", {{"tool_jar", jar}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Tree(dst_), before) << "planning wrote into the target";
  EXPECT_THAT(OpPaths(*plan), UnorderedElementsAre(absl::StrCat(kCapps, "/", kSampleName), kLoose));
  EXPECT_THAT(plan->changes.ops[0].note, HasSubstr("by WSO2's tool"));
  EXPECT_THAT(absl::StrJoin(logs_, "\n"),
              HasSubstr("data-mapper tool: Migration completed successfully"));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(Run("current"))) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_THAT(left, IsEmpty()) << "the scratch folder was not removed";

  ASSERT_TRUE(ApplyAs("tool", plan->changes).ok());
  ExpectSampleMigrated();
  absl::StatusOr<StepPlan> again = PlanStep("4.0.0", "4.2.0", {{"tool_jar", jar}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->changes.empty()) << again->message;
}

}  // namespace
}  // namespace mimic::agent
