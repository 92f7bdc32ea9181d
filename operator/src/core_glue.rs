//! The one place where the operator calls into `tusk-core`. Everything else in this crate works
//! on JSON values and the contract types (`Observed`, `Env`, `Plan`), so when the core's API
//! changes only this file follows.
//!
//! INTEGRATION POINT: the functions below call the core's `api::crds_yaml`, `validate::validate`,
//! `render::render` and `reconcile`.

use serde_json::Value;
use tusk_core::{Env, Observed, Plan};

pub const GROUP: &str = "pgv2.percona.com";
pub const VERSION: &str = "v2";
pub const API_VERSION: &str = "pgv2.percona.com/v2";
pub const CLUSTER_KIND: &str = "PerconaPGCluster";
pub const BACKUP_KIND: &str = "PerconaPGBackup";
pub const RESTORE_KIND: &str = "PerconaPGRestore";
pub const CLUSTER_PLURAL: &str = "perconapgclusters";
pub const BACKUP_PLURAL: &str = "perconapgbackups";
pub const RESTORE_PLURAL: &str = "perconapgrestores";

/// The label every object of a cluster carries, naming the cluster.
pub const CLUSTER_LABEL: &str = "postgres-operator.crunchydata.com/cluster";

/// The three CRDs as multi-document YAML.
pub fn crds_yaml() -> Result<String, String> {
    Ok(tusk_core::api::crds_yaml())
}

/// Deserialize a typed CR from YAML; a type error becomes one `path: message` line.
pub fn parse_typed<T: serde::de::DeserializeOwned>(yaml: &str) -> Result<T, Vec<String>> {
    serde_yaml::from_str::<T>(yaml).map_err(|e| vec![type_error_line(&e.to_string())])
}

/// serde_yaml reports `path: message at line L column C`; the line numbers refer to our
/// re-serialized document, not the user's file, so drop them and keep the path.
fn type_error_line(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    if msg.contains(": ") && !msg.starts_with("invalid type") && !msg.starts_with("missing field") {
        msg.to_string()
    } else {
        format!("spec: {msg}")
    }
}

fn lines<E: ToString>(errors: Vec<E>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Validate a PerconaPGCluster given as YAML text; errors are `spec.path: message` lines.
pub fn validate_cluster_yaml(yaml: &str) -> Result<(), Vec<String>> {
    let cr = parse_typed::<tusk_core::api::PerconaPGCluster>(yaml)?;
    tusk_core::validate(&cr).map(|_| ()).map_err(lines)
}

/// Fields of a Percona document the API does not have (misspelt, or from a newer version):
/// the API server prunes them, so `tusk validate` and `render` warn about each, as kubectl's
/// field validation does. Nothing for a document that does not parse (errors say that).
pub fn unknown_field_warnings(kind: &str, doc: &Value) -> Vec<String> {
    use tusk_core::validate::unknown_fields;
    fn check<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Vec<String> {
        let Ok(typed) = serde_json::from_value::<T>(doc.clone()) else {
            return vec![];
        };
        unknown_fields(doc, &typed)
            .into_iter()
            // metadata and status are the API server's business, not the CR's schema.
            .filter(|e| !e.path.starts_with("metadata") && !e.path.starts_with("status"))
            .map(|e| e.to_string())
            .collect()
    }
    match kind {
        CLUSTER_KIND => check::<tusk_core::api::PerconaPGCluster>(doc),
        BACKUP_KIND => check::<tusk_core::api::PerconaPGBackup>(doc),
        RESTORE_KIND => check::<tusk_core::api::PerconaPGRestore>(doc),
        _ => vec![],
    }
}

/// Validate a PerconaPGBackup or PerconaPGRestore.
pub fn validate_other_yaml(kind: &str, yaml: &str) -> Result<(), Vec<String>> {
    use tusk_core::validate::{validate_backup, validate_restore};
    match kind {
        BACKUP_KIND => validate_backup(&parse_typed(yaml)?).map_err(lines),
        RESTORE_KIND => validate_restore(&parse_typed(yaml)?).map_err(lines),
        other => Err(vec![format!("kind: {other} is not a Percona PG kind")]),
    }
}

/// Every object the operator creates for this cluster on a fresh Kubernetes cluster.
pub fn render_cluster_yaml(yaml: &str, seed: u64) -> Result<Vec<Value>, Vec<String>> {
    let cr = parse_typed::<tusk_core::api::PerconaPGCluster>(yaml)?;
    tusk_core::validate(&cr).map_err(lines)?;
    tusk_core::render(&cr, seed).map_err(lines)
}

/// Bound the core's memory of rendered clusters (see `tusk_core::build::memo`).
pub fn set_render_cache_bytes(bytes: usize) {
    tusk_core::build::memo::set_budget(bytes);
}

/// One reconcile.
pub fn reconcile(observed: &Observed, env: &Env) -> Plan {
    tusk_core::reconcile(observed, env)
}
