// Calls a flag-sidecar serving examples/flags.yaml (`make run`):
// flagsidecar_example [target], where target is host:port or unix:///path.
#include <flagsidecar/client.h>

#include <iostream>
#include <string>

namespace v1 = flagsidecar::v1;

int main(int argc, char** argv) {
  const std::string target = argc > 1 ? argv[1] : "127.0.0.1:50051";  // or "unix:///run/..."
  try {
    // Every call gets a deadline of flagsidecar::kDefaultTimeout (Options::timeout changes it).
    const flagsidecar::Client client(target);
    const flagsidecar::User user{"u1", {{"plan", "pro"}, {"accountId", "acct-42"}}};

    const auto answer = client.Evaluate("new-checkout", user);
    std::cout << answer.variant << " " << answer.value.value_or(nullptr) << " "
              << v1::Reason_Name(answer.reason) << "\n";

    // The bucket the split put acct-42 in, computed here as the sidecar does.
    std::cout << "bucket " << *flagsidecar::Bucket("new-checkout", user.context["accountId"])
              << "\n";

    for (const auto& evaluation : client.EvaluateAll(user)) {
      std::cout << evaluation.flag_key << " " << evaluation.variant << "\n";
    }

    try {
      client.Evaluate("no-such-flag", user);
    } catch (const flagsidecar::FlagNotFound& error) {
      std::cout << "not found: " << error.what() << "\n";
    }

    const auto accepted = client.Track({{"checkout-completed", user, {{"value", 42.5}}}});
    std::cout << "tracked " << accepted << "\n";
  } catch (const flagsidecar::Error& error) {  // Unavailable, DeadlineExceeded, ...
    std::cerr << error.what() << "\n";
    return 1;
  }
}
