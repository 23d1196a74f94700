//! Generates the flagsidecar.v1 messages and client stubs from the repository's proto/ at build
//! time, Rust's convention, so no generated code is committed here. protoc comes from the
//! protoc-bin-vendored crate (with the well-known types' .proto files), not from the system.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // At run time, not env!(): the build script's binary is reused from a shared target directory
    // by a checkout at another path, and must read that checkout's proto/.
    let proto = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> = ["evaluation", "event"]
        .iter()
        .map(|name| proto.join(format!("flagsidecar/v1/{name}.proto")))
        .collect();
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        .compile_with_config(
            config,
            &files,
            &[proto.clone(), protoc_bin_vendored::include_path()?],
        )?;
    println!(
        "cargo:rerun-if-changed={}",
        proto.join("flagsidecar").display()
    );
    Ok(())
}
