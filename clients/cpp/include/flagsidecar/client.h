// A small client for the sidecar's native API (flagsidecar.v1): Evaluate, EvaluateAll and Track
// over TCP or a Unix socket, every call with a deadline, failures thrown as flagsidecar::Error.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flagsidecar/bucket.h"
#include "flagsidecar/errors.h"
#include "flagsidecar/v1/evaluation.pb.h"  // generated from proto/ by the build

namespace grpc {
class ChannelCredentials;
}

namespace flagsidecar {

using Json = nlohmann::json;

// Why a variant was served and what went wrong (OpenFeature's names);
// v1::Reason_Name(reason) and v1::ErrorCode_Name(code) spell them.
using Reason = v1::Reason;
using ErrorCode = v1::ErrorCode;

// The deadline of a call unless Options::timeout says otherwise. The sidecar answers on the same
// host, so a call that takes longer means something is wrong: fail instead of hanging.
inline constexpr std::chrono::milliseconds kDefaultTimeout{1000};

// The subject of an evaluation. context is a JSON object of scalars (string, bool, number,
// null); the sidecar refuses lists and objects, and keys starting with "$".
struct User {
  std::string id;
  Json context = Json::object();
};

// The answer for one flag.
struct Evaluation {
  std::string flag_key;
  // The served variant's value. Empty when there is none (an error, or a flag with no default
  // for this case, where the caller's code default applies), which differs from JSON null.
  std::optional<Json> value;
  std::string variant;
  Reason reason = v1::REASON_UNSPECIFIED;
  ErrorCode error_code = v1::ERROR_CODE_UNSPECIFIED;
  std::string error_message;
  std::int64_t flag_version = 0;
  // Every step of the evaluation, with a split's bucket, when the call asked for debug.
  std::vector<v1::StackTrace> trace;
};

// An application's own tracking event ("checkout-completed"), for Track.
struct Event {
  std::string name;
  User user;
  Json details = Json::object();
};

struct Options {
  // The deadline of every call; zero or less: none (a call may then wait as long as the
  // connection lasts).
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // Null: plaintext, like the sidecar's default; grpc::SslCredentials(...) for one serving TLS.
  std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr;
};

struct CallOptions {
  // Ask for the evaluation's stack trace (Evaluation::trace), with the bucket of a split.
  bool debug = false;
  // EvaluateAll only: these flags instead of all (an unknown one is reported in the list).
  std::vector<std::string> flag_keys;
};

// Calls one sidecar. Its methods are safe to call from several threads at once: create one and
// share it. The constructor does not connect: the first call does, and throws Unavailable if it
// cannot.
class Client {
 public:
  // target: "host:port" over TCP, or "unix:///abs/path" (also "unix:relative/path").
  explicit Client(const std::string& target, Options options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // One flag for a user. An unknown flag throws FlagNotFound.
  Evaluation Evaluate(const std::string& flag_key, const User& user,
                      const CallOptions& options = {}) const;

  // Every flag (or options.flag_keys) for a user, sorted by key. A flag that fails is reported
  // in the list (reason ERROR); the call does not throw for it.
  std::vector<Evaluation> EvaluateAll(const User& user, const CallOptions& options = {}) const;

  // Sends the events on one stream, in order, and returns how many the sidecar accepted. When
  // the stream fails (an event without a name: InvalidArgument; full buffers:
  // ResourceExhausted), the exception's accepted() counts the events before the refused one:
  // send the others again.
  std::int64_t Track(const std::vector<Event>& events) const;

 private:
  struct Stubs;
  std::unique_ptr<Stubs> stubs_;
  std::chrono::milliseconds timeout_;
};

}  // namespace flagsidecar
