//! The conformance suite (tests/conformance/README.md) against a real `flag-sidecar serve` on a
//! free TCP port and a Unix socket: every vector over both, through this crate, with each
//! split's bucket computed here (`flagsidecar::bucket`, the murmur3 crate) and compared.

use std::time::Duration;

use flagsidecar::{
    CallOptions, Client, Error, Evaluation, Event, Map, User, Value, bucket, bucket_text,
};
use serde_json::json;
use tonic::Code;

use crate::sidecar::{Sidecar, repository, runtime};

#[test]
fn every_vector_over_tcp_and_a_unix_socket() {
    let directory = repository().join("tests/conformance");
    let text = std::fs::read_to_string(directory.join("vectors.json")).expect("vectors.json");
    let file: Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    let vectors = file["vectors"].as_array().expect("a list of vectors");
    assert!(!vectors.is_empty(), "vectors.json has no vectors");
    let sidecar = Sidecar::start(&directory.join(file["flags"].as_str().expect("a flag file")));
    let mut failures = Vec::new();
    let mut ran = 0;
    runtime().block_on(async {
        sidecar.wait_serving().await;
        for (transport, target) in [("tcp", &sidecar.tcp), ("unix", &sidecar.unix)] {
            let client = Client::builder(target.clone())
                .timeout(Duration::from_secs(10))
                .connect()
                .await
                .unwrap_or_else(|error| panic!("{transport}: {error}"));
            for vector in vectors {
                let mut failed = Vec::new();
                run(&client, vector, &mut failed).await;
                ran += 1;
                let name = vector["name"].as_str().unwrap_or("?");
                failures.extend(
                    failed
                        .into_iter()
                        .map(|f| format!("{transport} / {name}: {f}")),
                );
            }
        }
    });
    assert_eq!(ran, 2 * vectors.len());
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn user(value: &Value) -> User {
    User {
        id: value["id"].as_str().unwrap_or_default().to_owned(),
        context: value["context"].as_object().cloned().unwrap_or_default(),
    }
}

async fn run(client: &Client, vector: &Value, failed: &mut Vec<String>) {
    let (request, expect) = (&vector["request"], &vector["expect"]);
    let debug = request["debug"].as_bool().unwrap_or(false);
    let mut options = CallOptions::new();
    if debug {
        options = options.debug();
    }
    let subject = user(&request["user"]);
    let outcome: Result<(), Error> = match vector["method"].as_str() {
        Some("Evaluate") => {
            let flag_key = request["flag_key"].as_str().unwrap_or_default();
            client
                .evaluate_with(flag_key, &subject, &options)
                .await
                .map(|answer| {
                    if !expect["evaluation"].is_null() {
                        check(&answer, &expect["evaluation"], &subject, debug, failed);
                    }
                })
        }
        Some("EvaluateAll") => {
            if let Some(keys) = request["flag_keys"].as_array() {
                options = options.flag_keys(keys.iter().filter_map(Value::as_str));
            }
            client
                .evaluate_all_with(&subject, &options)
                .await
                .map(|answers| {
                    let Some(total) = expect["total"].as_u64() else {
                        return;
                    };
                    let wanted = expect["evaluations"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if answers.len() as u64 != total || answers.len() != wanted.len() {
                        failed.push(format!("{} evaluations, want {total}", answers.len()));
                        return;
                    }
                    for (answer, want) in answers.iter().zip(&wanted) {
                        check(answer, want, &subject, debug, failed);
                    }
                })
        }
        Some("Track") => {
            let events: Vec<Event> = request["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|event| Event {
                    name: event["name"].as_str().unwrap_or_default().to_owned(),
                    user: user(&event["user"]),
                    details: event["details"].as_object().cloned().unwrap_or_default(),
                })
                .collect();
            let (accepted, outcome) = match client.track(&events).await {
                Ok(accepted) => (accepted, Ok(())),
                Err(error) => (error.accepted, Err(error.error)),
            };
            match expect["accepted"].as_u64() {
                None => failed.push("a Track vector must say how many events are accepted".into()),
                Some(want) if want != accepted => {
                    failed.push(format!("accepted {accepted}, want {want}"))
                }
                Some(_) => {}
            }
            outcome
        }
        other => {
            failed.push(format!("unknown method {other:?}"));
            return;
        }
    };
    let want = expect["status"].as_str().unwrap_or("?");
    let got = match &outcome {
        Ok(()) => Code::Ok,
        Err(error) => error.code(),
    };
    if code_name(got) != want {
        failed.push(format!(
            "status {} ({outcome:?}), want {want}",
            code_name(got)
        ));
    }
    // The variant a caller matches on, for the statuses the vectors expect.
    match (want, &outcome) {
        ("NOT_FOUND", Err(Error::FlagNotFound(_)))
        | ("INVALID_ARGUMENT", Err(Error::InvalidArgument(_))) => {}
        ("NOT_FOUND" | "INVALID_ARGUMENT", other) => failed.push(format!("{want} as {other:?}")),
        _ => {}
    }
}

fn check(got: &Evaluation, want: &Value, user: &User, debug: bool, failed: &mut Vec<String>) {
    let key = want["flag_key"].as_str().unwrap_or("?");
    let fields = [
        ("flag_key", json!(got.flag_key), &want["flag_key"]),
        ("variant", json!(got.variant), &want["variant"]),
        ("reason", json!(got.reason.as_str_name()), &want["reason"]),
        (
            "error_code",
            json!(got.error_code.as_str_name()),
            &want["error_code"],
        ),
        (
            "flag_version",
            json!(got.flag_version),
            &want["flag_version"],
        ),
    ];
    for (name, got, want) in fields {
        if &got != want {
            failed.push(format!("{key} {name}: {got}, want {want}"));
        }
    }
    // No "value" in the vector means no value, which differs from JSON null.
    match (&got.value, want.get("value")) {
        (None, None) => {}
        (Some(value), Some(expected)) if same(value, expected) => {}
        (value, expected) => failed.push(format!("{key} value {value:?}, want {expected:?}")),
    }
    let buckets: Vec<i32> = got.trace.iter().filter_map(|step| step.bucket).collect();
    let Some(split) = want.get("bucket") else {
        if !buckets.is_empty() {
            failed.push(format!("{key}: an unexpected split, buckets {buckets:?}"));
        }
        return;
    };
    if !debug {
        failed.push(format!("{key}: a vector with a bucket must ask with debug"));
        return;
    }
    let expected = split["bucket"].as_i64().unwrap_or(-1);
    if buckets != [expected as i32] {
        failed.push(format!(
            "{key}: the sidecar's buckets {buckets:?}, want [{expected}]"
        ));
    }
    // Our own bucket, from the request's value, by the documented rule.
    let by = split["by"].as_str().unwrap_or_default();
    let value = match by {
        "$userId" => Value::String(user.id.clone()),
        attribute => user.context.get(attribute).cloned().unwrap_or(Value::Null),
    };
    let text = bucket_text(&value);
    if text.as_deref() != split["text"].as_str() {
        failed.push(format!(
            "{key}: bucket_text({value}) = {text:?}, want {}",
            split["text"]
        ));
    }
    let ours = bucket(key, &value);
    if ours.map(i64::from) != Some(expected) {
        failed.push(format!(
            "{key}: bucket({value}) = {ours:?}, want {expected}"
        ));
    }
}

/// JSON equality with numbers compared as the doubles both sides carry (1 and 1.0 are equal).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => same_fields(x, y),
        _ => a == b,
    }
}

fn same_fields(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len()
        && x.iter()
            .all(|(key, value)| y.get(key).is_some_and(|other| same(value, other)))
}

/// gRPC's canonical name of a status code, as vectors.json spells it.
fn code_name(code: Code) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("?")
}
