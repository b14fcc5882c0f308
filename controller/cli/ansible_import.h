// `mimic inventory import hosts.ini|hosts.yml`: an Ansible inventory turned into the text of a
// mimic inventory.toml (common/inventory.h), so an Ansible estate switches in one step.
//
// Read: the INI format ([group] host lines with inline key=value vars, [group:vars],
// [group:children], # and ; comments, "host:port", ranges such as web[01:03].example.com or
// db-[a:c]), the YAML format (all: / GROUP: with hosts:, vars:, children:, nested; JSON
// too, as YAML) and the JSON of `ansible-inventory --list` (groups with host and child lists,
// host vars under _meta.hostvars). Hosts in `all` or `ungrouped` belong to no group.
//
// Mapping, per host, with the host's Ansible variables merged as Ansible does (all < parent
// groups < child groups < host):
//   address         ansible_host (else the inventory name) : mimic_agent_port (else the
//                   default port); IPv6 addresses get brackets
//   environment     mimic_environment, else `environment`, else `env`, else the first of the
//                   host's groups (ancestors first) named dev, development, test, qa, uat,
//                   stage, staging, preprod, prod or production (any case), else the default
//   tls_server_name mimic_tls_server_name when set
//   groups / [groups.X] the host's own groups; group vars and children as written
//   vars / [vars]   host vars, group vars and `all` vars, values as text
// Not imported (each noted in a comment at the top of the output, names only): ansible_*
// connection variables, the mimic_* variables consumed above, secrets (common::IsSecretKey
// names and !vault values: supply them another way), and list or mapping values (mimic
// variables are scalars).
//
// The output is deterministic: groups, hosts and variables in the order the source first
// names them. Its [controller] table names the CA, certificate and key from ImportOptions.
#ifndef MIMIC_CONTROLLER_CLI_ANSIBLE_IMPORT_H_
#define MIMIC_CONTROLLER_CLI_ANSIBLE_IMPORT_H_

#include <string>

#include "absl/status/statusor.h"

namespace mimic::controller {

struct ImportOptions {
  enum class Format { kAuto, kIni, kYaml };
  // kAuto: .yml .yaml .json are YAML, .ini .cfg INI; otherwise YAML when the first line that
  // is not blank or a comment is "---" or a "key:" mapping entry, else INI.
  Format format = Format::kAuto;
  int agent_port = 7443;                        // when a host has no mimic_agent_port
  std::string default_environment = "default";  // when nothing else names one
  // [controller] of the new inventory (relative to its folder).
  std::string ca = "certs/ca.pem";
  std::string cert = "certs/controller.pem";
  std::string key = "certs/controller.key";
  // Only the hosts of this group (and of its child groups), with the groups they are in; the
  // header lists every host and group left out. "" imports everything.
  std::string group;
};

// Reads the Ansible inventory at `path`. NOT_FOUND when it cannot be read; INVALID_ARGUMENT
// "PATH:LINE: ..." for what cannot be imported (syntax, a bad range, a host or group name
// mimic does not allow, a bad port or environment, a cycle of children, no host at all).
absl::StatusOr<std::string> ImportAnsibleInventory(const std::string& path,
                                                   const ImportOptions& options);

// The same from text; `path` names the source in errors and picks the format (kAuto).
absl::StatusOr<std::string> ImportAnsibleInventoryFromString(const std::string& text,
                                                             const std::string& path,
                                                             const ImportOptions& options);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_CLI_ANSIBLE_IMPORT_H_
