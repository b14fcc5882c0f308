// The keyed ledger: the signing key, the value codec of entry bodies, the tables each rollout
// is compared on, VerifyAudit (macs, event chains against sealed heads, a replay of every
// rollout into an empty database compared row by row) and the exported, signed head.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/base/fs.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "controller/audit/audit.h"
#include "controller/audit/audit_internal.h"
#include "controller/audit/sql_db.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

constexpr char kHeadFormatV1[] = "mimic-audit-head-v1";  // HMAC only
constexpr char kHeadFormat[] = "mimic-audit-head-v2";    // HMAC and Ed25519
constexpr char kHeadKeyKind[] = "head_key";             // the ledger entry of a head key

void AppendLengthPrefixed(std::string& out, absl::string_view s) {
  AppendBigEndian64(out, s.size());
  out.append(s.data(), s.size());
}

bool ReadBigEndian64(absl::string_view& in, uint64_t* v) {
  if (in.size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(8);
  return true;
}

// A value as compared: NULL, or its text (integers in decimal), so that an engine's integer
// and the same number as text agree.
std::string Canonical(const SqlRow& row) {
  std::vector<SqlValue> v;
  v.reserve(row.size());
  for (const SqlValue& c : row) v.push_back(c.is_null() ? SqlValue() : SqlValue(c.AsText()));
  return EncodeValues(v);
}

// A row for a message: its values, comma-separated, cut short.
std::string Describe(const SqlRow& row) {
  std::vector<std::string> parts;
  for (const SqlValue& c : row) {
    std::string t = c.is_null() ? "NULL" : c.AsText();
    if (t.size() > 24) t = t.substr(0, 21) + "...";
    parts.push_back(t);
  }
  return absl::StrCat("(", absl::StrJoin(parts, ", "), ")");
}

// The signed lines of a head (FormatAuditHead writes them, ParseAuditHead reads them back).
std::string SignedHeadText(const AuditHead& h) {
  std::string text = absl::StrCat("format ", h.format == 1 ? kHeadFormatV1 : kHeadFormat,
                                  "\nentries ", h.entries, "\nhead ", h.head, "\nrollouts ",
                                  h.rollouts, "\nexported_at_us ", h.at_us, "\nkey_id ",
                                  h.key_id, "\n");
  if (h.format != 1) {
    absl::StrAppend(&text, "head_key_id ", h.head_key_id, "\nhead_public_key ",
                    h.head_public_key, "\n");
  }
  return text;
}

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

// "" when `signature_b64` is raw_public_key's Ed25519 signature of `data`, else why not.
std::string CheckEd25519(const std::string& raw_public_key, absl::string_view data,
                         const std::string& signature_b64) {
  std::string sig;
  if (!absl::Base64Unescape(signature_b64, &sig) || sig.size() != 64) {
    return "its signature is not an Ed25519 signature (base64 of 64 bytes)";
  }
  PkeyPtr pub(EVP_PKEY_new_raw_public_key(
                  EVP_PKEY_ED25519, nullptr,
                  reinterpret_cast<const unsigned char*>(raw_public_key.data()),
                  raw_public_key.size()),
              &EVP_PKEY_free);
  MdCtxPtr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (pub == nullptr || ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pub.get()) != 1) {
    return "its public key is not an Ed25519 key";
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return "its Ed25519 signature does not verify: the file was edited or forged";
  }
  return "";
}

std::string RawPublicKey(EVP_PKEY* pkey) {
  unsigned char raw[32];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof(raw)) return "";
  return std::string(reinterpret_cast<const char*>(raw), len);
}

struct Entry {
  int64_t idx = 0;
  std::string kind;
  std::vector<SqlValue> values;
};

}  // namespace

// ---- Codec, key, tables ----------------------------------------------------------------------

std::string EncodeValues(const std::vector<SqlValue>& values) {
  std::string out;
  for (const SqlValue& v : values) {
    switch (v.type()) {
      case SqlValue::Type::kNull:
        out.push_back('N');
        break;
      case SqlValue::Type::kInt:
        out.push_back('I');
        AppendBigEndian64(out, static_cast<uint64_t>(v.AsInt()));
        break;
      case SqlValue::Type::kText:
        out.push_back('T');
        AppendLengthPrefixed(out, v.raw_text());
        break;
      case SqlValue::Type::kBlob:
        out.push_back('B');
        AppendLengthPrefixed(out, v.raw_text());
        break;
    }
  }
  return out;
}

absl::StatusOr<std::vector<SqlValue>> DecodeValues(absl::string_view in) {
  std::vector<SqlValue> out;
  while (!in.empty()) {
    const char tag = in[0];
    in.remove_prefix(1);
    uint64_t n = 0;
    if (tag == 'N') {
      out.emplace_back();
      continue;
    }
    if ((tag != 'I' && tag != 'T' && tag != 'B') || !ReadBigEndian64(in, &n)) {
      return absl::DataLossError("malformed audit ledger body");
    }
    if (tag == 'I') {
      out.emplace_back(static_cast<int64_t>(n));
      continue;
    }
    if (n > in.size()) return absl::DataLossError("malformed audit ledger body");
    std::string bytes(in.substr(0, n));
    in.remove_prefix(n);
    out.push_back(tag == 'B' ? SqlValue::Blob(std::move(bytes)) : SqlValue(std::move(bytes)));
  }
  return out;
}

std::string LedgerMacInput(const std::string& prev_mac, int64_t idx, const std::string& rollout_id,
                           const std::string& kind, const std::string& body, int64_t at,
                           const std::string& key_id) {
  std::string in = "mimic-ledger-v1";
  in += prev_mac;
  AppendBigEndian64(in, static_cast<uint64_t>(idx));
  AppendLengthPrefixed(in, rollout_id);
  AppendLengthPrefixed(in, kind);
  AppendLengthPrefixed(in, body);
  AppendBigEndian64(in, static_cast<uint64_t>(at));
  AppendLengthPrefixed(in, key_id);
  return in;
}

SigningKey::SigningKey(std::string key, std::string path)
    : key_(std::move(key)), path_(std::move(path)) {
  id_ = common::Sha256Hex("mimic-audit-key-id\n" + key_).substr(0, 16);
}

std::string SigningKey::Mac(absl::string_view data) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), len));
}

namespace {

// The text of the private key file at `path` (a regular file no one but its owner can read).
// When it is missing and `make` is given, the file is made first from make()'s bytes: written
// whole to a private temporary file (0600), then linked into place, so a key another controller
// creates at the same moment is never overwritten (link fails, and theirs is read). `what` names
// the key in messages, `missing` is the message when there is no file and no `make`; no message
// holds the key.
absl::StatusOr<std::string> ReadOrMakePrivateFile(
    const std::string& path, absl::string_view what, const std::string& missing,
    const std::function<absl::StatusOr<std::string>()>& make) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (!S_ISREG(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(what, " ", path, " is not a regular file"));
      }
      if ((st.st_mode & 077) != 0) {
        return absl::FailedPreconditionError(
            absl::StrFormat("%s %s can be read by others (mode %04o): chmod 600 %s", what, path,
                            st.st_mode & 07777, path));
      }
      absl::StatusOr<std::string> text = common::ReadFile(path);
      if (!text.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot read ", what, " ", path, ": ", text.status().message()));
      }
      return text;
    }
    if (errno == ENOENT && !make) return absl::FailedPreconditionError(missing);
    if (errno != ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot stat ", what, " ", path, ": ", std::strerror(errno)));
    }
    ASSIGN_OR_RETURN(std::string bytes, make());
    const std::string tmp = absl::StrCat(path, ".new-", ::getpid());
    absl::Status written = common::WriteFileAtomic(tmp, bytes, 0600);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    RETURN_IF_ERROR(written);
    const int rc = ::link(tmp.c_str(), path.c_str());
    const int link_errno = errno;
    ::unlink(tmp.c_str());
    if (rc != 0 && link_errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", what, " ", path, ": ", std::strerror(link_errno)));
    }
    if (rc == 0) {
      const std::string dir = common::Dirname(path);
      RETURN_IF_ERROR(common::FsyncDir(dir.empty() ? "." : dir));
      LOG(INFO) << "audit: created the " << what << " " << path;
    }
  }
  return absl::InternalError(absl::StrCat("cannot load ", what, " ", path));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SigningKey>> SigningKey::LoadOrCreate(const std::string& path,
                                                                    bool create) {
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "the audit has no signing key: set [audit] signing_key in the inventory (a PostgreSQL "
        "audit needs one; default <state_dir>/audit.key) or pass --signing-key FILE");
  }
  std::function<absl::StatusOr<std::string>()> make;
  if (create) {
    make = []() -> absl::StatusOr<std::string> {
      unsigned char raw[32];
      if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return absl::InternalError("cannot draw random bytes for the audit signing key");
      }
      std::string hex = absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
      OPENSSL_cleanse(raw, sizeof(raw));
      return hex + "\n";
    };
  }
  ASSIGN_OR_RETURN(
      std::string text,
      ReadOrMakePrivateFile(
          path, "audit signing key",
          absl::StrCat("the audit's signing key ", path, " is missing: only the key that signed ",
                       "the audit can verify it (--signing-key FILE, or [audit] signing_key in ",
                       "the inventory)"),
          make));
  std::string hex(absl::StripAsciiWhitespace(text));
  OPENSSL_cleanse(text.data(), text.size());
  const bool is_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c));
  });
  if (hex.size() != 64 || !is_hex) {
    return absl::FailedPreconditionError(absl::StrCat(
        "audit signing key ", path, " does not hold a key (64 hex characters expected)"));
  }
  return std::unique_ptr<SigningKey>(new SigningKey(absl::HexStringToBytes(hex), path));
}

HeadKey::HeadKey(EVP_PKEY* pkey, std::string path) : pkey_(pkey), path_(std::move(path)) {
  const std::string raw = RawPublicKey(pkey_);
  public_key_ = absl::Base64Escape(raw);
  id_ = HeadKeyId(raw);
}

HeadKey::~HeadKey() { EVP_PKEY_free(pkey_); }

absl::StatusOr<std::unique_ptr<HeadKey>> HeadKey::LoadOrCreate(const std::string& path) {
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "the audit has no head key: an audit in memory cannot export a signed head");
  }
  auto make = []() -> absl::StatusOr<std::string> {
    EVP_PKEY* made = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (made == nullptr) return absl::InternalError("cannot make an Ed25519 key");
    PkeyPtr key(made, &EVP_PKEY_free);
    BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (bio == nullptr ||
        PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
      return absl::InternalError("cannot encode the Ed25519 head key");
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    std::string pem(data, static_cast<size_t>(n));
    OPENSSL_cleanse(data, static_cast<size_t>(n));
    return pem;
  };
  ASSIGN_OR_RETURN(std::string pem,
                   ReadOrMakePrivateFile(path, "audit head key", "", make));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  EVP_PKEY* pkey =
      bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (pkey == nullptr || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    return absl::FailedPreconditionError(
        absl::StrCat("audit head key ", path, " does not hold an Ed25519 private key (PEM)"));
  }
  std::unique_ptr<HeadKey> key(new HeadKey(pkey, path));
  // The public half beside it, for auditors (written again when someone removed it).
  const std::string pub_path = path + ".pub";
  if (!common::PathExists(pub_path)) {
    BioPtr out(BIO_new(BIO_s_mem()), &BIO_free);
    char* data = nullptr;
    if (out == nullptr || PEM_write_bio_PUBKEY(out.get(), pkey) != 1) {
      return absl::InternalError("cannot encode the head key's public key");
    }
    const long n = BIO_get_mem_data(out.get(), &data);
    RETURN_IF_ERROR(common::WriteFileAtomic(pub_path, std::string(data, static_cast<size_t>(n)),
                                            0644));
  }
  return key;
}

absl::StatusOr<std::string> HeadKey::Sign(absl::string_view data) const {
  MdCtxPtr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char sig[64];
  size_t len = sizeof(sig);
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return absl::InternalError("cannot sign the audit head with the head key");
  }
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(sig), len));
}

std::string HeadKeyId(const std::string& raw_public_key) {
  return common::Sha256Hex(raw_public_key).substr(0, 16);
}

std::string DefaultHeadKeyPath(const std::string& signing_key_path) {
  if (signing_key_path.empty()) return "";
  const std::string dir = common::Dirname(signing_key_path);
  return dir.empty() ? "audit-head.key" : common::JoinPath(dir, "audit-head.key");
}

absl::StatusOr<std::string> CheckHeadSignature(const AuditHead& head,
                                               const std::string& public_key_pem,
                                               const std::string& key_name) {
  BioPtr bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())),
             &BIO_free);
  PkeyPtr pub(bio == nullptr ? nullptr : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
              &EVP_PKEY_free);
  if (pub == nullptr || EVP_PKEY_get_base_id(pub.get()) != EVP_PKEY_ED25519) {
    const bool is_private = absl::StrContains(public_key_pem, "PRIVATE KEY");
    return absl::InvalidArgumentError(absl::StrCat(
        key_name, ": ",
        is_private ? "holds a private key: give the public key (the head key's .pub file), and "
                     "keep the private key where only the controller reads it"
                   : "is not an Ed25519 public key in PEM (the head key's .pub file)"));
  }
  const std::string raw = RawPublicKey(pub.get());
  if (head.format == 1) {
    return absl::FailedPreconditionError(
        "the head is format 1 (HMAC only, exported by an older mimic): only the signing key can "
        "check it (mimic audit verify --against FILE, on the controller)");
  }
  if (head.head_key_id != HeadKeyId(raw) || head.head_public_key != absl::Base64Escape(raw)) {
    return absl::StrCat("the head names head key ", head.head_key_id, ", not ", key_name,
                        " (key ", HeadKeyId(raw), "): it was signed by another key");
  }
  return CheckEd25519(raw, SignedHeadText(head), head.signature);
}

std::string DefaultSigningKeyPath(const std::string& url_or_path, const std::string& state_dir) {
  if (absl::StartsWith(url_or_path, "postgresql://") ||
      absl::StartsWith(url_or_path, "postgres://")) {
    return state_dir.empty() ? "" : common::JoinPath(state_dir, "audit.key");
  }
  std::string path = url_or_path;
  if (absl::StartsWith(path, "sqlite:")) {
    path = path.substr(7);
    if (absl::StartsWith(path, "//")) path = path.substr(2);
  }
  if (path.empty() || path == ":memory:") return "";
  const std::string dir = common::Dirname(path);
  return dir.empty() ? "audit.key" : common::JoinPath(dir, "audit.key");
}

const std::vector<AuditTable>& AuditTables() {
  static const std::vector<AuditTable>* const kTables = new std::vector<AuditTable>{
      {"rollouts",
       "r.id, r.plan_path, r.plan_sha256, r.inventory_path, COALESCE(o.os_user, ''), "
       "COALESCE(o.cert_subject, ''), r.check_mode, r.started_at, r.finished_at, r.status, "
       "r.message",
       "rollouts r LEFT JOIN operators o ON o.id = r.operator_id", "r.id = ?"},
      {"rollout_scopes", "rollout_id, stage, host_limit, hosts", "rollout_scopes",
       "rollout_id = ?"},
      {"rollout_scope_batches", "rollout_id, ord, stage, idx, hosts", "rollout_scope_batches",
       "rollout_id = ?"},
      {"stages", "rollout_id, name, idx, status, started_at, finished_at", "stages",
       "rollout_id = ?"},
      {"batches", "rollout_id, stage, idx, hosts", "batches", "rollout_id = ?"},
      {"approvals", "rollout_id, stage, who, at, forced", "approvals", "rollout_id = ?"},
      {"runs",
       "run_id, rollout_id, host, stage, batch_idx, mode, status, created_at, started_at, "
       "finished_at, last_seq, message, agent_version, source_version, target_version",
       "runs", "rollout_id = ?"},
      {"steps", "run_id, idx, name, status, message, duration_us", "steps",
       "run_id IN (SELECT run_id FROM runs WHERE rollout_id = ?)"},
      {"file_changes",
       "run_id, seq, ord, step_idx, step, path, action, size, sha256_before, sha256_after, note",
       "file_changes", "run_id IN (SELECT run_id FROM runs WHERE rollout_id = ?)"},
      {"file_diffs", "run_id, seq, ord, diff", "file_diffs",
       "run_id IN (SELECT run_id FROM runs WHERE rollout_id = ?)"},
      {"config_changes",
       "run_id, seq, ord, step_idx, step, file, key, action, old_value, new_value, redacted, "
       "note",
       "config_changes", "run_id IN (SELECT run_id FROM runs WHERE rollout_id = ?)"},
      {"event_chains", "rollout_id, event_count, head_hash", "event_chains", "rollout_id = ?"},
  };
  return *kTables;
}

const std::vector<std::pair<const char*, const char*>>& RolloutIdColumns() {
  static const auto* const kColumns = new std::vector<std::pair<const char*, const char*>>{
      {"rollouts", "id"},
      {"rollout_scopes", "rollout_id"},
      {"rollout_scope_batches", "rollout_id"},
      {"stages", "rollout_id"},
      {"batches", "rollout_id"},
      {"approvals", "rollout_id"},
      {"runs", "rollout_id"},
      {"events", "rollout_id"},
      {"event_chains", "rollout_id"},
  };
  return *kColumns;
}

absl::StatusOr<std::vector<SqlRow>> DumpTable(SqlDb& db, const AuditTable& t,
                                              const std::string& rollout_id) {
  return db.Query(absl::StrCat("SELECT ", t.columns, " FROM ", t.from, " WHERE ", t.where),
                  {rollout_id});
}

absl::Status RestoreTable(SqlDb& db, const AuditTable& t, const std::vector<SqlRow>& rows) {
  for (const SqlRow& row : rows) {
    if (absl::string_view(t.name) == "rollouts") {
      // The operator by name (ids differ between databases), then the rollout.
      if (row.size() != 11) return absl::DataLossError("malformed legacy rollouts row");
      std::vector<SqlValue> v = {row[0], row[1], row[2],  row[3], row[4], row[5], row[6], row[7],
                                 row[8], row[9], row[10], 0,      "",     "",     "",     0};
      RETURN_IF_ERROR(ApplyAuditRecord(db, row[0].AsText(), "rollout", v).status());
      continue;
    }
    std::vector<std::string> marks(row.size(), "?");
    RETURN_IF_ERROR(db.Exec(absl::StrCat("INSERT INTO ", t.name, " (", t.columns, ") VALUES (",
                                         absl::StrJoin(marks, ", "), ")"),
                            row)
                        .status());
  }
  return absl::OkStatus();
}

// ---- The head file ---------------------------------------------------------------------------

std::string FormatAuditHead(const AuditHead& h) {
  return absl::StrCat(
      "# mimic audit head, exported ",
      absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMicros(h.at_us), absl::UTCTimeZone()),
      ". Keep it away from the audit database and its signing key;\n"
      "# `mimic audit verify --against FILE` checks that the audit still extends it;\n"
      "# `mimic audit verify --against FILE --public-key audit-head.key.pub` checks its\n"
      "# signature with the head key's public key alone.\n",
      SignedHeadText(h), "hmac ", h.hmac, "\n",
      h.format == 1 ? "" : absl::StrCat("signature ", h.signature, "\n"));
}

absl::StatusOr<AuditHead> ParseAuditHead(const std::string& text, const std::string& name) {
  AuditHead h;
  std::map<std::string, std::string> seen;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": key '", kv.first, "': ", why));
    };
    if (!seen.emplace(kv.first, kv.second).second) return bad("given twice");
    if (kv.first == "format") {
      if (kv.second == kHeadFormatV1) {
        h.format = 1;
      } else if (kv.second != kHeadFormat) {
        return bad(absl::StrCat("must be ", kHeadFormat, " (or ", kHeadFormatV1, ")"));
      }
    } else if (kv.first == "entries") {
      if (!absl::SimpleAtoi(kv.second, &h.entries) || h.entries < 0) return bad("not a count");
    } else if (kv.first == "head") {
      h.head = kv.second;
    } else if (kv.first == "rollouts") {
      if (!absl::SimpleAtoi(kv.second, &h.rollouts) || h.rollouts < 0) return bad("not a count");
    } else if (kv.first == "exported_at_us") {
      if (!absl::SimpleAtoi(kv.second, &h.at_us)) return bad("not a time");
    } else if (kv.first == "key_id") {
      h.key_id = kv.second;
    } else if (kv.first == "hmac") {
      h.hmac = kv.second;
    } else if (kv.first == "head_key_id") {
      h.head_key_id = kv.second;
    } else if (kv.first == "head_public_key") {
      h.head_public_key = kv.second;
    } else if (kv.first == "signature") {
      h.signature = kv.second;
    } else {
      return bad("unknown key");
    }
  }
  std::vector<const char*> keys = {"format",         "entries", "head", "rollouts",
                                   "exported_at_us", "key_id",  "hmac"};
  if (h.format != 1) {
    for (const char* k : {"head_key_id", "head_public_key", "signature"}) keys.push_back(k);
  }
  for (const char* key : keys) {
    if (!seen.contains(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": key '", key, "' is missing (not a `mimic audit export` file?)"));
    }
  }
  return h;
}

// ---- Verification ----------------------------------------------------------------------------

absl::StatusOr<std::string> Audit::SigningKeyId() {
  common::MutexLock l(&db_mu_);
  RETURN_IF_ERROR(EnsureKeyToCheck());
  return key_->id();
}

std::string Audit::HeadKeyPath() const {
  return options_.head_key_path.empty() ? DefaultHeadKeyPath(options_.signing_key_path)
                                        : options_.head_key_path;
}

absl::StatusOr<AuditHead> Audit::ExportHead() {
  common::MutexLock l(&db_mu_);
  RETURN_IF_ERROR(EnsureKeyToCheck());
  RETURN_IF_ERROR(SealLegacyIfPending());
  ASSIGN_OR_RETURN(std::unique_ptr<HeadKey> head_key, HeadKey::LoadOrCreate(HeadKeyPath()));
  // The head key's public key is recorded in the ledger (once), so the audit says which key
  // signs its heads and a head signed by a key it never recorded is refused (VerifyAudit).
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT body FROM ledger WHERE rollout_id = '' AND kind = ?",
                              {kHeadKeyKind}));
  bool recorded = false;
  for (const SqlRow& row : rows) {
    absl::StatusOr<std::vector<SqlValue>> v = DecodeValues(row[0].raw_text());
    recorded = recorded || (v.ok() && v->size() == 2 && (*v)[0].AsText() == head_key->id() &&
                            (*v)[1].AsText() == head_key->public_key());
  }
  if (!recorded) {
    RETURN_IF_ERROR(InWriteTxn([&]() -> absl::Status {
      RETURN_IF_ERROR(PrepareLedger());
      return AppendLedgerEntry("", kHeadKeyKind,
                               EncodeValues({head_key->id(), head_key->public_key()}),
                               AuditNowMicros());
    }));
    LOG(INFO) << "audit: head key " << head_key->id() << " (" << head_key->path()
              << ".pub) recorded in the ledger";
  }
  ASSIGN_OR_RETURN(rows, db_->Query("SELECT idx, mac FROM ledger ORDER BY idx DESC LIMIT 1"));
  AuditHead h;
  h.entries = rows.empty() ? 0 : rows[0][0].AsInt() + 1;
  h.head = rows.empty() ? kGenesisHash : rows[0][1].AsText();
  ASSIGN_OR_RETURN(rows,
                   db_->Query("SELECT COUNT(DISTINCT rollout_id) FROM ledger WHERE rollout_id <> ''"));
  h.rollouts = rows.empty() ? 0 : static_cast<int>(rows[0][0].AsInt());
  h.at_us = AuditNowMicros();
  h.key_id = key_->id();
  h.head_key_id = head_key->id();
  h.head_public_key = head_key->public_key();
  h.hmac = key_->Mac(SignedHeadText(h));
  ASSIGN_OR_RETURN(h.signature, head_key->Sign(SignedHeadText(h)));
  return h;
}

absl::StatusOr<AuditVerifyResult> Audit::VerifyAudit(const std::string& only,
                                                     const AuditHead* against) {
  constexpr int kPage = 1000;
  common::MutexLock l(&db_mu_);  // one state of the database throughout
  RETURN_IF_ERROR(EnsureKeyToCheck());
  RETURN_IF_ERROR(SealLegacyIfPending());
  AuditVerifyResult r;
  r.key_id = key_->id();
  r.ledger_head = kGenesisHash;
  auto fail = [&r](std::string problem) {
    r.ok = false;
    r.problem = std::move(problem);
    return r;
  };

  // 1. The ledger: contiguous, linked, every mac the key's. Entries are kept per rollout.
  std::map<std::string, std::vector<Entry>> entries;
  std::vector<std::string> order;  // rollouts in the order the ledger first names them
  for (int64_t next = 0;;) {
    ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                     db_->Query("SELECT idx, rollout_id, kind, body, at, key_id, prev_mac, mac "
                                "FROM ledger WHERE idx >= ? ORDER BY idx LIMIT ?",
                                {next, kPage}));
    for (const SqlRow& row : rows) {
      const int64_t idx = row[0].AsInt();
      const std::string rollout_id = row[1].AsText();
      const std::string kind = row[2].AsText();
      const std::string& body = row[3].raw_text();
      const std::string key_id = row[5].AsText();
      if (idx != r.ledger_entries) {
        return fail(absl::StrCat("ledger entries #", r.ledger_entries, "..#", idx - 1,
                                 " are missing (deleted)"));
      }
      if (key_id != key_->id()) {
        if (idx == 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("the audit's ledger is signed with key ", key_id,
                           "; this controller's signing "
                           "key ",
                           key_->path(), " is key ", key_->id(),
                           ": verify with the key that "
                           "signed it"));
        }
        return fail(absl::StrCat("ledger entry #", idx, " names key ", key_id, ", not ", key_->id(),
                                 ": it was written without the audit's key"));
      }
      if (row[6].AsText() != r.ledger_head) {
        return fail(absl::StrCat("ledger entry #", idx, " does not follow entry #", idx - 1,
                                 ": entries were removed, added or reordered"));
      }
      const std::string mac = key_->Mac(
          LedgerMacInput(r.ledger_head, idx, rollout_id, kind, body, row[4].AsInt(), key_id));
      if (CRYPTO_memcmp(mac.data(), row[7].AsText().data(), mac.size()) != 0 ||
          row[7].AsText().size() != mac.size()) {
        return fail(absl::StrCat("ledger entry #", idx, " (rollout ", rollout_id, ", ", kind,
                                 "): mac mismatch: the entry was edited or not signed with "
                                 "the audit's key"));
      }
      absl::StatusOr<std::vector<SqlValue>> values = DecodeValues(body);
      if (!values.ok())
        return fail(absl::StrCat("ledger entry #", idx, ": ", values.status().message()));
      if (rollout_id.empty()) {
        // The ledger's own records, of no rollout: the head keys.
        if (kind != kHeadKeyKind || values->size() != 2) {
          return fail(absl::StrCat("ledger entry #", idx, " (", kind,
                                   ") belongs to no rollout and records no head key"));
        }
        r.head_keys[(*values)[0].AsText()] = (*values)[1].AsText();
      } else if (!entries.contains(rollout_id)) {
        order.push_back(rollout_id);
      }
      if (rollout_id.empty()) {
        // recorded above
      } else if (only.empty() || rollout_id == only) {
        entries[rollout_id].push_back(Entry{idx, kind, std::move(*values)});
      } else {
        entries[rollout_id];  // known, not replayed
      }
      r.ledger_head = mac;
      ++r.ledger_entries;
      next = idx + 1;
    }
    if (rows.size() < static_cast<size_t>(kPage)) break;
  }

  // 2. The exported head, when given: signed by this key, and still a prefix of the ledger.
  if (against != nullptr) {
    const std::string mac = key_->Mac(SignedHeadText(*against));
    if (against->key_id != key_->id() || against->hmac != mac) {
      return fail(
          "the exported head's signature does not verify with this key: the file was edited "
          "or exported from another audit");
    }
    if (r.ledger_entries < against->entries) {
      return fail(
          absl::StrCat("the ledger holds ", r.ledger_entries, " entries, the head ", "exported at ",
                       absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMicros(against->at_us),
                                        absl::UTCTimeZone()),
                       " recorded ", against->entries, ": entries were removed after the export"));
    }
    if (against->entries > 0) {
      ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                       db_->Query("SELECT mac FROM ledger WHERE idx = ?", {against->entries - 1}));
      if (rows.empty() || rows[0][0].AsText() != against->head) {
        return fail(absl::StrCat("ledger entry #", against->entries - 1,
                                 " is not the head exported: the ledger was rewritten after "
                                 "the export"));
      }
    }
    // A format 2 head: signed by a head key the ledger recorded.
    if (against->format != 1) {
      auto known_key = r.head_keys.find(against->head_key_id);
      std::string raw;
      if (known_key == r.head_keys.end() || known_key->second != against->head_public_key ||
          !absl::Base64Unescape(known_key->second, &raw)) {
        return fail(absl::StrCat("the exported head is signed by head key ",
                                 against->head_key_id, ", which this audit never recorded"));
      }
      if (std::string p = CheckEd25519(raw, SignedHeadText(*against), against->signature);
          !p.empty()) {
        return fail(absl::StrCat("the exported head: ", p));
      }
    }
  }

  // 3. Rows of rollouts the ledger does not know: added outside the audit.
  std::set<std::string> known(order.begin(), order.end());
  for (const auto& [table, column] : RolloutIdColumns()) {
    std::string sql = absl::StrCat("SELECT DISTINCT ", column, " FROM ", table);
    std::vector<SqlValue> params;
    if (!only.empty()) {
      absl::StrAppend(&sql, " WHERE ", column, " = ?");
      params.push_back(only);
    }
    ASSIGN_OR_RETURN(std::vector<SqlRow> rows, db_->Query(sql, params));
    for (const SqlRow& row : rows) {
      if (!known.contains(row[0].AsText())) {
        return fail(absl::StrCat("rollout ", row[0].AsText(), " has rows in table ", table,
                                 " but is not in the signed ledger: added outside the audit"));
      }
    }
  }
  if (!only.empty() && !known.contains(only)) {
    return absl::NotFoundError(absl::StrCat("no rollout ", only));
  }

  // 4. Each rollout: its event chain against the heads the ledger sealed, then its ledger
  // entries and events replayed into an empty database and compared with every table.
  for (const std::string& id : order) {
    if (!only.empty() && id != only) continue;
    ++r.rollouts;
    std::vector<std::string> hashes;
    ASSIGN_OR_RETURN(VerifyResult chain, VerifyChainLocked(id, &hashes));
    if (!chain.ok) {
      std::string where = chain.bad_run_id.empty() ? ""
                                                   : absl::StrCat(" (run ", chain.bad_run_id,
                                                                  " seq ", chain.bad_seq, ")");
      return fail(absl::StrCat("rollout ", id, ": event chain broken at event #", chain.bad_index,
                               where, ": ", chain.reason));
    }
    r.events += chain.events;
    ASSIGN_OR_RETURN(std::unique_ptr<SqlDb> mem, OpenSqliteDb(":memory:", absl::Seconds(1)));
    RETURN_IF_ERROR(CreateAuditSchema(*mem));
    int64_t sealed = 0;
    auto check_seal = [&](int64_t count, const std::string& head, int64_t entry) -> std::string {
      if (count > static_cast<int64_t>(hashes.size())) {
        return absl::StrCat("rollout ", id, " holds ", hashes.size(), " events but the ledger ",
                            "sealed ", count, " (entry #", entry, "): events were deleted");
      }
      const std::string& stored = count == 0 ? std::string(kGenesisHash) : hashes[count - 1];
      if (stored != head) {
        return absl::StrCat("rollout ", id, ": the chain's hash at event #", count - 1,
                            " is not the head the ledger sealed there (entry #", entry,
                            "): the chain was rewritten");
      }
      return "";
    };
    for (const Entry& e : entries[id]) {
      const std::vector<SqlValue>& v = e.values;
      if (e.kind == "legacy") {
        if (v.size() < 2) return fail(absl::StrCat("ledger entry #", e.idx, ": malformed"));
        r.legacy_rollouts.push_back(id);
        sealed = v[0].AsInt();
        if (std::string p = check_seal(sealed, v[1].AsText(), e.idx); !p.empty()) return fail(p);
        size_t at = 2;
        while (at < v.size()) {
          const std::string table = v[at].AsText();
          const AuditTable* spec = nullptr;
          for (const AuditTable& t : AuditTables()) {
            if (table == t.name) spec = &t;
          }
          if (spec == nullptr || at + 1 >= v.size()) {
            return fail(absl::StrCat("ledger entry #", e.idx, ": malformed snapshot"));
          }
          const int64_t nrows = v[at + 1].AsInt();
          at += 2;
          std::vector<SqlRow> rows;
          for (int64_t i = 0; i < nrows; ++i) {
            if (at >= v.size()) return fail(absl::StrCat("ledger entry #", e.idx, ": malformed"));
            const size_t ncols = static_cast<size_t>(v[at].AsInt());
            if (at + 1 + ncols > v.size()) {
              return fail(absl::StrCat("ledger entry #", e.idx, ": malformed"));
            }
            rows.emplace_back(v.begin() + at + 1, v.begin() + at + 1 + ncols);
            at += 1 + ncols;
          }
          RETURN_IF_ERROR(RestoreTable(*mem, *spec, rows));
        }
      } else if (e.kind == "events") {
        if (v.size() < 4) return fail(absl::StrCat("ledger entry #", e.idx, ": malformed"));
        const int64_t from = v[0].AsInt();
        const int64_t count = v[1].AsInt();
        if (from != sealed || count < from) {
          return fail(absl::StrCat("ledger entry #", e.idx, " seals events #", from, "..#",
                                   count - 1, " of rollout ", id, " but #", sealed, " was next"));
        }
        if (std::string p = check_seal(count, v[2].AsText(), e.idx); !p.empty()) return fail(p);
        ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                         db_->Query("SELECT idx, payload FROM events WHERE rollout_id = ? AND "
                                    "idx >= ? AND idx < ? ORDER BY idx",
                                    {id, from, count}));
        std::vector<v1::Event> committed(rows.size());  // that one commit's events, in order
        std::vector<const v1::Event*> applied;
        applied.reserve(rows.size());
        for (size_t r = 0; r < rows.size(); ++r) {
          if (!committed[r].ParseFromString(rows[r][1].raw_text())) {
            return fail(
                absl::StrCat("rollout ", id, ": event #", rows[r][0].AsInt(), " does not decode"));
          }
          applied.push_back(&committed[r]);
        }
        RETURN_IF_ERROR(ApplyEventRows(*mem, id, applied, v[3].AsInt()));
        RETURN_IF_ERROR(StoreChainHead(*mem, id, count, v[2].AsText()));
        sealed = count;
      } else {
        absl::StatusOr<int64_t> n = ApplyAuditRecord(*mem, id, e.kind, v);
        if (!n.ok()) return fail(absl::StrCat("ledger entry #", e.idx, ": ", n.status().message()));
      }
    }
    if (static_cast<int64_t>(hashes.size()) != sealed) {
      return fail(absl::StrCat(
          "rollout ", id, " holds ", hashes.size(), " events but the ledger sealed ", sealed,
          hashes.size() > static_cast<size_t>(sealed) ? ": events were added outside the audit"
                                                      : ": events were deleted"));
    }
    for (const AuditTable& t : AuditTables()) {
      ASSIGN_OR_RETURN(std::vector<SqlRow> stored, DumpTable(*db_, t, id));
      ASSIGN_OR_RETURN(std::vector<SqlRow> expected, DumpTable(*mem, t, id));
      // Compared as multisets of rows (no engine's ORDER BY collation involved).
      std::multimap<std::string, const SqlRow*> a, b;
      for (const SqlRow& row : stored) a.emplace(Canonical(row), &row);
      for (const SqlRow& row : expected) b.emplace(Canonical(row), &row);
      if (a.size() == b.size() &&
          std::equal(a.begin(), a.end(), b.begin(),
                     [](const auto& x, const auto& y) { return x.first == y.first; })) {
        continue;
      }
      // The first row that is not in the other (or is there more often).
      std::string what;
      for (const auto& [k, row] : b) {
        if (a.count(k) < b.count(k)) {
          what = absl::StrCat("a row was deleted or edited: the ledger says ", Describe(*row));
          break;
        }
      }
      if (what.empty()) {
        for (const auto& [k, row] : a) {
          if (b.count(k) < a.count(k)) {
            what = absl::StrCat("a row was added or edited: ", Describe(*row),
                                " is not what the ledger says");
            break;
          }
        }
      }
      if (what.empty()) what = "a row was duplicated";
      if (absl::string_view(t.name) == "rollouts" && stored.empty()) {
        what = "the rollout's rows were deleted";
      }
      return fail(absl::StrCat("rollout ", id, ": table ", t.name, ": ", what));
    }
  }
  return r;
}

}  // namespace mimic::controller
