//! A small client for flag-sidecar's native gRPC API (`flagsidecar.v1`), on tonic and prost.
//!
//! It connects over TCP or a Unix socket, calls `Evaluate`, `EvaluateAll` and `Track`, gives
//! every call a deadline ([`DEFAULT_TIMEOUT`] unless set), and turns gRPC status codes into
//! [`Error`]'s variants. [`bucket`] computes a percentage split's bucket as the sidecar does.
//! docs/clients/rust.md in the repository has a complete program.

mod bucket;
mod client;
mod connect;
mod error;
mod value;

/// The messages and client stubs generated from proto/flagsidecar/v1 at build time (build.rs).
pub mod proto {
    tonic::include_proto!("flagsidecar.v1");
}

pub use bucket::{BUCKET_COUNT, bucket, bucket_text};
pub use client::{Builder, CallOptions, Client, DEFAULT_TIMEOUT, Evaluation, Event, User};
pub use error::{Error, TrackError};
/// Why a variant was served and what went wrong (OpenFeature's names).
pub use proto::{ErrorCode, Reason};
/// Context values, details and flag values are JSON values.
pub use serde_json::{Map, Value, json};
/// The status codes and statuses that [`Error`] keeps.
pub use tonic::{Code, Status};
