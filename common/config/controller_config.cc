#include "common/config/controller_config.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"

namespace mimic::common {
namespace {

std::string Anchor(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return JoinPath(dir, path);
}

}  // namespace

absl::StatusOr<ControllerConfig> LoadControllerConfig(const std::string& path) {
  ASSIGN_OR_RETURN(toml::table root, ParseTomlFile(path));
  RETURN_IF_ERROR(CheckKnownKeys(root, path, "", {"inventory", "audit", "output"}));
  ControllerConfig c;
  c.path = path;
  RETURN_IF_ERROR(GetString(root, "inventory", path, "", false, &c.inventory));
  RETURN_IF_ERROR(GetString(root, "audit", path, "", false, &c.audit));
  RETURN_IF_ERROR(GetString(root, "output", path, "", false, &c.output));
  if (!c.output.empty() && c.output != "text" && c.output != "json") {
    return ConfigError(path, root.get("output"), "output", "must be \"text\" or \"json\"");
  }
  std::string dir = Dirname(std::filesystem::absolute(path).lexically_normal().string());
  c.inventory = Anchor(dir, c.inventory);
  // An audit URL keeps its scheme; a bare or sqlite: path is anchored like the inventory.
  if (!c.audit.empty() && !absl::StartsWith(c.audit, "postgres")) {
    if (absl::StartsWith(c.audit, "sqlite:")) {
      c.audit = "sqlite:" + Anchor(dir, c.audit.substr(7));
    } else {
      c.audit = Anchor(dir, c.audit);
    }
  }
  return c;
}

absl::StatusOr<ControllerConfig> FindControllerConfig(
    const std::function<const char*(const char*)>& getenv) {
  if (const char* explicit_path = getenv("MIMIC_CONFIG"); explicit_path && *explicit_path) {
    if (!PathExists(explicit_path)) {
      return absl::NotFoundError(
          absl::StrCat("MIMIC_CONFIG names ", explicit_path, ", which does not exist"));
    }
    return LoadControllerConfig(explicit_path);
  }
  std::vector<std::string> candidates = {"mimic.toml"};
  if (const char* home = getenv("HOME"); home && *home) {
    candidates.push_back(JoinPath(home, ".mimic.toml"));
  }
  candidates.push_back("/etc/mimic/mimic.toml");
  for (const std::string& c : candidates) {
    if (IsRegularFile(c)) return LoadControllerConfig(c);
  }
  return ControllerConfig{};
}

}  // namespace mimic::common
