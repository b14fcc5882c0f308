#include "agent/daemon/agent_main.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "agent/daemon/agent_config.h"
#include "agent/daemon/service.h"
#include "common/base/logging.h"

namespace mimic::agent {
int LocalMain(int argc, char** argv);  // local_mode.cc

namespace {

constexpr char kUsage[] =
    "usage: mimic-agent --config agent.toml\n"
    "       mimic-agent local --source MI_HOME --target MI_HOME [--check] [--json]\n"
    "                         [--plan plan.toml] [--state-dir DIR] [--root DIR]...\n"
    "       mimic-agent local --rollback RUN_ID [--check] [--json] [--state-dir DIR]\n"
    "\n"
    "Serves mimic.v1.Agent over mutual TLS (see deploy/agent.toml.example); runs migration\n"
    "steps on this host's MI homes and journals every event under state_dir.\n"
    "Local mode reads and writes only the two MI homes and each --root (e.g. the folder\n"
    "holding the HL7 jars or the Data Mapper tool); its default step list leaves out\n"
    "backup_databases, migrate_userstore_db, verify and exec (give them with --plan).\n"
    "Exit codes: 0 ok, 1 bad input or cannot start, 2 (local) a step failed.\n";

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

  auto server = mimic::agent::AgentServer::Start(*config, before_step);
  if (!server.ok()) {
    std::fprintf(stderr, "mimic-agent: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  LOG(INFO) << "mimic-agent " << mimic::agent::kAgentVersion << " listening on port "
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
  if (argc >= 2 && std::strcmp(argv[1], "local") == 0) return LocalMain(argc, argv);
  if (argc == 3 && std::strcmp(argv[1], "--config") == 0) return ServeMain(argv[2], before_step);
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fputs(kUsage, stderr);
  return 1;
}

}  // namespace mimic::agent
