#include "common/rpc/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>

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
  opts.pem_private_key = key;
  return grpc::SslCredentials(opts);
}

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
