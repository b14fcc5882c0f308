#include "agent/daemon/agent_main.h"

#include <grpc/support/log.h>
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "agent/daemon/agent_config.h"
#include "agent/daemon/service.h"
#include "common/base/local_time.h"
#include "common/base/logging.h"
#include "mimic/version.h"

namespace mimic::agent {
int LocalMain(int argc, char** argv);  // local_mode.cc

namespace {

constexpr char kUsage[] =
    "usage: mimic-agent --config agent.toml\n"
    "       mimic-agent --version\n"
    "       mimic-agent local --source MI_HOME --target MI_HOME [--check] [--diff] [--json]\n"
    "                         [--plan plan.toml] [--state-dir DIR] [--root DIR]...\n"
    "       mimic-agent local --rollback RUN_ID [--check] [--diff] [--json] [--state-dir DIR]\n"
    "\n"
    "Serves mimic.v1.Agent over mutual TLS (see deploy/agent.toml.example); runs migration\n"
    "steps on this host's MI homes and journals every event under state_dir.\n"
    "Local mode reads and writes only the two MI homes and each --root (e.g. the folder\n"
    "holding the HL7 jars or the Data Mapper tool); its default step list leaves out\n"
    "backup_databases, migrate_userstore_db, verify and exec (give them with --plan).\n"
    "--diff shows a unified diff of every text file changed (would change, with --check),\n"
    "secrets redacted.\n"
    "Exit codes: 0 ok, 1 bad input or cannot start, 2 (local) a step failed.\n";

// gRPC's log lines go to stderr as before; after a TLS handshake the agent refused, a line in
// plain words says what the client got wrong (gRPC only names the OpenSSL error).
void GrpcLog(gpr_log_func_args* a) {
  const char* sev = a->severity == GPR_LOG_SEVERITY_ERROR  ? "E"
                    : a->severity == GPR_LOG_SEVERITY_INFO ? "I"
                                                           : "D";
  const char* file = std::strrchr(a->file, '/');
  std::fprintf(stderr, "%s grpc %s:%d] %s\n", sev, file != nullptr ? file + 1 : a->file, a->line,
               a->message);
  std::string m = a->message;
  if (m.find("Handshake failed") == std::string::npos) return;
  const char* why = nullptr;
  if (m.find("wrong version number") != std::string::npos ||
      m.find("http request") != std::string::npos ||
      m.find("packet length too long") != std::string::npos) {
    why = "the client spoke plaintext to this mutual-TLS agent: give the controller's inventory "
          "[controller] ca, cert and key instead of plaintext = true";
  } else if (m.find("did not return a certificate") != std::string::npos ||
             m.find("certificate required") != std::string::npos) {
    why = "the client presented no certificate: the controller needs [controller] cert and key";
  } else if (m.find("certificate verify failed") != std::string::npos ||
             m.find("unsupported certificate purpose") != std::string::npos) {
    why = "the client's certificate was not accepted: it must be signed by the CA in tls.client_ca, "
          "be valid now (not expired, not before its start date) and be made for a TLS client "
          "(clientAuth: controller.pem from deploy/make-certs.sh, not an agent's certificate)";
  } else {
    why = "the TLS handshake with the client failed (see the line above)";
  }
  std::fprintf(stderr, "W agent] refused a TLS connection: %s\n", why);
}

int ServeMain(const std::string& config_path, const BeforeStepHook& before_step) {
  auto config = mimic::agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "mimic-agent: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  // Signals are taken by one thread with sigwait, so the server shuts down outside handlers.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  gpr_set_log_function(&GrpcLog);

  auto server = mimic::agent::AgentServer::Start(*config, before_step);
  if (!server.ok()) {
    std::fprintf(stderr, "mimic-agent: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  LOG(INFO) << "mimic-agent " << MIMIC_VERSION << " (commit " << MIMIC_GIT_COMMIT
            << ") listening on port "
            << (*server)->port() << (config->plaintext ? " (plaintext, loopback only)" : " (mTLS)");
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    LOG(INFO) << "signal " << sig << ": shutting down";
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  return 0;
}

}  // namespace

int AgentMain(int argc, char** argv, const BeforeStepHook& before_step) {
  // Before any thread: every zip the steps read would otherwise cost a stat of /etc/localtime
  // per entry (libzip's mktime).
  common::PinLocalTimeZone();
  // Fixed malloc thresholds, also before any thread: a step's buffers (zip entries, copies,
  // zlib's) are 100 KB to 1 MB, and glibc's adaptive thresholds then hand freed heap back and
  // fault it in again page by page. Up to 4 MiB of freed heap is kept for reuse instead: a
  // local apply of a bench host takes 7 % fewer page faults and 7 % less CPU (bench/README.md,
  // "malloc thresholds"); an idle agent, which has freed nothing, is the same size.
  ::mallopt(M_MMAP_THRESHOLD, 4 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 4 << 20);
  if (argc >= 2 && std::strcmp(argv[1], "local") == 0) return LocalMain(argc, argv);
  if (argc == 3 && std::strcmp(argv[1], "--config") == 0) return ServeMain(argv[2], before_step);
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("mimic-agent %s (commit %s)\n", MIMIC_VERSION, MIMIC_GIT_COMMIT);
    return 0;
  }
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fputs(kUsage, stderr);
  return 1;
}

}  // namespace mimic::agent
