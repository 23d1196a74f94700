#include "flagsidecar/client.h"

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

#include "flagsidecar/v1/evaluation.grpc.pb.h"
#include "flagsidecar/v1/event.grpc.pb.h"
#include "json_value.h"

namespace flagsidecar {

struct Client::Stubs {
  std::unique_ptr<v1::EvaluationService::Stub> evaluations;
  std::unique_ptr<v1::EventService::Stub> events;
};

namespace {

void ToUser(const User& user, v1::User* message) {
  message->set_id(user.id);
  ToStruct(user.context, "user context", message->mutable_context());
}

Evaluation FromEvaluation(const v1::Evaluation& message) {
  Evaluation answer;
  answer.flag_key = message.flag_key();
  if (message.has_value()) answer.value = FromValue(message.value());
  answer.variant = message.variant();
  answer.reason = message.reason();
  answer.error_code = message.error_code();
  answer.error_message = message.error_message();
  answer.flag_version = message.flag_version();
  answer.trace.assign(message.stack_trace().begin(), message.stack_trace().end());
  return answer;
}

// The "accepted-count" trailer that a failed Track stream ends with, if there is one.
std::optional<std::int64_t> AcceptedCount(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto found = trailers.find("accepted-count");
  if (found == trailers.end()) return std::nullopt;
  try {
    return std::stoll(std::string(found->second.data(), found->second.size()));
  } catch (const std::logic_error&) {  // not a number: no count rather than a wrong one
    return std::nullopt;
  }
}

}  // namespace

Client::Client(const std::string& target, Options options)
    : stubs_(std::make_unique<Stubs>()), timeout_(options.timeout) {
  auto credentials = options.credentials ? options.credentials : grpc::InsecureChannelCredentials();
  const auto channel = grpc::CreateChannel(target, credentials);
  stubs_->evaluations = v1::EvaluationService::NewStub(channel);
  stubs_->events = v1::EventService::NewStub(channel);
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

namespace {

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  if (timeout.count() > 0) context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace

Evaluation Client::Evaluate(const std::string& flag_key, const User& user,
                            const CallOptions& options) const {
  v1::EvaluateRequest request;
  request.set_flag_key(flag_key);
  ToUser(user, request.mutable_user());
  request.set_debug(options.debug);
  grpc::ClientContext context;
  SetDeadline(context, timeout_);
  v1::EvaluateResponse response;
  const auto status = stubs_->evaluations->Evaluate(&context, request, &response);
  if (!status.ok()) ThrowStatus(status);
  return FromEvaluation(response.evaluation());
}

std::vector<Evaluation> Client::EvaluateAll(const User& user, const CallOptions& options) const {
  v1::EvaluateAllRequest request;
  ToUser(user, request.mutable_user());
  for (const auto& key : options.flag_keys) request.add_flag_keys(key);
  request.set_debug(options.debug);
  grpc::ClientContext context;
  SetDeadline(context, timeout_);
  v1::EvaluateAllResponse response;
  const auto status = stubs_->evaluations->EvaluateAll(&context, request, &response);
  if (!status.ok()) ThrowStatus(status);
  std::vector<Evaluation> answers;
  answers.reserve(response.evaluations_size());
  for (const auto& evaluation : response.evaluations()) {
    answers.push_back(FromEvaluation(evaluation));
  }
  return answers;
}

std::int64_t Client::Track(const std::vector<Event>& events) const {
  // Every event is converted before the stream opens, so that a bad one sends none.
  std::vector<v1::TrackRequest> messages(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    messages[i].set_name(events[i].name);
    ToUser(events[i].user, messages[i].mutable_user());
    ToStruct(events[i].details, "event details", messages[i].mutable_details());
  }
  grpc::ClientContext context;
  SetDeadline(context, timeout_);
  v1::TrackResponse response;
  const auto stream = stubs_->events->Track(&context, &response);
  for (const auto& message : messages) {
    if (!stream->Write(message)) break;  // the stream has ended: Finish says why
  }
  stream->WritesDone();
  const auto status = stream->Finish();
  if (!status.ok()) ThrowStatus(status, AcceptedCount(context).value_or(0));
  return response.accepted();
}

}  // namespace flagsidecar
