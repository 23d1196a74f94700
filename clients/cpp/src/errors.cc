#include "flagsidecar/errors.h"

namespace flagsidecar {

const char* StatusCodeName(grpc::StatusCode code) noexcept {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "status";
  }
}

Error::Error(grpc::StatusCode code, const std::string& message,
             std::optional<std::int64_t> accepted)
    : std::runtime_error(std::string("flagsidecar: ") + StatusCodeName(code) + ": " + message),
      code_(code),
      message_(message),
      accepted_(accepted) {}

void ThrowStatus(const grpc::Status& status, std::optional<std::int64_t> accepted) {
  const auto code = status.error_code();
  const auto& message = status.error_message();
  switch (code) {
    case grpc::StatusCode::NOT_FOUND: throw FlagNotFound(code, message, accepted);
    case grpc::StatusCode::INVALID_ARGUMENT: throw InvalidArgument(code, message, accepted);
    case grpc::StatusCode::RESOURCE_EXHAUSTED: throw ResourceExhausted(code, message, accepted);
    case grpc::StatusCode::UNAVAILABLE: throw Unavailable(code, message, accepted);
    case grpc::StatusCode::DEADLINE_EXCEEDED: throw DeadlineExceeded(code, message, accepted);
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN: throw Internal(code, message, accepted);
    default: throw Error(code, message, accepted);
  }
}

}  // namespace flagsidecar
