//! A small stand-in for the API server and the Job controller, just enough to drive
//! `tusk_core::backup` through its state machines: applies plans to an `Observed`
//! (PerconaPGBackup/Restore, Jobs, Endpoints), and lets a test move Jobs along.
#![allow(dead_code)]

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tusk_core::api::{PerconaPGBackup, PerconaPGCluster, PerconaPGRestore};
use tusk_core::backup;
use tusk_core::{Action, Env, Observed, Plan};

pub const T0: i64 = 1_800_000_000; // 2027-01-15T08:00:00Z

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// A ready cluster with a volume repo (hourly full schedule) and an S3 repo.
pub fn cluster_yaml() -> &'static str {
    r#"
apiVersion: pgv2.percona.com/v2
kind: PerconaPGCluster
metadata:
  name: c1
  namespace: pg
  uid: cluster-uid
  creationTimestamp: "2027-01-15T08:00:00Z"
spec:
  crVersion: 2.9.0
  postgresVersion: 17
  instances:
    - name: instance1
      replicas: 2
      dataVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
  backups:
    pgbackrest:
      image: docker.io/percona/percona-pgbackrest:2.58.0-1
      global:
        repo1-retention-full: "2"
        repo2-path: /tusk/c1
      repos:
        - name: repo1
          schedules:
            full: "0 * * * *"
          volume:
            volumeClaimSpec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 1Gi}}
        - name: repo2
          s3:
            bucket: tusk-backups
            endpoint: s3.eu-west-1.amazonaws.com
            region: eu-west-1
status:
  state: ready
"#
}

pub fn cluster() -> PerconaPGCluster {
    serde_yaml::from_str(cluster_yaml()).unwrap()
}

pub struct World {
    pub obs: Observed,
    pub now: i64,
    pub seq: u64,
    /// Every Job name ever created (to count them).
    pub jobs_created: Vec<String>,
    pub events: Vec<(String, String)>,
    /// What `pgbackrest info --output=json` prints when a plan asks for it.
    pub repo_info: Value,
    /// Every `(pod, container, command)` a RefreshBackupInfo ran.
    pub info_reads: Vec<(String, String, Vec<String>)>,
}

fn meta_of(v: &Value) -> ObjectMeta {
    serde_json::from_value(v.get("metadata").cloned().unwrap_or(json!({}))).unwrap()
}

impl World {
    pub fn new(cr: PerconaPGCluster) -> Self {
        Self {
            obs: Observed::new(cr),
            now: T0 + 60,
            seq: 0,
            jobs_created: vec![],
            events: vec![],
            repo_info: json!([]),
            info_reads: vec![],
        }
    }

    pub fn env(&self) -> Env {
        Env::from_seed(ts(self.now), 1)
    }

    pub fn plan(&self) -> Plan {
        let mut p = Plan::new();
        backup::plan_backups(&self.obs, &self.env(), &mut p);
        p
    }

    fn next_uid(&mut self, kind: &str, name: &str) -> String {
        self.seq += 1;
        format!("uid-{}-{name}-{}", kind.to_lowercase(), self.seq)
    }

    fn stamp(&mut self, obj: &mut Value, kind: &str) {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        obj["metadata"]["uid"] = json!(self.next_uid(kind, &name));
        obj["metadata"]["creationTimestamp"] = json!(backup::rfc3339(ts(self.now)));
    }

    /// Merges tusk's metadata (finalizers as a set, annotations) into an existing object.
    fn merge_meta(meta: &mut ObjectMeta, applied: &Value) {
        if let Some(f) = applied
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
        {
            let list = meta.finalizers.get_or_insert_with(Vec::new);
            for x in f.iter().filter_map(Value::as_str) {
                if !list.iter().any(|y| y == x) {
                    list.push(x.to_string());
                }
            }
        }
        if let Some(a) = applied
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
        {
            let m = meta.annotations.get_or_insert_with(BTreeMap::new);
            // Server-side apply: tusk's own keys not sent any more go away.
            m.retain(|k, _| !k.starts_with("pgv2.percona.com/restore-") || a.contains_key(k));
            for (k, v) in a {
                m.insert(k.clone(), v.as_str().unwrap_or("").to_string());
            }
        }
    }

    pub fn apply(&mut self, plan: &Plan) {
        for a in plan.actions.clone() {
            self.apply_one(&a);
        }
        self.obs.normalize();
    }

    pub fn apply_one(&mut self, a: &Action) {
        match a {
            Action::Apply { object } => {
                let kind = object["kind"].as_str().unwrap_or("").to_string();
                // Server-side apply by one field manager drops what it stops sending: an
                // object tusk created must always be applied whole.
                let made_by_tusk = object.pointer("/metadata/ownerReferences").is_some()
                    || self.obs.backups.iter().chain([].iter()).any(|b| {
                        b.metadata.name.as_deref() == object["metadata"]["name"].as_str()
                            && b.metadata.labels.as_ref().is_some_and(|l| {
                                l.contains_key(tusk_core::backup::labels::SCHEDULE)
                            })
                    })
                    || self.obs.restores.iter().any(|r| {
                        r.metadata.name.as_deref() == object["metadata"]["name"].as_str()
                            && r.metadata.annotations.as_ref().is_some_and(|a| {
                                a.contains_key(
                                    tusk_core::backup::annotations::CLUSTER_BOOTSTRAP_RESTORE,
                                )
                            })
                    });
                if made_by_tusk && kind.starts_with("PerconaPG") {
                    assert!(
                        object.get("spec").is_some(),
                        "partial apply of a tusk-made object: {object}"
                    );
                }
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                match kind.as_str() {
                    "PerconaPGBackup" => {
                        if let Some(b) = self
                            .obs
                            .backups
                            .iter_mut()
                            .find(|b| b.metadata.name.as_deref() == Some(name.as_str()))
                        {
                            Self::merge_meta(&mut b.metadata, object);
                        } else {
                            let mut o = Value::clone(object);
                            self.stamp(&mut o, &kind);
                            self.obs.backups.push(serde_json::from_value(o).unwrap());
                        }
                    }
                    "PerconaPGRestore" => {
                        if let Some(r) = self
                            .obs
                            .restores
                            .iter_mut()
                            .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
                        {
                            Self::merge_meta(&mut r.metadata, object);
                        } else {
                            let mut o = Value::clone(object);
                            self.stamp(&mut o, &kind);
                            self.obs.restores.push(serde_json::from_value(o).unwrap());
                        }
                    }
                    "Job"
                        if !self
                            .obs
                            .jobs
                            .iter()
                            .any(|j| j.metadata.name.as_deref() == Some(name.as_str())) =>
                    {
                        let mut o = Value::clone(object);
                        self.stamp(&mut o, &kind);
                        self.obs.jobs.push(serde_json::from_value(o).unwrap());
                        self.jobs_created.push(name);
                    }
                    _ => {}
                }
            }
            Action::PatchStatus { target, status } => match target.kind.as_str() {
                "PerconaPGBackup" => {
                    if let Some(b) = self
                        .obs
                        .backups
                        .iter_mut()
                        .find(|b| b.metadata.name.as_deref() == Some(target.name.as_str()))
                    {
                        b.status = Some(serde_json::from_value(status.clone()).unwrap());
                    }
                }
                "PerconaPGRestore" => {
                    if let Some(r) = self
                        .obs
                        .restores
                        .iter_mut()
                        .find(|r| r.metadata.name.as_deref() == Some(target.name.as_str()))
                    {
                        r.status = Some(serde_json::from_value(status.clone()).unwrap());
                    }
                }
                _ => {}
            },
            Action::RemoveFinalizer { target, finalizer } => {
                let drop_if_done = |m: &mut ObjectMeta| {
                    if let Some(f) = m.finalizers.as_mut() {
                        f.retain(|x| x != finalizer);
                    }
                    m.deletion_timestamp.is_some()
                        && m.finalizers.as_ref().is_none_or(|f| f.is_empty())
                };
                match target.kind.as_str() {
                    "PerconaPGBackup" => {
                        let mut gone = false;
                        if let Some(b) = self
                            .obs
                            .backups
                            .iter_mut()
                            .find(|b| b.metadata.name.as_deref() == Some(target.name.as_str()))
                        {
                            gone = drop_if_done(&mut b.metadata);
                        }
                        if gone {
                            self.obs.backups.retain(|b| {
                                b.metadata.name.as_deref() != Some(target.name.as_str())
                            });
                        }
                    }
                    "PerconaPGRestore" => {
                        let mut gone = false;
                        if let Some(r) = self
                            .obs
                            .restores
                            .iter_mut()
                            .find(|r| r.metadata.name.as_deref() == Some(target.name.as_str()))
                        {
                            gone = drop_if_done(&mut r.metadata);
                        }
                        if gone {
                            self.obs.restores.retain(|r| {
                                r.metadata.name.as_deref() != Some(target.name.as_str())
                            });
                        }
                    }
                    "PerconaPGCluster" => {
                        drop_if_done(&mut self.obs.cluster.metadata);
                    }
                    _ => {}
                }
            }
            Action::Delete { target, uid } => {
                let name = target.name.as_str();
                let uid = Some(uid.as_str());
                match target.kind.as_str() {
                    "Job" => self.obs.jobs.retain(|j| {
                        !(j.metadata.name.as_deref() == Some(name)
                            && j.metadata.uid.as_deref() == uid)
                    }),
                    "Endpoints" => self.obs.endpoints.retain(|j| {
                        !(j.metadata.name.as_deref() == Some(name)
                            && j.metadata.uid.as_deref() == uid)
                    }),
                    "PerconaPGBackup" => self.delete_backup(name),
                    _ => {}
                }
            }
            Action::Event {
                reason, message, ..
            } => self.events.push((reason.clone(), message.clone())),
            Action::RefreshBackupInfo {
                pod,
                container,
                command,
                config_map,
            } => {
                self.info_reads
                    .push((pod.name.clone(), container.clone(), command.clone()));
                let mut cm = config_map.clone();
                cm["data"] = json!({"info.json": self.repo_info.to_string()});
                let name = cm["metadata"]["name"].as_str().unwrap_or("").to_string();
                self.obs
                    .config_maps
                    .retain(|c| c.metadata.name.as_deref() != Some(name.as_str()));
                self.obs
                    .config_maps
                    .push(serde_json::from_value(cm).unwrap());
            }
            _ => {}
        }
    }

    /// A user (or GC) deletes a backup: with finalizers it only gets a deletionTimestamp.
    pub fn delete_backup(&mut self, name: &str) {
        let now = ts(self.now);
        let mut gone = false;
        if let Some(b) = self
            .obs
            .backups
            .iter_mut()
            .find(|b| b.metadata.name.as_deref() == Some(name))
        {
            if b.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty())
            {
                b.metadata.deletion_timestamp.get_or_insert(Time(now));
            } else {
                gone = true;
            }
        }
        if gone {
            self.obs
                .backups
                .retain(|b| b.metadata.name.as_deref() != Some(name));
        }
    }

    pub fn delete_restore(&mut self, name: &str) {
        let now = ts(self.now);
        if let Some(r) = self
            .obs
            .restores
            .iter_mut()
            .find(|r| r.metadata.name.as_deref() == Some(name))
        {
            r.metadata.deletion_timestamp.get_or_insert(Time(now));
        }
    }

    /// Reconcile and apply until nothing but requeues is left (at most `n` rounds).
    pub fn settle(&mut self, n: usize) -> usize {
        for i in 0..n {
            let p = self.plan();
            if p.writes().next().is_none() {
                return i;
            }
            self.apply(&p);
        }
        n
    }

    pub fn backup(&self, name: &str) -> &PerconaPGBackup {
        self.obs
            .backups
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("backup {name}"))
    }

    pub fn restore(&self, name: &str) -> &PerconaPGRestore {
        self.obs
            .restores
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("restore {name}"))
    }

    pub fn state(&self, name: &str) -> Option<&'static str> {
        self.backup(name)
            .status
            .as_ref()
            .and_then(|s| s.state)
            .map(|s| s.as_str())
    }

    /// The `status.error` of a backup, which the test expects to be set.
    pub fn backup_error(&self, name: &str) -> String {
        self.backup(name)
            .status
            .as_ref()
            .and_then(|s| s.error.clone())
            .unwrap_or_else(|| panic!("backup {name} has no status.error"))
    }

    pub fn restore_state(&self, name: &str) -> Option<&'static str> {
        self.restore(name)
            .status
            .as_ref()
            .and_then(|s| s.state)
            .map(|s| s.as_str())
    }

    /// A user creates a PerconaPGBackup.
    pub fn add_backup(&mut self, name: &str, repo: &str, options: &[&str]) {
        let mut o = json!({
            "apiVersion": "pgv2.percona.com/v2",
            "kind": "PerconaPGBackup",
            "metadata": {"name": name, "namespace": "pg"},
            "spec": {"pgCluster": "c1", "repoName": repo, "options": options},
        });
        self.stamp(&mut o, "PerconaPGBackup");
        self.obs.backups.push(serde_json::from_value(o).unwrap());
        self.obs.normalize();
    }

    pub fn add_restore(&mut self, name: &str, repo: &str, options: &[&str]) {
        let mut o = json!({
            "apiVersion": "pgv2.percona.com/v2",
            "kind": "PerconaPGRestore",
            "metadata": {"name": name, "namespace": "pg"},
            "spec": {"pgCluster": "c1", "repoName": repo, "options": options},
        });
        self.stamp(&mut o, "PerconaPGRestore");
        self.obs.restores.push(serde_json::from_value(o).unwrap());
        self.obs.normalize();
    }

    pub fn job_mut(&mut self, name: &str) -> &mut Job {
        self.obs
            .jobs
            .iter_mut()
            .find(|j| j.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("job {name}"))
    }

    pub fn job_start(&mut self, name: &str) {
        let now = ts(self.now);
        let j = self.job_mut(name);
        j.status = Some(JobStatus {
            active: Some(1),
            start_time: Some(Time(now)),
            ..Default::default()
        });
    }

    fn job_finish(&mut self, name: &str, type_: &str, reason: &str) {
        let now = ts(self.now);
        let j = self.job_mut(name);
        let mut st = j.status.clone().unwrap_or_default();
        st.active = Some(0);
        st.start_time.get_or_insert(Time(now));
        if type_ == "Complete" {
            st.succeeded = Some(1);
            st.completion_time = Some(Time(now));
        } else {
            st.failed = Some(1);
        }
        st.conditions = Some(vec![JobCondition {
            type_: type_.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(format!("{reason} in test")),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        }]);
        j.status = Some(st);
    }

    pub fn job_complete(&mut self, name: &str) {
        self.job_finish(name, "Complete", "Completed");
    }

    pub fn job_fail(&mut self, name: &str, reason: &str) {
        self.job_finish(name, "Failed", reason);
    }

    pub fn job_name_of(&self, backup: &str) -> String {
        self.backup(backup)
            .status
            .as_ref()
            .and_then(|s| s.job_name.clone())
            .expect("jobName")
    }

    /// Instance StatefulSets, their PVCs, and running pods (the first is the primary).
    pub fn add_instances(&mut self, names: &[&str]) {
        for (i, n) in names.iter().enumerate() {
            let labels = json!({
                "postgres-operator.crunchydata.com/cluster": "c1",
                "postgres-operator.crunchydata.com/instance": n,
                "postgres-operator.crunchydata.com/instance-set": "instance1",
            });
            self.obs.stateful_sets.push(serde_json::from_value(json!({
                "metadata": {"name": n, "namespace": "pg", "uid": format!("uid-sts-{n}"), "labels": labels},
            })).unwrap());
            self.obs.pvcs.push(serde_json::from_value(json!({
                "metadata": {"name": format!("{n}-pgdata"), "namespace": "pg", "uid": format!("uid-pvc-{n}")},
            })).unwrap());
            let mut pl = labels.clone();
            pl["postgres-operator.crunchydata.com/role"] =
                json!(if i == 0 { "primary" } else { "replica" });
            self.obs.pods.push(serde_json::from_value(json!({
                "metadata": {"name": format!("{n}-0"), "namespace": "pg", "uid": format!("uid-pod-{n}"), "labels": pl},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            })).unwrap());
        }
        for e in ["c1-ha", "c1-ha-config"] {
            let ep: Endpoints = serde_json::from_value(json!({
                "metadata": {"name": e, "namespace": "pg", "uid": format!("uid-ep-{e}"),
                             "annotations": {"leader": format!("{}-0", names[0])}},
            }))
            .unwrap();
            self.obs.endpoints.push(ep);
        }
        self.obs.normalize();
    }

    /// The lifecycle obeying the restore gate: instance pods go away.
    pub fn stop_instance_pods(&mut self) {
        self.obs.pods.retain(|p: &Pod| {
            p.metadata
                .labels
                .as_ref()
                .is_none_or(|l| !l.contains_key("postgres-operator.crunchydata.com/instance"))
        });
    }

    pub fn meta(&self, v: &Value) -> ObjectMeta {
        meta_of(v)
    }
}

/// The Jobs a plan applies, by name.
pub fn applied_jobs(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { object } if object["kind"] == "Job" => {
                object["metadata"]["name"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .collect()
}

pub fn applied(plan: &Plan, kind: &str) -> Vec<Value> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { object } if object["kind"] == kind => Some(Value::clone(object)),
            _ => None,
        })
        .collect()
}

pub fn deleted(plan: &Plan, kind: &str) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { target, .. } if target.kind == kind => Some(target.name.clone()),
            _ => None,
        })
        .collect()
}

pub fn condition_reason(b: &PerconaPGBackup) -> Option<String> {
    b.status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == backup::backups::CONDITION)
        })
        .map(|c| c.reason.clone())
}
