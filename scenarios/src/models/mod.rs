//! Behaviour models attached to pods.

pub mod patroni;
pub mod pgbackrest;
pub mod postgres;
pub mod workload;
