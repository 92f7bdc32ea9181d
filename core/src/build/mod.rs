//! Pure builders of every Kubernetes object a cluster is made of. Each returns the full object
//! tusk server-side-applies, as JSON. Inputs are the CR (through [`Ctx`]) and the few facts the
//! lifecycle decided (instance names, replica counts, passwords); nothing here reads `Observed`.

pub mod configmaps;
pub mod instance;
pub mod memo;
pub mod pdb;
pub mod pgbouncer;
pub mod rbac;
pub mod repohost;
pub mod scram;
pub mod secrets;
pub mod services;
pub mod sidecar_pvcs;

use crate::api::cluster::PerconaPGCluster;
use crate::labels::{self, Labels};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub const DEFAULT_PGBOUNCER_IMAGE: &str = "docker.io/percona/percona-pgbouncer:1.25.1-1";
pub const DEFAULT_PGBACKREST_IMAGE: &str = "docker.io/percona/percona-pgbackrest:2.58.0-1";

/// Behaviour that depends on `spec.crVersion`. Every crVersion-dependent choice that shows up
/// in a rendered object goes through here, so that running a newer tusk against an unchanged
/// CR renders the same pod templates and restarts nothing (research/percona.md §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Probes exec a check against Patroni (≥ 2.7.0) rather than an HTTP GET.
    pub exec_probes: bool,
    /// `sizeLimit` of the `/tmp` emptyDir.
    pub tmp_size_limit: &'static str,
    /// `app.kubernetes.io/*` labels on every object (≥ 2.3.0).
    pub percona_labels: bool,
    /// Omitting `spec.proxy` means no pgBouncer (≥ 2.9.0); before, one pgBouncer always ran.
    pub pgbouncer_optional: bool,
    /// Default of `spec.autoCreateUserSchema` (≥ 2.6.0).
    pub auto_create_user_schema: bool,
    /// `sidecarPVCs` are created and mounted (≥ 2.9.0).
    pub sidecar_pvcs: bool,
}

impl Features {
    pub fn for_cr_version(v: Option<&str>) -> Self {
        let v = parse_version(v.unwrap_or(crate::api::defaults::CR_VERSION));
        let at_least = |x: (u32, u32, u32)| v >= x;
        Self {
            exec_probes: at_least((2, 7, 0)),
            tmp_size_limit: if at_least((2, 4, 0)) {
                "2Gi"
            } else if at_least((2, 3, 0)) {
                "1.5Gi"
            } else {
                "16Mi"
            },
            percona_labels: at_least((2, 3, 0)),
            pgbouncer_optional: at_least((2, 9, 0)),
            auto_create_user_schema: at_least((2, 6, 0)),
            sidecar_pvcs: at_least((2, 9, 0)),
        }
    }
}

/// `"2.9.0"` → (2, 9, 0); unparsable parts count as 0, a missing version as the newest.
pub fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v.trim_start_matches('v').split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// Everything builders need from the CR, computed once per reconcile.
pub struct Ctx<'a> {
    pub cr: &'a PerconaPGCluster,
    pub name: &'a str,
    pub ns: &'a str,
    pub features: Features,
    owner: Value,
    global_labels: Map<String, Value>,
    global_annotations: Map<String, Value>,
    /// The [`memo`] entry these inputs matched.
    memo_entry: std::cell::OnceCell<std::sync::Arc<memo::Entry>>,
}

impl<'a> Ctx<'a> {
    pub fn new(cr: &'a PerconaPGCluster) -> Self {
        let name = cr.metadata.name.as_deref().unwrap_or("");
        let ns = cr.metadata.namespace.as_deref().unwrap_or("default");
        let uid = cr.metadata.uid.as_deref().unwrap_or("");
        let features = Features::for_cr_version(cr.spec.cr_version.as_deref());
        let owner = json!([{
            "apiVersion": crate::api::defaults::API_VERSION,
            "kind": "PerconaPGCluster",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
        let mut global_labels = Map::new();
        let mut global_annotations = Map::new();
        if let Some(m) = &cr.spec.metadata {
            for (k, v) in &m.labels {
                global_labels.insert(k.clone(), Value::String(v.clone()));
            }
            for (k, v) in &m.annotations {
                global_annotations.insert(k.clone(), Value::String(v.clone()));
            }
        }
        Self {
            cr,
            name,
            ns,
            features,
            owner,
            global_labels,
            global_annotations,
            memo_entry: std::cell::OnceCell::new(),
        }
    }

    pub fn pg_port(&self) -> i32 {
        self.cr.port()
    }

    pub fn patroni_port(&self) -> i32 {
        self.cr.patroni().port()
    }

    pub fn pg_version(&self) -> i64 {
        self.cr.spec.postgres_version
    }

    pub fn postgres_image(&self) -> String {
        self.cr.spec.image.clone().unwrap_or_else(|| {
            format!(
                "docker.io/percona/percona-distribution-postgresql:{}",
                self.pg_version()
            )
        })
    }

    pub fn pull_policy(&self) -> Value {
        match self.cr.spec.image_pull_policy {
            Some(p) => Value::String(p.as_str().to_string()),
            None => Value::Null,
        }
    }

    pub fn pgbackrest_image(&self) -> String {
        self.cr
            .spec
            .backups
            .pgbackrest
            .as_ref()
            .and_then(|p| p.image.clone())
            .unwrap_or_else(|| DEFAULT_PGBACKREST_IMAGE.to_string())
    }

    /// pgBouncer is part of the cluster (see [`Features::pgbouncer_optional`]).
    pub fn has_pgbouncer(&self) -> bool {
        self.cr.spec.proxy.is_some() || !self.features.pgbouncer_optional
    }

    pub fn pgbouncer_replicas(&self) -> i32 {
        if !self.has_pgbouncer() {
            return 0;
        }
        self.cr.pgbouncer().map_or(1, |p| p.replicas()).max(0)
    }

    pub fn pgbouncer_port(&self) -> i32 {
        self.cr
            .pgbouncer()
            .map_or(crate::api::defaults::PGBOUNCER_PORT, |p| p.port())
    }

    pub fn backups_enabled(&self) -> bool {
        self.cr.spec.backups.is_enabled() && !self.cr.repos().is_empty()
    }

    /// A dedicated repo host runs when a volume repo exists.
    pub fn has_repo_host(&self) -> bool {
        self.backups_enabled() && self.cr.repos().iter().any(|r| r.volume.is_some())
    }

    /// TLS is always on: with the user's certificates or with those tusk generates
    /// ([`crate::tls`]).
    pub fn tls_enabled(&self) -> bool {
        true
    }

    pub fn dns_suffix(&self) -> Option<&str> {
        self.cr.spec.cluster_service_dns_suffix.as_deref()
    }

    /// Labels every object carries: the cluster label, the Percona `app.kubernetes.io` set
    /// (crVersion ≥ 2.3.0) and `spec.metadata.labels`.
    pub fn labels(&self, component: &str) -> Labels {
        let mut l = labels::cluster(self.name);
        if self.features.percona_labels {
            l = l
                .with(labels::APP_NAME, "percona-postgresql")
                .with(labels::APP_PART_OF, "percona-postgresql")
                .with(labels::APP_MANAGED_BY, "percona-postgresql-operator")
                .with(labels::APP_INSTANCE, self.name)
                .with(labels::APP_COMPONENT, component);
            if let Some(v) = &self.cr.spec.cr_version {
                l = l.with(labels::PERCONA_VERSION, v.clone());
            }
        }
        for (k, v) in &self.global_labels {
            l.0.entry(k.clone()).or_insert_with(|| v.clone());
        }
        l
    }

    fn annotations(&self, extra: Option<Map<String, Value>>) -> Map<String, Value> {
        let mut a = self.global_annotations.clone();
        if let Some(e) = extra {
            a.extend(e);
        }
        a
    }

    /// Metadata of an object owned by the cluster (garbage-collected with it).
    pub fn meta(
        &self,
        name: &str,
        labels: Labels,
        annotations: Option<Map<String, Value>>,
    ) -> Value {
        let mut m = self.meta_unowned(name, labels, annotations);
        m["ownerReferences"] = self.owner.clone();
        m
    }

    /// Metadata of an object that outlives the cluster (PVCs, password Secrets): removed only
    /// under the `percona.com/delete-pvc` finalizer.
    pub fn meta_unowned(
        &self,
        name: &str,
        labels: Labels,
        annotations: Option<Map<String, Value>>,
    ) -> Value {
        let mut m = json!({
            "name": name,
            "namespace": self.ns,
        });
        m["labels"] = labels.into_value(); // moved, not copied through `json!`
        let a = self.annotations(annotations);
        if !a.is_empty() {
            m["annotations"] = Value::Object(a);
        }
        m
    }
}

/// Serializes a passthrough field (k8s-openapi type) to JSON.
pub fn to_json<T: Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

/// Serializes a list, dropping it (Null) when empty so that the object stays minimal.
pub fn list_json<T: Serialize>(x: &[T]) -> Value {
    if x.is_empty() {
        Value::Null
    } else {
        to_json(&x)
    }
}

/// Removes `null` members of objects (recursively), so rendered objects carry no noise.
pub fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for x in m.values_mut() {
                prune(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

/// A map of strings from a BTreeMap.
pub fn string_map(m: &std::collections::BTreeMap<String, String>) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("2.9.0", (2, 9, 0))]
    #[case("v2.10.1", (2, 10, 1))]
    #[case("2.5", (2, 5, 0))]
    #[case("junk", (0, 0, 0))]
    fn versions(#[case] s: &str, #[case] v: (u32, u32, u32)) {
        assert_eq!(parse_version(s), v);
    }

    #[test]
    fn features_gate_on_cr_version() {
        let old = Features::for_cr_version(Some("2.2.0"));
        let new = Features::for_cr_version(Some("2.9.0"));
        assert!(!old.exec_probes && new.exec_probes);
        assert_eq!(old.tmp_size_limit, "16Mi");
        assert_eq!(new.tmp_size_limit, "2Gi");
        assert!(!old.pgbouncer_optional && new.pgbouncer_optional);
        assert_eq!(Features::for_cr_version(None), new);
    }
}
