//! The fault catalogue: named, parameterized faults that can be injected and healed at any
//! time, alone or together. Targets are resolved when a fault is injected (`primary` means the
//! pod carrying the primary role label at that moment).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// One fault. Instantaneous faults (pod delete/kill, operator crash, PVC lost, backup Job
/// kill) happen once; the others last until healed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Graceful pod deletion (SIGTERM; Patroni releases the lock).
    PodDelete { target: String },
    /// The pod and its processes vanish at once (no lock release). With `down`, its
    /// replacement cannot start for that long (image pull back-off, a slow node): a primary
    /// that comes back within ttl simply takes its own lock back.
    PodKill {
        target: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::clock::duration_text_opt"
        )]
        down: Option<String>,
    },
    /// The database container crashes and is restarted with back-off.
    ContainerCrash { target: String },
    /// The node of the target pod (or a node by name) powers off.
    NodeDown { target: String },
    /// The node's kubelet loses the API server (a network partition): the node turns
    /// NotReady and its pods are evicted after the 300 s toleration, but its containers keep
    /// running, and nothing stops them until the kubelet is back.
    NodeNotReady { target: String },
    /// The pod's Patroni cannot reach the API server.
    Partition { target: String },
    /// A fraction of the operator's writes fail with 409/429/5xx.
    ApiErrors {
        #[serde(default = "default_rate")]
        rate: f64,
    },
    /// The operator's watches are dropped: it sees changes only on requeue or restart.
    DropWatches,
    /// The operator reads snapshots up to `lag` revisions old.
    StaleReads {
        #[serde(default = "default_lag")]
        lag: u64,
    },
    /// The operator crashes after its next `after` writes and restarts with an empty cache.
    OperatorCrash {
        #[serde(default = "one")]
        after: u64,
    },
    /// The clock of the target pod's node is off by `seconds` (ahead when positive; default
    /// 60). Its Patroni writes that local time into the lock (`acquireTime`, `renewTime`) and
    /// into the timeline history. Patroni 3 times the lock by when it saw it change, not by
    /// those timestamps, so this must not change who leads.
    ClockSkew {
        target: String,
        #[serde(default = "default_skew")]
        seconds: i64,
    },
    /// The pod's data volume is full: writes fail.
    DiskFull { target: String },
    /// Running backup Jobs are killed.
    BackupJobKill,
    /// Backup repositories in object storage cannot be reached.
    ObjectStoreDown,
    /// The pod's pgdata PVC is deleted (storage lost) and the pod with it.
    PvcLost { target: String },
    /// Standbys receive WAL this many milliseconds late: every standby, or only `target`.
    ReplicationLag {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        millis: i64,
    },
}

/// A fault as a scenario step: the fault and, for a lasting one, how long until it heals
/// itself (`- fault: {kind: partition, target: primary, for: 45s}`). Without `for:` it lasts
/// until a `heal` step.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultStep {
    pub fault: Fault,
    /// The duration as written (checked with the scenario).
    pub lasts: Option<String>,
}

impl From<Fault> for FaultStep {
    fn from(fault: Fault) -> Self {
        Self { fault, lasts: None }
    }
}

impl<'de> Deserialize<'de> for FaultStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut v = serde_json::Value::deserialize(d)?;
        let lasts = match v.as_object_mut().and_then(|m| m.remove("for")) {
            None => None,
            Some(t) => Some(crate::clock::duration_text(t).map_err(D::Error::custom)?),
        };
        let fault = Fault::deserialize(v).map_err(D::Error::custom)?;
        Ok(Self { fault, lasts })
    }
}

impl Serialize for FaultStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut v = serde_json::to_value(&self.fault).map_err(S::Error::custom)?;
        if let Some(l) = &self.lasts {
            v["for"] = serde_json::Value::String(l.clone());
        }
        v.serialize(s)
    }
}

fn default_rate() -> f64 {
    0.3
}
fn default_lag() -> u64 {
    20
}
fn default_skew() -> i64 {
    60
}
fn one() -> u64 {
    1
}

impl Fault {
    /// The fault's class name (as used in `--faults`).
    pub fn class(&self) -> &'static str {
        match self {
            Fault::PodDelete { .. } => "pod-delete",
            Fault::PodKill { .. } => "pod-kill",
            Fault::ContainerCrash { .. } => "container-crash",
            Fault::NodeDown { .. } => "node-down",
            Fault::NodeNotReady { .. } => "node-not-ready",
            Fault::Partition { .. } => "partition",
            Fault::ApiErrors { .. } => "api-errors",
            Fault::DropWatches => "drop-watches",
            Fault::StaleReads { .. } => "stale-reads",
            Fault::OperatorCrash { .. } => "operator-crash",
            Fault::ClockSkew { .. } => "clock-skew",
            Fault::DiskFull { .. } => "disk-full",
            Fault::BackupJobKill => "backup-job-kill",
            Fault::ObjectStoreDown => "object-store-down",
            Fault::PvcLost { .. } => "pvc-lost",
            Fault::ReplicationLag { .. } => "replication-lag",
        }
    }

    /// Whether the fault lasts until healed.
    pub fn lasting(&self) -> bool {
        !matches!(
            self,
            Fault::PodDelete { .. }
                | Fault::PodKill { .. }
                | Fault::ContainerCrash { .. }
                | Fault::OperatorCrash { .. }
                | Fault::PvcLost { .. }
                | Fault::BackupJobKill
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PodDelete { target } => write!(f, "pod-delete {target}"),
            Fault::PodKill { target, down: None } => write!(f, "pod-kill {target}"),
            Fault::PodKill {
                target,
                down: Some(d),
            } => {
                write!(f, "pod-kill {target} (replacement held back {d})")
            }
            Fault::ContainerCrash { target } => write!(f, "container-crash {target}"),
            Fault::NodeDown { target } => write!(f, "node-down {target}"),
            Fault::NodeNotReady { target } => write!(f, "node-not-ready {target}"),
            Fault::Partition { target } => write!(f, "partition {target} from the API server"),
            Fault::ApiErrors { rate } => write!(f, "api-errors rate={rate}"),
            Fault::DropWatches => write!(f, "drop-watches"),
            Fault::StaleReads { lag } => write!(f, "stale-reads lag={lag}"),
            Fault::OperatorCrash { after } => write!(f, "operator-crash after {after} write(s)"),
            Fault::ClockSkew { target, seconds } => write!(f, "clock-skew {target} {seconds}s"),
            Fault::DiskFull { target } => write!(f, "disk-full {target}"),
            Fault::BackupJobKill => write!(f, "backup-job-kill"),
            Fault::ObjectStoreDown => write!(f, "object-store-down"),
            Fault::PvcLost { target } => write!(f, "pvc-lost {target}"),
            Fault::ReplicationLag {
                target: None,
                millis,
            } => write!(f, "replication-lag {millis}ms"),
            Fault::ReplicationLag {
                target: Some(t),
                millis,
            } => write!(f, "replication-lag {t} {millis}ms"),
        }
    }
}

/// Every fault class, in catalogue order.
pub const ALL_CLASSES: &[&str] = &[
    "pod-delete",
    "pod-kill",
    "container-crash",
    "node-down",
    "node-not-ready",
    "partition",
    "api-errors",
    "drop-watches",
    "stale-reads",
    "operator-crash",
    "clock-skew",
    "disk-full",
    "backup-job-kill",
    "object-store-down",
    "pvc-lost",
    "replication-lag",
];

/// A set of enabled fault classes (for `tusk sim explore --faults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSet(pub BTreeSet<String>);

impl Default for FaultSet {
    fn default() -> Self {
        Self::all()
    }
}

impl FaultSet {
    pub fn all() -> Self {
        Self(ALL_CLASSES.iter().map(|s| s.to_string()).collect())
    }

    /// Parses `pod-kill,node-down` (or `all`). Unknown names are an error naming them.
    pub fn parse(list: &str) -> Result<Self, String> {
        if list.trim() == "all" || list.trim().is_empty() {
            return Ok(Self::all());
        }
        let mut set = BTreeSet::new();
        for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !ALL_CLASSES.contains(&part) {
                return Err(format!(
                    "unknown fault class `{part}`; known: {}",
                    ALL_CLASSES.join(", ")
                ));
            }
            set.insert(part.to_string());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, class: &str) -> bool {
        self.0.contains(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_yaml() {
        let f: Fault = serde_yaml::from_str("kind: pod-kill\ntarget: primary").unwrap();
        assert_eq!(
            f,
            Fault::PodKill {
                target: "primary".into(),
                down: None
            }
        );
        let f: Fault = serde_yaml::from_str("kind: stale-reads").unwrap();
        assert_eq!(f, Fault::StaleReads { lag: 20 });
        assert_eq!(f.class(), "stale-reads");
    }

    #[test]
    fn fault_sets_parse() {
        assert_eq!(FaultSet::parse("all").unwrap(), FaultSet::all());
        assert!(FaultSet::parse("pod-kill,bogus").is_err());
        assert!(
            FaultSet::parse("pod-kill,node-down")
                .unwrap()
                .contains("node-down")
        );
    }
}
