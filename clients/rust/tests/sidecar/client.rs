//! Deadlines, and the errors of a call that reaches no sidecar.

use std::os::unix::net::UnixListener;
use std::time::Duration;

use flagsidecar::{CallOptions, Client, Code, Error, User};

use crate::sidecar::{Sidecar, repository, runtime};

/// A Unix socket whose server accepts connections and never answers.
fn silent_socket(name: &str) -> (String, std::path::PathBuf) {
    let path =
        std::env::temp_dir().join(format!("flag-sidecar-rust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("a socket");
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    (format!("unix://{}", path.display()), path)
}

#[test]
fn a_hung_call_ends_at_the_default_deadline() {
    let (target, path) = silent_socket("hung");
    runtime().block_on(async {
        let client = Client::builder(target)
            .timeout(Duration::from_millis(50))
            .connect_lazy()
            .unwrap();
        let error = client.evaluate("f", &User::new("u1")).await.unwrap_err();
        assert!(matches!(error, Error::DeadlineExceeded(_)), "{error:?}");
        assert_eq!(error.code(), Code::DeadlineExceeded);
        let error = client.track(&[]).await.unwrap_err();
        assert!(
            matches!(error.error, Error::DeadlineExceeded(_)),
            "{error:?}"
        );
    });
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_call_s_own_timeout_replaces_the_client_s() {
    let (target, path) = silent_socket("own");
    runtime().block_on(async {
        let client = Client::builder(target)
            .without_timeout()
            .connect_lazy()
            .unwrap();
        let options = CallOptions::new().timeout(Duration::from_millis(50));
        let error = client
            .evaluate_all_with(&User::new("u1"), &options)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::DeadlineExceeded(_)), "{error:?}");
    });
    let _ = std::fs::remove_file(path);
}

#[test]
fn no_sidecar_is_unavailable() {
    let nothing = format!(
        "unix://{}/flag-sidecar-rust-nothing-here",
        std::env::temp_dir().display()
    );
    runtime().block_on(async {
        let error = Client::connect(nothing.clone()).await.unwrap_err();
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
        let client = Client::builder(nothing).connect_lazy().unwrap();
        let error = client.evaluate("f", &User::new("u1")).await.unwrap_err();
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    });
}

#[test]
fn an_invalid_target_is_refused_before_connecting() {
    runtime().block_on(async {
        for target in ["https://h:1", "unix:", "no-port"] {
            let error = Client::connect(target).await.unwrap_err();
            assert!(
                matches!(error, Error::InvalidTarget(_)),
                "{target}: {error:?}"
            );
        }
    });
}

#[test]
fn a_refused_request_keeps_the_sidecar_s_status() {
    let sidecar = Sidecar::start(&repository().join("examples/flags.yaml"));
    runtime().block_on(async {
        sidecar.wait_serving().await;
        let client = Client::connect(sidecar.unix.clone()).await.unwrap();
        let error = client
            .evaluate("no-such-flag", &User::new("u1"))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "flag not found: flag 'no-such-flag' not found"
        );
        assert_eq!(
            error.status().map(|status| status.code()),
            Some(Code::NotFound)
        );
        let user = User::new("u1").with("$reserved", 1);
        let error = client.evaluate("new-checkout", &user).await.unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
        assert!(error.message().contains("$reserved"), "{error}");
    });
}
