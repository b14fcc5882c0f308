// The hl7_transport step on generated MI homes (fixtures: steps_test_fixture.h).
#include <fstream>

#include "agent/steps/migration_features.h"
#include "common/mi/capp.h"
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::generated_homes {
namespace {

using Hl7TransportTest = GeneratedHomesTest;

TEST_F(Hl7TransportTest, Hl7NotUsed) {
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED);
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(plan->facts.at("hl7_used"), "false");
}

TEST_F(Hl7TransportTest, Hl7InboundEndpointAloneNeedsNoJars) {
  Write(src_ / kDefault / "inbound-endpoints/Hl7In.xml",
        "<inboundEndpoint name=\"Hl7In\" protocol=\"hl7\" sequence=\"main\">"
        "<parameters><parameter name=\"inbound.hl7.Port\">20000</parameter></parameters>"
        "</inboundEndpoint>");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");
  EXPECT_THAT(Logs(), HasSubstr("inbound-endpoints/Hl7In.xml: HL7 inbound endpoint"));
}

// A run scans the source for HL7 once: hl7_transport takes the detection preflight made
// (DetectHl7Signals) from the run's memo, with its log lines, instead of reading the source
// again. Shown by removing the signal in between: the run's plan still sees it, a step
// planning alone does not.
TEST_F(Hl7TransportTest, ARunDetectsOnceForPreflightAndHl7Transport) {
  const std::filesystem::path endpoint = src_ / kDefault / "endpoints/LabEp.xml";
  Write(endpoint, "<address uri=\"hl7://lab:9988\"/>");
  Write(src_ / "repository/deployment/server/carbonapps/Broken_1.0.0.car", "not a zip");
  RunMemo memo;
  StepContext ctx = Context("hl7_transport", {}, true, Run("current"));
  ctx.memo = &memo;
  absl::StatusOr<Homes> homes = ResolveHomes(ctx);
  ASSERT_TRUE(homes.ok()) << homes.status();
  absl::StatusOr<std::vector<std::string>> signals = DetectHl7Signals(ctx, *homes);
  ASSERT_TRUE(signals.ok()) << signals.status();
  ASSERT_THAT(*signals, ElementsAre(HasSubstr("endpoints/LabEp.xml: hl7:// endpoint address")));
  std::filesystem::remove(endpoint);

  absl::StatusOr<StepPlan> in_run = MakeStep("hl7_transport")->Plan(ctx);
  ASSERT_TRUE(in_run.ok()) << in_run.status();
  EXPECT_EQ(in_run->facts.at("hl7_used"), "true");
  EXPECT_THAT(in_run->message, HasSubstr("HL7 used (1 signal)"));
  // The scan's log lines again, as the step's own scan would have logged them.
  const std::string warning = "Broken_1.0.0.car: cannot scan for HL7 use";
  const std::string logs = Logs();
  ASSERT_NE(logs.find(warning), std::string::npos) << logs;
  EXPECT_NE(logs.find(warning), logs.rfind(warning)) << logs;

  absl::StatusOr<StepPlan> alone = PlanStep("hl7_transport");
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->facts.at("hl7_used"), "false");
}

// The bytes this process has read so far (read and pread calls; /proc/self/io's rchar).
uint64_t BytesReadSoFar() {
  std::ifstream io("/proc/self/io");
  std::string field;
  uint64_t value = 0;
  while (io >> field >> value) {
    if (field == "rchar:") return value;
  }
  ADD_FAILURE() << "no rchar in /proc/self/io";
  return 0;
}

// Preflight reads each source CApp once for both its questions: the Data Mapper stylesheet
// count (CappStyleSheetsToMigrate) takes, in the same read, the entries the HL7 scan reads, and
// the scan (CappEntriesForHl7Scan) gets them from the run's memo without reading the file
// (shown by the bytes the process reads: any read of the CApp reads its last 64 KiB); once:
// asked again, it reads the file, as it does without a memo.
TEST_F(Hl7TransportTest, PreflightReadsASourceCappOnceForStyleSheetsAndHl7Scan) {
  std::string blob(200 << 10, 'b');
  blob[0] = '\0';
  std::vector<common::ZipEntry> entries(3);
  entries[0] = {"Lab_1.0.0/Lab.xml", "<address uri=\"hl7://lab:9988\"/>"};
  entries[1] = {"Lab_1.0.0/lib.bin", blob};
  entries[1].compression = common::kZipStore;
  entries[2] = {"Lab_1.0.0/x_xsltStyleSheet.xml", common::kOldXsltPrefixes};
  absl::StatusOr<std::string> bytes = common::WriteZip(entries);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const std::string capp = (src_ / "repository/deployment/server/carbonapps/Lab_1.0.0.car").string();
  Write(capp, *bytes);
  RunMemo memo;
  StepContext ctx = Context("preflight", {}, true, Run("current"));
  ctx.memo = &memo;
  const absl::StatusOr<std::vector<common::ZipEntry>> own =
      common::ReadZip(capp, Hl7ScanOfCappLimits());
  ASSERT_TRUE(own.ok()) << own.status();

  absl::StatusOr<int> n = CappStyleSheetsToMigrate(ctx, capp, /*also_for_hl7_scan=*/true);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  uint64_t before = BytesReadSoFar();
  absl::StatusOr<std::vector<common::ZipEntry>> scanned = CappEntriesForHl7Scan(ctx, capp);
  EXPECT_LT(BytesReadSoFar() - before, 4096u) << "the HL7 scan read the CApp again";
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  ASSERT_EQ(scanned->size(), own->size());
  for (size_t i = 0; i < own->size(); ++i) {
    EXPECT_EQ((*scanned)[i].name, (*own)[i].name);
    EXPECT_EQ((*scanned)[i].data, (*own)[i].data);
    EXPECT_EQ((*scanned)[i].content_read, (*own)[i].content_read);
    EXPECT_EQ((*scanned)[i].binary, (*own)[i].binary);
  }
  EXPECT_TRUE((*scanned)[1].binary);

  before = BytesReadSoFar();
  scanned = CappEntriesForHl7Scan(ctx, capp);
  EXPECT_GT(BytesReadSoFar() - before, 65536u);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_EQ((*scanned)[0].data, (*own)[0].data);
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

class Hl7SignalTest : public GeneratedHomesTest, public ::testing::WithParamInterface<size_t> {};

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

TEST_F(Hl7TransportTest, Hl7JarsFromZip) {
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

TEST_F(Hl7TransportTest, Hl7JarsFromDirAndOtherVersionsRemoved) {
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

TEST_F(Hl7TransportTest, Hl7VersionMismatchWarns) {
  UseHl7InSource();
  ASSERT_TRUE(PlanStep("hl7_transport", {{"hl7_zip", MakeHl7Zip("4.0.0").string()}}).ok());
  EXPECT_THAT(Logs(), HasSubstr("hl7-4.0.0.jar is built for MI 4.0.0 but the target is MI 4.2.0"));
}

TEST_F(Hl7TransportTest, Hl7AlreadyInstalledNeedsNoParams) {
  UseHl7InSource();
  Write(dst_ / "dropins" / kHl7Jar, "installed by hand");
  Write(dst_ / "dropins" / kJpaJar, "installed by hand");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_STATUS_UNSPECIFIED);
  EXPECT_THAT(plan->message, HasSubstr("jars already installed"));
  EXPECT_TRUE(plan->changes.empty());
}

TEST_F(Hl7TransportTest, Hl7BadInputs) {
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

TEST_F(Hl7TransportTest, Hl7TomlSyntaxErrorNamesFileLineColumn) {
  Write(src_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\n[broken\n");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(),
              HasSubstr(absl::StrCat((src_ / "conf/deployment.toml").string(), ":3:")));
}

TEST_F(Hl7TransportTest, Hl7HugeCappEntryIsSkipped) {
  Write(root_ / "capp/Big_1.0.0/big.xml", std::string(17 << 20, ' ') + "hl7://lab:1");
  Zip(root_ / "capp", src_ / "repository/deployment/server/carbonapps/Big_1.0.0.car");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");
  EXPECT_THAT(Logs(), HasSubstr("Big_1.0.0.car!Big_1.0.0/big.xml: larger than 16 MiB"));
}

// HL7 in use: the target's deployment.toml (as merge_config leaves it) must enable the
// transport with MI 4.x's class names; hl7_transport says what is missing or still old, and a
// CApp holding EI 7.1 class names (mimic does not re-pack CApps for this) is named.
TEST_F(Hl7TransportTest, TargetTomlMustEnableTheTransportWith4xClassNames) {
  UseHl7InSource();
  const fs::path zip = MakeHl7Zip();
  const fs::path toml = dst_ / "conf/deployment.toml";
  const std::string shipped = Read(toml);
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport", {{"hl7_zip", zip.string()}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->facts.at("hl7_transport_enabled"), "false");
  EXPECT_THAT(Logs(), HasSubstr("the target's conf/deployment.toml enables no HL7 transport: add "
                                "[[custom_transport.listener]] class = \"org.wso2.micro.integrator."
                                "business.messaging.hl7.transport.HL7TransportListener\""));

  Write(toml, shipped +
                  "\n[[custom_transport.sender]]\n"
                  "class = \"org.wso2.carbon.business.messaging.hl7.transport.HL7TransportSender\"\n"
                  "protocol = \"hl7\"\n");
  plan = PlanStep("hl7_transport", {{"hl7_zip", zip.string()}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->facts.at("hl7_transport_enabled"), "false");
  EXPECT_THAT(Logs(), HasSubstr("conf/deployment.toml:"));
  EXPECT_THAT(Logs(), HasSubstr("still names the EI 7.1 class org.wso2.carbon.business.messaging."
                                "hl7.transport.HL7TransportSender (merge_config rewrites it)"));

  Write(toml, shipped +
                  "\n[[custom_transport.sender]]\n"
                  "class = \"org.wso2.micro.integrator.business.messaging.hl7.transport."
                  "HL7TransportSender\"\nprotocol = \"hl7\"\n");
  Write(src_ / "repository/deployment/server/carbonapps/Lab_1.0.0.car",
        *mi_home::MakeJar("", {{"Lab_1.0.0/Lab-1.0.0.xml",
                                "<messageStore class=\"org.wso2.carbon.business.messaging.hl7."
                                "store.jpa.JPAStore\"/>"}}));
  plan = PlanStep("hl7_transport", {{"hl7_zip", zip.string()}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->facts.at("hl7_transport_enabled"), "true");
  EXPECT_THAT(Logs(), HasSubstr("HL7 transport enabled in the target's conf/deployment.toml "
                                "(sender)"));
  EXPECT_THAT(Logs(), HasSubstr("carbonapps/Lab_1.0.0.car!Lab_1.0.0/Lab-1.0.0.xml: EI 7.1 HL7 "
                                "class names (org.wso2.carbon.business.messaging.hl7.*)"));
}

TEST_F(Hl7TransportTest, Hl7BinaryCappEntryIsNotScannedTextIsWhateverItsName) {
  // A bundled binary (a NUL byte in its head) that happens to hold the bytes "hl7://" is no
  // synapse artifact; a text entry is scanned whatever its name.
  Write(root_ / "capp/Lib_1.0.0/lib.bin", std::string("\x7f" "ELF\0\0\0", 7) + "hl7://x");
  Write(root_ / "capp/artifacts.xml", "<artifacts/>");
  Zip(root_ / "capp", src_ / "repository/deployment/server/carbonapps/Lib_1.0.0.car");
  absl::StatusOr<StepPlan> plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->message, "HL7 not used");

  Write(root_ / "capp2/Ep_1.0.0/endpoint.bin", "<address uri=\"hl7://lab:1\"/>");
  Zip(root_ / "capp2", src_ / "repository/deployment/server/carbonapps/Ep_1.0.0.car");
  plan = PlanStep("hl7_transport");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->message, HasSubstr("Ep_1.0.0.car!Ep_1.0.0/endpoint.bin: hl7:// endpoint"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::generated_homes
