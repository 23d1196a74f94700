//! Calls a flag-sidecar serving examples/flags.yaml (`make run`):
//! cargo run --example example [target], where target is host:port or unix:///path.

use flagsidecar::{Client, Error, Event, User, bucket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // host:port, or unix:///run/flag-sidecar/grpc.sock for a Unix socket.
    let target = std::env::args().nth(1).unwrap_or("127.0.0.1:50051".into());
    // Any Tokio runtime will do (#[tokio::main] too); one thread is enough for a client.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(target))
}

async fn run(target: String) -> Result<(), Box<dyn std::error::Error>> {
    // Every call gets a deadline of flagsidecar::DEFAULT_TIMEOUT
    // (Client::builder(target).timeout(...) changes it).
    let client = Client::connect(target).await?;
    let user = User::new("u1")
        .with("plan", "pro")
        .with("accountId", "acct-42");

    let answer = client.evaluate("new-checkout", &user).await?;
    let value = answer.value.unwrap_or_default(); // None: no value, use your code default
    let (variant, reason) = (&answer.variant, answer.reason.as_str_name());
    println!("{variant} {value} {reason}");

    // The bucket the split put acct-42 in, computed here as the sidecar does.
    let split = bucket("new-checkout", &user.context["accountId"]).unwrap_or_default();
    println!("bucket {split}");

    for evaluation in client.evaluate_all(&user).await? {
        println!("{} {}", evaluation.flag_key, evaluation.variant);
    }

    match client.evaluate("no-such-flag", &user).await {
        Err(error @ Error::FlagNotFound(_)) => println!("not found: {error}"),
        Err(error) => return Err(error.into()),
        Ok(answer) => println!("found {}", answer.flag_key),
    }

    let event = Event::new("checkout-completed", user).with("value", 42.5);
    let accepted = client.track(&[event]).await?;
    println!("tracked {accepted}");
    Ok(())
}
