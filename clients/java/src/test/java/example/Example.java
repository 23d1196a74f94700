// Calls a flag-sidecar serving examples/flags.yaml (`make run`):
// java example.Example [target], where target is host:port or unix:///path.
package example;

import io.github.flagsidecar.Bucket;
import io.github.flagsidecar.Evaluation;
import io.github.flagsidecar.Event;
import io.github.flagsidecar.FlagNotFoundException;
import io.github.flagsidecar.FlagSidecarClient;
import io.github.flagsidecar.User;
import java.util.Map;

public final class Example {
  public static void main(String[] args) {
    String target = args.length > 0 ? args[0] : "127.0.0.1:50051"; // or "unix:///run/flag-sidecar/grpc.sock"
    // Every call gets a deadline of FlagSidecarClient.DEFAULT_TIMEOUT (1 s) unless the builder's
    // timeout(...) sets another.
    try (FlagSidecarClient client = FlagSidecarClient.builder(target).build()) {
      User user = new User("u1", Map.of("plan", "pro", "accountId", "acct-42"));

      Evaluation answer = client.evaluate("new-checkout", user);
      System.out.println(answer.variant() + " " + answer.value() + " " + answer.reason());

      // The bucket the split put acct-42 in, computed here as the sidecar does.
      System.out.println("bucket " + Bucket.of("new-checkout", "acct-42").getAsInt());

      for (Evaluation evaluation : client.evaluateAll(user)) {
        System.out.println(evaluation.flagKey() + " " + evaluation.variant());
      }

      try {
        client.evaluate("no-such-flag", user);
      } catch (FlagNotFoundException notFound) {
        System.out.println("not found: " + notFound.getMessage());
      }

      long accepted = client.track(new Event("checkout-completed", user, Map.of("value", 42.5)));
      System.out.println("tracked " + accepted);
    }
  }
}
