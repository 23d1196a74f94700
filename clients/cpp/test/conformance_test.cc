// The conformance suite (tests/conformance/README.md) against a real `flag-sidecar serve` on a
// free TCP port and a Unix socket: every vector over both, through flagsidecar::Client, with
// each split's bucket computed here (flagsidecar::Bucket, Debian's libmurmurhash) and compared.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "flagsidecar/client.h"
#include "sidecar.h"

namespace flagsidecar {
namespace {

using nlohmann::json;

const std::string kConformance = std::string(harness::kRepository) + "/tests/conformance";

json LoadVectors() {
  std::ifstream file(kConformance + "/vectors.json");
  if (!file) throw std::runtime_error("cannot read " + kConformance + "/vectors.json");
  return json::parse(file);
}

User ToUser(const json& user) {
  return User{user.value("id", ""), user.value("context", json::object())};
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    vectors_ = new json(LoadVectors());
    sidecar_ = new harness::Sidecar(kConformance + "/" + (*vectors_)["flags"].get<std::string>());
  }
  static void TearDownTestSuite() {
    delete sidecar_;
    delete vectors_;
  }
  std::string Target() const {
    return GetParam() == "tcp" ? sidecar_->tcp_target() : sidecar_->unix_target();
  }

  static json* vectors_;
  static harness::Sidecar* sidecar_;
};

json* Conformance::vectors_ = nullptr;
harness::Sidecar* Conformance::sidecar_ = nullptr;

void CheckEvaluation(const Evaluation& got, const json& want, const json& user, bool debug) {
  const auto& key = want["flag_key"].get_ref<const std::string&>();
  SCOPED_TRACE(key);
  EXPECT_EQ(got.flag_key, key);
  EXPECT_EQ(got.variant, want["variant"]);
  EXPECT_EQ(v1::Reason_Name(got.reason), want["reason"]);
  EXPECT_EQ(v1::ErrorCode_Name(got.error_code), want["error_code"]);
  EXPECT_EQ(got.flag_version, want["flag_version"]);
  // No "value" in the vector means no value, which differs from JSON null.
  if (want.contains("value")) {
    EXPECT_TRUE(got.value.has_value()) << "no value, want " << want["value"];
    if (got.value) {
      EXPECT_EQ(*got.value, want["value"]);  // numbers compare as numbers: 3 equals 3.0
    }
  } else {
    EXPECT_FALSE(got.value.has_value()) << "a value " << *got.value << ", want none";
  }
  std::vector<int> buckets;
  for (const auto& step : got.trace) {
    if (step.has_bucket()) buckets.push_back(step.bucket());
  }
  if (!want.contains("bucket")) {
    EXPECT_TRUE(buckets.empty()) << "an unexpected split";
    return;
  }
  ASSERT_TRUE(debug) << "a vector with a bucket must ask with debug";
  const auto& bucket = want["bucket"];
  EXPECT_EQ(buckets, std::vector<int>{bucket["bucket"].get<int>()}) << "the sidecar's buckets";
  // Our own bucket, from the request's value, by the documented rule.
  const auto& by = bucket["by"].get_ref<const std::string&>();
  const json value = by == "$userId" ? user.value("id", json(""))
                                     : user.value("context", json::object()).value(by, json());
  EXPECT_EQ(BucketText(value), std::optional(bucket["text"].get<std::string>())) << value;
  EXPECT_EQ(Bucket(key, value), std::optional(bucket["bucket"].get<int>())) << value;
}

// Runs one vector; returns the status code's name, "OK" when nothing was thrown.
std::string RunVector(const Client& client, const json& vector) {
  const auto& method = vector["method"];
  const auto& request = vector["request"];
  const auto& expect = vector["expect"];
  CallOptions options{request.value("debug", false),
                      request.value("flag_keys", std::vector<std::string>{})};
  try {
    if (method == "Evaluate") {
      const auto answer = client.Evaluate(request["flag_key"], ToUser(request["user"]), options);
      if (expect.contains("evaluation")) {
        CheckEvaluation(answer, expect["evaluation"], request["user"], options.debug);
      }
    } else if (method == "EvaluateAll") {
      const auto answers = client.EvaluateAll(ToUser(request["user"]), options);
      if (expect.contains("total")) {
        const auto& want = expect["evaluations"];
        EXPECT_EQ(answers.size(), expect["total"].get<std::size_t>());
        EXPECT_EQ(answers.size(), want.size());
        for (std::size_t i = 0; i < answers.size() && i < want.size(); ++i) {
          CheckEvaluation(answers[i], want[i], request["user"], options.debug);
        }
      }
    } else if (method == "Track") {
      std::vector<Event> events;
      for (const auto& event : request["events"]) {
        events.push_back(Event{event["name"], ToUser(event["user"]),
                               event.value("details", json::object())});
      }
      EXPECT_EQ(client.Track(events), expect.at("accepted")) << "accepted";
    } else {
      ADD_FAILURE() << "unknown method " << method;
    }
  } catch (const Error& error) {
    if (method == "Track") {
      EXPECT_EQ(error.accepted(), std::optional(expect.at("accepted").get<std::int64_t>()));
    }
    // The class of each status the vectors expect.
    if (error.code() == grpc::StatusCode::NOT_FOUND) {
      EXPECT_NE(dynamic_cast<const FlagNotFound*>(&error), nullptr) << error.what();
    }
    if (error.code() == grpc::StatusCode::INVALID_ARGUMENT) {
      EXPECT_NE(dynamic_cast<const InvalidArgument*>(&error), nullptr) << error.what();
    }
    return StatusCodeName(error.code());
  }
  return "OK";
}

TEST_P(Conformance, EveryVector) {
  ASSERT_GT((*vectors_)["vectors"].size(), 0u) << "vectors.json has no vectors";
  const Client client(Target(), Options{.timeout = std::chrono::seconds(10)});
  for (const auto& vector : (*vectors_)["vectors"]) {
    SCOPED_TRACE(vector["name"].get<std::string>());
    EXPECT_EQ(RunVector(client, vector), vector["expect"]["status"]);
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance, ::testing::Values("tcp", "unix"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace flagsidecar
