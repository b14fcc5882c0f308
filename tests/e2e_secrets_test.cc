// The secrets suite (issue 9): a fleet of two real agents and the real controller with the
// audit on, configured with a distinctive value for every secret shape mimic must hide (in the
// source MI homes' configuration, the plan, the inventory, exec command lines and the output of
// those commands). After a check, an apply (--output json), a failing run, a rollback, every
// report format, `mimic status`, `mimic logs` and `mimic audit`, every byte mimic wrote or
// printed is searched: command output, the audit database's file bytes, the reports, the
// agents' logs, their raw journals and snapshot metadata, and the agents' event streams (read
// over gRPC with Attach). The check, apply and rollbacks run with --diff, so every changed text
// file's diff passes through the same output, audit and reports. None may hold any secret value, nor the random part of one (a value
// cut in two by a redaction that stopped early). The migrated MI files themselves must carry
// the secrets (checked too: that is what makes the search meaningful).
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/fs.h"
#include "common/rpc/tls.h"
#include "gtest/gtest.h"
#include "mimic/v1/agent.grpc.pb.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

const std::vector<std::string> kHosts = {"mi-dev-1", "mi-prod-1"};
constexpr char kCredsXml[] =
    "repository/deployment/server/synapse-configs/default/local-entries/mimic-creds.xml";

// Secret shape -> a distinctive value "S3cr3t-<shape>-<random>", the random part drawn from
// letters that are not hex digits (so it cannot match inside a sha256).
class Secrets {
 public:
  explicit Secrets(uint32_t seed) : rng_(seed) {}
  const std::string& operator[](const std::string& shape) {
    auto it = values_.find(shape);
    if (it == values_.end()) {
      static constexpr char kLetters[] = "ghjkmnpqrstvwxyz";
      std::string random;
      for (int i = 0; i < 10; ++i) random += kLetters[rng_() % 16];
      it = values_.emplace(shape, "S3cr3t-" + shape + "-" + random).first;
      randoms_[shape] = random;
    }
    return it->second;
  }
  const std::map<std::string, std::string>& values() const { return values_; }
  const std::map<std::string, std::string>& randoms() const { return randoms_; }

 private:
  std::mt19937 rng_;
  std::map<std::string, std::string> values_, randoms_;
};

class SecretsSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    secrets_ = std::make_unique<Secrets>(seed_);
    dir_ = MakeTempDir("sfleet");
    MakeCerts(dir_ + "/certs", kHosts);
    for (const std::string& h : kHosts) {
      MakeMiHome("4.0.0", Source(h), "source", h);
      MakeMiHome("4.2.0", Target(h), "target", h);
      AddSourceSecrets(h);
    }
  }

  void TearDown() override { agents_.clear(); }

  std::string Root(const std::string& h) { return dir_ + "/mi/" + h; }
  std::string Source(const std::string& h) { return Root(h) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& h) { return Root(h) + "/wso2mi-4.2.0"; }
  std::string StateDir(const std::string& h) { return dir_ + "/agent-state/" + h; }
  Secrets& S() { return *secrets_; }

  // The source's deployment.toml gets the shapes the issue found leaking (and ones that already
  // passed); a file the exec step prints holds command-output shapes.
  void AddSourceSecrets(const std::string& h) {
    const std::string path = Source(h) + "/conf/deployment.toml";
    std::string toml = ReadText(path);
    const std::string anchor = "\nparameter.connection_factory_type = \"queue\"\n";
    ASSERT_NE(toml.find(anchor), std::string::npos);
    toml = absl::StrReplaceAll(
        toml, {{anchor, absl::StrCat(anchor, "parameter.\"java.naming.security.credentials\" = \"",
                                     S()["jndi_credentials"], "\"\n")}});
    // One more alias in its [secrets] table (wherever that table is in the generated file).
    const std::string secrets = "\n[secrets]\n";
    ASSERT_NE(toml.find(secrets), std::string::npos);
    toml = absl::StrReplaceAll(
        toml, {{secrets, absl::StrCat(secrets, "extra_alias = \"[", S()["secrets_table"],
                                      "]\"\n")}});
    absl::StrAppend(&toml, "\n[custom_settings]\n",
                    "keystore_pass = \"", S()["keystore_pass"], "\"\n",
                    "ssl_passphrase = \"", S()["ssl_passphrase"], "\"\n",
                    "client_secret = \"", S()["client_secret"], "\"\n",
                    "api_key = \"", S()["api_key"], "\"\n",
                    "db_pwd = \"", S()["db_pwd"], "\"\n",
                    "key_password = \"", S()["key_password"], "\"\n",
                    "broker_url = \"amqp://mimic:", S()["toml_url_userinfo"], "@broker:5672\"\n");
    WriteText(path, toml);
    // --diff shows the text of every file a run changes: an XML artifact copy_deployment brings
    // holds secrets no configuration registers by value (only the diff lines' redaction hides
    // them).
    WriteText(Source(h) + "/" + kCredsXml,
              absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                           "<localEntry key=\"mimic-creds\" xmlns=\"http://ws.apache.org/ns/synapse\">\n",
                           "    <Property name=\"ConnectionPassword\">", S()["xml_property"],
                           "</Property>\n",
                           "    <Password>", S()["xml_element"], "</Password>\n",
                           "</localEntry>\n"));
    WriteText(Source(h) + "/conf/mimic-test-output.txt",
              absl::StrCat("keytool -list -storepass ", S()["output_storepass"], "\n",
                           "token accepted: Bearer ", S()["output_bearer"], "\n"));
  }

  void StartAgents() {
    for (const std::string& h : kHosts) {
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = StateDir(h);
      o.allowed_roots = {Root(h)};
      o.allow_exec = true;
      agents_.push_back(std::make_unique<AgentProcess>(o));
      ASSERT_TRUE(agents_.back()->Start());
    }
  }

  // Inventory: each host has a secret var (db_pass), a token var and one that is not secret.
  void WriteInventory() {
    std::string inv =
        "[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
        "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n";
    absl::StrAppend(&inv, "\n[vars]\napi_token = \"", S()["inventory_api_token"], "\"\n");
    for (size_t i = 0; i < kHosts.size(); ++i) {
      absl::StrAppend(&inv, "\n[hosts.", kHosts[i], "]\naddress = \"", agents_[i]->address(),
                      "\"\nenvironment = \"", i == 0 ? "dev" : "prod",
                      "\"\nvars = { source_home = \"", Source(kHosts[i]), "\", target_home = \"",
                      Target(kHosts[i]), "\", db_pass = \"", S()["inventory_db_pass"], "\" }\n");
    }
    WriteText(dir_ + "/inventory.toml", inv);
  }

  // The exec command holds every command-line shape, prints the command-output ones (from a
  // file, so they are in no plan or config), and echoes the inventory's secret vars through
  // templates: only redaction BY VALUE hides those.
  std::string ExecCommand() {
    return absl::StrCat(
        "cat \"$MIMIC_SOURCE_HOME/conf/mimic-test-output.txt\"; ",
        ": keytool -storepass ", S()["cmd_storepass"], " -keypass ", S()["cmd_keypass"],
        " -srcstorepass ", S()["cmd_srcstorepass"], "; ",
        ": curl -u admin:", S()["cmd_curl_u"], " --user admin:", S()["cmd_curl_user"], "; ",
        ": openssl pkcs12 -passout pass:", S()["cmd_passout"], " -passin pass:",
        S()["cmd_passin"], "; ",
        ": tool --password=", S()["cmd_password_eq"], " https://u:", S()["cmd_url_userinfo"],
        "@h/ -H \"Authorization: Bearer ", S()["cmd_auth_header"], "\"; ",
        ": mysql -u root -p", S()["cmd_mysql_p"], " db; ",
        "echo db {{db_pass}} api {{api_token}}");
  }

  void WritePlans() {
    const std::string plan = absl::StrCat(
        "[migration]\npath = \"4.0.0->4.2.0\"\n",
        "\n[[steps]]\nname = \"preflight\"\n",
        "[[steps]]\nname = \"snapshot_target\"\n",
        "[[steps]]\nname = \"copy_deployment\"\n",
        "[[steps]]\nname = \"copy_keystores\"\n",
        "[[steps]]\nname = \"merge_config\"\nparams = { conflict = \"source\" }\n",
        "[steps.settings.plan_settings]\nclient_secret = \"", S()["plan_settings_secret"], "\"\n",
        // Step parameters follow a schema now (an unknown one is refused before the rollout),
        // so a secret-named plan value lives in merge_config's settings.
        "api_key = \"", S()["plan_param_api_key"], "\"\n",
        "\n[[steps]]\nname = \"exec\"\n",
        "params = { command = '''", ExecCommand(), "''' }\n",
        SkipAllBut({"preflight", "snapshot_target", "copy_deployment", "copy_keystores",
                    "merge_config", "exec"},
                   "the secrets suite runs these steps only"),
        "\n[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\n",
        "\n[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\n");
    WriteText(dir_ + "/plan.toml", plan);
    // A run that fails: its last output lines (secret shapes among them) go into the message.
    const std::string fail = absl::StrCat(
        "[migration]\npath = \"4.0.0->4.2.0\"\n",
        "\n[[steps]]\nname = \"preflight\"\n",
        "[[steps]]\nname = \"exec\"\nparams = { command = '''",
        "echo \"Bearer ", S()["fail_bearer"], "\"; echo \"keytool -storepass ",
        S()["fail_storepass"], "\"; echo \"db {{db_pass}}\"; exit 3''' }\n",
        SkipAllBut({"preflight", "exec"}, "a run that fails on purpose"));
    WriteText(dir_ + "/plan-fail.toml", fail);
  }

  CommandResult Mimic(const std::string& args) {
    CommandResult r = RunMimic(dir_, args);
    printed_ += absl::StrCat("\n$ mimic ", args, "\n", r.output);
    return r;
  }

  // Every event of every run each agent knows, read over gRPC as the controller would.
  std::string AgentEventStreams() {
    std::string out;
    for (size_t i = 0; i < kHosts.size(); ++i) {
      auto creds = common::MakeChannelCredentials(dir_ + "/certs/ca.pem",
                                                  dir_ + "/certs/controller.pem",
                                                  dir_ + "/certs/controller.key");
      EXPECT_TRUE(creds.ok()) << creds.status();
      if (!creds.ok()) continue;
      grpc::ChannelArguments args;
      args.SetSslTargetNameOverride(kHosts[i]);
      auto stub = mimic::v1::Agent::NewStub(
          grpc::CreateCustomChannel(agents_[i]->address(), *creds, args));
      mimic::v1::ListRunsResponse runs;
      {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        grpc::Status st = stub->ListRuns(&ctx, mimic::v1::ListRunsRequest(), &runs);
        EXPECT_TRUE(st.ok()) << st.error_message();
      }
      EXPECT_GE(runs.runs_size(), 3) << kHosts[i];  // check, apply, rollback (and the failure)
      for (const auto& run : runs.runs()) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        mimic::v1::AttachRequest req;
        req.set_run_id(run.run_id());
        req.set_from_seq(1);
        auto reader = stub->Attach(&ctx, req);
        mimic::v1::Event e;
        int n = 0;
        while (reader->Read(&e)) {
          ++n;
          out += e.DebugString();
          out += e.SerializeAsString();
        }
        grpc::Status st = reader->Finish();
        EXPECT_TRUE(st.ok()) << run.run_id() << ": " << st.error_message();
        EXPECT_GT(n, 0) << run.run_id();
      }
    }
    return out;
  }

  // What may not hold a secret: path -> bytes, for every file mimic wrote outside the MI homes
  // (the controller's state with audit.db, the reports, the agents' logs and state directories
  // with their journals and snapshot manifests), except the snapshots' saved MI files.
  std::map<std::string, std::string> FilesMimicWrote() {
    std::map<std::string, std::string> out;
    std::vector<std::string> roots = {dir_ + "/controller-state", dir_ + "/agent-state",
                                      dir_ + "/reports"};
    for (const std::string& h : kHosts) out[StateDir(h) + ".log"] = ReadText(StateDir(h) + ".log");
    for (const std::string& root : roots) {
      if (!std::filesystem::exists(root)) continue;
      for (const auto& f : std::filesystem::recursive_directory_iterator(root)) {
        if (!f.is_regular_file()) continue;
        const std::string p = f.path().string();
        if (p.find("/snapshot/files/") != std::string::npos) continue;  // saved MI files
        out[p] = ReadText(p);
      }
    }
    return out;
  }

  // Fails naming the secret, where it was found and the bytes around it.
  void ExpectNoSecret(const std::string& where, const std::string& bytes) {
    for (const auto& [shape, random] : S().randoms()) {
      size_t at = bytes.find(random);
      if (at == std::string::npos) continue;
      const size_t from = at < 120 ? 0 : at - 120;
      ADD_FAILURE() << "secret '" << shape << "' (" << S().values().at(shape) << ") leaked in "
                    << where << ": ..." << bytes.substr(from, 240) << "...";
    }
    // The generated source home's own plain-text datasource password (tests/mi_home).
    EXPECT_EQ(bytes.find("Rep0rt-Plain-Pw"), std::string::npos) << "leaked in " << where;
  }

  uint32_t seed_ = 0;
  std::unique_ptr<Secrets> secrets_;
  std::string dir_;
  std::string printed_;  // everything mimic printed (stdout and stderr)
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(SecretsSuite, NoSecretInAnythingMimicWritesOrPrints) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_, " (values S3cr3t-<shape>-<random>)"));
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  WriteInventory();
  WritePlans();
  std::filesystem::create_directories(dir_ + "/reports");

  CommandResult check = Mimic("run --inventory inventory.toml --plan plan.toml --check --diff");
  ASSERT_EQ(check.exit_code, 0) << check.output;
  const std::string check_id = RolloutIdFrom(check.output);

  CommandResult apply =
      Mimic("run --inventory inventory.toml --plan plan.toml --output json --diff");
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  // The JSON output names the rollout in its first note.
  const size_t r_at = apply.output.find("r-");
  ASSERT_NE(r_at, std::string::npos) << apply.output;
  std::string apply_id;
  for (size_t i = r_at; i < apply.output.size(); ++i) {
    const char c = apply.output[i];
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) break;
    apply_id += c;
  }
  ASSERT_FALSE(apply_id.empty());

  // The secrets were used: the migrated configuration carries them, the exec step ran.
  for (const std::string& h : kHosts) {
    const std::string merged = ReadText(Target(h) + "/conf/deployment.toml");
    for (const char* shape : {"keystore_pass", "ssl_passphrase", "client_secret", "api_key",
                              "db_pwd", "jndi_credentials", "secrets_table",
                              "plan_settings_secret"}) {
      EXPECT_NE(merged.find(S()[shape]), std::string::npos) << h << " " << shape;
    }
    const std::string creds = ReadText(Target(h) + "/" + kCredsXml);
    EXPECT_NE(creds.find(S()["xml_property"]), std::string::npos) << h;
    EXPECT_NE(creds.find(S()["xml_element"]), std::string::npos) << h;
  }
  // Not vacuous: the diffs were shown, with the secrets' places redacted.
  EXPECT_NE(check.output.find("+    <Password><redacted></Password>"), std::string::npos)
      << check.output;
  EXPECT_NE(check.output.find("conf/deployment.toml"), std::string::npos) << check.output;
  // (JSON: protobuf writes '<' and '>' as \u003c, \u003e.)
  EXPECT_NE(apply.output.find("Password\\u003e\\u003credacted\\u003e\\u003c/Password"),
            std::string::npos)
      << apply.output;

  CommandResult fail =
      Mimic("run --inventory inventory.toml --plan plan-fail.toml --limit mi-dev-1");
  EXPECT_EQ(fail.exit_code, 2) << fail.output;
  const std::string fail_id = RolloutIdFrom(fail.output);
  ASSERT_FALSE(fail_id.empty()) << fail.output;

  CommandResult rb = Mimic("rollback " + apply_id + " --inventory inventory.toml --diff");
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  CommandResult rb_check =
      Mimic("rollback " + apply_id + " --inventory inventory.toml --check --diff");
  (void)rb_check;

  for (const std::string& id : {check_id, apply_id, fail_id}) {
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(Mimic("report " + id + " --format json --inventory inventory.toml").exit_code, 0);
    EXPECT_EQ(Mimic("report " + id + " --format json -o reports/" + id +
                    ".json --inventory inventory.toml")
                  .exit_code,
              0);
    EXPECT_EQ(Mimic("report " + id + " --format junit -o reports/" + id +
                    ".xml --inventory inventory.toml")
                  .exit_code,
              0);
    EXPECT_EQ(Mimic("report " + id + " --format html -o reports/" + id +
                    ".html --inventory inventory.toml")
                  .exit_code,
              0);
    Mimic("status " + id + " --inventory inventory.toml");
    Mimic("audit verify " + id + " --inventory inventory.toml");
    for (const std::string& h : kHosts) {
      Mimic("logs " + id + " " + h + " --inventory inventory.toml");
      Mimic("logs " + id + " " + h + " exec --inventory inventory.toml");
    }
  }
  Mimic("status --inventory inventory.toml");
  Mimic("audit --inventory inventory.toml");
  Mimic("audit --host mi-dev-1 --inventory inventory.toml");

  // Not vacuous: the logs show the redacted shapes where the secrets were.
  CommandResult logs = Mimic("logs " + apply_id + " mi-dev-1 exec --inventory inventory.toml");
  EXPECT_NE(logs.output.find("-storepass <redacted>"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("Bearer <redacted>"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("db <redacted> api <redacted>"), std::string::npos) << logs.output;

  const std::string streams = AgentEventStreams();
  ExpectNoSecret("the agents' event streams", streams);
  ExpectNoSecret("mimic's output", printed_);
  for (const auto& [path, bytes] : FilesMimicWrote()) ExpectNoSecret(path, bytes);
  EXPECT_GE(S().values().size(), 25u);
}

}  // namespace
}  // namespace mimic::testing
