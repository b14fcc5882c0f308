// copy_registry, copy_secondary_userstores, hl7_transport and exec on MI homes made by mimic's
// generator (tests/mi_home): check is exact, a second plan is empty, a rollback restores the
// target byte for byte, the source is never written, paths stay confined; exec never runs in check.
#include "agent/steps/steps.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/change_set.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step_test_util.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDefault[] = "repository/deployment/server/synapse-configs/default";
constexpr char kUserstores[] = "repository/deployment/server/userstores";
constexpr char kHl7Jar[] = "org.wso2.micro.integrator.business.messaging.hl7-4.2.0.jar";
constexpr char kJpaJar[] = "openjpa-all-2.2.2.wso2v2.jar";

std::unique_ptr<Step> Make(const std::string& name) {
  if (name == "copy_registry") return NewCopyRegistryStep();
  if (name == "copy_secondary_userstores") return NewCopySecondaryUserstoresStep();
  if (name == "hl7_transport") return NewHl7TransportStep();
  if (name == "exec") return NewExecStep();
  return nullptr;
}

using testing::FindOp;
using testing::Read;
using testing::Tree;
using testing::Write;

// Zips the content of `dir` into `zip` with the zip(1) tool.
void Zip(const fs::path& dir, const fs::path& zip) {
  fs::create_directories(zip.parent_path());
  const std::string cmd =
      absl::StrCat("cd '", dir.string(), "' && zip -q -r -X '", zip.string(), "' .");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class MoreStepsTest : public ::testing::Test, public testing::StepHarness {
 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  static void SetUpTestSuite() { testing::PrepareMiHomes(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeRoot("more_steps_"));
    src_ = root_ / "homes/wso2mi-4.0.0";
    dst_ = root_ / "homes/wso2mi-4.2.0";
    testing::CopyMiHome("4.0.0", src_);
    testing::CopyMiHome("4.2.0", dst_);
    GuardHomes();
  }
  void TearDown() override { fs::remove_all(root_); }

  absl::StatusOr<StepPlan> PlanStep(const std::string& name,
                                    const std::map<std::string, std::string>& params = {},
                                    bool check = true) {
    std::unique_ptr<Step> step = Make(name);
    if (step == nullptr) return absl::NotFoundError(name);
    EXPECT_EQ(step->name(), name);
    StepContext ctx = Context(name, params, check, Run("current"));
    return step->Plan(ctx);
  }

  // The contract of every file step; returns the first plan. `again` is in the second message.
  StepPlan ExpectExactIdempotentReversible(const std::string& name,
                                           const std::map<std::string, std::string>& params,
                                           const std::string& again_says) {
    return StepHarness::ExpectExactIdempotentReversible(
        name, [&] { return PlanStep(name, params); }, again_says, true);
  }

  // A symlink in the source leading out of the roots makes `step` fail with PERMISSION_DENIED.
  void ExpectSymlinkOutRefused(const std::string& step, const fs::path& link,
                               const std::map<std::string, std::string>& params = {}) {
    Write(root_ / "outside/secret.xml", "not for mimic hl7://");
    fs::create_directories(link.parent_path());
    fs::create_symlink(root_ / "outside/secret.xml", link);
    const auto before = Tree(dst_);
    absl::StatusOr<StepPlan> plan = PlanStep(step, params);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << plan.status();
    EXPECT_THAT(plan.status().message(), HasSubstr(link.filename().string()));
    EXPECT_EQ(Tree(dst_), before);
    fs::remove(link);
  }

  // The wso2mi-hl7 zip an operator downloads, inside the allowed roots.
  fs::path MakeHl7Zip(const std::string& version = "4.2.0") {
    const fs::path dir = root_ / "zipsrc" / version;
    const std::string folder = "wso2mi-hl7-" + version;
    Write(dir / folder / ("org.wso2.micro.integrator.business.messaging.hl7-" + version + ".jar"),
          "hl7 bundle " + version);
    Write(dir / folder / kJpaJar, "openjpa bytes");
    const fs::path zip = root_ / "homes/ops" / (folder + ".zip");
    Zip(dir, zip);
    return zip;
  }

  void UseHl7InSource() {
    Write(src_ / kDefault / "endpoints/LabEp.xml",
          "<endpoint name=\"LabEp\"><address uri=\"hl7://lab:9988\"/></endpoint>");
  }
};

// ---- copy_registry ----------------------------------------------------------------------------

TEST_F(MoreStepsTest, CopyRegistry) {
  Write(src_ / "registry/config/app/settings.xml", "<settings/>");
  Write(src_ / "registry/governance/endpoints/Ep.xml", "<endpoint name=\"Ep\"/>");
  Write(src_ / "registry/governance/endpoints/.metadata/Ep.xml.meta", "mediaType=text/xml");
  Write(src_ / "registry/local/state.txt", "local");
  Write(src_ / "registry/stray.txt", "not a partition");
  Write(dst_ / "registry/governance/endpoints/Ep.xml", "<endpoint name=\"older\"/>");
  StepPlan plan = ExpectExactIdempotentReversible("copy_registry", {}, "up to date (4 registry");
  EXPECT_EQ(plan.message, "4 registry files to copy (3 new, 1 replaced, 0 already there)");
  const FileOp* meta = FindOp(plan, "registry/governance/endpoints/.metadata/Ep.xml.meta");
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->new_sha256, common::Sha256Hex("mediaType=text/xml"));
  EXPECT_EQ(FindOp(plan, "stray.txt"), nullptr);
  EXPECT_THAT(Logs(), HasSubstr("registry/ also holds stray.txt"));
}

TEST_F(MoreStepsTest, CopyRegistrySkippedWithoutRegistryFolder) {
  absl::StatusOr<StepPlan> plan = PlanStep("copy_registry");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("no registry/ folder"));
  EXPECT_TRUE(plan->changes.empty());
}

TEST_F(MoreStepsTest, CopyRegistryWarnsAboutAMovedRoot) {
  Write(src_ / "registry/local/a.txt", "a");
  ASSERT_TRUE(PlanStep("copy_registry").ok());  // the shipped file's roots are commented out
  EXPECT_THAT(Logs(), Not(HasSubstr("RegRoot")));
  std::string xml = Read(src_ / kDefault / "registry.xml");
  xml.replace(xml.find("</registry>"), 11,
              "<parameter name=\"GovRegRoot\">file:///srv/gov</parameter></registry>");
  Write(src_ / kDefault / "registry.xml", xml);
  ASSERT_TRUE(PlanStep("copy_registry").ok());
  EXPECT_THAT(Logs(), HasSubstr("sets GovRegRoot"));
}

// ---- copy_secondary_userstores ----------------------------------------------------------------

TEST_F(MoreStepsTest, CopySecondaryUserstores) {
  Write(src_ / kUserstores / "example_com.xml", "<UserStoreManager domain=\"example.com\"/>");
  Write(src_ / kUserstores / "partners.xml", "<UserStoreManager domain=\"partners\"/>");
  Write(src_ / kUserstores / "README.txt", "notes");
  Write(src_ / kUserstores / "old/backup.xml", "<UserStoreManager/>");
  StepPlan plan = ExpectExactIdempotentReversible("copy_secondary_userstores", {},
                                                  "up to date (2 secondary user stores)");
  EXPECT_EQ(plan.message, "2 secondary user stores to copy (2 new, 0 replaced, 0 already there)");
  EXPECT_EQ(FindOp(plan, "README.txt"), nullptr);
  EXPECT_EQ(FindOp(plan, "backup.xml"), nullptr);
}

TEST_F(MoreStepsTest, CopySecondaryUserstoresSkippedWhenAbsent) {
  absl::StatusOr<StepPlan> plan = PlanStep("copy_secondary_userstores");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("no secondary user stores"));
  EXPECT_TRUE(plan->changes.empty());
}

// ---- hl7_transport ----------------------------------------------------------------------------

TEST_F(MoreStepsTest, Hl7NotUsed) {
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED);
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(plan->facts.at("hl7_used"), "false");
}

TEST_F(MoreStepsTest, Hl7InboundEndpointAloneNeedsNoJars) {
  Write(src_ / kDefault / "inbound-endpoints/Hl7In.xml",
        "<inboundEndpoint name=\"Hl7In\" protocol=\"hl7\" sequence=\"main\">"
        "<parameters><parameter name=\"inbound.hl7.Port\">20000</parameter></parameters>"
        "</inboundEndpoint>");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");
  EXPECT_THAT(Logs(), HasSubstr("inbound-endpoints/Hl7In.xml: HL7 inbound endpoint"));
}

// One HL7 signal: `text` is appended to conf/deployment.toml when `rel` is empty, written to
// `rel` otherwise, and for a `rel` ending in .car zipped as the CApp entry Ep_1.0.0/Ep.xml.
struct Hl7Signal {
  const char* name;
  const char* rel;
  const char* text;
  const char* says;  // in the failure message
};

const Hl7Signal kHl7Signals[] = {
    {"custom_transport_listener", "",
     "[[custom_transport.listener]]\nclass = \"org.wso2.micro.integrator.business.messaging.hl7."
     "transport.HL7TransportListener\"\nprotocol = \"hl7\"\n",
     "[[custom_transport.listener]] protocol = \"hl7\""},
    {"custom_transport_sender_class", "",
     "[[custom_transport.sender]]\nclass = \"org.example.Hl7Sender\"\nprotocol = \"mllp\"\n",
     "[[custom_transport.sender]]"},
    {"transport_hl7_table", "", "[transport.hl7]\nlistener.enable = true\n",
     "[transport.hl7] table"},
    {"message_builder", "",
     "[[custom_message_builders]]\nclass = \"a.B\"\ncontent_type = \"application/edi-hl7\"\n",
     "[[custom_message_builders]] content_type = \"application/edi-hl7\""},
    {"jar_in_lib", "lib/openjpa-all-2.2.2.wso2v2.jar", "jpa",
     "lib/openjpa-all-2.2.2.wso2v2.jar: OpenJPA jar"},
    {"jar_in_dropins", "dropins/org.wso2.micro.integrator.business.messaging.hl7-4.0.0.jar", "b",
     "hl7-4.0.0.jar: HL7 transport jar"},
    {"loose_endpoint_address",
     "repository/deployment/server/synapse-configs/default/endpoints/LabEp.xml",
     "<address uri=\"HL7://lab:9988\"/>", "endpoints/LabEp.xml: hl7:// endpoint address"},
    {"loose_proxy_transports",
     "repository/deployment/server/synapse-configs/default/proxy-services/Adt.xml",
     "<proxy name=\"Adt\" transports = 'https, hl7'><target/></proxy>",
     "proxy-services/Adt.xml: proxy transports include hl7"},
    {"loose_transport_parameter",
     "repository/deployment/server/synapse-configs/default/proxy-services/Adt.xml",
     "<proxy transports=\"http\"><parameter name=\"transport.hl7.ValidateMessage\">false"
     "</parameter></proxy>",
     "transport.hl7.* parameter"},
    {"loose_jpa_store",
     "repository/deployment/server/synapse-configs/default/message-stores/Hl7Store.xml",
     "<messageStore class=\"org.wso2.micro.integrator.business.messaging.hl7.store.jpa.JPAStore\""
     " name=\"Hl7Store\"/>",
     "message-stores/Hl7Store.xml: message store class"},
    {"registry_endpoint", "registry/governance/endpoints/Lab.xml", "<address uri=\"hl7://l:1\"/>",
     "registry/governance/endpoints/Lab.xml: hl7:// endpoint address"},
    {"capp", "repository/deployment/server/carbonapps/Lab_1.0.0.car",
     "<address uri=\"hl7://lab:9988\"/>",
     "carbonapps/Lab_1.0.0.car!Ep_1.0.0/Ep.xml: hl7:// endpoint address"},
};

class Hl7SignalTest : public MoreStepsTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(Hl7SignalTest, EachSignalAloneRequiresTheJars) {
  const Hl7Signal& signal = kHl7Signals[GetParam()];
  const std::string rel = signal.rel;
  if (rel.empty()) {
    Write(src_ / "conf/deployment.toml",
          absl::StrCat(Read(src_ / "conf/deployment.toml"), "\n", signal.text));
  } else if (rel.size() > 4 && rel.compare(rel.size() - 4, 4, ".car") == 0) {
    Write(root_ / "capp/Ep_1.0.0/Ep.xml", signal.text);
    Write(root_ / "capp/artifacts.xml", "<artifacts/>");
    Zip(root_ / "capp", src_ / rel);
  } else {
    Write(src_ / rel, signal.text);
  }
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_FAILED) << plan->message;
  EXPECT_THAT(plan->message, HasSubstr("HL7 used (1 signal)"));
  EXPECT_THAT(plan->message, HasSubstr(signal.says));
  EXPECT_THAT(plan->message, HasSubstr("set param hl7_zip"));
  EXPECT_THAT(Logs(), HasSubstr(absl::StrCat("HL7 use: ")));
  EXPECT_TRUE(plan->changes.empty());
}

INSTANTIATE_TEST_SUITE_P(Signals, Hl7SignalTest,
                         ::testing::Range<size_t>(0, std::size(kHl7Signals)),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(kHl7Signals[info.param].name);
                         });

TEST_F(MoreStepsTest, Hl7JarsFromZip) {
  UseHl7InSource();
  const fs::path zip = MakeHl7Zip();
  StepPlan plan = ExpectExactIdempotentReversible("hl7_transport", {{"hl7_zip", zip.string()}},
                                                  "jars already installed in dropins/");
  EXPECT_EQ(plan.message, absl::StrCat("HL7 used (1 signal); ", kHl7Jar, ", ", kJpaJar,
                                       " to install into dropins/ from wso2mi-hl7-4.2.0.zip"));
  const FileOp* op = FindOp(plan, absl::StrCat("/dropins/", kHl7Jar));
  ASSERT_NE(op, nullptr);
  EXPECT_TRUE(op->has_content);
  EXPECT_EQ(op->new_sha256, common::Sha256Hex("hl7 bundle 4.2.0"));
  EXPECT_EQ(plan.facts.at("hl7_used"), "true");
  EXPECT_THAT(Logs(), Not(HasSubstr("is built for MI")));
}

TEST_F(MoreStepsTest, Hl7JarsFromDirAndOtherVersionsRemoved) {
  UseHl7InSource();
  Write(root_ / "homes/ops/hl7/" / kHl7Jar, "hl7 bundle 4.2.0");
  Write(root_ / "homes/ops/hl7/" / kJpaJar, "openjpa bytes");
  // copy_custom_components carried the source's 4.0.0 bundle over.
  Write(dst_ / "dropins/org.wso2.micro.integrator.business.messaging.hl7-4.0.0.jar", "old");
  StepPlan plan = ExpectExactIdempotentReversible(
      "hl7_transport", {{"hl7_dir", (root_ / "homes/ops/hl7").string()}}, "already installed");
  const FileOp* del = FindOp(plan, "hl7-4.0.0.jar");
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(del->kind, FileOp::Kind::kDelete);
  EXPECT_EQ(del->expected_sha256, common::Sha256Hex("old"));
  EXPECT_THAT(plan.message, HasSubstr("other versions removed"));
  const FileOp* copy = FindOp(plan, absl::StrCat("/dropins/", kJpaJar));
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->source_path, (root_ / "homes/ops/hl7" / kJpaJar).string());
}

TEST_F(MoreStepsTest, Hl7VersionMismatchWarns) {
  UseHl7InSource();
  ASSERT_TRUE(PlanStep("hl7_transport", {{"hl7_zip", MakeHl7Zip("4.0.0").string()}}).ok());
  EXPECT_THAT(Logs(), HasSubstr("hl7-4.0.0.jar is built for MI 4.0.0 but the target is MI 4.2.0"));
}

TEST_F(MoreStepsTest, Hl7AlreadyInstalledNeedsNoParams) {
  UseHl7InSource();
  Write(dst_ / "dropins" / kHl7Jar, "installed by hand");
  Write(dst_ / "dropins" / kJpaJar, "installed by hand");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED);
  EXPECT_THAT(plan->message, HasSubstr("jars already installed"));
  EXPECT_TRUE(plan->changes.empty());
}

TEST_F(MoreStepsTest, Hl7BadInputs) {
  UseHl7InSource();
  auto zip_status = [this](const fs::path& zip) {
    return PlanStep("hl7_transport", {{"hl7_zip", zip.string()}}).status();
  };
  Write(root_ / "outside/wso2mi-hl7-4.2.0.zip", "zip");
  EXPECT_EQ(zip_status(root_ / "outside/wso2mi-hl7-4.2.0.zip").code(),
            absl::StatusCode::kPermissionDenied);
  Write(root_ / "zipsrc/bad/" / kHl7Jar, "bundle");  // no OpenJPA jar
  Zip(root_ / "zipsrc/bad", root_ / "homes/ops/bad.zip");
  absl::Status st = zip_status(root_ / "homes/ops/bad.zip");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("no openjpa-all jar"));
  Write(root_ / "homes/ops/not.zip", "plain text");
  EXPECT_EQ(zip_status(root_ / "homes/ops/not.zip").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanStep("hl7_transport", {{"hl7_zip", "/a"}, {"hl7_dir", "/b"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MoreStepsTest, Hl7TomlSyntaxErrorNamesFileLineColumn) {
  Write(src_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\n[broken\n");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(),
              HasSubstr(absl::StrCat((src_ / "conf/deployment.toml").string(), ":3:")));
}

TEST_F(MoreStepsTest, Hl7HugeCappEntryIsSkipped) {
  Write(root_ / "capp/Big_1.0.0/big.xml", std::string(17 << 20, ' ') + "hl7://lab:1");
  Zip(root_ / "capp", src_ / "repository/deployment/server/carbonapps/Big_1.0.0.car");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");
  EXPECT_THAT(Logs(), HasSubstr("Big_1.0.0.car!Big_1.0.0/big.xml: larger than 16 MiB"));
}

TEST_F(MoreStepsTest, SymlinksOutOfTheRootsAreRefused) {
  Write(src_ / "registry/local/a.txt", "a");
  ExpectSymlinkOutRefused("copy_registry", src_ / "registry/governance/evil.xml");
  ExpectSymlinkOutRefused("copy_secondary_userstores", src_ / kUserstores / "evil2.xml");
  ExpectSymlinkOutRefused("hl7_transport", src_ / kDefault / "endpoints/evil3.xml");
}

// ---- exec -------------------------------------------------------------------------------------

TEST_F(MoreStepsTest, ExecCheckNeverRunsApplyDoes) {
  const std::map<std::string, std::string> params = {{"command", "touch marker && pwd"},
                                                     {"creates", "marker"}};
  absl::StatusOr<StepPlan> check = PlanStep("exec", params, /*check=*/true);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_THAT(check->message, HasSubstr("would run: touch marker && pwd (in " + dst_.string()));
  EXPECT_FALSE(fs::exists(dst_ / "marker"));
  EXPECT_THAT(Logs(), HasSubstr("W the command's effects are outside the run's snapshot"));

  absl::StatusOr<StepPlan> apply = PlanStep("exec", params, /*check=*/false);
  ASSERT_TRUE(apply.ok()) << apply.status();
  EXPECT_EQ(apply->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_TRUE(apply->changes.empty());
  EXPECT_THAT(apply->message, HasSubstr("ran: touch marker && pwd (exit code 0"));
  EXPECT_TRUE(fs::exists(dst_ / "marker"));
  EXPECT_THAT(Logs(), HasSubstr("I " + dst_.string()));  // pwd: cwd is the target home

  // creates now exists: skipped, in check and in apply alike.
  for (bool check_mode : {true, false}) {
    absl::StatusOr<StepPlan> again = PlanStep("exec", params, check_mode);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->forced_status, mimic::v1::STEP_SKIPPED);
    EXPECT_THAT(again->message, HasSubstr("creates: " + (dst_ / "marker").string() + " exists"));
  }
}

TEST_F(MoreStepsTest, ExecRemovesGuardAndChdir) {
  fs::create_directories(root_ / "homes/work");
  const std::map<std::string, std::string> params = {
      {"command", "rm todo && echo \"$MIMIC_TARGET_HOME\""},
      {"chdir", (root_ / "homes/work").string()},
      {"removes", "todo"}};
  absl::StatusOr<StepPlan> plan = PlanStep("exec", params, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("does not exist"));
  Write(root_ / "homes/work/todo", "x");
  plan = PlanStep("exec", params, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_FALSE(fs::exists(root_ / "homes/work/todo"));
  EXPECT_THAT(Logs(), HasSubstr("I " + dst_.string()));

  EXPECT_EQ(PlanStep("exec", {{"command", "true"}, {"chdir", (root_ / "outside").string()}})
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      PlanStep("exec", {{"command", "true"}, {"creates", "../../../etc/passwd"}}).status().code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(PlanStep("exec", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanStep("exec", {{"command", "true"}, {"timeout_seconds", "soon"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MoreStepsTest, ExecExitCodeFailure) {
  absl::StatusOr<StepPlan> plan =
      PlanStep("exec", {{"command", "echo one; echo two >&2; exit 3"}}, false);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("exit code 3"));
  EXPECT_THAT(plan.status().message(), HasSubstr("two"));
  EXPECT_THAT(Logs(), HasSubstr("I [stderr] two"));
}

TEST_F(MoreStepsTest, ExecTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<StepPlan> plan =
      PlanStep("exec", {{"command", "echo started; sleep 30"}, {"timeout_seconds", "1"}}, false);
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(), HasSubstr("timed out after 1 s"));
  EXPECT_THAT(plan.status().message(), HasSubstr("started"));
  EXPECT_LT(secs, 8.0);
}

TEST_F(MoreStepsTest, ExecOutputIsCapturedAndRedacted) {
  absl::StatusOr<StepPlan> plan =
      PlanStep("exec", {{"command", "echo password=hunter2; echo done"}}, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Logs(), HasSubstr("I password=<redacted>"));
  EXPECT_THAT(Logs(), HasSubstr("I done"));
  EXPECT_THAT(Logs(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(plan->message, Not(HasSubstr("hunter2")));
  absl::StatusOr<StepPlan> check = PlanStep("exec", {{"command", "echo password=hunter2"}});
  ASSERT_TRUE(check.ok());
  EXPECT_THAT(check->message, HasSubstr("would run: echo password=<redacted>"));
}

}  // namespace
}  // namespace mimic::agent
