// Authentication, end to end: certificates made here with the openssl command line (another CA,
// self-signed, expired, not yet valid, the wrong extended key usage, a key that does not match its
// certificate), real mimic-agent processes and the real `mimic` binary. Every shape is refused,
// by the agent and by the controller, with an error that says what to check.
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mimic/v1/agent.grpc.pb.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// openssl ARGS..., failing the test on a non-zero exit; returns its output.
std::string Openssl(const std::string& args) {
  CommandResult r = RunCommand("openssl " + args + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << "openssl " << args << "\n" << r.output;
  return r.output;
}

// The extended key usages of a certificate, as `openssl x509 -text` prints them.
std::string Ekus(const std::string& pem) {
  std::string text = Openssl("x509 -noout -text -in " + ShellQuote(pem));
  size_t at = text.find("X509v3 Extended Key Usage:");
  if (at == std::string::npos) return "";
  size_t line = text.find('\n', at);
  size_t end = text.find('\n', line + 1);
  return text.substr(line + 1, end - line - 1);
}

// A GetFacts call to `address` as a client presenting `cert`/`key`, trusting `ca`.
grpc::Status FactsAs(const std::string& address, const std::string& ca, const std::string& cert,
                     const std::string& key, const std::string& server_name) {
  auto creds = common::MakeChannelCredentials(ca, cert, key);
  if (!creds.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       std::string(creds.status().message()));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server_name);
  auto stub = mimic::v1::Agent::NewStub(grpc::CreateCustomChannel(address, *creds, args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  mimic::v1::Facts facts;
  return stub->GetFacts(&ctx, mimic::v1::GetFactsRequest(), &facts);
}

// A GetFacts call with the TLS files handed to gRPC as they are (no checks first): what the
// agent's own TLS layer does with them.
grpc::Status RawFacts(const std::string& address, const std::string& ca, const std::string& cert,
                      const std::string& key, const std::string& server_name = "mi-x") {
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = ReadText(ca);
  opts.pem_cert_chain = ReadText(cert);
  opts.pem_private_key = ReadText(key);
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server_name);
  auto stub = mimic::v1::Agent::NewStub(
      grpc::CreateCustomChannel(address, grpc::SslCredentials(opts), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  mimic::v1::Facts facts;
  return stub->GetFacts(&ctx, mimic::v1::GetFactsRequest(), &facts);
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("auth");
    certs_ = dir_ + "/certs";
    MakeCerts(certs_, {"mi-a", "mi-b"});
  }

  void TearDown() override { agents_.clear(); }

  AgentProcess& StartAgent(const std::string& name, AgentProcess::Options o = {}) {
    o.name = name;
    if (o.certs_dir.empty()) o.certs_dir = certs_;
    o.state_dir = dir_ + "/state-" + name;
    o.allowed_roots = {dir_ + "/mi-" + name};
    EXPECT_EQ(common::MakeDirs(o.allowed_roots[0]).ok(), true);
    agents_.push_back(std::make_unique<AgentProcess>(o));
    EXPECT_TRUE(agents_.back()->Start());
    return *agents_.back();
  }

  std::string dir_;
  std::string certs_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

// Item: an agent's certificate authenticates a server only and the controller's a client only,
// so a stolen agent key cannot drive other agents.
TEST_F(AuthTest, MakeCertsGivesAgentsServerAuthAndTheControllerClientAuthOnly) {
  EXPECT_EQ(Ekus(certs_ + "/mi-a.pem"), "                TLS Web Server Authentication");
  EXPECT_EQ(Ekus(certs_ + "/controller.pem"), "                TLS Web Client Authentication");

  // An agent certificate presented as a client is refused by another agent.
  AgentProcess& b = StartAgent("mi-b");
  grpc::Status as_agent =
      RawFacts(b.address(), certs_ + "/ca.pem", certs_ + "/mi-a.pem", certs_ + "/mi-a.key", "mi-b");
  EXPECT_EQ(as_agent.error_code(), grpc::StatusCode::UNAVAILABLE) << as_agent.error_message();
  grpc::Status as_controller = FactsAs(b.address(), certs_ + "/ca.pem", certs_ + "/controller.pem",
                                       certs_ + "/controller.key", "mi-b");
  EXPECT_TRUE(as_controller.ok()) << as_controller.error_message();
}

// A certificate set made by an older make-certs.sh (agents with clientAuth too) is re-issued,
// not kept.
TEST_F(AuthTest, MakeCertsReissuesAnAgentCertificateThatStillCarriesClientAuth) {
  std::string ext = dir_ + "/old.ext";
  WriteText(ext, "[v3]\nbasicConstraints = critical, CA:FALSE\n"
                 "keyUsage = critical, digitalSignature\n"
                 "extendedKeyUsage = serverAuth, clientAuth\n"
                 "subjectAltName = DNS:mi-a, DNS:localhost, IP:127.0.0.1\n");
  Openssl("req -new -key " + ShellQuote(certs_ + "/mi-a.key") + " -subj /O=mimic/CN=mi-a -out " +
          ShellQuote(dir_ + "/old.csr"));
  Openssl("x509 -req -in " + ShellQuote(dir_ + "/old.csr") + " -CA " +
          ShellQuote(certs_ + "/ca.pem") + " -CAkey " + ShellQuote(certs_ + "/ca.key") +
          " -set_serial 7 -days 400 -extfile " + ShellQuote(ext) + " -extensions v3 -out " +
          ShellQuote(certs_ + "/mi-a.pem"));
  ASSERT_THAT(Ekus(certs_ + "/mi-a.pem"), HasSubstr("Client"));
  MakeCerts(certs_, {"mi-a", "mi-b"});
  EXPECT_EQ(Ekus(certs_ + "/mi-a.pem"), "                TLS Web Server Authentication");
}


// ---------------------------------------------------------------------------------------------
// Certificates of every shape, made with the openssl command line.

constexpr char kPast[] = "010101000000Z";        // 2001
constexpr char kPastEnd[] = "020101000000Z";     // 2002: expired long ago
constexpr char kFuture[] = "400101000000Z";      // 2040: not valid yet
constexpr char kFutureEnd[] = "410101000000Z";
constexpr char kSan[] = "DNS:mi-x, DNS:localhost, IP:127.0.0.1";

std::string NewKey(const std::string& path) {
  return Openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + ShellQuote(path));
}

// NAME.pem/.key in `dir`, signed by CA `ca` (dir/CA.pem, dir/CA.key) with `openssl ca`, with the
// extended key usage `eku` and, when given, the validity [start, end) (YYMMDDHHMMSSZ).
void Leaf(const std::string& dir, const std::string& name, const std::string& cn,
          const std::string& ca, const std::string& eku, const std::string& start = "",
          const std::string& end = "") {
  std::string db = dir + "/db-" + name;
  ASSERT_TRUE(common::MakeDirs(db + "/new").ok());
  WriteText(db + "/index.txt", "");
  WriteText(db + "/ca.cnf", absl::StrCat(
      "[ca]\ndefault_ca = d\n[d]\ndatabase = ", db, "/index.txt\nnew_certs_dir = ", db,
      "/new\nserial = ", db, "/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
      "[p]\norganizationName = optional\ncommonName = supplied\n"
      "[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
      "extendedKeyUsage = ", eku, "\nsubjectAltName = ", kSan, "\n"));
  WriteText(db + "/req.cnf", "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n");
  NewKey(dir + "/" + name + ".key");
  Openssl("req -new -config " + ShellQuote(db + "/req.cnf") + " -key " +
          ShellQuote(dir + "/" + name + ".key") + " -subj " + ShellQuote("/O=mimic/CN=" + cn) +
          " -out " + ShellQuote(db + "/req.csr"));
  std::string dates = start.empty() ? std::string(" -days 30")
                                    : absl::StrCat(" -startdate ", start, " -enddate ", end);
  Openssl("ca -batch -notext -rand_serial -config " + ShellQuote(db + "/ca.cnf") + " -cert " +
          ShellQuote(dir + "/" + ca + ".pem") + " -keyfile " + ShellQuote(dir + "/" + ca + ".key") +
          " -in " + ShellQuote(db + "/req.csr") + " -out " + ShellQuote(dir + "/" + name + ".pem") +
          " -extensions v3" + dates);
}

// NAME.pem/.key in `dir`: a certificate that signs itself (no CA), with the extended key usage.
void SelfSigned(const std::string& dir, const std::string& name, const std::string& cn,
                const std::string& eku) {
  std::string cnf = dir + "/" + name + ".cnf";
  WriteText(cnf, absl::StrCat("[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n"
                              "[dn]\n[v3]\nbasicConstraints = critical, CA:FALSE\n"
                              "keyUsage = critical, digitalSignature\nextendedKeyUsage = ", eku,
                              "\nsubjectAltName = ", kSan, "\n"));
  NewKey(dir + "/" + name + ".key");
  Openssl("req -new -x509 -config " + ShellQuote(cnf) + " -key " +
          ShellQuote(dir + "/" + name + ".key") + " -subj " + ShellQuote("/O=mimic/CN=" + cn) +
          " -days 30 -out " + ShellQuote(dir + "/" + name + ".pem"));
}

// A TLS server in this process presenting `cert`/`key` as they are (mimic-agent refuses to start
// with an expired or wrong-purpose certificate, so this stands in for an agent that would):
// what the controller's TLS layer does with them.
class RawTlsServer {
 public:
  RawTlsServer(const std::string& ca, const std::string& cert, const std::string& key) {
    grpc::SslServerCredentialsOptions opts(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    opts.pem_root_certs = ReadText(ca);
    opts.pem_key_cert_pairs.push_back({ReadText(key), ReadText(cert)});
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(opts), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
  }
  ~RawTlsServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }
  RawTlsServer(const RawTlsServer&) = delete;  // owns a server
  RawTlsServer& operator=(const RawTlsServer&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  mimic::v1::Agent::CallbackService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

class AuthSuiteTest : public AuthTest {
 protected:
  void SetUp() override {
    AuthTest::SetUp();
    // The fleet: ca.pem (from make-certs.sh), an agent "mi-x" and the controller.
    MakeCerts(certs_, {"mi-x"});
  }

  // inventory NAME.toml for one host "mi-x" at `address`; `tls` is the [controller] TLS lines.
  std::string Inventory(const std::string& name, const std::string& address,
                        const std::string& tls) {
    std::string path = dir_ + "/" + name + ".toml";
    WriteText(path, absl::StrCat("[controller]\nstate_dir = \"cs-", name, "\"\n", tls,
                                 "\n[hosts.mi-x]\naddress = \"", address,
                                 "\"\nenvironment = \"dev\"\n"));
    return path;
  }
  static std::string Tls(const std::string& cert, const std::string& key,
                         const std::string& ca = "certs/ca.pem") {
    return absl::StrCat("ca = \"", ca, "\"\ncert = \"certs/", cert, "\"\nkey = \"certs/", key,
                        "\"\n");
  }
  CommandResult Facts(const std::string& inventory) {
    return RunMimic(dir_, "facts --inventory " + ShellQuote(inventory));
  }

  // mimic-agent with `cert`/`key` (in certs/), run to its end (bounded): it must refuse to start.
  CommandResult AgentRefusesToStart(const std::string& cert, const std::string& key) {
    std::string cfg = dir_ + "/refuse-" + cert + ".toml";
    WriteText(cfg, absl::StrCat("listen = \"127.0.0.1:0\"\nstate_dir = \"", dir_, "/refuse-state\"\n"
                                "allowed_roots = [\"", dir_, "\"]\n"
                                "allowed_client_subjects = [\"mimic-controller\"]\n[tls]\n"
                                "cert = \"", certs_, "/", cert, "\"\nkey = \"", certs_, "/", key,
                                "\"\nclient_ca = \"", certs_, "/ca.pem\"\n"));
    CommandResult r =
        RunCommand("timeout 60 " + ShellQuote(AgentBinary()) + " --config " + ShellQuote(cfg) + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_FALSE(common::PathExists(dir_ + "/refuse-state")) << "state_dir made before refusing";
    return r;
  }
};

// The controller side presents a bad certificate: the agent refuses it, and the controller
// says what to check (or refuses its own bad files before dialling, exit 1).
// Item: the controller's private key is parsed once, not once per agent's channel (gRPC 1.51
// builds a TLS context per channel), and every channel still presents it: the agent, which
// requires and verifies a client certificate, answers each call.
TEST_F(AuthSuiteTest, ChannelsFromOneCredentialsTakeTheKeyParsedOnce) {
  RawTlsServer agent(certs_ + "/ca.pem", certs_ + "/mi-x.pem", certs_ + "/mi-x.key");
  auto creds = common::MakeChannelCredentials(certs_ + "/ca.pem", certs_ + "/controller.pem",
                                              certs_ + "/controller.key");
  ASSERT_TRUE(creds.ok()) << creds.status();
  const int64_t loads_before = common::SharedPrivateKeyLoads();
  constexpr int kChannels = 3;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("mi-x");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection (and TLS context) each
    auto stub = mimic::v1::Agent::NewStub(grpc::CreateCustomChannel(agent.address(), *creds, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    mimic::v1::Facts facts;
    grpc::Status s = stub->GetFacts(&ctx, mimic::v1::GetFactsRequest(), &facts);
    // The stand-in agent implements no method: UNIMPLEMENTED is its answer past the handshake.
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << i << ": " << s.error_message();
  }
  EXPECT_EQ(common::SharedPrivateKeyLoads() - loads_before, kChannels);
}

TEST_F(AuthSuiteTest, AgentRefusesBadClientCertificatesAndTheControllerSaysWhy) {
  AgentProcess& agent = StartAgent("mi-x");
  const std::string addr = agent.address();
  const std::string ca = certs_ + "/ca.pem";

  // The good one gets in (so every refusal below is the certificate's doing).
  CommandResult good = Facts(Inventory("good", addr, Tls("controller.pem", "controller.key")));
  EXPECT_EQ(good.exit_code, 0) << good.output;

  // Another CA (same subject as the controller): refused by the agent's TLS.
  CommandResult rogue =
      Facts(Inventory("rogue", addr, Tls("rogue-controller.pem", "rogue-controller.key")));
  EXPECT_EQ(rogue.exit_code, 2) << rogue.output;
  EXPECT_THAT(rogue.output, HasSubstr("the agent refused the controller's certificate"));
  EXPECT_THAT(rogue.output, HasSubstr("tls.client_ca"));
  EXPECT_TRUE(WaitForText(agent.log_path(), "refused a TLS connection: the client's certificate "
                                            "was not accepted"));

  // Self-signed, subject mimic-controller.
  SelfSigned(certs_, "self", "mimic-controller", "clientAuth");
  CommandResult self = Facts(Inventory("self", addr, Tls("self.pem", "self.key")));
  EXPECT_EQ(self.exit_code, 2) << self.output;
  EXPECT_THAT(self.output, HasSubstr("the agent refused the controller's certificate"));

  // Expired, not yet valid, and an agent's certificate (serverAuth only) used as a client: the
  // controller refuses its own files before dialling (exit 1, the file named) ...
  Leaf(certs_, "expired", "mimic-controller", "ca", "clientAuth", kPast, kPastEnd);
  Leaf(certs_, "future", "mimic-controller", "ca", "clientAuth", kFuture, kFutureEnd);
  Leaf(certs_, "server-only", "mimic-controller", "ca", "serverAuth");
  struct Local {
    std::string name, words;
  } locals[] = {{"expired", "expired on"},
                {"future", "is not valid before"},
                {"server-only", "lacks clientAuth"}};
  for (const Local& c : locals) {
    CommandResult r = Facts(Inventory(c.name, addr, Tls(c.name + ".pem", c.name + ".key")));
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("certs/" + c.name + ".pem")) << c.name;
    EXPECT_THAT(r.output, HasSubstr(c.words)) << c.name;
    EXPECT_THAT(r.output, HasSubstr("[controller] ca/cert/key")) << c.name;
    // ... and the agent's TLS refuses them too when a client presents them anyway.
    grpc::Status raw = RawFacts(addr, ca, certs_ + "/" + c.name + ".pem", certs_ + "/" + c.name + ".key");
    EXPECT_EQ(raw.error_code(), grpc::StatusCode::UNAVAILABLE) << c.name << ": " << raw.error_message();
  }
  // The agent's own certificate as a client: refused by the agent's TLS.
  grpc::Status agent_as_client = RawFacts(addr, ca, certs_ + "/mi-x.pem", certs_ + "/mi-x.key");
  EXPECT_EQ(agent_as_client.error_code(), grpc::StatusCode::UNAVAILABLE)
      << agent_as_client.error_message();

  // A key that does not match its certificate: named with both files, exit 1.
  CommandResult mismatch = Facts(Inventory("mismatch", addr, Tls("controller.pem", "mi-x.key")));
  EXPECT_EQ(mismatch.exit_code, 1) << mismatch.output;
  EXPECT_THAT(mismatch.output, HasSubstr("private key"));
  EXPECT_THAT(mismatch.output, HasSubstr("certs/mi-x.key does not match certificate"));
  EXPECT_THAT(mismatch.output, HasSubstr("certs/controller.pem"));
  EXPECT_THAT(mismatch.output, Not(HasSubstr("client_channel_factory")));

  // A plaintext controller against the mutual-TLS agent.
  CommandResult plain = Facts(Inventory("plain", addr, "plaintext = true\n"));
  EXPECT_EQ(plain.exit_code, 2) << plain.output;
  EXPECT_THAT(plain.output, HasSubstr("the agent requires mutual TLS"));
  EXPECT_TRUE(WaitForText(agent.log_path(), "refused a TLS connection: the client spoke plaintext"));

  // A certificate of the fleet CA whose subject is not allowed: refused by the service.
  Leaf(certs_, "intruder", "intruder", "ca", "clientAuth");
  CommandResult intruder = Facts(Inventory("intruder", addr, Tls("intruder.pem", "intruder.key")));
  EXPECT_EQ(intruder.exit_code, 2) << intruder.output;
  EXPECT_THAT(intruder.output, HasSubstr("does not allow client certificate subject CN=intruder"));
  EXPECT_TRUE(WaitForText(agent.log_path(), "CN=intruder is not in allowed_client_subjects"));

  // Through it all the agent kept serving.
  CommandResult after = Facts(Inventory("good", addr, Tls("controller.pem", "controller.key")));
  EXPECT_EQ(after.exit_code, 0) << after.output;
}

// The agent side presents a bad certificate: the controller refuses it and says what to check,
// or the agent refuses to start with it (exit 1, file named, nothing written).
TEST_F(AuthSuiteTest, ControllerRefusesBadAgentCertificatesAndTheAgentRefusesToServeThem) {
  const std::string tls = Tls("controller.pem", "controller.key");
  // Another CA and self-signed: the agent starts (it cannot know which CA the controller
  // trusts), the controller refuses.
  Leaf(certs_, "other-ca", "mi-x", "rogue-ca", "serverAuth");
  SelfSigned(certs_, "self-agent", "mi-x", "serverAuth");
  for (const std::string name : {"other-ca", "self-agent"}) {
    std::string dir = dir_ + "/agent-" + name;
    ASSERT_EQ(RunCommand("mkdir -p " + ShellQuote(dir) + " && cp " + ShellQuote(certs_ + "/ca.pem") +
                         " " + ShellQuote(dir) + " && cp " + ShellQuote(certs_ + "/" + name + ".pem") +
                         " " + ShellQuote(dir + "/mi-x.pem") + " && cp " +
                         ShellQuote(certs_ + "/" + name + ".key") + " " + ShellQuote(dir + "/mi-x.key"))
                  .exit_code, 0);
    AgentProcess::Options o;
    o.certs_dir = dir;
    AgentProcess& agent = StartAgent("mi-x", o);
    CommandResult r = Facts(Inventory(name, agent.address(), tls));
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("the controller does not trust the agent's certificate")) << name;
    EXPECT_THAT(r.output, HasSubstr("[controller] ca")) << name;
    agents_.clear();
  }

  // Expired, not yet valid, clientAuth only (the controller's certificate as a server), a key
  // that does not match: mimic-agent refuses to start, naming the file ...
  Leaf(certs_, "agent-expired", "mi-x", "ca", "serverAuth", kPast, kPastEnd);
  Leaf(certs_, "agent-future", "mi-x", "ca", "serverAuth", kFuture, kFutureEnd);
  struct Local {
    std::string cert, key, words;
  } locals[] = {{"agent-expired.pem", "agent-expired.key", "expired on"},
                {"agent-future.pem", "agent-future.key", "is not valid before"},
                {"controller.pem", "controller.key", "lacks serverAuth"},
                {"mi-x.pem", "controller.key", "does not match certificate"}};
  for (const Local& c : locals) {
    CommandResult r = AgentRefusesToStart(c.cert, c.key);
    EXPECT_THAT(r.output, HasSubstr(c.words)) << c.cert;
    EXPECT_THAT(r.output, HasSubstr(certs_ + "/" + c.cert)) << c.cert;
    EXPECT_THAT(r.output, HasSubstr("[tls] cert/key/client_ca")) << c.cert;
  }
  // ... and a server presenting them anyway is refused by the controller's TLS.
  for (const std::string name : {"agent-expired", "agent-future", "controller"}) {
    RawTlsServer server(certs_ + "/ca.pem", certs_ + "/" + name + ".pem", certs_ + "/" + name + ".key");
    CommandResult r = Facts(Inventory("raw-" + name, server.address(), tls));
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("the controller does not trust the agent's certificate")) << name;
  }

  // A plaintext agent against a mutual-TLS controller.
  AgentProcess::Options plain;
  plain.plaintext = true;
  AgentProcess& agent = StartAgent("mi-x", plain);
  CommandResult r = Facts(Inventory("to-plain", agent.address(), tls));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the agent speaks plaintext and the controller mutual TLS"));

  // Nothing listening, and a certificate naming another host.
  CommandResult refused = Facts(Inventory("closed", "127.0.0.1:1", tls));
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("nothing listens at the host's address"));
}

// allow_exec = false (the default) refuses a plan with an exec step, through a real run; the
// same plan runs on an agent that allows it.
TEST_F(AuthSuiteTest, AllowExecFalseRefusesAnExecStep) {
  for (bool allow : {false, true}) {
    SCOPED_TRACE(allow ? "allow_exec = true" : "allow_exec = false");
    std::string root = dir_ + "/mi-mi-x";
    ASSERT_EQ(RunCommand("rm -rf " + ShellQuote(root)).exit_code, 0);
    MakeMiHome("4.0.0", root + "/wso2mi-4.0.0", "source", "mi-x");
    MakeMiHome("4.2.0", root + "/wso2mi-4.2.0", "target", "mi-x");
    AgentProcess::Options o;
    o.allow_exec = allow;
    AgentProcess& agent = StartAgent("mi-x", o);
    const std::string marker = dir_ + "/exec-ran";
    std::string inv = Inventory("exec", agent.address(), Tls("controller.pem", "controller.key"));
    std::string text = ReadText(inv);
    WriteText(inv, absl::StrCat(text, "vars = { source_home = \"", root,
                                "/wso2mi-4.0.0\", target_home = \"", root, "/wso2mi-4.2.0\" }\n"));
    WriteText(dir_ + "/exec-plan.toml",
              absl::StrCat("[migration]\npath = \"4.0.0->4.2.0\"\n\n[[steps]]\nname = \"exec\"\n"
                           "params = { command = \"touch ", marker, "\" }\n",
                           SkipAllBut({"exec"}, "the auth test runs one exec step")));
    CommandResult r = RunMimic(dir_, "run --inventory " + ShellQuote(inv) +
                                         " --plan exec-plan.toml");
    if (allow) {
      EXPECT_EQ(r.exit_code, 0) << r.output;
      EXPECT_TRUE(common::PathExists(marker)) << r.output;
    } else {
      EXPECT_EQ(r.exit_code, 2) << r.output;
      EXPECT_THAT(r.output, HasSubstr("this agent does not allow it"));
      EXPECT_THAT(r.output, HasSubstr("allow_exec = true"));
      EXPECT_FALSE(common::PathExists(marker));
    }
    agents_.clear();
  }
}

// allowed_client_subjects lets in the subjects it names and nobody else, through a real run.
TEST_F(AuthSuiteTest, AllowedClientSubjectsRefusesAnotherSubject) {
  AgentProcess::Options o;
  o.allowed_client_subjects = {"ops-controller"};
  AgentProcess& agent = StartAgent("mi-x", o);
  Leaf(certs_, "ops", "ops-controller", "ca", "clientAuth");
  WriteText(dir_ + "/plan.toml",
            "[migration]\npath = \"4.0.0->4.2.0\"\n\n[[steps]]\nname = \"preflight\"\n" +
                SkipAllBut({"preflight"}, "the auth test needs one step"));
  std::string inv = Inventory("other", agent.address(), Tls("controller.pem", "controller.key"));
  WriteText(inv, ReadText(inv) + "vars = { source_home = \"" + dir_ + "/mi-mi-x/a\", target_home = \"" +
                     dir_ + "/mi-mi-x/b\" }\n");
  CommandResult refused = RunMimic(dir_, "run --inventory " + ShellQuote(inv) + " --plan plan.toml");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("does not allow client certificate subject CN=mimic-controller"));
  EXPECT_TRUE(WaitForText(agent.log_path(), "CN=mimic-controller is not in allowed_client_subjects"));
  CommandResult allowed = Facts(Inventory("ops", agent.address(), Tls("ops.pem", "ops.key")));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
}

// One port, one agent: a second agent on a taken port refuses to start, naming the port.
TEST_F(AuthTest, SecondAgentOnATakenPortRefusesToStart) {
  AgentProcess& first = StartAgent("mi-a");
  std::string cfg = dir_ + "/second.toml";
  WriteText(cfg, absl::StrCat("listen = \"127.0.0.1:", first.port(), "\"\nstate_dir = \"", dir_,
                              "/second-state\"\nallowed_roots = [\"", dir_, "\"]\n"
                              "allowed_client_subjects = [\"mimic-controller\"]\n[tls]\n"
                              "cert = \"", certs_, "/mi-b.pem\"\nkey = \"", certs_, "/mi-b.key\"\n"
                              "client_ca = \"", certs_, "/ca.pem\"\n"));
  // Bounded: before the fix the second agent started and served (killed by timeout, 124).
  CommandResult r =
      RunCommand("timeout 30 " + ShellQuote(AgentBinary()) + " --config " + ShellQuote(cfg) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("port ", first.port(), " is already in use")));
  EXPECT_THAT(r.output, HasSubstr("key 'listen' in " + cfg));
  // The first one still answers.
  grpc::Status st = FactsAs(first.address(), certs_ + "/ca.pem", certs_ + "/controller.pem",
                            certs_ + "/controller.key", "mi-a");
  EXPECT_TRUE(st.ok()) << st.error_message();
}

// --version: the project VERSION from CMakeLists.txt and the git commit built from.
TEST(VersionTest, BothBinariesPrintVersionAndCommit) {
  std::string cmake = ReadText(SourceDir() + "/CMakeLists.txt");
  size_t at = cmake.find("project(mimic VERSION ");
  ASSERT_NE(at, std::string::npos);
  at += std::string("project(mimic VERSION ").size();
  std::string version = cmake.substr(at, cmake.find(' ', at) - at);
  for (const auto& [binary, name] : {std::pair{MimicBinary(), std::string("mimic")},
                                     std::pair{AgentBinary(), std::string("mimic-agent")}}) {
    CommandResult r = RunCommand(ShellQuote(binary) + " --version 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string prefix = name + " " + version + " (commit ";
    ASSERT_TRUE(absl::StartsWith(r.output, prefix)) << r.output;
    std::string commit = r.output.substr(prefix.size(), r.output.find(')') - prefix.size());
    if (commit != "unknown") {
      std::string sha = commit.substr(0, commit.find("-dirty"));
      EXPECT_EQ(sha.size(), 12u) << r.output;
      CommandResult known = RunCommand("git -C " + ShellQuote(SourceDir()) + " cat-file -e " +
                                       ShellQuote(sha + "^{commit}") + " 2>&1");
      EXPECT_EQ(known.exit_code, 0) << "commit " << sha << " not in the repository: " << known.output;
    }
  }
}

// Outside a git checkout (a source tarball) the commit is "unknown".
TEST(VersionTest, CommitIsUnknownOutsideAGitCheckout) {
  std::string dir = MakeTempDir("tarball");
  std::string out = dir + "/gen/mimic/version.h";
  CommandResult r = RunCommand("cmake -DSOURCE_DIR=" + ShellQuote(dir) + " -DOUT=" + ShellQuote(out) +
                               " -DVERSION=9.8.7 -P " + ShellQuote(SourceDir() + "/cmake/version.cmake") +
                               " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string h = ReadText(out);
  EXPECT_THAT(h, HasSubstr("#define MIMIC_VERSION \"9.8.7\""));
  EXPECT_THAT(h, HasSubstr("#define MIMIC_GIT_COMMIT \"unknown\""));
}

}  // namespace
}  // namespace mimic::testing
