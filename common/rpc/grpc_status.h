// absl::Status <-> grpc::Status: the codes map 1:1 (both follow google.rpc.Code).
#ifndef MIMIC_COMMON_RPC_GRPC_STATUS_H_
#define MIMIC_COMMON_RPC_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mimic::common {

grpc::Status ToGrpcStatus(const absl::Status& s);
absl::Status ToAbslStatus(const grpc::Status& s);

// How the controller dialled: whether its inventory says plaintext (then a closed connection
// means the agent wants mutual TLS), mutual TLS, or unknown (both are named).
enum class DialMode { kUnknown, kPlaintext, kMutualTls };

// The message of a failed call to an agent, in words that say what to check: a call that never
// reached the agent's service (nothing listening, TLS handshake refused by either side, the
// agent's certificate naming another host, plaintext against TLS) gets a sentence naming the
// configuration keys to look at, followed by gRPC's own text in parentheses. Any other status
// keeps its message.
std::string DescribeCallError(const grpc::Status& s, DialMode mode);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_RPC_GRPC_STATUS_H_
