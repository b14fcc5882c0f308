#include "common/rpc/tls.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

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

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file) {
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
