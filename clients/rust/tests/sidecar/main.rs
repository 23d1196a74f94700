//! The client against a real `flag-sidecar serve` (one test binary: each one more is a link).

mod client;
mod conformance;
mod example;
mod sidecar;
