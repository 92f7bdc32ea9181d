//! tusk-operator: the `tusk` binary's library — CLI commands, the kube-runtime controller, the
//! plan executor, leader election, metrics and `tusk up`.

pub mod cli;
pub mod commands;
pub mod controller;
pub mod core_glue;
pub mod error;
pub mod executor;
pub mod index;
pub mod kinds;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod run;
pub mod sim;
pub mod up;
