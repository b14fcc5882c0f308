#include "common/rpc/grpc_status.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mimic::common {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status ToAbslStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::string DescribeCallError(const grpc::Status& s, DialMode mode) {
  const std::string& m = s.error_message();
  const std::string low = absl::AsciiStrToLower(m);
  auto has = [&](const char* needle) { return absl::StrContains(low, needle); };
  std::string why;
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
      s.error_code() != grpc::StatusCode::UNKNOWN) {
    return m;  // the agent's service answered: its message already says what is wrong
  }
  if (has("connection refused")) {
    why = "nothing listens at the host's address: check that mimic-agent runs there and that "
          "the inventory's address (host and port) matches its 'listen'";
  } else if (has("is not in peer certificate") || has("peer name")) {
    why = "the agent's certificate does not name this host: set the host's tls_server_name in "
          "the inventory to a name the certificate holds, or issue the agent a certificate for "
          "this name (deploy/make-certs.sh OUTDIR HOST)";
  } else if (has("certificate verify failed")) {
    why = "the controller does not trust the agent's certificate: it must be signed by the CA "
          "in the inventory's [controller] ca, be valid now (not expired, not before its start "
          "date; check both clocks) and carry serverAuth (use the agent's HOST.pem from "
          "deploy/make-certs.sh)";
  } else if (has("wrong version number") || has("packet length too long") ||
             has("record layer failure") || has("http request")) {
    why = "the agent speaks plaintext and the controller mutual TLS: turn the agent's mutual "
          "TLS on (in its config, [tls] cert, key and client_ca instead of plaintext = true)";
  } else if (has("socket closed") || has("connection reset") || has("alert") ||
             has("end of file") || has("broken pipe")) {
    const char* refused_cert =
        "the agent refused the controller's certificate: check that the CA in the agent's "
        "tls.client_ca signed the inventory's [controller] cert, that the certificate is valid "
        "now (check both clocks) and carries clientAuth (controller.pem from "
        "deploy/make-certs.sh)";
    const char* wants_tls =
        "the agent requires mutual TLS and the inventory's [controller] says plaintext = true: "
        "set ca, cert and key there instead";
    if (mode == DialMode::kPlaintext) {
      why = wants_tls;
    } else if (mode == DialMode::kMutualTls) {
      why = refused_cert;
    } else {
      why = absl::StrCat("the agent closed the connection: either ", refused_cert, "; or ",
                         wants_tls);
    }
  } else {
    return m;
  }
  return absl::StrCat(why, " (", m, ")");
}

}  // namespace mimic::common
