//! Safety properties checked after every step, liveness at the end, and "sometimes" coverage.

use crate::clock::{Millis, fmt_offset};
use crate::labels;
use crate::models::patroni::{Patroni, Settings};
use crate::models::workload::Workload;
use crate::store::SimApi;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Counts of rare-but-expected events; a suite that never reaches them tests nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sometimes {
    pub failovers: u64,
    pub switchovers: u64,
    pub rewinds: u64,
    pub operator_crashes: u64,
    pub stale_reads: u64,
    pub backups_interrupted: u64,
    pub rollout_crossed_crash: u64,
    pub async_writes_lost: u64,
}

#[derive(Debug, Default)]
pub struct Checker {
    pub violations: Vec<String>,
    pub checks: u64,
    pub sometimes: Sometimes,
    /// Highest timeline seen per cluster.
    timelines: BTreeMap<String, u32>,
    passwords: BTreeMap<String, String>,
    /// Secrets whose password may change (rotation requested by the scenario).
    pub rotation_allowed: BTreeSet<String>,
    /// PVCs a fault destroyed (their loss is not the operator's doing).
    pub pvcs_lost_by_fault: BTreeSet<String>,
    pvcs: BTreeMap<String, bool>,
    /// Finalizers each cluster carried when its deletion was first seen (what it promised to
    /// clean up on the way out).
    pub deletion_finalizers: BTreeMap<String, Vec<String>>,
    /// Store revision of the last check of stored objects.
    checked_at: u64,
}

impl Checker {
    /// The user wrote or deleted this Secret: whatever password it holds next is theirs (or,
    /// when they deleted it or its password, the one the operator generates as asked: that is
    /// how Crunchy and Percona rotate a password), and the check starts over from it.
    pub fn user_touched_secret(&mut self, name: &str) {
        self.passwords.remove(name);
    }

    fn violate(&mut self, now: Millis, msg: String) {
        let line = format!("[{}] invariant violated: {msg}", fmt_offset(now));
        if !self.violations.contains(&line) {
            self.violations.push(line);
        }
    }

    /// Safety, after every step.
    pub fn check(&mut self, now: Millis, api: &dyn SimApi, patroni: &Patroni, namespace: &str) {
        self.checks += 1;
        // At most one primary accepting writes per cluster.
        let mut writable: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in patroni.writable() {
            writable
                .entry(m.cluster.as_str())
                .or_default()
                .push(m.pod.as_str());
        }
        for (c, pods) in writable {
            if pods.len() > 1 {
                self.violate(
                    now,
                    format!(
                        "cluster {c} has {} primaries accepting writes: {}",
                        pods.len(),
                        pods.join(", ")
                    ),
                );
            }
        }
        // Timelines only increase.
        for m in patroni.members.values() {
            if let Some(d) = patroni.data.get(&m.pvc)
                && m.running()
            {
                if !self.timelines.contains_key(&m.cluster) {
                    self.timelines.insert(m.cluster.clone(), 0);
                }
                let max = self.timelines.get_mut(&m.cluster).expect("inserted");
                if m.role == crate::models::patroni::Role::Primary && d.timeline < *max {
                    let msg = format!(
                        "primary {} runs on timeline {} after timeline {} existed",
                        m.pod, d.timeline, *max
                    );
                    self.violate(now, msg);
                } else if d.timeline > *max {
                    *max = d.timeline;
                }
            }
        }
        // The rest reads only the store: nothing new to check if it did not move.
        let rev = api.revision();
        if rev == self.checked_at {
            return;
        }
        self.checked_at = rev;
        let clusters: BTreeMap<String, &Value> = api
            .list_ref(labels::CR_API, labels::CR_KIND, Some(namespace))
            .into_iter()
            .map(|c| (c["metadata"]["name"].as_str().unwrap_or("").to_string(), c))
            .collect();
        for (name, c) in &clusters {
            if c["metadata"].get("deletionTimestamp").is_some() {
                self.deletion_finalizers
                    .entry(name.clone())
                    .or_insert_with(|| {
                        c["metadata"]["finalizers"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f.as_str().map(str::to_string))
                            .collect()
                    });
            }
        }
        // Passwords never change unless asked.
        for s in api.list_ref("v1", "Secret", Some(namespace)) {
            if s["metadata"]["labels"][labels::ROLE] != "pguser"
                && !s["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .contains("-pguser-")
            {
                continue;
            }
            let name = s["metadata"]["name"].as_str().unwrap_or("").to_string();
            let pw = s["data"]["password"]
                .as_str()
                .or(s["stringData"]["password"].as_str())
                .unwrap_or("")
                .to_string();
            if pw.is_empty() {
                continue;
            }
            match self.passwords.get(&name) {
                Some(old) if *old != pw && !self.rotation_allowed.contains(&name) => {
                    self.violate(
                        now,
                        format!("password in Secret {name} changed without a rotation request"),
                    );
                    self.passwords.insert(name, pw);
                }
                _ => {
                    self.passwords.insert(name, pw);
                }
            }
        }
        // No PVC deleted without delete-pvc.
        let pvcs: BTreeMap<String, &Value> = api
            .list_ref("v1", "PersistentVolumeClaim", Some(namespace))
            .into_iter()
            .map(|p| (p["metadata"]["name"].as_str().unwrap_or("").to_string(), p))
            .collect();
        for (name, p) in &pvcs {
            let cluster = p["metadata"]["labels"][labels::CLUSTER]
                .as_str()
                .unwrap_or("")
                .to_string();
            let allowed = clusters.get(&cluster).is_some_and(|c| {
                c["metadata"].get("deletionTimestamp").is_some()
                    && c["metadata"]["finalizers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f == labels::DELETE_PVC)
            });
            // A claim deleted while allowed may stay Terminating (pvc-protection) after its
            // cluster is gone: the permission it was deleted under stays with it.
            let was_allowed = p["metadata"].get("deletionTimestamp").is_some()
                && self.pvcs.get(name).copied().unwrap_or(false);
            self.pvcs.insert(name.clone(), allowed || was_allowed);
        }
        let gone: Vec<(String, bool)> = self
            .pvcs
            .iter()
            .filter(|(n, _)| !pvcs.contains_key(*n))
            .map(|(n, a)| (n.clone(), *a))
            .collect();
        for (name, allowed) in gone {
            self.pvcs.remove(&name);
            if !allowed && !self.pvcs_lost_by_fault.contains(&name) {
                self.violate(
                    now,
                    format!(
                        "PVC {name} was deleted without the {} finalizer",
                        labels::DELETE_PVC
                    ),
                );
            }
        }
    }

    /// A promotion happened: measure lost acknowledged writes.
    pub fn on_promotion(
        &mut self,
        now: Millis,
        pod: &str,
        lost: usize,
        settings: &Settings,
        workload_present: bool,
    ) {
        if !workload_present || lost == 0 {
            return;
        }
        if settings.synchronous_mode {
            self.violate(now, format!("{lost} acknowledged write(s) missing on {pod} after its promotion in synchronous mode"));
        } else {
            self.sometimes.async_writes_lost += lost as u64;
        }
    }

    pub fn operator_panicked(&mut self, now: Millis, msg: &str) {
        self.violate(now, format!("the operator panicked: {msg}"));
    }

    /// After a cluster is gone: nothing it owned may remain. That is, no object whose owners
    /// are all gone (the garbage collector removes those, so one left over is a leak: it
    /// catches a Pod of a deleted StatefulSet as well as a Service of the cluster), and, when
    /// the cluster was deleted with `percona.com/delete-pvc`, none of its PVCs and user or
    /// replication Secrets (they carry no ownerReference; the finalizer is their only way out).
    pub fn check_orphans(&mut self, now: Millis, api: &dyn SimApi, cluster: &str) {
        let all = api.all();
        let uids: BTreeSet<&str> = all
            .iter()
            .filter_map(|o| o["metadata"]["uid"].as_str())
            .collect();
        let delete_pvc = self
            .deletion_finalizers
            .get(cluster)
            .is_some_and(|f| f.iter().any(|f| f == labels::DELETE_PVC));
        let what = |o: &Value| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            )
        };
        for o in &all {
            let refs: Vec<&Value> = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            if !refs.is_empty()
                && refs
                    .iter()
                    .all(|r| !uids.contains(r["uid"].as_str().unwrap_or("")))
            {
                let owner = refs[0];
                let msg = format!(
                    "{} outlived its owner {}/{}{}",
                    what(o),
                    owner["kind"].as_str().unwrap_or(""),
                    owner["name"].as_str().unwrap_or(""),
                    if o["metadata"].get("deletionTimestamp").is_some() {
                        " (still terminating)"
                    } else {
                        ""
                    }
                );
                self.violate(now, msg);
                continue;
            }
            if !delete_pvc || o["metadata"]["labels"][labels::CLUSTER] != cluster {
                continue;
            }
            let kind = o["kind"].as_str().unwrap_or("");
            let role = o["metadata"]["labels"][labels::ROLE].as_str().unwrap_or("");
            if kind == "PersistentVolumeClaim"
                || (kind == "Secret" && matches!(role, "pguser" | "replication" | "pgbouncer"))
            {
                let msg = format!(
                    "{} outlived PerconaPGCluster {cluster}, deleted with the {} finalizer",
                    what(o),
                    labels::DELETE_PVC
                );
                self.violate(now, msg);
            }
        }
    }

    pub fn failures(&self) -> Vec<String> {
        self.violations.clone()
    }

    pub fn note_workload(&mut self, _w: &Workload) {}
}
