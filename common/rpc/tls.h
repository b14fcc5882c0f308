// TLS material for both sides of the mimic.v1.Agent channel.
#ifndef MIMIC_COMMON_RPC_TLS_H_
#define MIMIC_COMMON_RPC_TLS_H_

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"

namespace mimic::common {

// Agent side: mutual TLS; a client must present a certificate signed by `client_ca_file`.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file);

// Controller side: verifies the agent against `ca_file` and presents cert/key.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file);

// The subject ("CN=mimic-controller,O=mimic") of the first certificate in a PEM file.
absl::StatusOr<std::string> CertificateSubject(const std::string& pem_file);

// True for 127.0.0.0/8, localhost and [::1] listen/dial addresses ("host:port").
bool IsLoopbackAddress(const std::string& address);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_RPC_TLS_H_
