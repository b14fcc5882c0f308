// What each MI version ships, as mimic knows it: generated from WSO2's real trees
// (shared/fixtures/mi/<version>/) by common/mi/gen_shipped_defaults.sh into
// shipped_defaults.cc, so the table can always be made again from those files.
#ifndef MIMIC_COMMON_MI_SHIPPED_DEFAULTS_H_
#define MIMIC_COMMON_MI_SHIPPED_DEFAULTS_H_

#include <map>
#include <string>

namespace mimic::common {

// The bytes of every file MI `version` ships under repository/deployment/ (4 synapse-config XML
// files), keyed by the path relative to MI_HOME; nullptr for a version mimic has no table for.
// The MI home generator (tests/mi_home) writes them.
const std::map<std::string, std::string>* ShippedDeploymentFiles(const std::string& version);

// sha256 (lowercase hex) of each file of ShippedDeploymentFiles(version), same keys; nullptr for
// an unknown version. copy_deployment uses it to tell an operator-modified shipped file from an
// untouched one.
const std::map<std::string, std::string>* ShippedDeploymentDefaults(const std::string& version);

// The conf/deployment.toml MI `version` ships; nullptr for an unknown version. merge_config uses
// it to tell the target's operator-set values from its defaults.
const std::string* ShippedDeploymentToml(const std::string& version);

// One file an MI version ships under conf/, or one of its start scripts.
struct ShippedConfigFile {
  std::string text;    // the bytes
  std::string sha256;  // of `text`, lowercase hex
  // MI regenerates the file at each start from conf/deployment.toml, through the version's
  // repository/resources/conf/templates/<path>.j2: an edit to it is lost at start.
  bool templated = false;
};

// Every file MI `version` ships under conf/ (deployment.toml included) plus bin/micro-integrator.sh
// and bin/yajsw/wrapper.conf, keyed by the path relative to MI_HOME; nullptr for a version mimic has
// no table for. merge_config's operator-edit check (agent/steps/conf_edits.h) compares with them
// and takes them as the base of its three-way merges; the MI home generator writes them.
const std::map<std::string, ShippedConfigFile>* ShippedConfigFiles(const std::string& version);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_SHIPPED_DEFAULTS_H_
