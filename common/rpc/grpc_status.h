// absl::Status <-> grpc::Status: the codes map 1:1 (both follow google.rpc.Code).
#ifndef MIMIC_COMMON_RPC_GRPC_STATUS_H_
#define MIMIC_COMMON_RPC_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mimic::common {

grpc::Status ToGrpcStatus(const absl::Status& s);
absl::Status ToAbslStatus(const grpc::Status& s);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_RPC_GRPC_STATUS_H_
