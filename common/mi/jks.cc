#include "common/mi/jks.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mimic::common {
namespace {

constexpr uint32_t kMagic = 0xFEEDFEED;
constexpr char kWhitener[] = "Mighty Aphrodite";

class Reader {
 public:
  explicit Reader(const std::string& b) : b_(b) {}
  size_t pos() const { return pos_; }
  bool ok() const { return ok_; }
  uint64_t Int(int bytes) {
    if (!Need(bytes)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(b_[pos_++]);
    return v;
  }
  std::string Bytes(uint64_t n) {
    if (!Need(n)) return "";
    std::string out = b_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string Utf() { return Bytes(Int(2)); }

 private:
  bool Need(uint64_t n) {
    if (!ok_ || n > b_.size() - pos_) {
      ok_ = false;
      return false;
    }
    return true;
  }
  const std::string& b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void PutInt(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutUtf(std::string* out, const std::string& s) {
  PutInt(out, s.size(), 2);
  *out += s;
}

std::string Digest(const std::string& password, const std::string& data) {
  // Java chars of the password, big-endian (passwords here are ASCII/BMP from TOML, UTF-8 in).
  std::string chars;
  for (size_t i = 0; i < password.size();) {
    unsigned char c = static_cast<unsigned char>(password[i]);
    uint32_t cp = c;
    int len = 1;
    if (c >= 0xF0 && i + 3 < password.size()) {
      cp = ((c & 0x07) << 18) | ((password[i + 1] & 0x3F) << 12) | ((password[i + 2] & 0x3F) << 6) |
           (password[i + 3] & 0x3F);
      len = 4;
    } else if (c >= 0xE0 && i + 2 < password.size()) {
      cp = ((c & 0x0F) << 12) | ((password[i + 1] & 0x3F) << 6) | (password[i + 2] & 0x3F);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < password.size()) {
      cp = ((c & 0x1F) << 6) | (password[i + 1] & 0x3F);
      len = 2;
    }
    i += len;
    if (cp >= 0x10000) {  // UTF-16 surrogate pair
      cp -= 0x10000;
      PutInt(&chars, 0xD800 + (cp >> 10), 2);
      PutInt(&chars, 0xDC00 + (cp & 0x3FF), 2);
    } else {
      PutInt(&chars, cp, 2);
    }
  }
  const std::string input = chars + kWhitener + data;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md, &len, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

}  // namespace

bool IsJks(const std::string& bytes) {
  return bytes.size() >= 4 && static_cast<unsigned char>(bytes[0]) == 0xFE &&
         static_cast<unsigned char>(bytes[1]) == 0xED && static_cast<unsigned char>(bytes[2]) == 0xFE &&
         static_cast<unsigned char>(bytes[3]) == 0xED;
}

absl::StatusOr<Jks> ParseJks(const std::string& bytes, const std::string& label,
                             const std::string& password) {
  Reader r(bytes);
  if (r.Int(4) != kMagic) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": not a JKS keystore"));
  }
  const uint64_t version = r.Int(4);
  if (version != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": JKS version ", version, " is not supported (only 2)"));
  }
  const uint64_t count = r.Int(4);
  Jks jks;
  for (uint64_t i = 0; i < count && r.ok(); ++i) {
    JksEntry e;
    e.tag = static_cast<int>(r.Int(4));
    const size_t body_start = r.pos();
    e.alias = r.Utf();
    e.date_ms = static_cast<int64_t>(r.Int(8));
    if (e.tag == 1) {
      r.Bytes(r.Int(4));  // the encrypted key
      const uint64_t chain = r.Int(4);
      for (uint64_t c = 0; c < chain && r.ok(); ++c) {
        r.Utf();
        std::string der = r.Bytes(r.Int(4));
        if (c == 0) e.cert_der = der;
      }
    } else if (e.tag == 2) {
      r.Utf();
      e.cert_der = r.Bytes(r.Int(4));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": entry ", i + 1, " has unknown type ", e.tag));
    }
    if (r.ok()) e.body = bytes.substr(body_start, r.pos() - body_start);
    jks.entries.push_back(std::move(e));
  }
  if (!r.ok() || bytes.size() - r.pos() != 20) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": truncated or damaged JKS keystore"));
  }
  if (Digest(password, bytes.substr(0, r.pos())) != bytes.substr(r.pos())) {
    return absl::PermissionDeniedError(
        absl::StrCat(label, ": keystore password is wrong or the file was changed"));
  }
  return jks;
}

std::string WriteJks(const Jks& jks, const std::string& password) {
  std::string out;
  PutInt(&out, kMagic, 4);
  PutInt(&out, 2, 4);
  PutInt(&out, jks.entries.size(), 4);
  for (const JksEntry& e : jks.entries) {
    PutInt(&out, e.tag, 4);
    out += e.body;
  }
  out += Digest(password, out);
  return out;
}

JksEntry TrustedCertEntry(const std::string& alias, int64_t date_ms, const std::string& cert_der) {
  JksEntry e;
  e.tag = 2;
  e.alias = alias;
  e.date_ms = date_ms;
  e.cert_der = cert_der;
  PutUtf(&e.body, alias);
  PutInt(&e.body, static_cast<uint64_t>(date_ms), 8);
  PutUtf(&e.body, "X.509");
  PutInt(&e.body, cert_der.size(), 4);
  e.body += cert_der;
  return e;
}

std::string CertFingerprint(const std::string& cert_der) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(cert_der.data()), cert_der.size(), md);
  std::string out = "SHA256:";
  static const char kHex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < sizeof(md); ++i) {
    if (i > 0) out.push_back(':');
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

TruststoreMerge MergeTruststores(const Jks& source, const Jks& target) {
  TruststoreMerge m;
  m.merged = target;
  std::set<std::string> certs, aliases;
  for (const JksEntry& e : target.entries) {
    m.kept.push_back(e.alias);
    certs.insert(e.cert_der);
    aliases.insert(Lower(e.alias));
  }
  for (const JksEntry& e : source.entries) {
    if (e.tag != 2) {
      m.ignored.push_back(e.alias);
      continue;
    }
    if (certs.count(e.cert_der) > 0) continue;
    std::string alias = e.alias;
    for (int n = 1; aliases.count(Lower(alias)) > 0; ++n) {
      alias = n == 1 ? absl::StrCat(e.alias, "-source") : absl::StrCat(e.alias, "-source-", n);
    }
    m.added.push_back(alias == e.alias
                          ? absl::StrCat(alias, " (", CertFingerprint(e.cert_der), ")")
                          : absl::StrCat(alias, " (", CertFingerprint(e.cert_der), "; '", e.alias,
                                         "' in the source, where the target's '", e.alias,
                                         "' is another certificate)"));
    m.merged.entries.push_back(TrustedCertEntry(alias, e.date_ms, e.cert_der));
    certs.insert(e.cert_der);
    aliases.insert(Lower(alias));
  }
  return m;
}

}  // namespace mimic::common
