#include "common/mi/secrets.h"

#include <sys/stat.h>

#include <set>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/mi/toml_rules.h"

namespace mimic::common {
namespace {

constexpr off_t kMaxConfigBytes = 4 << 20;

void AddTomlNode(const toml::node& n, const std::string& key, SecretScrubber* s) {
  if (const auto* t = n.as_table()) {
    for (const auto& [k, v] : *t) {
      AddTomlNode(v, key.empty() ? std::string(k.str())
                                 : absl::StrCat(key, ".", toml_internal::QuoteKey(k.str())),
                  s);
    }
  } else if (const auto* a = n.as_array()) {
    for (size_t i = 0; i < a->size(); ++i) AddTomlNode((*a)[i], absl::StrCat(key, "[", i, "]"), s);
  } else if (const auto* str = n.as_string()) {
    s->AddKeyValue(key, str->get());
  } else if (IsSecretKey(key)) {
    if (const auto* i = n.as_integer()) s->Add(absl::StrCat(i->get()));  // a numeric PIN
  }
}

// The file's bytes when it is a regular file of at most kMaxConfigBytes; "" otherwise.
std::string ReadConfig(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxConfigBytes) {
    return "";
  }
  absl::StatusOr<std::string> bytes = ReadFile(path);
  return bytes.ok() ? *bytes : "";
}

}  // namespace

void AddDeploymentTomlSecrets(std::string_view text, SecretScrubber* s) {
  absl::StatusOr<toml::table> t = toml_internal::ParseToml(text, "deployment.toml");
  if (!t.ok()) {
    s->AddFoundIn(text);
    return;
  }
  AddTomlNode(*t, "", s);
}

static std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.front() == '\r')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) {
    v.remove_suffix(1);
  }
  return v;
}

void AddPropertiesSecrets(std::string_view text, bool all_values, SecretScrubber* s) {
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    std::string_view line = Trim(text.substr(b, e - b));
    b = e + 1;
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    size_t eq = line.find_first_of("=:");
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (all_values || IsSecretKey(key)) {
      s->Add(value);
    } else {
      s->AddFoundIn(value);
    }
  }
}

void AddMiHomeSecrets(const std::string& home, SecretScrubber* s) {
  if (home.empty()) return;
  AddDeploymentTomlSecrets(ReadConfig(JoinPath(home, "conf/deployment.toml")), s);
  AddPropertiesSecrets(ReadConfig(JoinPath(home, "conf/security/cipher-text.properties")), true, s);
  AddPropertiesSecrets(ReadConfig(JoinPath(home, "conf/security/secret-conf.properties")), false,
                       s);
}

void AddPlanSecrets(const mimic::v1::HostPlan& plan, SecretScrubber* s) {
  for (const mimic::v1::StepSpec& step : plan.steps()) {
    for (const auto& [k, v] : step.params()) s->AddKeyValue(k, v);
    if (!step.params_toml().empty()) AddDeploymentTomlSecrets(step.params_toml(), s);
  }
  for (const auto& [k, v] : plan.vars()) {
    if (IsSecretKey(k)) s->Add(v);
  }
}

void ScrubEvent(google::protobuf::Message* m, const SecretScrubber& s) {
  if (s.size() == 0) return;
  static const std::set<std::string, std::less<>> kIdentifiers = {
      "path",          "sha256_before",   "sha256_after",  "run_id",         "rollout_id",
      "host",          "plan_sha256",     "source_home",   "target_home",    "rollback_run_id",
      "step",          "key",             "file",          "action",         "migration_path",
      "hostname",      "agent_version",   "source_version", "target_version", "stage",
      "name"};
  using FD = google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m->GetReflection();
  std::vector<const FD*> fields;
  r->ListFields(*m, &fields);
  for (const FD* f : fields) {
    if (f->cpp_type() == FD::CPPTYPE_STRING) {
      if (kIdentifiers.count(f->name()) > 0) continue;
      std::string scratch;
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          const std::string& v = r->GetRepeatedStringReference(*m, f, i, &scratch);
          if (s.Holds(v)) r->SetRepeatedString(m, f, i, s.Scrub(v));
        }
      } else {
        const std::string& v = r->GetStringReference(*m, f, &scratch);
        if (s.Holds(v)) r->SetString(m, f, s.Scrub(v));
      }
    } else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          ScrubEvent(r->MutableRepeatedMessage(m, f, i), s);
        }
      } else {
        ScrubEvent(r->MutableMessage(m, f), s);
      }
    }
  }
}

}  // namespace mimic::common
