//! tusk-core: the Percona PG v2 API types and every decision the operator makes, as pure
//! functions. No I/O, no clock, no RNG of its own: time and entropy arrive through [`Env`].
//!
//! The contract with the two drivers (the operator and the simulated world) is
//! [`reconcile`]`(&Observed, &Env) -> Plan`.

pub mod api;
pub mod backup;
pub mod build;
pub mod env;
pub mod labels;
pub mod lifecycle;
pub mod naming;
pub mod observed;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod testkit;
pub mod tls;
pub mod validate;
pub mod yaml;

pub use env::{Env, Rng};
pub use observed::Observed;
pub use plan::{Action, EventType, FIELD_MANAGER, ObjectRef, Plan};
pub use reconcile::reconcile;
pub use render::render;
pub use validate::{FieldError, ValidCluster, validate};
