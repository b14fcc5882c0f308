// TLS material for both sides of the mimic.v1.Agent channel.
#ifndef MIMIC_COMMON_RPC_TLS_H_
#define MIMIC_COMMON_RPC_TLS_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"

namespace mimic::common {

// Which side of the channel a certificate authenticates: its extended key usage must allow it.
enum class TlsRole { kServer, kClient };

// The checks made before gRPC sees the files, so a mistake is named in plain words (gRPC says
// "Invalid private key" or nothing at all): `cert_file` and `key_file` are readable PEM, the key
// is the certificate's own (X509_check_private_key), the certificate is valid now, and its
// extended key usage, when it has one, allows `role` (serverAuth for an agent, clientAuth for the
// controller); `ca_file` holds at least one certificate. INVALID_ARGUMENT naming the file(s) and
// what to do.
absl::Status CheckTlsFiles(const std::string& cert_file, const std::string& key_file,
                           const std::string& ca_file, TlsRole role);

// Agent side: mutual TLS; a client must present a certificate signed by `client_ca_file`.
// CheckTlsFiles(kServer) first.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file);

// Controller side: verifies the agent against `ca_file` and presents cert/key.
// CheckTlsFiles(kClient) first. The private key is parsed here, once: gRPC 1.51 builds a TLS
// context for every channel, and instead of the key's PEM (which OpenSSL 3.0's decoders would
// parse again for each of them, ~0.6 ms) it is handed a reference to this parsed key, which it
// takes through an in-process OpenSSL ENGINE that only loads keys. The parsed key lives as long
// as the process. Where that engine cannot be registered, the PEM is handed over as before.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file);

// How many times a channel's TLS context has taken a private key parsed by
// MakeChannelCredentials (all credentials of the process), for tests and benchmarks.
int64_t SharedPrivateKeyLoads();

// The subject ("CN=mimic-controller,O=mimic") of the first certificate in a PEM file.
absl::StatusOr<std::string> CertificateSubject(const std::string& pem_file);

// True for 127.0.0.0/8, localhost and [::1] listen/dial addresses ("host:port").
bool IsLoopbackAddress(const std::string& address);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_RPC_TLS_H_
