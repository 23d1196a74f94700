// What the conformance vectors cannot show: the deadline every call gets, and the exception of
// each status code. A stand-in EvaluationService on a Unix socket reports what it received and
// answers with the status it is given.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#include "flagsidecar/client.h"
#include "flagsidecar/v1/evaluation.grpc.pb.h"

namespace flagsidecar {
namespace {

class StandIn final : public v1::EvaluationService::Service {
 public:
  grpc::Status Evaluate(grpc::ServerContext* context, const v1::EvaluateRequest* request,
                        v1::EvaluateResponse* response) override {
    had_deadline = context->deadline() != std::chrono::system_clock::time_point::max();
    if (request->flag_key() == "hang") {
      while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return grpc::Status::CANCELLED;
    }
    response->mutable_evaluation()->set_flag_key(request->flag_key());
    return status;
  }

  std::atomic<bool> had_deadline{false};
  grpc::Status status;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/flag-sidecar-cpp-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    target_ = "unix://" + dir_ + "/s";
    grpc::ServerBuilder builder;
    builder.AddListeningPort(target_, grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(dir_);
  }

  StandIn service_;
  std::unique_ptr<grpc::Server> server_;
  std::string dir_, target_;
};

TEST_F(ClientTest, EveryCallGetsADeadline) {
  const Client client(target_);
  EXPECT_EQ(client.Evaluate("f", User{}).flag_key, "f");
  EXPECT_TRUE(service_.had_deadline);
}

TEST_F(ClientTest, ATimeoutOfZeroIsNoDeadline) {
  const Client client(target_, Options{.timeout = std::chrono::milliseconds(0)});
  client.Evaluate("f", User{});
  EXPECT_FALSE(service_.had_deadline);
}

TEST_F(ClientTest, AHungCallEndsAtTheDeadline) {
  const Client client(target_, Options{.timeout = std::chrono::milliseconds(200)});
  try {
    client.Evaluate("hang", User{});
    FAIL() << "a hung call returned";
  } catch (const DeadlineExceeded& error) {
    EXPECT_EQ(error.code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
}

template <typename Exception>
void ExpectThrows(StandIn& service, const std::string& target, grpc::StatusCode code) {
  service.status = grpc::Status(code, "the message");
  const Client client(target);
  try {
    client.Evaluate("f", User{});
    ADD_FAILURE() << StatusCodeName(code) << " did not throw";
  } catch (const Exception& error) {
    EXPECT_EQ(error.code(), code);
    EXPECT_EQ(error.message(), "the message");
    EXPECT_EQ(std::string(error.what()),
              std::string("flagsidecar: ") + StatusCodeName(code) + ": the message");
    EXPECT_FALSE(error.accepted().has_value());
  }
}

TEST_F(ClientTest, EachStatusCodeThrowsItsException) {
  ExpectThrows<FlagNotFound>(service_, target_, grpc::StatusCode::NOT_FOUND);
  ExpectThrows<InvalidArgument>(service_, target_, grpc::StatusCode::INVALID_ARGUMENT);
  ExpectThrows<ResourceExhausted>(service_, target_, grpc::StatusCode::RESOURCE_EXHAUSTED);
  ExpectThrows<Unavailable>(service_, target_, grpc::StatusCode::UNAVAILABLE);
  ExpectThrows<Internal>(service_, target_, grpc::StatusCode::INTERNAL);
  ExpectThrows<Internal>(service_, target_, grpc::StatusCode::UNKNOWN);
  ExpectThrows<DeadlineExceeded>(service_, target_, grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectThrows<Error>(service_, target_, grpc::StatusCode::PERMISSION_DENIED);
  ExpectThrows<Error>(service_, target_, grpc::StatusCode::FAILED_PRECONDITION);
  static_assert(std::is_base_of_v<std::runtime_error, Error>);
}

TEST_F(ClientTest, NoSidecarIsUnavailable) {
  const Client client("unix://" + dir_ + "/nothing-here");
  EXPECT_THROW(client.Evaluate("f", User{}), Unavailable);
}

TEST(Requests, AContextThatIsNoObjectIsRefusedBeforeSending) {
  const Client client("unix:///nonexistent/socket");  // never reached
  EXPECT_THROW(client.Evaluate("f", User{"u1", Json::array({1})}), InvalidArgument);
  EXPECT_THROW(client.Track({Event{"e", User{}, Json("details")}}), InvalidArgument);
}

TEST(Buckets, ValuesWithNoTextAreNotBucketed) {
  for (const Json& value : {Json(nullptr), Json::array({1}), Json::object({{"a", 1}}),
                            Json(std::nan("")), Json(std::numeric_limits<double>::infinity())}) {
    EXPECT_EQ(BucketText(value), std::nullopt) << value;
    EXPECT_EQ(Bucket("f", value), std::nullopt) << value;
  }
}

TEST(Buckets, NumbersTakeTheDocumentedForm) {
  EXPECT_EQ(BucketText(0.0001), "0.0001");  // exponent form only below 1e-4
  EXPECT_EQ(BucketText(-0.00001), "-1e-05");
  EXPECT_EQ(BucketText(0.1), "0.1");  // the shortest round trip, not 0.1000000000000000055...
  EXPECT_EQ(BucketText(-0.0), "0");
  EXPECT_EQ(BucketText(1e21), "1000000000000000000000");
  EXPECT_EQ(BucketText(1e23), "99999999999999991611392");  // its exact value, as the sidecar's
  EXPECT_EQ(BucketText(std::int64_t{-12}), "-12");
}

}  // namespace
}  // namespace flagsidecar
