//! The one place where the operator calls into `tusk-core`. Everything else in this crate works
//! on JSON values and the contract types (`Observed`, `Env`, `Plan`), so when the core's API
//! changes only this file follows.
//!
//! INTEGRATION POINT: the functions below call the core's `api::crds_yaml`, `yaml`,
//! `validate::parse_*`, `validate::validate`, `render::render` and `reconcile`.

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

/// One document of a user's YAML file, read as `kubectl apply -f` reads it (YAML 1.1
/// booleans: an unquoted `yes`, `on`, `off`, `n` is a boolean; see `tusk_core::yaml`).
pub type UserDocument = tusk_core::yaml::Document;

/// Every document of a user's YAML stream, as kubectl reads it (empty documents are null).
pub fn read_user_yaml(text: &str) -> Result<Vec<UserDocument>, String> {
    tusk_core::yaml::documents(text).map_err(|e| e.to_string())
}

/// An error line about `doc`, with a hint when it names a field whose value was one of the
/// YAML 1.1 words (`password: yes` reaches the API as `true`, which a string field rejects).
pub fn explain_error(line: &str, doc: &UserDocument) -> String {
    tusk_core::yaml::explain(line, &doc.yaml11_booleans)
}

fn lines<E: ToString>(errors: Vec<E>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Validate a PerconaPGCluster document; errors are `spec.path: message` lines. The document
/// is read with JSON's types, as the API server reads it: `true` is not a string.
pub fn validate_cluster(doc: &Value) -> Result<(), Vec<String>> {
    let cr = tusk_core::validate::parse_cluster(doc.clone()).map_err(lines)?;
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
pub fn validate_other(kind: &str, doc: &Value) -> Result<(), Vec<String>> {
    use tusk_core::validate::{parse_backup, parse_restore, validate_backup, validate_restore};
    match kind {
        BACKUP_KIND => validate_backup(&parse_backup(doc.clone()).map_err(lines)?).map_err(lines),
        RESTORE_KIND => {
            validate_restore(&parse_restore(doc.clone()).map_err(lines)?).map_err(lines)
        }
        other => Err(vec![format!("kind: {other} is not a Percona PG kind")]),
    }
}

/// Every object the operator creates for this cluster on a fresh Kubernetes cluster.
pub fn render_cluster(doc: &Value, seed: u64) -> Result<Vec<Value>, Vec<String>> {
    let cr = tusk_core::validate::parse_cluster(doc.clone()).map_err(lines)?;
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
