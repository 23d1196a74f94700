// The exceptions a failed call throws: one class per gRPC status code the sidecar answers with,
// all deriving from flagsidecar::Error (a std::runtime_error that keeps the code).
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace flagsidecar {

// A failed call: its gRPC status code and the sidecar's message (what() has both).
class Error : public std::runtime_error {
 public:
  Error(grpc::StatusCode code, const std::string& message,
        std::optional<std::int64_t> accepted = std::nullopt);

  grpc::StatusCode code() const noexcept { return code_; }
  // The sidecar's message alone, without the code.
  const std::string& message() const noexcept { return message_; }
  // Set by Track only: how many of its events the sidecar accepted before the stream failed
  // (send the others again).
  std::optional<std::int64_t> accepted() const noexcept { return accepted_; }

 private:
  grpc::StatusCode code_;
  std::string message_;
  std::optional<std::int64_t> accepted_;
};

// NOT_FOUND: Evaluate named a flag the loaded set does not have.
class FlagNotFound : public Error {
 public:
  using Error::Error;
};

// INVALID_ARGUMENT: an empty flag key, a context key starting with "$", a list or object in the
// context, a key over a limit, an event without a name; also a context this client refuses
// before sending (one that is not a JSON object).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// RESOURCE_EXHAUSTED: over a limit of the sidecar, or Track's event buffer and spool are full:
// send the rest again after a pause.
class ResourceExhausted : public Error {
 public:
  using Error::Error;
};

// UNAVAILABLE: the sidecar cannot be reached or has no flag set loaded yet.
class Unavailable : public Error {
 public:
  using Error::Error;
};

// DEADLINE_EXCEEDED: the call's deadline (Options::timeout) passed.
class DeadlineExceeded : public Error {
 public:
  using Error::Error;
};

// INTERNAL or UNKNOWN: a bug in the sidecar; its log has the details.
class Internal : public Error {
 public:
  using Error::Error;
};

// The code's canonical name: "NOT_FOUND", "INVALID_ARGUMENT", ...
const char* StatusCodeName(grpc::StatusCode code) noexcept;

// Throws the exception of status's code (an Error for a code with no class of its own).
// status must not be OK.
[[noreturn]] void ThrowStatus(const grpc::Status& status,
                              std::optional<std::int64_t> accepted = std::nullopt);

}  // namespace flagsidecar
