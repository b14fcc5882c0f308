// Detecting the MI product version of an MI_HOME (MI-FACTS §1.2), and the migration paths.
#ifndef MIMIC_COMMON_MI_MI_VERSION_H_
#define MIMIC_COMMON_MI_MI_VERSION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::common {

struct MiVersion {
  std::string version;      // "1.2.0", "4.0.0", "4.2.0" (or another x.y.z read from the home)
  std::string detected_by;  // "updates/product.txt", "conf/carbon.xml", "directory name",
                            // "conf/deployment.toml hints", "conf/netty.properties"
};

// Detects the version of the MI home at `home`, strongest signal first: updates/product.txt
// ("wso2mi-<ver>"), conf/carbon.xml <Version>, the directory name (wso2mi-<ver>), then weaker
// hints. NOT_FOUND when `home` is not an MI home (no conf/ and no updates/), FAILED_PRECONDITION
// when it is one but no signal gives a version.
absl::StatusOr<MiVersion> DetectMiVersion(const std::string& home);

// The supported chain from `from` to `to`: {"1.2.0->4.0.0"}, {"4.0.0->4.2.0"} or
// {"1.2.0->4.0.0", "4.0.0->4.2.0"}. INVALID_ARGUMENT for a downgrade, an equal version or an
// unknown version, with a message saying which paths are supported.
absl::StatusOr<std::vector<std::string>> MigrationChain(const std::string& from,
                                                        const std::string& to);

// True when `pid_file` names a live process (kill(pid, 0) succeeds).
bool PidFileAlive(const std::string& pid_file);

// The WSO2 update level of the MI home at `home`: the "update-level" value of
// updates/config.json (written by WSO2 Updates 2.0, read by the server for /healthz), e.g. "57";
// "" when the file or the key is absent.
std::string DetectUpdateLevel(const std::string& home);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_MI_VERSION_H_
