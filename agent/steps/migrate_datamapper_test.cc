// migrate_datamapper on a generated target MI 4.2.0 home (tests/mi_home) with the generator's
// Data Mapper CApp (and WSO2's real sample CApp when ../shared/fixtures is present): a known
// answer for the rewritten stylesheet; the plan touches exactly the files that need the
// rewrite, planning writes nothing, apply rewrites them, a second plan is empty, rollback
// restores the bytes, hostile CApps fail the step, other paths skip it, and WSO2's tool (a fake
// jar with the same contract, built with javac when available) can do the CApp rewrite instead.
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
#include "agent/steps/migration_features.h"
#include "agent/steps/steps.h"
#include "agent/engine/change_set.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step.h"
#include "agent/engine/step_test_util.h"
#include "common/mi/capp.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"
#include "tests/mi_home/mi_home.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kCapps[] = "repository/deployment/server/carbonapps";
constexpr const char* kSampleName = mi_home::kDataMapperCappName;
constexpr char kRealSample[] = "mi/samples/carbonapps/1_1_3_synapse-configCompositeApplication_1.0.0.car";
constexpr char kLoose[] = "registry/governance/datamapper/orders_xsltStyleSheet.xml";
constexpr char kLooseDone[] = "registry/governance/datamapper/done_xsltStyleSheet.xml";
constexpr char kLooseOther[] = "registry/governance/datamapper/orders.dmc";

using testing::Read;
using testing::Tree;
using testing::Write;

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

class MigrateDatamapperTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  static void SetUpTestSuite() { testing::PrepareMiHomes(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("dmstep_"));
    dst_ = root_ / "homes/wso2mi-4.2.0";
    src_ = root_ / "homes/wso2mi-4.0.0";
    testing::CopyMiHome("4.2.0", dst_, {"conf", "repository", "updates"});
    testing::CopyMiHome("4.0.0", src_, {"updates"});
    GuardHomes();
    sample_ = *mi_home::DataMapperCapp();
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

  absl::StatusOr<StepPlan> PlanStep(const std::string& from, const std::string& to,
                                    const std::map<std::string, std::string>& params = {}) {
    std::unique_ptr<Step> step = NewMigrateDatamapperStep();
    StepContext ctx = Context(step->name(), params, true, Run("current"), false);
    ctx.source_version = from;
    ctx.target_version = to;
    return step->Plan(ctx);
  }

  std::vector<std::string> OpPaths(const StepPlan& plan) const {
    return testing::OpPaths(plan, dst_);
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

  std::string sample_;
};

// A CApp's stylesheets are counted once a run (preflight's detection, then this step, read
// the same source CApps), and again when the file changed in between: the run's memo is keyed
// by the file's identity, not only its path.
TEST_F(MigrateDatamapperTest, StyleSheetsOfACappAreCountedOnceARunUntilItChanges) {
  RunMemo memo;
  StepContext ctx = Context("migrate_datamapper", {}, true, Run("current"), false);
  ctx.memo = &memo;
  const std::string capp = (dst_ / kCapps / kSampleName).string();
  absl::StatusOr<int> n = CappStyleSheetsToMigrate(ctx, capp);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(*n, 0);
  EXPECT_EQ(memo.size(), 1u);
  n = CappStyleSheetsToMigrate(ctx, capp);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(*n, 0);
  EXPECT_EQ(memo.size(), 1u);  // the first count, not a second read

  Write(capp, Read(dst_ / kCapps / "OrdersCompositeApplication_1.0.0.car"));
  n = CappStyleSheetsToMigrate(ctx, capp);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(memo.size(), 2u);

  Write(capp, "not a zip");  // a failure is a count too: the same message for both readers
  n = CappStyleSheetsToMigrate(ctx, capp);
  EXPECT_FALSE(n.ok());
  EXPECT_EQ(CappStyleSheetsToMigrate(ctx, capp).status(), n.status());
  EXPECT_EQ(memo.size(), 3u);
}

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

// A known answer, written out here (not computed by the code under test): the generator's first
// stylesheet after the Saxon 10 rewrite.
TEST_F(MigrateDatamapperTest, KnownAnswerForTheGeneratedStylesheet) {
  constexpr char kMigrated[] =
      R"x(<?xml version="1.0" encoding="UTF-8" standalone="no"?><xsl:stylesheet )x"
      R"x(xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:firstElementOfTheInput="orders" )x"
      R"x(xmlns:notXSLTCompatible="false" xmlns:own="http://ownfunction.org" )x"
      R"x(xmlns:xs="http://www.w3.org/2001/XMLSchema" )x"
      R"x(extension-element-prefixes="own notXSLTCompatible firstElementOfTheInput" )x"
      R"x(exclude-result-prefixes="xs" version="2.0"><xsl:template match="/"><orderSummary>)x"
      R"x(<xsl:for-each select="orders/order"><line><id><xsl:value-of select="id"/></id><total>)x"
      R"x(<xsl:value-of select="number( quantity ) * number( price )"/></total></line>)x"
      R"x(</xsl:for-each></orderSummary></xsl:template></xsl:stylesheet>)x";
  const std::string entry =
      "config_orders_xml_to_json_xsltStyleSheet_1.0.0/resources/"
      "config_orders_xml_to_json_xsltStyleSheet.xml";
  absl::StatusOr<StepPlan> plan = PlanStep("4.0.0", "4.2.0");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(ApplyAs("r1", plan->changes).ok());
  auto after = common::ReadZip((dst_ / kCapps / kSampleName).string());
  ASSERT_TRUE(after.ok()) << after.status();
  bool found = false;
  for (const common::ZipEntry& e : *after) {
    if (e.name != entry) continue;
    found = true;
    EXPECT_EQ(e.data, kMigrated);
  }
  EXPECT_TRUE(found) << entry;
}

// WSO2's real Data Mapper sample CApp (built by WSO2 tooling) in place of the generated one.
TEST_F(MigrateDatamapperTest, RealWso2SampleCapp) {
  MIMIC_SKIP_WITHOUT_FIXTURES();
  sample_ = Read(fs::path(mi_home::FixturesDir()) / kRealSample);
  Write(dst_ / kCapps / kSampleName, sample_);
  absl::StatusOr<StepPlan> plan = PlanStep("4.0.0", "4.2.0");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(OpPaths(*plan), UnorderedElementsAre(absl::StrCat(kCapps, "/", kSampleName), kLoose));
  EXPECT_EQ(plan->changes.ops[0].note, "2 Data Mapper stylesheets migrated (Saxon 10)");
  ASSERT_TRUE(ApplyAs("r1", plan->changes).ok());
  ExpectSampleMigrated();
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
