//! tusk-fake-apiserver: an in-memory Kubernetes API server with simulated nodes and built-in
//! controllers, deterministic when driven by an injected clock and seed.

pub mod error;
pub mod objects;

pub use error::ApiError;
pub use objects::Objects;
