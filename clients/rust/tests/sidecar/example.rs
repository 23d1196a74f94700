//! docs/clients/rust.md shows examples/example.rs as it is, and the output it prints against a
//! real sidecar serving examples/flags.yaml (as `make run` does), here over a Unix socket.

use std::process::Command;

use crate::sidecar::{Sidecar, repository, runtime};

/// The fenced block after `opening` in the page, from its first line to the closing fence.
fn block<'a>(page: &'a str, opening: &str) -> &'a str {
    let start = page
        .find(opening)
        .unwrap_or_else(|| panic!("docs/clients/rust.md has no {opening:?}"));
    let body = &page[start + opening.len()..];
    &body[..body.find("```\n").expect("a closing fence")]
}

#[test]
fn the_docs_example_runs_as_shown() {
    let page =
        std::fs::read_to_string(repository().join("docs/clients/rust.md")).expect("the page");
    let program =
        std::fs::read_to_string(repository().join("clients/rust/examples/example.rs")).unwrap();
    assert_eq!(
        block(&page, "```rust\n"),
        program,
        "docs/clients/rust.md does not show examples/example.rs as it is"
    );
    // `cargo test` builds the examples next to the test binaries' directory (target/*/examples).
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/example");
    assert!(binary.exists(), "no example binary at {}", binary.display());
    let sidecar = Sidecar::start(&repository().join("examples/flags.yaml"));
    runtime().block_on(sidecar.wait_serving());
    let output = Command::new(&binary)
        .arg(&sidecar.unix)
        .output()
        .expect("the example runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example failed:\n{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        printed,
        block(&page, "Output:\n\n```\n"),
        "the example prints something else than the page says"
    );
}
