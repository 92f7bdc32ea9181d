//! The `pgv2.percona.com/v2` API: PerconaPGCluster, PerconaPGBackup, PerconaPGRestore, with the
//! field names, defaults and printer columns of the Percona operator v2.9.0, and the generated
//! CustomResourceDefinitions.

pub mod backup;
pub mod cluster;
pub mod common;
pub mod defaults;
pub mod pgbackrest;
pub mod restore;
pub mod schema;

pub use backup::*;
pub use cluster::*;
pub use common::*;
pub use pgbackrest::*;
pub use restore::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The three CRDs, structural, in a fixed order (clusters, backups, restores).
pub fn crds() -> Vec<CustomResourceDefinition> {
    [
        PerconaPGCluster::crd(),
        PerconaPGBackup::crd(),
        PerconaPGRestore::crd(),
    ]
    .into_iter()
    .map(finish_crd)
    .collect()
}

fn finish_crd(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        // Round-trip through JSON so the rewrite works on plain values.
        let Ok(mut value) = serde_json::to_value(&*schema) else {
            continue;
        };
        schema::make_structural(&mut value);
        schema::trim_embedded_descriptions(&mut value);
        if let Ok(fixed) = serde_json::from_value(value) {
            *schema = fixed;
        }
    }
    crd
}

/// The three CRDs as multi-document YAML (`---` separated), byte-for-byte deterministic.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        // Serializing a CRD to YAML cannot fail: it is plain data with string keys.
        match serde_yaml::to_string(&crd) {
            Ok(s) => out.push_str(&s),
            Err(e) => out.push_str(&format!("# failed to serialize CRD: {e}\n")),
        }
    }
    out
}
