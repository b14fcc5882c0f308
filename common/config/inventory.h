// The fleet inventory (inventory.toml): which MI hosts exist, how the controller reaches them,
// and the variables that fill the plan's templates for each host.
//
// Format (every table and key below is all there is; any other key is an error naming its
// file, line and key):
//
//   [controller]
//   state_dir = "state"            # default "state"; relative paths resolve against the folder
//                                  # holding inventory.toml
//   ca = "certs/ca.pem"            # fleet CA that signed the agents' server certs
//   cert = "certs/controller.pem"  # the controller's client certificate ...
//   key = "certs/controller.key"   # ... and its private key; ca/cert/key required unless
//                                  # plaintext = true
//   plaintext = false              # default false; true only when every host address is
//                                  # loopback (127.x.x.x, localhost, [::1]): mutual TLS is
//                                  # required off loopback
//   concurrency = 50               # default 50: max hosts in flight (1..10000)
//
//   [audit]                        # optional
//   url = "sqlite:state/audit.db"  # "sqlite:PATH", a bare PATH, or postgresql://... (also
//                                  # postgres://...); default "sqlite:<state_dir>/audit.db"
//   signing_key = "audit.key"      # the audit's signing key (created 0600 on first use);
//                                  # default: audit.key next to a SQLite audit, else
//                                  # <state_dir>/audit.key
//
//   [vars]                         # optional: variables for every host (string, int or bool
//   source_home = "/opt/wso2mi-4.0.0"   # values; ints and bools become "42", "true")
//
//   [groups.emea]                  # optional groups
//   vars = { target_home = "/opt/wso2mi-4.2.0" }
//   children = ["emea-dev"]        # optional: hosts of group emea-dev are also in emea
//
//   [hosts.mi-dev-1]               # one table per host; name [A-Za-z0-9._-]+, unique
//   address = "127.0.0.1:7001"     # required: host:port or [v6]:port, port 1..65535
//   environment = "dev"            # required
//   groups = ["emea"]              # optional; every group must be defined under [groups]
//   vars = { source_home = "/srv/mi", target_home = "/srv/mi-4.2.0" }
//   tls_server_name = "mi-dev-1"   # optional; default the host name (the agent cert's SAN)
//
// Variables merge, later wins: [vars] < each group's vars < the host's vars. Group order is
// the host's `groups` order, each group preceded by its ancestors (a parent group's vars come
// before its child's, as in Ansible).
#ifndef MIMIC_COMMON_CONFIG_INVENTORY_H_
#define MIMIC_COMMON_CONFIG_INVENTORY_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mimic::common {

struct Group {
  std::string name;
  std::map<std::string, std::string> vars;
  std::vector<std::string> children;  // names of groups whose hosts are also in this one
  int line = 0;
};

struct Host {
  std::string name;
  std::string address;       // as written: "10.0.0.5:7001", "[fd00::5]:7001"
  std::string address_host;  // "10.0.0.5", "fd00::5" (no brackets)
  int port = 0;
  std::string environment;
  std::vector<std::string> groups;      // as written in the host's `groups`
  std::vector<std::string> all_groups;  // effective membership: declared + ancestors, merge order
  std::map<std::string, std::string> vars;  // merged: inventory < groups < host
  std::string tls_server_name;              // default: `name`
  int line = 0;                             // line of [hosts.NAME] in the inventory file

  bool InGroup(const std::string& group) const;
};

struct ControllerSettings {
  std::string state_dir;  // absolute
  std::string ca;         // absolute; "" when plaintext and not given
  std::string cert;       // absolute; "" when plaintext and not given
  std::string key;        // absolute; "" when plaintext and not given
  bool plaintext = false;
  int concurrency = 50;
};

struct Inventory {
  std::string path;                         // as given to LoadInventory
  std::string dir;                          // absolute folder holding the file
  std::vector<Host> hosts;                  // in file order
  std::vector<Group> groups;                // in file order
  std::map<std::string, std::string> vars;  // [vars]
  ControllerSettings controller;
  // "sqlite:/absolute/path.db" or "postgresql://..." (as written).
  std::string audit_url;
  // The audit's signing key file ([audit] signing_key, absolute); "" means the default:
  // "audit.key" next to a SQLite audit, <state_dir>/audit.key for PostgreSQL.
  std::string audit_signing_key;

  const Host* FindHost(const std::string& name) const;    // null when absent
  const Group* FindGroup(const std::string& name) const;  // null when absent
  bool HasEnvironment(const std::string& environment) const;
};

// Loads and validates the inventory at `path`. NOT_FOUND when the file cannot be read;
// INVALID_ARGUMENT for a syntax error ("FILE:LINE:COL: ...") or an invalid value
// ("FILE:LINE: key 'hosts.web1.address': must be host:port ..."), the first problem found.
absl::StatusOr<Inventory> LoadInventory(const std::string& path);
// Same from text; `path` names the file in errors and anchors relative paths.
absl::StatusOr<Inventory> LoadInventoryFromString(const std::string& text, const std::string& path);

// Parses "host:port" / "[v6]:port" (port 1..65535); INVALID_ARGUMENT saying what is wrong.
absl::Status ParseAddress(const std::string& address, std::string* host, int* port);
// True for 127.x.x.x, localhost and ::1.
bool IsLoopbackHost(const std::string& host);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_INVENTORY_H_
