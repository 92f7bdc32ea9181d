//! tusk-fake-apiserver: an in-memory Kubernetes API server with simulated nodes and built-in
//! controllers, deterministic when driven by an injected clock and seed.
//!
//! # Using it
//!
//! ```no_run
//! use tusk_fake_apiserver::{ApiServer, Config, ManualClock, Objects};
//! use std::sync::Arc;
//!
//! let clock = ManualClock::at_epoch_2025();
//! let server = ApiServer::new(Config { clock: Arc::new(clock.clone()), seed: 7, ..Config::default() });
//! // In-process tower service: kube::Client::new(server.router(), "default").
//! // Over HTTP (loopback only): server.serve("127.0.0.1:0".parse().unwrap()).await.
//! // Deterministic drivers use the store directly; it implements `Objects`:
//! let mut store = server.lock();
//! let cm = store.create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "x", "namespace": "default"}})).unwrap();
//! assert_eq!(store.revision().to_string(), cm["metadata"]["resourceVersion"]);
//! ```
//!
//! Main entry points:
//! - [`ApiServer::new`], [`ApiServer::router`] (a `tower::Service`), [`ApiServer::serve`],
//!   [`ApiServer::lock`] / [`ApiServer::with_store`] giving `&mut Store`,
//!   [`ApiServer::install_crds`].
//! - [`Store`]: [`Objects`] plus `revision()`, `get_at`, `list_at` (stale reads),
//!   `changes_since`, `watch`, `compact`, `drop_watches`, `expire_watches`, `gc_step`,
//!   `request_counts` / `write_count`, and `faults()` ([`Faults`]).

pub mod clock;
pub mod controllers;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod events;
pub mod eviction;
pub mod exec;
pub mod faults;
pub mod http;
pub mod json_ptr;
pub mod logs;
pub mod managed;
pub mod objects;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod scale;
pub mod schema_check;
pub mod selectors;
pub mod server;
pub mod store;
pub mod table;
pub mod validation;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ApiError;
pub use faults::{FaultAction, FaultMatch, FaultRule, Faults};
pub use objects::Objects;
pub use patch::PatchKind;
pub use resources::ResourceInfo;
pub use server::{ApiServer, ServeHandle, kubeconfig};
pub use store::{
    Change, Config, DeleteOptions, Deleted, EventType, ListOptions, Store, WatchFilter, WatchMsg,
    WatchStart, WriteOptions,
};
