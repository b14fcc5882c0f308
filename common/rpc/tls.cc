#include "common/rpc/tls.h"

// The ENGINE API is deprecated in OpenSSL 3.0, but it is the one way gRPC 1.51 takes a key
// other than as PEM (see SharedKeyEngine below).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::common {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  auto s = ReadFile(path);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path, ": ",
                                                   s.status().message()));
  }
  if (!absl::StrContains(*s, "-----BEGIN")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a PEM file"));
  }
  return *s;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> MemBio(const std::string& s) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string TimeText(const ASN1_TIME* t) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Private keys parsed once by MakeChannelCredentials, handed to each channel's TLS context by
// reference. gRPC 1.51 reads a private key that starts with "engine:<engine id>:<key id>" with
// ENGINE_by_id + ENGINE_load_private_key instead of PEM_read_bio_PrivateKey; this engine does
// nothing else (no algorithms, so ENGINE_set_default, which gRPC also calls, changes nothing):
// its key id is the index of a parsed key, and loading takes a reference to that key.
class SharedKeyEngine {
 public:
  static SharedKeyEngine& Get() {
    static SharedKeyEngine* engine = new SharedKeyEngine();  // lives as long as the process
    return *engine;
  }

  // The reference to hand gRPC for `key` (this takes ownership), or "" when the engine could
  // not be registered.
  std::string Add(EVP_PKEY* key) {
    if (!registered_) {
      EVP_PKEY_free(key);
      return "";
    }
    std::lock_guard<std::mutex> l(mu_);
    keys_.push_back(key);
    return absl::StrCat("engine:", kId, ":", keys_.size() - 1);
  }

  int64_t loads() const { return loads_.load(); }

 private:
  static constexpr char kId[] = "mimic-parsed-key";

  SharedKeyEngine() {
    ENGINE* e = ENGINE_new();
    registered_ = e != nullptr && ENGINE_set_id(e, kId) == 1 &&
                  ENGINE_set_name(e, "private keys parsed once by mimic") == 1 &&
                  ENGINE_set_load_privkey_function(e, &SharedKeyEngine::Load) == 1 &&
                  ENGINE_add(e) == 1;  // the engine list keeps its own reference
    if (e != nullptr) ENGINE_free(e);
    ERR_clear_error();
  }

  static EVP_PKEY* Load(ENGINE*, const char* key_id, UI_METHOD*, void*) {
    SharedKeyEngine& self = Get();
    char* end = nullptr;
    unsigned long i = std::strtoul(key_id, &end, 10);
    std::lock_guard<std::mutex> l(self.mu_);
    if (end == key_id || *end != '\0' || i >= self.keys_.size()) return nullptr;
    EVP_PKEY* key = self.keys_[i];
    EVP_PKEY_up_ref(key);  // gRPC frees what it loads, once the context holds it
    self.loads_.fetch_add(1);
    return key;
  }

  bool registered_ = false;
  std::mutex mu_;
  std::vector<EVP_PKEY*> keys_;  // never freed: a channel may be made at any time
  std::atomic<int64_t> loads_{0};
};

}  // namespace

absl::Status CheckTlsFiles(const std::string& cert_file, const std::string& key_file,
                           const std::string& ca_file, TlsRole role) {
  ASSIGN_OR_RETURN(std::string cert_pem, ReadPem(cert_file, "certificate"));
  ASSIGN_OR_RETURN(std::string key_pem, ReadPem(key_file, "private key"));
  ASSIGN_OR_RETURN(std::string ca_pem, ReadPem(ca_file, "CA certificate"));
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(MemBio(cert_pem).get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate ", cert_file, " holds no readable certificate"));
  }
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PrivateKey(MemBio(key_pem).get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "private key ", key_file, " is not a readable, unencrypted private key"));
  }
  std::unique_ptr<X509, X509Free> ca(
      PEM_read_bio_X509(MemBio(ca_pem).get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (ca == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA certificate ", ca_file, " holds no readable certificate"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "private key ", key_file, " does not match certificate ", cert_file,
        ": give the key the certificate was made for (deploy/make-certs.sh writes NAME.pem "
        "with NAME.key)"));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate ", cert_file, " is not valid before ", TimeText(X509_get0_notBefore(cert.get())),
        ": check this host's clock, or issue a certificate valid now"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate ", cert_file, " expired on ", TimeText(X509_get0_notAfter(cert.get())),
        ": issue a new one (deploy/make-certs.sh re-issues expired certificates)"));
  }
  const bool server = role == TlsRole::kServer;
  if ((X509_get_extension_flags(cert.get()) & EXFLAG_XKUSAGE) != 0 &&
      (X509_get_extended_key_usage(cert.get()) & (server ? XKU_SSL_SERVER : XKU_SSL_CLIENT)) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate ", cert_file, " may not be used by a TLS ", server ? "server" : "client",
        " (its extended key usage lacks ", server ? "serverAuth" : "clientAuth", "): ",
        server ? "an agent needs its host certificate (HOST.pem from deploy/make-certs.sh)"
               : "the controller needs controller.pem from deploy/make-certs.sh"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file) {
  RETURN_IF_ERROR(CheckTlsFiles(cert_file, key_file, client_ca_file, TlsRole::kServer));
  ASSIGN_OR_RETURN(std::string cert, ReadPem(cert_file, "certificate"));
  ASSIGN_OR_RETURN(std::string key, ReadPem(key_file, "private key"));
  ASSIGN_OR_RETURN(std::string ca, ReadPem(client_ca_file, "client CA"));
  grpc::SslServerCredentialsOptions opts(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  opts.pem_root_certs = ca;
  opts.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(opts);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file) {
  RETURN_IF_ERROR(CheckTlsFiles(cert_file, key_file, ca_file, TlsRole::kClient));
  ASSIGN_OR_RETURN(std::string ca, ReadPem(ca_file, "CA certificate"));
  ASSIGN_OR_RETURN(std::string cert, ReadPem(cert_file, "certificate"));
  ASSIGN_OR_RETURN(std::string key, ReadPem(key_file, "private key"));
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = ca;
  opts.pem_cert_chain = cert;
  // CheckTlsFiles has read this key already: it parses.
  EVP_PKEY* parsed = PEM_read_bio_PrivateKey(MemBio(key).get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  std::string reference = parsed == nullptr ? "" : SharedKeyEngine::Get().Add(parsed);
  opts.pem_private_key = reference.empty() ? key : reference;
  return grpc::SslCredentials(opts);
}

int64_t SharedPrivateKeyLoads() { return SharedKeyEngine::Get().loads(); }

absl::StatusOr<std::string> CertificateSubject(const std::string& pem_file) {
  FILE* f = std::fopen(pem_file.c_str(), "r");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", pem_file));
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (x == nullptr) return absl::InvalidArgumentError(absl::StrCat(pem_file, ": no certificate"));
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  X509_free(x);
  return out;
}

bool IsLoopbackAddress(const std::string& address) {
  std::string host = address;
  if (absl::StartsWith(host, "[")) {
    size_t e = host.find(']');
    host = host.substr(1, e == std::string::npos ? std::string::npos : e - 1);
    return host == "::1";
  }
  size_t c = host.rfind(':');
  if (c != std::string::npos) host = host.substr(0, c);
  return host == "localhost" || absl::StartsWith(host, "127.");
}

}  // namespace mimic::common
