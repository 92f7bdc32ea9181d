//! tusk-core: the Percona PG v2 API types and every decision the operator makes, as pure
//! functions. No I/O, no clock, no RNG of its own: time and entropy arrive through [`Env`].
//!
//! The contract with the two drivers (the operator and the simulated world) is
//! [`reconcile`]`(&Observed, &Env) -> Plan`.

pub mod api;
pub mod backup;
pub mod env;
pub mod observed;
pub mod plan;
pub mod validate;

pub use env::{Env, Rng};
pub use observed::Observed;
pub use plan::{Action, EventType, ObjectRef, Plan};
pub use validate::{FieldError, ValidCluster, validate};
