// mimic-agent's configuration file (agent.toml):
//
//   listen = "0.0.0.0:7443"          # host:port; port 0 picks a free port (tests)
//   state_dir = "/var/lib/mimic-agent"
//   allowed_roots = ["/opt/wso2"]    # the only trees the agent reads or writes; "/" (also after
//                                    # normalisation or through a symlink) and ".." are refused
//   executor_threads = 4
//   allowed_client_subjects = ["mimic-controller"]  # client certificate CNs accepted; required
//                                    # with mutual TLS unless allow_any_client_subject = true
//   allow_any_client_subject = false # accept any client certificate signed by client_ca
//   port_file = ""                   # optional: the bound port is written here after start
//   allow_exec = false               # the `exec` step runs operator commands: off unless set
//   stop_grace_seconds = 60          # on SIGTERM, runs in their steps get this long to finish;
//                                    # then their step is cancelled (its command's process
//                                    # group ended) and they end INTERRUPTED (0 to 3600)
//   [tls]
//   cert = "/etc/mimic/agent.pem"
//   key = "/etc/mimic/agent.key"
//   client_ca = "/etc/mimic/ca.pem"  # CA whose client certificates are accepted
//   plaintext = false                # only with a loopback listen address
//
// Relative paths resolve against the folder of the config file.
#ifndef MIMIC_AGENT_DAEMON_AGENT_CONFIG_H_
#define MIMIC_AGENT_DAEMON_AGENT_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::agent {

struct AgentConfig {
  std::string path;
  std::string listen;
  std::string state_dir;
  std::vector<std::string> allowed_roots;
  int executor_threads = 4;
  std::vector<std::string> allowed_client_subjects;
  bool allow_any_client_subject = false;
  std::string port_file;
  bool allow_exec = false;
  int stop_grace_seconds = 60;
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool plaintext = false;
};

// Loads and validates agent.toml. INVALID_ARGUMENT naming file, line and key on bad input;
// plaintext with a non-loopback listen address is refused; so are, with mutual TLS, an empty
// allowed_client_subjects without allow_any_client_subject = true, and a root that is "/".
absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_DAEMON_AGENT_CONFIG_H_
