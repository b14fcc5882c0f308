// hl7_transport: the HL7 transport is not in the MI 4.x packs (MI-FACTS §6); its two jars come
// from the separate wso2mi-hl7-<ver>.zip and go into <MI_HOME>/dropins. This step
//
//   1. detects HL7 use in the SOURCE by every heuristic of MI-FACTS §6:
//      (1) conf/deployment.toml [[custom_transport.listener|sender]] with protocol = "hl7" or an
//          hl7 class; (2) a [transport.hl7] table; (3) [[custom_message_builders|formatters]]
//          with content_type = "application/edi-hl7" or an hl7 class; (4) HL7 jars in dropins/
//          or lib/; (5) synapse artifacts, loose (synapse-configs/**, registry/**) or inside
//          CApps (read with libzip, never extracted), with `hl7://`, `transport.hl7.*`, a proxy
//          whose transports include hl7, or the HL7 JPAStore message store class. HL7 inbound
//          endpoints are built into MI and need no jars: they are logged, not counted;
//   2. when HL7 is used, installs the two jars (org.wso2.micro.integrator.business.messaging.
//      hl7-<ver>.jar and openjpa-all-<ver>.jar) from param hl7_zip (the operator's
//      wso2mi-hl7-<ver>.zip) or hl7_dir (a folder holding them) into the TARGET's dropins/, and
//      removes other versions of them from there (two versions of one bundle conflict; the
//      snapshot keeps them). Both params must lie inside the agent's allowed roots.
// HL7 used with no jars given and none in the target fails, naming the signals and the params.
// When HL7 is used it also checks the TARGET's conf/deployment.toml (as merge_config leaves it:
// read through the run's planned writes) enables the transport with MI 4.x's classes
// ([[custom_transport.listener|sender]] protocol = "hl7", common/mi/hl7_names.h), logging what
// is missing or still names EI 7.1's classes (fact hl7_transport_enabled), and names CApp
// entries holding EI 7.1's class names (merge_config, copy_deployment and copy_registry rewrite
// them in deployment.toml and loose files; a CApp has to be rebuilt).
#include <sys/stat.h>

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/migration_features.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/mi/capp.h"
#include "common/mi/hl7_names.h"
#include "common/mi/mi_version.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"

namespace mimic::agent {
namespace {

constexpr uint64_t kMaxScannedBytes = 16ull << 20;  // bigger files / CApp entries are skipped
constexpr uint64_t kMaxJarBytes = 256ull << 20;     // a jar taken from the operator's zip
constexpr char kDeploymentToml[] = "conf/deployment.toml";
constexpr char kCarbonapps[] = "repository/deployment/server/carbonapps";
constexpr const char* kLooseArtifactDirs[] = {"repository/deployment/server/synapse-configs",
                                              "registry/config", "registry/governance",
                                              "registry/local"};

struct Detection {
  std::vector<std::string> signals;  // "where: what", each one means the jars are needed
  std::vector<std::string> inbound;  // HL7 inbound endpoints: no jars needed
  std::vector<std::string> old_in_capps;  // CApp entries naming EI 7.1's HL7 classes
};

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

// Names from archives go into logs: keep them printable.
std::string Printable(absl::string_view s) {
  std::string out;
  for (char c : s) out.push_back(absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : '?');
  return out;
}

// A regular file, following a symlink (the guard has already kept it inside the roots).
bool IsFile(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

bool IsHl7BundleJar(const std::string& file_name) {
  const std::string n = Lower(file_name);
  return absl::StrContains(n, "business.messaging.hl7") && absl::EndsWith(n, ".jar");
}
bool IsOpenJpaJar(const std::string& file_name) {
  const std::string n = Lower(file_name);
  return absl::StartsWith(n, "openjpa-all") && absl::EndsWith(n, ".jar");
}

// ---- 1. Detection ---------------------------------------------------------------------------

// Calls `fn` for `node` when it is a table, or for each table of an array of tables.
template <typename Fn>
void ForEachTable(const toml::node* node, Fn fn) {
  if (node == nullptr) return;
  if (const toml::table* t = node->as_table()) {
    fn(*t);
  } else if (const toml::array* a = node->as_array()) {
    for (const toml::node& el : *a) {
      if (const toml::table* t = el.as_table()) fn(*t);
    }
  }
}

std::string StringAt(const toml::table& t, const char* key) {
  return t[key].value<std::string>().value_or("");
}

// Heuristics 1-3 on the source's conf/deployment.toml.
absl::Status DetectInToml(const StepContext& ctx, const Homes& homes, Detection* d) {
  ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.source, kDeploymentToml));
  if (!IsFile(path)) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat(path, " not found; HL7 detection uses the other signals only"));
    return absl::OkStatus();
  }
  // common::ParseTomlFile catches toml::parse_error and reports PATH:LINE:COL.
  absl::StatusOr<toml::table> parsed = common::ParseTomlFile(path);
  if (!parsed.ok()) {
    return common::Annotate(parsed.status(),
                           "cannot check the source's deployment.toml for HL7 use");
  }
  const toml::table& root = *parsed;
  auto where = [](const toml::node& n) {
    return absl::StrCat(kDeploymentToml, ":", common::NodeLine(&n));
  };
  if (const toml::table* ct = root["custom_transport"].as_table()) {
    for (const char* kind : {"listener", "sender"}) {
      ForEachTable(ct->get(kind), [&](const toml::table& t) {
        const std::string protocol = StringAt(t, "protocol"), cls = StringAt(t, "class");
        if (Lower(protocol) == "hl7" || absl::StrContains(Lower(cls), "hl7")) {
          d->signals.push_back(absl::StrCat(where(t), ": [[custom_transport.", kind,
                                            "]] protocol = \"", protocol, "\" class = \"", cls,
                                            "\""));
        }
      });
    }
  }
  if (const toml::node* hl7 = root.at_path("transport.hl7").node()) {
    d->signals.push_back(absl::StrCat(where(*hl7),
                                      ": [transport.hl7] table (read by no MI "
                                      "template, but shows HL7 intent)"));
  }
  for (const char* table : {"custom_message_builders", "custom_message_formatters"}) {
    ForEachTable(root.get(table), [&](const toml::table& t) {
      const std::string type = StringAt(t, "content_type"), cls = StringAt(t, "class");
      if (Lower(type) == "application/edi-hl7" || absl::StrContains(Lower(cls), "hl7")) {
        d->signals.push_back(absl::StrCat(where(t), ": [[", table, "]] content_type = \"", type,
                                          "\" class = \"", cls, "\""));
      }
    });
  }
  return absl::OkStatus();
}

// Heuristic 4: HL7 jars in the source's dropins/ or lib/.
absl::Status DetectJars(const StepContext& ctx, const Homes& homes, Detection* d) {
  for (const char* dir : {"dropins", "lib"}) {
    ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfinedFiles(ctx, homes.source, dir));
    for (const std::string& rel : files) {
      const std::string base = common::Basename(rel);
      if (IsHl7BundleJar(base)) d->signals.push_back(absl::StrCat(rel, ": HL7 transport jar"));
      if (IsOpenJpaJar(base)) d->signals.push_back(absl::StrCat(rel, ": OpenJPA jar (HL7 store)"));
    }
  }
  return absl::OkStatus();
}

// True when some `transports="..."` attribute of `lower` (lower-cased XML) lists hl7.
bool TransportsIncludeHl7(const std::string& lower) {
  size_t pos = 0;
  while ((pos = lower.find("transports", pos)) != std::string::npos) {
    pos += 10;
    size_t i = pos;
    while (i < lower.size() && absl::ascii_isspace(static_cast<unsigned char>(lower[i]))) ++i;
    if (i >= lower.size() || lower[i] != '=') continue;
    ++i;
    while (i < lower.size() && absl::ascii_isspace(static_cast<unsigned char>(lower[i]))) ++i;
    if (i >= lower.size() || (lower[i] != '"' && lower[i] != '\'')) continue;
    const size_t end = lower.find(lower[i], i + 1);
    if (end == std::string::npos) return false;
    for (absl::string_view t : absl::StrSplit(absl::string_view(lower).substr(i + 1, end - i - 1),
                                              absl::ByAnyChar(" \t\r\n,"), absl::SkipEmpty())) {
      if (t == "hl7") return true;
    }
    pos = end;
  }
  return false;
}

// True when an <inboundEndpoint ...> start tag of `lower` has protocol="hl7".
bool HasHl7InboundEndpoint(const std::string& lower) {
  size_t pos = 0;
  while ((pos = lower.find("<inboundendpoint", pos)) != std::string::npos) {
    const size_t end = lower.find('>', pos);
    const absl::string_view tag =
        absl::string_view(lower).substr(pos, end == std::string::npos ? end : end - pos);
    if (absl::StrContains(tag, "protocol=\"hl7\"") || absl::StrContains(tag, "protocol='hl7'")) {
      return true;
    }
    pos += 16;
  }
  return false;
}

// Heuristic 5 on one artifact's text; `where` names it in the signals.
void ScanArtifact(const std::string& where, absl::string_view text, Detection* d) {
  // Every signal below holds "hl7" in some case: most artifacts (and the bulk of a CApp) have
  // none, and are passed over without a lower-cased copy.
  bool any = false;
  for (size_t i = 0; i + 2 < text.size() && !any; ++i) {
    any = (text[i] | 0x20) == 'h' && (text[i + 1] | 0x20) == 'l' && text[i + 2] == '7';
  }
  if (!any) return;
  const std::string lower = Lower(text);
  if (absl::StrContains(lower, "hl7://")) {
    d->signals.push_back(absl::StrCat(where, ": hl7:// endpoint address"));
  }
  if (absl::StrContains(text, "transport.hl7.")) {
    d->signals.push_back(absl::StrCat(where, ": transport.hl7.* parameter"));
  }
  if (TransportsIncludeHl7(lower)) {
    d->signals.push_back(absl::StrCat(where, ": proxy transports include hl7"));
  }
  if (absl::StrContains(lower, "hl7.store.jpa.jpastore")) {
    d->signals.push_back(absl::StrCat(where, ": message store class ...hl7.store.jpa.JPAStore"));
  }
  if (HasHl7InboundEndpoint(lower)) {
    d->inbound.push_back(absl::StrCat(where, ": HL7 inbound endpoint"));
  }
}

absl::Status DetectInLooseArtifacts(const StepContext& ctx, const Homes& homes, Detection* d) {
  for (const char* dir : kLooseArtifactDirs) {
    ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfinedFiles(ctx, homes.source, dir));
    for (const std::string& rel : files) {
      struct stat lst;  // the guard's lstat gives a plain file's size; a symlink is followed
      ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.source, rel, &lst));
      std::error_code ec;
      const uintmax_t size = S_ISREG(lst.st_mode) ? static_cast<uintmax_t>(lst.st_size)
                                                  : std::filesystem::file_size(path, ec);
      if (ec || size > kMaxScannedBytes) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(rel, ": ", ec ? ec.message() : "larger than 16 MiB",
                             "; not scanned for HL7 use"));
        continue;
      }
      ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
      ScanArtifact(rel, text, d);
    }
  }
  return absl::OkStatus();
}

// The CApp entries heuristic 5 scans: not folders, jars, classes or nested zips.
bool ScannedInCapp(const std::string& entry) {
  const std::string lower = Lower(entry);
  return !(absl::EndsWith(entry, "/") || absl::EndsWith(lower, ".jar") ||
           absl::EndsWith(lower, ".class") || absl::EndsWith(lower, ".zip"));
}

// Heuristic 5 inside the source's CApps.
absl::Status DetectInCapps(const StepContext& ctx, const Homes& homes, Detection* d) {
  ASSIGN_OR_RETURN(std::vector<std::string> files,
                   ListConfinedFiles(ctx, homes.source, kCarbonapps));
  for (const std::string& rel : files) {
    if (rel.find('/', sizeof(kCarbonapps)) != std::string::npos ||
        !absl::EndsWithIgnoreCase(rel, ".car")) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.source, rel));
    // Read once a run with preflight's stylesheet count when the memo holds it.
    absl::StatusOr<std::vector<common::ZipEntry>> entries = CappEntriesForHl7Scan(ctx, path);
    if (!entries.ok()) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(rel, ": cannot scan for HL7 use: ", entries.status().message()));
      continue;
    }
    for (const common::ZipEntry& e : *entries) {
      if (!ScannedInCapp(e.name)) continue;
      const std::string where = absl::StrCat(rel, "!", Printable(e.name));
      if (e.binary) continue;
      if (!e.content_read) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(where, ": larger than 16 MiB; not scanned for HL7 use"));
        continue;
      }
      ScanArtifact(where, e.data, d);
      if (e.data.find(common::kOldHl7Package) != std::string::npos) {
        d->old_in_capps.push_back(where);
      }
    }
  }
  return absl::OkStatus();
}

// Heuristics 1-5 on the source, with the lines they logged. Once a run (ctx.memo): preflight
// (DetectHl7Signals) and hl7_transport scan the same source home, which no step writes; the
// second gets the first's detection and logs its lines again, as its own scan would have.
struct SourceDetection {
  Detection detection;
  std::vector<std::pair<LogLevel, std::string>> logs;
};

absl::StatusOr<Detection> DetectInSource(const StepContext& ctx, const Homes& homes) {
  const std::string key = absl::StrCat("hl7_transport detection of ", homes.source);
  const SourceDetection* known =
      ctx.memo == nullptr ? nullptr : ctx.memo->Find<SourceDetection>(key);
  SourceDetection made;
  if (known == nullptr) {
    StepContext logged = ctx;
    logged.log = [&made](LogLevel l, const std::string& text) { made.logs.emplace_back(l, text); };
    absl::Status st = DetectInToml(logged, homes, &made.detection);
    if (st.ok()) st = DetectJars(logged, homes, &made.detection);
    if (st.ok()) st = DetectInLooseArtifacts(logged, homes, &made.detection);
    if (st.ok()) st = DetectInCapps(logged, homes, &made.detection);
    for (const auto& [level, text] : made.logs) StepLog(ctx, level, text);
    RETURN_IF_ERROR(st);
    if (ctx.memo != nullptr) ctx.memo->Put(key, made);
    return made.detection;
  }
  for (const auto& [level, text] : known->logs) StepLog(ctx, level, text);
  return known->detection;
}

// ---- 2. The jars ----------------------------------------------------------------------------

struct Jar {
  std::string name;         // file name, e.g. openjpa-all-2.2.2.wso2v2.jar
  std::string source_path;  // from hl7_dir
  std::string content;      // or bytes from hl7_zip
  bool from_zip = false;
};

// Picks the one bundle jar and the one OpenJPA jar among `names` (indices returned), or an error
// naming what is missing or ambiguous in `origin`.
absl::StatusOr<std::pair<size_t, size_t>> PickJars(const std::vector<std::string>& names,
                                                   const std::string& origin) {
  std::vector<size_t> bundle, jpa;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string base = common::Basename(names[i]);
    if (IsHl7BundleJar(base)) bundle.push_back(i);
    if (IsOpenJpaJar(base)) jpa.push_back(i);
  }
  auto list = [&](const std::vector<size_t>& ix) {
    std::vector<std::string> out;
    for (size_t i : ix) out.push_back(names[i]);
    return absl::StrJoin(out, ", ");
  };
  if (bundle.size() != 1 || jpa.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin,
        " must hold exactly one org.wso2.micro.integrator.business.messaging.hl7-*.jar "
        "and one openjpa-all-*.jar; found ",
        bundle.empty() ? "no HL7 bundle jar" : list(bundle), " and ",
        jpa.empty() ? "no openjpa-all jar" : list(jpa)));
  }
  return std::make_pair(bundle[0], jpa[0]);
}

absl::StatusOr<std::vector<Jar>> JarsFromZip(const StepContext& ctx, const std::string& param) {
  ASSIGN_OR_RETURN(std::string path, ctx.guard->Resolve(param));
  if (!IsFile(path)) {
    return absl::NotFoundError(absl::StrCat("hl7_zip: ", path, " is not a file"));
  }
  common::ZipLimits limits;
  limits.want_content = [](const common::ZipEntry& e) {
    const std::string base = common::Basename(e.name);
    return !e.is_dir && e.size <= kMaxJarBytes && (IsHl7BundleJar(base) || IsOpenJpaJar(base));
  };
  ASSIGN_OR_RETURN(std::vector<common::ZipEntry> entries, common::ReadZip(path, limits));
  std::vector<std::string> names;
  std::vector<common::ZipEntry*> files;
  for (common::ZipEntry& e : entries) {
    if (e.is_dir) continue;
    names.push_back(Printable(e.name));
    files.push_back(&e);
  }
  ASSIGN_OR_RETURN(auto picked, PickJars(names, absl::StrCat("hl7_zip ", path)));
  std::vector<Jar> jars;
  for (size_t i : {picked.first, picked.second}) {
    if (!files[i]->content_read) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, "!", names[i], ": unknown size or over 256 MiB"));
    }
    Jar jar;
    jar.name = common::Basename(names[i]);
    jar.from_zip = true;
    jar.content = std::move(files[i]->data);
    jars.push_back(std::move(jar));
  }
  return jars;
}

absl::StatusOr<std::vector<Jar>> JarsFromDir(const StepContext& ctx, const std::string& param) {
  ASSIGN_OR_RETURN(std::string dir, ctx.guard->Resolve(param));
  if (!common::IsDirectory(dir)) {
    return absl::NotFoundError(absl::StrCat("hl7_dir: ", dir, " is not a directory"));
  }
  // Listed as files under dir's parent so every entry is checked by the guard.
  const std::string parent = common::Dirname(dir), base = common::Basename(dir);
  ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfinedFiles(ctx, parent, base));
  ASSIGN_OR_RETURN(auto picked, PickJars(files, absl::StrCat("hl7_dir ", dir)));
  std::vector<Jar> jars;
  for (size_t i : {picked.first, picked.second}) {
    Jar jar;
    jar.name = common::Basename(files[i]);
    ASSIGN_OR_RETURN(jar.source_path, ctx.guard->ResolveUnder(parent, files[i]));
    jars.push_back(std::move(jar));
  }
  return jars;
}

// "4.2.0" from "org.wso2.micro.integrator.business.messaging.hl7-4.2.0.jar" ("" when none).
std::string BundleVersion(const std::string& jar_name) {
  const size_t dash = jar_name.rfind("hl7-");
  if (dash == std::string::npos || !absl::EndsWithIgnoreCase(jar_name, ".jar")) return "";
  return jar_name.substr(dash + 4, jar_name.size() - 4 - (dash + 4));
}

void CheckBundleVersion(const StepContext& ctx, const Homes& homes, const std::string& jar) {
  std::string target = ctx.target_version;
  if (target.empty()) {
    absl::StatusOr<common::MiVersion> v = common::DetectMiVersion(homes.target);
    if (v.ok()) target = v->version;
  }
  const std::string version = BundleVersion(jar);
  if (target.empty()) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat("cannot tell the target's MI version to check ", jar, " against it"));
  } else if (version != target) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat(jar, " is built for MI ", version.empty() ? "(unknown)" : version,
                         " but the target is MI ", target, "; use wso2mi-hl7-", target, ".zip"));
  }
}

// Whether the target's deployment.toml (as it will be when this step applies) enables the HL7
// transport with MI 4.x's classes; logs what is missing or old. "true" or "false".
absl::StatusOr<std::string> CheckTargetTransport(const StepContext& ctx, const Homes& homes) {
  ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.target, kDeploymentToml));
  absl::StatusOr<std::string> text = ReadPlanned(ctx, path);
  if (!text.ok()) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat("cannot read the target's ", kDeploymentToml,
                         " to check that it enables the HL7 transport: ", text.status().message()));
    return std::string("false");
  }
  ASSIGN_OR_RETURN(toml::table root, common::ParseTomlString(*text, path));
  std::vector<std::string> enabled;
  if (const toml::table* ct = root["custom_transport"].as_table()) {
    for (const auto& [kind, wanted] : {std::pair<const char*, const char*>{"listener",
                                                                           common::kHl7ListenerClass},
                                       {"sender", common::kHl7SenderClass}}) {
      bool found = false;
      ForEachTable(ct->get(kind), [&](const toml::table& t) {
        const std::string cls = StringAt(t, "class");
        if (Lower(StringAt(t, "protocol")) != "hl7" && !absl::StrContains(Lower(cls), "hl7")) {
          return;
        }
        if (cls == wanted) {
          found = true;
        } else if (absl::StartsWith(cls, common::kOldHl7Package)) {
          StepLog(ctx, LogLevel::kWarning,
                  absl::StrCat(kDeploymentToml, ":", common::NodeLine(&t),
                               ": [[custom_transport.", kind,
                               "]] still names the EI 7.1 class ", cls,
                               " (merge_config rewrites it); MI 4.x has ", wanted));
        } else {
          StepLog(ctx, LogLevel::kWarning,
                  absl::StrCat(kDeploymentToml, ":", common::NodeLine(&t),
                               ": [[custom_transport.", kind, "]] protocol hl7 has class ", cls,
                               "; MI 4.x's is ", wanted));
        }
      });
      if (found) enabled.push_back(kind);
    }
  }
  if (enabled.empty()) {
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat("the target's ", kDeploymentToml,
                         " enables no HL7 transport: add [[custom_transport.listener]] class = \"",
                         common::kHl7ListenerClass,
                         "\" protocol = \"hl7\" (to receive) and/or [[custom_transport.sender]] "
                         "class = \"",
                         common::kHl7SenderClass, "\" protocol = \"hl7\" (to send)"));
    return std::string("false");
  }
  StepLog(ctx, LogLevel::kInfo,
          absl::StrCat("HL7 transport enabled in the target's ", kDeploymentToml, " (",
                       absl::StrJoin(enabled, ", "), ")"));
  return std::string("true");
}

class Hl7TransportStep final : public Step {
 public:
  std::string name() const override { return "hl7_transport"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    const std::string zip_param = ctx.Param("hl7_zip"), dir_param = ctx.Param("hl7_dir");
    if (!zip_param.empty() && !dir_param.empty()) {
      return absl::InvalidArgumentError("hl7_transport: set hl7_zip or hl7_dir, not both");
    }
    ASSIGN_OR_RETURN(const Detection d, DetectInSource(ctx, homes));
    for (const std::string& s : d.inbound) {
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat(s, " (built into MI; needs no HL7 jars, not counted)"));
    }
    for (const std::string& s : d.signals) {
      StepLog(ctx, LogLevel::kInfo, absl::StrCat("HL7 use: ", s));
    }
    StepPlan plan;
    plan.facts["hl7_used"] = d.signals.empty() ? "false" : "true";
    if (d.signals.empty()) {
      plan.message = "HL7 not used";
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    const std::string used = absl::StrCat("HL7 used (", Count(d.signals.size(), "signal"), ")");
    ASSIGN_OR_RETURN(plan.facts["hl7_transport_enabled"], CheckTargetTransport(ctx, homes));
    for (const std::string& where : d.old_in_capps) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(where, ": EI 7.1 HL7 class names (", common::kOldHl7Package,
                           "*) inside a CApp: rebuild the CApp with ", common::kHl7Package,
                           "* (mimic does not re-pack CApps for this)"));
    }

    // The target's HL7 jars now.
    ASSIGN_OR_RETURN(std::vector<std::string> target_dropins,
                     ListConfinedFiles(ctx, homes.target, "dropins"));
    std::vector<std::string> installed;  // rel paths of HL7 jars directly in dropins/
    for (const std::string& rel : target_dropins) {
      const std::string base = common::Basename(rel);
      if (rel == common::JoinPath("dropins", base) &&
          (IsHl7BundleJar(base) || IsOpenJpaJar(base))) {
        installed.push_back(rel);
      }
    }

    if (zip_param.empty() && dir_param.empty()) {
      std::vector<std::string> names;
      for (const std::string& rel : installed) names.push_back(common::Basename(rel));
      absl::StatusOr<std::pair<size_t, size_t>> picked = PickJars(names, "dropins/");
      if (picked.ok()) {  // installed before (by hand or an earlier run): nothing to do
        CheckBundleVersion(ctx, homes, names[picked->first]);
        plan.message = absl::StrCat(used, "; jars already installed in dropins/ (",
                                    absl::StrJoin(names, ", "), ")");
        StepLog(ctx, LogLevel::kInfo, plan.message);
        return plan;
      }
      plan.forced_status = mimic::v1::STEP_FAILED;
      plan.message = absl::StrCat(
          used, ": ", absl::StrJoin(d.signals, "; "),
          ". The HL7 jars are not in the target MI pack: set param hl7_zip to the path of "
          "wso2mi-hl7-<version>.zip, or hl7_dir to a folder holding "
          "org.wso2.micro.integrator.business.messaging.hl7-<version>.jar and "
          "openjpa-all-<version>.jar (inside the agent's allowed roots)");
      return plan;
    }

    ASSIGN_OR_RETURN(std::vector<Jar> jars,
                     zip_param.empty() ? JarsFromDir(ctx, dir_param) : JarsFromZip(ctx, zip_param));
    CheckBundleVersion(ctx, homes, jars[0].name);
    const std::string origin = common::Basename(zip_param.empty() ? dir_param : zip_param);
    std::vector<std::string> to_install, to_remove;
    for (Jar& jar : jars) {
      ASSIGN_OR_RETURN(std::string to, ctx.guard->ResolveUnder(
                                           homes.target, common::JoinPath("dropins", jar.name)));
      const std::string note = absl::StrCat("HL7 transport jar from ", origin);
      std::optional<FileOp> op;
      if (jar.from_zip) {
        ASSIGN_OR_RETURN(op, MakeWriteOp(to, std::move(jar.content), 0644, note));
      } else {
        ASSIGN_OR_RETURN(op, MakeCopyOp(jar.source_path, to, note));
      }
      if (op) {
        plan.changes.ops.push_back(std::move(*op));
        to_install.push_back(jar.name);
      }
    }
    for (const std::string& rel : installed) {
      const std::string base = common::Basename(rel);
      if (base == jars[0].name || base == jars[1].name) continue;
      ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.target, rel));
      ASSIGN_OR_RETURN(std::string sha, CurrentSha256(path));
      FileOp op;
      op.kind = FileOp::Kind::kDelete;
      op.path = path;
      op.expected_sha256 = sha;
      op.note = absl::StrCat("other version of an HL7 jar; replaced by ", origin, "'s");
      plan.changes.ops.push_back(std::move(op));
      to_remove.push_back(base);
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(rel,
                           ": other version of an HL7 jar; removed (two versions of one "
                           "bundle in dropins/ conflict; the snapshot keeps it)"));
    }
    FinishFileChangeSet(&plan.changes);
    if (plan.changes.empty()) {
      plan.message = absl::StrCat(used, "; jars already installed in dropins/ (", jars[0].name,
                                  ", ", jars[1].name, ")");
    } else {
      plan.message =
          absl::StrCat(used, "; ", to_install.empty() ? "nothing" : absl::StrJoin(to_install, ", "),
                       " to install into dropins/ from ", origin);
      if (!to_remove.empty()) {
        absl::StrAppend(&plan.message,
                        "; other versions removed: ", absl::StrJoin(to_remove, ", "));
      }
    }
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

common::ZipLimits Hl7ScanOfCappLimits() {
  // Decided on the central directory; of what is read, a binary entry (a NUL byte in its
  // head) is passed over after that head: synapse artifacts are text.
  common::ZipLimits limits;
  limits.want_content = [](const common::ZipEntry& e) {
    return ScannedInCapp(e.name) && e.size <= kMaxScannedBytes;
  };
  limits.skip_binary = true;
  return limits;
}

absl::StatusOr<std::vector<std::string>> DetectHl7Signals(const StepContext& ctx,
                                                          const Homes& homes) {
  ASSIGN_OR_RETURN(Detection d, DetectInSource(ctx, homes));
  return std::move(d.signals);
}

std::unique_ptr<Step> NewHl7TransportStep() { return std::make_unique<Hl7TransportStep>(); }

}  // namespace mimic::agent
