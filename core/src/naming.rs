//! Object names, following the ones Percona/Crunchy users already rely on
//! (research/percona.md §2.3). Every name tusk gives an object is built here.

/// Characters of the random instance suffix. Crunchy draws from Kubernetes' `rand.String`
/// alphabet (no vowels, no `0`, `1`, `3`) so that suffixes never spell words.
pub const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Length of the instance suffix.
pub const SUFFIX_LEN: usize = 4;

/// The instance (StatefulSet, and its pod's prefix): `<cluster>-<set>-<suffix>`.
/// The container of an instance pod that runs Patroni and PostgreSQL (psql and pgBackRest
/// are run there too).
pub const DATABASE_CONTAINER: &str = "database";

pub fn instance(cluster: &str, set: &str, suffix: &str) -> String {
    format!("{cluster}-{set}-{suffix}")
}

/// The single pod of an instance StatefulSet.
pub fn instance_pod(instance: &str) -> String {
    format!("{instance}-0")
}

/// The data volume of an instance.
pub fn instance_pgdata_pvc(instance: &str) -> String {
    format!("{instance}-pgdata")
}

/// The WAL volume of an instance (only with walVolumeClaimSpec).
pub fn instance_pgwal_pvc(instance: &str) -> String {
    format!("{instance}-pgwal")
}

/// The volume of tablespace `tablespace` of an instance (`tablespaceVolumes`), as Crunchy
/// names it.
pub fn instance_tablespace_pvc(instance: &str, tablespace: &str) -> String {
    format!("{instance}-{tablespace}-tablespace")
}

/// Where tablespace `tablespace` is mounted in the database container.
pub fn tablespace_mount_path(tablespace: &str) -> String {
    format!("/tablespaces/{tablespace}")
}

/// Patroni's scope, and so the name of its leader Endpoints and of the `-ha` Service.
pub fn patroni_scope(cluster: &str) -> String {
    format!("{cluster}-ha")
}

pub fn ha_service(cluster: &str) -> String {
    format!("{cluster}-ha")
}

pub fn ha_config_service(cluster: &str) -> String {
    format!("{cluster}-ha-config")
}

pub fn primary_service(cluster: &str) -> String {
    format!("{cluster}-primary")
}

pub fn replicas_service(cluster: &str) -> String {
    format!("{cluster}-replicas")
}

pub fn pods_service(cluster: &str) -> String {
    format!("{cluster}-pods")
}

pub fn pgbouncer(cluster: &str) -> String {
    format!("{cluster}-pgbouncer")
}

/// The ConfigMap holding the Patroni configuration shared by all instances.
pub fn patroni_config(cluster: &str) -> String {
    format!("{cluster}-config")
}

pub fn pgbackrest_config(cluster: &str) -> String {
    format!("{cluster}-pgbackrest-config")
}

pub fn repo_host(cluster: &str) -> String {
    format!("{cluster}-repo-host")
}

/// The PVC of a volume repo, mounted by the repo host.
pub fn repo_pvc(cluster: &str, repo: &str) -> String {
    format!("{cluster}-{repo}")
}

pub fn instance_rbac(cluster: &str) -> String {
    format!("{cluster}-instance")
}

pub fn pgbackrest_rbac(cluster: &str) -> String {
    format!("{cluster}-pgbackrest")
}

/// The default Secret of a user.
pub fn user_secret(cluster: &str, user: &str) -> String {
    format!("{cluster}-pguser-{user}")
}

pub fn instance_set_pdb(cluster: &str, set: &str) -> String {
    format!("{cluster}-set-{set}")
}

/// TLS secrets that `percona.com/delete-ssl` removes (when tusk made them).
pub fn cluster_ca_secret(cluster: &str) -> String {
    format!("{cluster}-cluster-ca-cert")
}

pub fn cluster_cert_secret(cluster: &str) -> String {
    format!("{cluster}-cluster-cert")
}

pub fn replication_cert_secret(cluster: &str) -> String {
    format!("{cluster}-replication-cert")
}

/// In-cluster DNS name of a Service.
pub fn service_host(service: &str, namespace: &str, dns_suffix: Option<&str>) -> String {
    match dns_suffix {
        Some(s) if !s.is_empty() => format!("{service}.{namespace}.svc.{s}"),
        _ => format!("{service}.{namespace}.svc"),
    }
}

/// Whether `suffix` could have come from [`SUFFIX_ALPHABET`].
pub fn is_suffix(suffix: &str) -> bool {
    suffix.len() == SUFFIX_LEN && suffix.bytes().all(|b| SUFFIX_ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_upstream() {
        assert_eq!(
            instance("cluster1", "instance1", "b2k9"),
            "cluster1-instance1-b2k9"
        );
        assert_eq!(
            instance_pgdata_pvc("cluster1-instance1-b2k9"),
            "cluster1-instance1-b2k9-pgdata"
        );
        assert_eq!(
            user_secret("cluster1", "cluster1"),
            "cluster1-pguser-cluster1"
        );
        assert_eq!(
            service_host("c-pgbouncer", "ns", None),
            "c-pgbouncer.ns.svc"
        );
        assert_eq!(
            service_host("c-pgbouncer", "ns", Some("cluster.local")),
            "c-pgbouncer.ns.svc.cluster.local"
        );
        assert!(is_suffix("b2k9"));
        assert!(!is_suffix("ab2k"));
    }
}
