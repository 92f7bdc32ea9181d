//! tusk-scenarios: the deterministic world in which tusk's core runs against an in-memory API
//! server, simulated Kubernetes and behaviour models (Patroni/PostgreSQL, a client workload),
//! with faults injected from a seed and invariants checked after every step.

pub mod clock;
pub mod core_adapter;
pub mod explore;
pub mod faults;
pub mod invariants;
pub mod kube;
pub mod labels;
pub mod live;
pub mod models;
pub mod operator;
pub mod rng;
pub mod script;
pub mod store;
pub mod stub;
pub mod world;

pub use explore::{ExploreFailure, ExploreProgress, ExploreSummary, explore};
pub use faults::{Fault, FaultSet};
pub use live::{LiveModels, attach_models};
pub use script::{RunOutcome, ScriptError, run_file};
pub use world::{World, WorldConfig};
