// Calls a flag-sidecar serving examples/flags.yaml (`make run`):
// node dist/examples/example.js [target], where target is host:port or unix:///path.
import { bucket, Client, FlagNotFoundError } from "@flag-sidecar/client";

async function main(target: string): Promise<void> {
  // Every call gets a deadline of DEFAULT_TIMEOUT_MS unless it sets its own
  // (new Client(target, { timeoutMs }) changes the default).
  const client = new Client(target);
  try {
    const user = { id: "u1", context: { plan: "pro", accountId: "acct-42" } };

    const answer = await client.evaluate("new-checkout", user);
    console.log(answer.variant, answer.value, answer.reason);

    // The bucket the split put acct-42 in, computed here as the sidecar does.
    console.log("bucket", bucket("new-checkout", user.context.accountId));

    for (const evaluation of await client.evaluateAll(user)) {
      console.log(evaluation.flagKey, evaluation.variant);
    }

    try {
      await client.evaluate("no-such-flag", user);
    } catch (error) {
      if (!(error instanceof FlagNotFoundError)) {
        throw error;
      }
      console.log("not found:", error.message);
    }

    const accepted = await client.track([{ name: "checkout-completed", user, details: { value: 42.5 } }]);
    console.log("tracked", accepted);
  } finally {
    client.close();
  }
}

main(process.argv[2] ?? "127.0.0.1:50051").catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
