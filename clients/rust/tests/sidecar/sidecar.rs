//! Starts `flag-sidecar serve` on 127.0.0.1:0 and a Unix socket, and reads both addresses back
//! from its log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use flagsidecar::{Client, Error, User};

/// The repository root, from this crate's manifest (clients/rust).
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A single-threaded Tokio runtime for one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// FLAG_SIDECAR (a path) if set, else the repository's .venv (made by `make`).
fn command() -> PathBuf {
    if let Some(command) = std::env::var_os("FLAG_SIDECAR") {
        return command.into();
    }
    let command = repository().join(".venv/bin/flag-sidecar");
    assert!(
        command.exists(),
        "no sidecar to test against at {}: run `make test-rust` from the repository root, which \
         installs it, or set FLAG_SIDECAR to a flag-sidecar command",
        command.display()
    );
    command
}

/// A running sidecar; dropping it kills the process and removes its socket's directory.
pub struct Sidecar {
    pub tcp: String,
    pub unix: String,
    child: Child,
    dir: PathBuf,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Sidecar {
    pub fn start(flags: &Path) -> Sidecar {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        // Short, in the temporary directory: a socket path has a limit of 108 bytes.
        let dir = std::env::temp_dir().join(format!(
            "flag-sidecar-rust-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the socket");
        let socket = format!("unix://{}", dir.join("grpc.sock").display());
        let mut command = Command::new(command());
        command.arg("serve").arg("--flags").arg(flags);
        command.args(["--listen", "127.0.0.1:0", "--listen", &socket]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("FLAG_SIDECAR_") {
                command.env_remove(name);
            }
        }
        // Not the fixed management port: tests and other sidecars run side by side.
        command
            .env("FLAG_SIDECAR_MANAGEMENT_LISTEN", "127.0.0.1:0")
            .env("PYTHONUNBUFFERED", "1");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flag-sidecar serve starts");
        let stderr = child.stderr.take().expect("its stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addresses, listening) = mpsc::channel();
        let lines = Arc::clone(&log);
        // Reads to the end, so that the sidecar never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = addresses.send(address);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut sidecar = Sidecar {
            tcp: String::new(),
            unix: String::new(),
            child,
            dir,
        };
        while sidecar.tcp.is_empty() || sidecar.unix.is_empty() {
            match listening.recv_timeout(Duration::from_secs(30)) {
                Ok(address) if address.starts_with("unix:") => sidecar.unix = address,
                Ok(address) => sidecar.tcp = address,
                Err(_) => panic!(
                    "flag-sidecar serve did not log both addresses within 30 s (or exited):\n{}",
                    log.lock().unwrap().join("\n")
                ),
            }
        }
        sidecar
    }

    /// Waits until the flag set is loaded: until then calls are UNAVAILABLE.
    pub async fn wait_serving(&self) {
        let client = Client::connect(self.tcp.clone())
            .await
            .expect("the sidecar listens");
        for _ in 0..300 {
            match client.evaluate_all(&User::new("readiness")).await {
                Err(Error::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(error) => panic!("the sidecar is not serving: {error}"),
                Ok(_) => return,
            }
        }
        panic!("the sidecar has no flag set loaded after 30 s");
    }
}

/// The address of a log line `{"event": "listening", "message": "listening on ADDRESS (...)"}`.
fn listening_address(line: &str) -> Option<String> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    if entry.get("event")?.as_str()? != "listening" {
        return None;
    }
    let message = entry.get("message")?.as_str()?;
    Some(
        message
            .strip_prefix("listening on ")?
            .split(' ')
            .next()?
            .to_owned(),
    )
}
