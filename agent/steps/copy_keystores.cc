// copy_keystores: every file of the source's repository/resources/security (JKS, PKCS12
// .p12/.pfx, .pem, .crt, ...) into the target. The operator's keystores win: a target file with
// different bytes is replaced (the new version's shipped one stays in the snapshot). Apply
// verifies each copy's sha256.
//
// client-truststore.jks is merged, not replaced (the new version's CA certificates would be
// lost): the target's entries plus every certificate of the source's the target does not hold,
// under its alias (or "<alias>-source" when the target uses the alias for another certificate).
// Each alias is reported. The file is read and written natively (common/mi/jks.h), so the bytes
// are the same in a check run and its apply. Passwords: [truststore] password of each home's
// deployment.toml (default "wso2carbon"); a $secret{} one comes from the environment variable
// named by param truststore_password_env. The merged file is sealed with the source's password
// (what merge_config carries to the target). No password is ever logged.
//
// The secure vault (MI's cipher tool), when the source uses it ($secret{alias} values, [secrets],
// an active conf/security/secret-conf.properties):
//  * every $secret{alias} the source's deployment.toml uses must have its encrypted value in
//    [secrets] (merge_config carries them), else the step fails naming the alias and the line;
//  * the source's secret-conf.properties is carried with every path under the old MI home
//    rewritten to the target home (each rewritten key reported; other absolute paths warned);
//  * the keystore the vault decrypts with (keystore.identity.location, default
//    repository/resources/security/wso2carbon.jks) must exist in the target once this step
//    has copied, else the step fails;
//  * how the keystore password will be supplied at start is reported: password-persist is
//    carried (mode 0600, its content never shown); password-tmp (deleted by the server once
//    read) or the console prompt are left to the operator, with a warning.
#include <toml++/toml.h>

#include <cstdlib>
#include <regex>
#include <set>
#include <vector>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"
#include "common/mi/home_paths.h"
#include "common/mi/jks.h"

namespace mimic::agent {
namespace {

constexpr char kSecurity[] = "repository/resources/security";
constexpr char kTruststore[] = "repository/resources/security/client-truststore.jks";

// The [truststore] password of `home`'s deployment.toml ("wso2carbon" when unset).
absl::StatusOr<std::string> TruststorePassword(const StepContext& ctx, const std::string& home,
                                               const char* which) {
  ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(home, "conf/deployment.toml"));
  std::string password = "wso2carbon";
  if (common::IsRegularFile(path)) {
    ASSIGN_OR_RETURN(std::string text, ReadPlanned(ctx, path));
    ASSIGN_OR_RETURN(toml::table root, common::ParseTomlString(text, path));
    password = root["truststore"]["password"].value<std::string>().value_or(password);
  }
  if (!common::HoldsSecretReference(password)) return password;
  const std::string env = ctx.Param("truststore_password_env");
  const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
  if (value == nullptr || *value == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(
        "the ", which, "'s [truststore] password is a $secret{} value mimic cannot decrypt; "
        "set param truststore_password_env to an environment variable of the agent that holds "
        "it", env.empty() ? "" : absl::StrCat(" (", env, " is not set)")));
  }
  return std::string(value);
}

struct TruststorePlan {
  bool merge = false;  // both are JKS and differ: merged here, left out of the mirror
};

absl::StatusOr<TruststorePlan> PlanTruststore(const StepContext& ctx, const Homes& homes,
                                              ChangeSet* changes) {
  TruststorePlan out;
  ASSIGN_OR_RETURN(std::string src_path, ctx.guard->ResolveUnder(homes.source, kTruststore));
  ASSIGN_OR_RETURN(std::string dst_path, ctx.guard->ResolveUnder(homes.target, kTruststore));
  if (!common::IsRegularFile(src_path)) return out;
  absl::StatusOr<std::string> dst_bytes = ReadPlanned(ctx, dst_path);
  if (!dst_bytes.ok()) return out;  // the target has none: copied as is
  ASSIGN_OR_RETURN(std::string src_bytes, common::ReadFile(src_path));
  if (src_bytes == *dst_bytes) return out;
  if (!common::IsJks(src_bytes) || !common::IsJks(*dst_bytes)) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat(kTruststore, " is not a JKS keystore in the ",
                         common::IsJks(src_bytes) ? "target" : "source",
                         ": the source's replaces the target's (the target's certificates are "
                         "only in the snapshot)"));
    return out;
  }
  out.merge = true;
  ASSIGN_OR_RETURN(std::string src_pw, TruststorePassword(ctx, homes.source, "source"));
  ASSIGN_OR_RETURN(std::string dst_pw, TruststorePassword(ctx, homes.target, "target"));
  ASSIGN_OR_RETURN(common::Jks src, common::ParseJks(src_bytes, src_path, src_pw));
  absl::StatusOr<common::Jks> dst = common::ParseJks(*dst_bytes, dst_path, dst_pw);
  if (!dst.ok() && dst.status().code() == absl::StatusCode::kPermissionDenied && dst_pw != src_pw) {
    dst = common::ParseJks(*dst_bytes, dst_path, src_pw);  // merged by an earlier run
  }
  if (!dst.ok()) return dst.status();
  common::TruststoreMerge m = common::MergeTruststores(src, *dst);
  for (const std::string& a : m.kept) {
    StepLog(ctx, LogLevel::kInfo, absl::StrCat(kTruststore, ": kept the target's '", a, "'"));
  }
  for (const std::string& a : m.added) {
    StepLog(ctx, LogLevel::kInfo, absl::StrCat(kTruststore, ": adds the source's ", a));
  }
  for (const std::string& a : m.ignored) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat(kTruststore, ": the source's '", a,
                         "' is a private key entry, not a certificate: not carried"));
  }
  ASSIGN_OR_RETURN(
      std::optional<FileOp> op,
      MakePlannedWriteOp(ctx, dst_path, common::WriteJks(m.merged, src_pw),
                         common::FileMode(dst_path),
                         absl::StrCat("truststore merged: ", m.kept.size(), " target entries kept, ",
                                      m.added.size(), " added from the source")));
  if (op.has_value()) changes->ops.push_back(*std::move(op));
  return out;
}

constexpr char kSecretConf[] = "conf/security/secret-conf.properties";
constexpr char kDefaultVaultKeystore[] = "repository/resources/security/wso2carbon.jks";

bool WritesPath(const ChangeSet& changes, const std::string& path) {
  for (const FileOp& op : changes.ops) {
    if (op.kind == FileOp::Kind::kWrite && op.path == path) return true;
  }
  return false;
}

// Plans the secure vault's files and checks; "" in *summary when the vault is not used.
absl::Status PlanSecureVault(const StepContext& ctx, const Homes& homes, ChangeSet* changes,
                             std::string* summary) {
  summary->clear();
  // 1. $secret{} uses and [secrets] in the source's deployment.toml.
  ASSIGN_OR_RETURN(std::string toml_path,
                   ctx.guard->ResolveUnder(homes.source, "conf/deployment.toml"));
  std::vector<std::pair<std::string, int>> uses;  // alias, line
  std::set<std::string> encrypted;
  if (common::IsRegularFile(toml_path)) {
    ASSIGN_OR_RETURN(std::string text, common::ReadFile(toml_path));
    static const std::regex kRef(R"re(\$secret\{([^}]*)\})re");
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_no;
      std::string l(line.substr(0, line.find('#')));
      for (std::sregex_iterator it(l.begin(), l.end(), kRef), end; it != end; ++it) {
        uses.emplace_back((*it)[1].str(), line_no);
      }
    }
    ASSIGN_OR_RETURN(toml::table root, common::ParseTomlString(text, toml_path));
    if (const toml::table* secrets = root["secrets"].as_table()) {
      for (const auto& [key, value] : *secrets) encrypted.insert(std::string(key.str()));
    }
  }
  // 2. The source's active secret-conf.properties lines.
  ASSIGN_OR_RETURN(std::string src_conf, ctx.guard->ResolveUnder(homes.source, kSecretConf));
  std::string conf_text;
  std::vector<std::pair<std::string, std::string>> active;  // key, value
  if (common::IsRegularFile(src_conf)) {
    ASSIGN_OR_RETURN(conf_text, common::ReadFile(src_conf));
    for (absl::string_view line : absl::StrSplit(conf_text, '\n')) {
      absl::string_view t = absl::StripAsciiWhitespace(line);
      const size_t eq = t.find('=');
      if (t.empty() || t[0] == '#' || t[0] == '!' || eq == absl::string_view::npos) continue;
      active.emplace_back(std::string(absl::StripAsciiWhitespace(t.substr(0, eq))),
                          std::string(absl::StripAsciiWhitespace(t.substr(eq + 1))));
    }
  }
  if (uses.empty() && encrypted.empty() && active.empty()) return absl::OkStatus();

  for (const auto& [alias, line] : uses) {
    if (encrypted.count(alias) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "conf/deployment.toml:", line, ": secret alias '", alias,
          "' has no encrypted value in the source's [secrets]; encrypt it with the cipher tool "
          "on the source first (the target could not decrypt it)"));
    }
  }

  // 3. secret-conf.properties with the old home's paths rewritten.
  std::string keystore = kDefaultVaultKeystore;
  if (!active.empty()) {
    common::HomePathRewrite moved = common::RewriteHomePaths(
        conf_text, common::CarriedFormat::kProperties, homes.source, homes.target);
    LogHomePathFindings(ctx, kSecretConf, moved.findings, homes);
    std::string rewritten = std::move(moved.text);
    for (const auto& [key, value] : active) {
      if (!absl::StrContains(value, homes.source) && !value.empty() && value[0] == '/' &&
          !absl::StrContains(key, "password")) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(kSecretConf, ": ", key, ": absolute path outside the old MI home "
                             "kept as it is: make sure it exists on this host"));
      }
      if (key == "keystore.identity.location") keystore = value;
    }
    keystore = common::RewriteHomePaths(keystore, common::CarriedFormat::kText, homes.source,
                                        homes.target)
                   .text;
    ASSIGN_OR_RETURN(std::string dst_conf, ctx.guard->ResolveUnder(homes.target, kSecretConf));
    ASSIGN_OR_RETURN(std::optional<FileOp> op,
                     MakePlannedWriteOp(ctx, dst_conf, std::move(rewritten),
                                        common::FileMode(src_conf),
                                        "secure vault configuration of the source, old-home "
                                        "paths rewritten to the target home"));
    if (op.has_value()) changes->ops.push_back(*std::move(op));
  }

  // 4. The keystore that decrypts the vault, in the target once this step has copied.
  std::string keystore_path = keystore;
  if (keystore.empty() || keystore[0] != '/') {
    ASSIGN_OR_RETURN(keystore_path, ctx.guard->ResolveUnder(homes.target, keystore));
  } else if (!absl::StartsWith(keystore, homes.target + "/")) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat("the secure vault keystore ", keystore,
                         " lies outside the target home: make sure it exists on this host"));
  }
  if (absl::StartsWith(keystore_path, homes.target + "/") &&
      !common::IsRegularFile(keystore_path) && !WritesPath(*changes, keystore_path) &&
      !ReadPlanned(ctx, keystore_path).ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the secure vault keystore ", keystore_path,
        " does not exist in the target and the source has none to copy: the target could not "
        "decrypt its [secrets]"));
  }

  // 5. How the keystore password is supplied at start.
  std::string password_note;
  ASSIGN_OR_RETURN(std::string src_persist, ctx.guard->ResolveUnder(homes.source, "password-persist"));
  ASSIGN_OR_RETURN(std::string dst_persist, ctx.guard->ResolveUnder(homes.target, "password-persist"));
  ASSIGN_OR_RETURN(std::string src_tmp, ctx.guard->ResolveUnder(homes.source, "password-tmp"));
  ASSIGN_OR_RETURN(std::string dst_tmp, ctx.guard->ResolveUnder(homes.target, "password-tmp"));
  if (common::IsRegularFile(src_persist)) {
    ASSIGN_OR_RETURN(std::string bytes, common::ReadFile(src_persist));
    ASSIGN_OR_RETURN(std::optional<FileOp> op,
                     MakePlannedWriteOp(ctx, dst_persist, std::move(bytes), 0600,
                                        "the secure vault keystore password file"));
    if (op.has_value()) changes->ops.push_back(*std::move(op));
    password_note = "from password-persist (carried to the target)";
  } else if (common::IsRegularFile(dst_persist) || common::IsRegularFile(dst_tmp)) {
    password_note = absl::StrCat("from ", common::IsRegularFile(dst_persist) ? dst_persist : dst_tmp,
                                 " (already in the target)");
  } else {
    password_note = absl::StrCat(
        common::IsRegularFile(src_tmp) ? "the source has password-tmp; " : "",
        "from no file: MI asks for it on the console at start; create ", dst_tmp,
        " (read and deleted at start) or ", dst_persist, " before the target starts");
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat("the secure vault keystore's password at start: ", password_note));
  }
  *summary = absl::StrCat("secure vault: ", uses.size(), " secret reference(s), ",
                          encrypted.size(), " encrypted alias(es), keystore ", keystore_path,
                          "; the keystore's password at start comes ", password_note);
  StepLog(ctx, LogLevel::kInfo, *summary);
  return absl::OkStatus();
}

class CopyKeystoresStep final : public Step {
 public:
  std::string name() const override { return "copy_keystores"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    StepPlan plan;
    MirrorStats stats;
    ASSIGN_OR_RETURN(TruststorePlan trust, PlanTruststore(ctx, homes, &plan.changes));
    const size_t merged_ops = plan.changes.ops.size();
    RETURN_IF_ERROR(PlanMirror(
        ctx, homes, kSecurity,
        [&](const std::string& rel) { return !(trust.merge && rel == kTruststore); },
        "replaces the new version's shipped keystore", &plan.changes, &stats));
    const size_t before_vault = plan.changes.ops.size();
    std::string vault;
    RETURN_IF_ERROR(PlanSecureVault(ctx, homes, &plan.changes, &vault));
    const size_t vault_ops = plan.changes.ops.size() - before_vault;
    FinishFileChangeSet(&plan.changes);
    for (const FileOp& op : plan.changes.ops) {
      if (op.kind == FileOp::Kind::kWrite && !op.expected_sha256.empty() &&
          !absl::EndsWith(op.path, "/client-truststore.jks")) {
        StepLog(ctx, LogLevel::kInfo, absl::StrCat(op.path, ": replaced by the source's copy"));
      }
    }
    const int total = stats.changed() + stats.unchanged + (trust.merge ? 1 : 0);
    const int changed = stats.changed() + static_cast<int>(merged_ops + vault_ops);
    if (total == 0) {
      plan.message = "no keystores in the source";
    } else if (changed == 0) {
      plan.message = absl::StrCat("up to date (", Count(total, "file"), ")");
    } else {
      plan.message = absl::StrCat(Count(stats.changed(), "keystore file"), " to copy (",
                                  stats.created, " new, ", stats.updated,
                                  " replacing the target's)",
                                  merged_ops > 0 ? "; client-truststore.jks merged" : "",
                                  vault_ops > 0 ? absl::StrCat("; ", vault_ops,
                                                               " secure vault file(s)")
                                                : "");
    }
    if (!vault.empty()) absl::StrAppend(&plan.message, "; ", vault);
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopyKeystoresStep() { return std::make_unique<CopyKeystoresStep>(); }

}  // namespace mimic::agent
