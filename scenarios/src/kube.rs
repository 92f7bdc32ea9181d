//! The world's Kubernetes: the fake API server's built-in controllers
//! (`tusk_fake_apiserver::controllers::Controllers`: node heartbeats and lifecycle,
//! Deployment → ReplicaSet, StatefulSet, Job, volumes, scheduler, kubelet), stepped at
//! simulated time against the world's store, with the behaviour models as the kubelet's
//! [`PodBehaviour`] — the same controllers `tusk up` runs.
//!
//! What the world adds around them:
//! - fault state it needs to consult quickly (nodes down, Jobs killed, object store down, pods
//!   held down after a kill); node and container faults themselves go through the
//!   controllers' own hooks (`controllers::faults`), so they are recorded in the store;
//! - Job outcomes: pgBackRest decides its Jobs (models/pgbackrest.rs), a killed Job or an
//!   unreachable object store fails them, any other Job completes after `job_duration`; the
//!   Job controller then stops the Job's pods;
//! - the garbage collector ([`crate::store::SimStore`] has none).
//!
//! Everything random comes from the seed the world draws from its RNG (pod name suffixes of
//! Jobs and ReplicaSets); time is the store's clock. The world stays event-driven: a pass runs
//! only when a kind the controllers read moved, a model's readiness changed, or a controller
//! deadline ([`Controllers::next_wakeup`]) is due.

use crate::clock::{Millis, SECOND, from_timestamp, parse_rfc3339, rfc3339, to_timestamp};
use crate::labels;
use crate::models::patroni::Patroni;
use crate::store::{SimApi, SimStore};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use tusk_fake_apiserver::Objects;
use tusk_fake_apiserver::controllers::{
    ControllerConfig, Controllers, Nodes, PodBehaviour, faults,
};

pub const NODE_PREFIX: &str = "node-";

/// The kinds the controllers read: a pass with none of them moved (and no readiness change,
/// no deadline due) would write nothing.
const WATCHED: [(&str, &str); 10] = [
    ("v1", "Pod"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "PersistentVolume"),
    ("v1", "Node"),
    ("v1", "Namespace"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ControllerRevision"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
];

/// What a controller pass depends on besides time: the watched kinds' revisions and, per
/// database pod, what the kubelet would ask the models (ready, stopped).
type Inputs = ([u64; WATCHED.len()], Vec<(bool, bool)>);

/// The built-in controllers, the simulated nodes and the world's fault state.
pub struct Kube {
    pub controllers: Controllers,
    pub namespace: String,
    /// How long a Job runs (pgBackRest's and any other).
    pub job_duration: Millis,
    /// Nodes whose kubelet is gone, with the time they went down.
    pub down_nodes: BTreeMap<String, Millis>,
    /// Nodes whose kubelet cannot reach the API server (their containers keep running).
    lost_kubelets: BTreeSet<String>,
    /// Jobs killed by a fault (by name).
    pub killed_jobs: BTreeSet<String>,
    /// When true, backup Jobs fail (object storage unavailable).
    pub object_store_down: bool,
    /// Pods (by name) whose containers cannot start before the given time.
    pub start_blocked: BTreeMap<String, Millis>,
    wakeups: Vec<Millis>,
    /// What the last pass saw: the watched kinds' revisions and the models' readiness.
    seen: Option<Inputs>,
    /// Controller passes run (for benchmarks and tests).
    pub passes: u64,
}

/// The kubelet's view of the models: a database container is ready when its Patroni says so,
/// stops when Patroni has shut PostgreSQL down (or at the end of the grace period), and never
/// exits on its own (crashes are faults). Job containers run until their Job is decided.
struct Models<'a> {
    patroni: &'a Patroni,
    start_blocked: &'a BTreeMap<String, Millis>,
}

fn is_database(pod: &Value) -> bool {
    pod["metadata"]["labels"][labels::DATA] == "postgres"
}

impl PodBehaviour for Models<'_> {
    fn ready(&mut self, pod: &Value, container: &str, _now: Timestamp) -> bool {
        if !is_database(pod) || container != first_container(pod) {
            return true;
        }
        self.patroni.ready(pod).unwrap_or(false)
    }

    fn exit(&mut self, _pod: &Value, _container: &str, _now: Timestamp) -> Option<i32> {
        None
    }

    fn stop_delay(&self, pod: &Value) -> Option<i64> {
        // Containers that never started, and processes that finished their shutdown, stop
        // at once; otherwise the kubelet waits out the grace period.
        if pod["status"]["startTime"].is_null() || self.patroni.stopped(pod) {
            Some(0)
        } else {
            Some(i64::MAX / 4)
        }
    }

    fn hold_until(&self, pod: &Value) -> Option<Timestamp> {
        let name = pod["metadata"]["name"].as_str()?;
        self.start_blocked.get(name).map(|t| to_timestamp(*t))
    }
}

fn first_container(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["name"].as_str().unwrap_or("")
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// A short stable hash (FNV-1a of the JSON text).
pub fn hash_hex(v: &Value) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in serde_json::to_string(v).unwrap_or_default().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

impl Kube {
    /// `seed` seeds the controllers' name suffixes; the world draws it from its RNG.
    pub fn new(namespace: &str, seed: u64) -> Self {
        let config = ControllerConfig {
            seed,
            // Image pull and init containers.
            pod_start_delay: 3,
            // Network volumes: a claim is bound at once and usable from any node.
            local_volumes: false,
            ..ControllerConfig::default()
        };
        Self {
            controllers: Controllers::new(config),
            namespace: namespace.to_string(),
            job_duration: 30 * SECOND,
            down_nodes: BTreeMap::new(),
            lost_kubelets: BTreeSet::new(),
            killed_jobs: BTreeSet::new(),
            object_store_down: false,
            start_blocked: BTreeMap::new(),
            wakeups: Vec::new(),
            seen: None,
            passes: 0,
        }
    }

    /// Creates the namespace and `n` Ready nodes named `node-1`..`node-n`.
    pub fn install(&mut self, api: &mut SimStore, n: usize) {
        let _ = api.create(
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": self.namespace}}),
        );
        let _ = Nodes::create(api, n);
    }

    /// The earliest future time at which this component has something to do.
    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        let controllers = self.controllers.next_wakeup().map(from_timestamp);
        self.wakeups
            .iter()
            .copied()
            .chain(controllers)
            .filter(|t| *t > now)
            .min()
    }

    /// Crash the database container of a pod (exit 137): the kubelet restarts it per its
    /// crash-loop back-off. Only a running container can crash.
    pub fn crash_container(&mut self, api: &mut SimStore, pod: &str) -> Result<(), String> {
        let ns = self.namespace.clone();
        let p = api
            .get_ref("v1", "Pod", Some(&ns), pod)
            .ok_or("it does not exist")?;
        let container = first_container(p).to_string();
        if !container_running(p) {
            return Err("its database container is not running (starting or in back-off)".into());
        }
        faults::crash_container(api, &ns, pod, &container, 137).map_err(|e| e.to_string())
    }

    /// Whether the pod's database container runs: its node is up and the kubelet reports the
    /// container running.
    pub fn container_up(&self, pod: &Value) -> bool {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        !node.is_empty()
            && !self.node_down(node)
            && pod["status"]["podIP"].is_string()
            && container_running(pod)
    }

    pub fn restarts(pod: &Value) -> i64 {
        pod["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
    }

    pub fn node_down(&self, node: &str) -> bool {
        self.down_nodes.contains_key(node)
    }

    /// The node's kubelet stops (no heartbeats, no pod updates). A pass runs first, so the
    /// node's last heartbeat is the one a live kubelet would have posted by now.
    pub fn take_node_down(
        &mut self,
        api: &mut SimStore,
        node: &str,
        now: Millis,
        patroni: &Patroni,
    ) -> Result<(), String> {
        self.pass(api, patroni);
        faults::node_down(api, node).map_err(|e| e.to_string())?;
        self.lost_kubelets.remove(node);
        self.down_nodes.insert(node.to_string(), now);
        Ok(())
    }

    /// The node is back: heartbeats resume, taints are lifted.
    pub fn bring_node_up(&mut self, api: &mut SimStore, node: &str) {
        self.down_nodes.remove(node);
        self.lost_kubelets.remove(node);
        let _ = faults::node_up(api, node);
    }

    /// Whether the node's kubelet cannot reach the API server while its containers run on.
    pub fn kubelet_lost(&self, node: &str) -> bool {
        self.lost_kubelets.contains(node)
    }

    /// Whether a pod's containers have been told to stop: it is being deleted and its
    /// kubelet, the only one who tells them, can reach the API server.
    pub fn told_to_stop(&self, pod: &Value) -> bool {
        pod["metadata"].get("deletionTimestamp").is_some()
            && !self.kubelet_lost(pod["spec"]["nodeName"].as_str().unwrap_or(""))
    }

    /// The node's kubelet loses the API server: no heartbeats, no pod status, no deletions
    /// confirmed, but the containers keep running. A pass runs first, as for a node going down.
    pub fn lose_kubelet(
        &mut self,
        api: &mut SimStore,
        node: &str,
        patroni: &Patroni,
    ) -> Result<(), String> {
        if self.node_down(node) || self.kubelet_lost(node) {
            return Err("already cut off from the API server".into());
        }
        self.pass(api, patroni);
        faults::node_down(api, node).map_err(|e| e.to_string())?;
        self.lost_kubelets.insert(node.to_string());
        Ok(())
    }

    /// The kubelet reaches the API server again. It finds its pods that were deleted in the
    /// meantime (evicted by the taint manager) and stops their containers before confirming:
    /// their processes get SIGTERM now, as a kubelet gives it.
    pub fn restore_kubelet(&mut self, api: &mut SimStore, node: &str, patroni: &mut Patroni) {
        if !self.lost_kubelets.remove(node) {
            return;
        }
        for pod in api.list_ref("v1", "Pod", Some(&self.namespace)) {
            if pod["spec"]["nodeName"] == node && pod["metadata"].get("deletionTimestamp").is_some()
            {
                patroni.sigterm(pod["metadata"]["uid"].as_str().unwrap_or(""));
            }
        }
        let _ = faults::node_up(api, node);
    }

    /// One step: Job outcomes, a controller pass when anything it reads moved, the garbage
    /// collector.
    pub fn step(&mut self, api: &mut SimStore, now: Millis, patroni: &Patroni) {
        self.wakeups.retain(|t| *t > now);
        api.set_now(now);
        self.jobs(api, now);
        let seen = (
            Self::kinds_seen(api),
            Self::readiness(api, patroni, &self.namespace),
        );
        let due = self
            .controllers
            .next_wakeup()
            .is_some_and(|t| from_timestamp(t) <= now);
        if due || self.seen.as_ref() != Some(&seen) {
            self.seen = Some(seen);
            self.pass(api, patroni);
        }
        self.garbage_collect(api);
    }

    fn pass(&mut self, api: &mut SimStore, patroni: &Patroni) {
        self.passes += 1;
        let mut models = Models {
            patroni,
            start_blocked: &self.start_blocked,
        };
        let r = self.controllers.step_with(api, &mut models);
        if std::env::var_os("TUSK_KUBE_TRACE").is_some() {
            let now = api.now();
            for l in r.lines() {
                eprintln!("{now} {l}");
            }
            for (a, e) in &r.errors {
                eprintln!("{now} ERR {a}: {e}");
            }
        }
    }

    fn kinds_seen(api: &SimStore) -> [u64; WATCHED.len()] {
        WATCHED.map(|(av, k)| api.kind_revision(av, k))
    }

    /// Per database pod: what the kubelet would ask the models (ready, stopped).
    fn readiness(api: &SimStore, patroni: &Patroni, ns: &str) -> Vec<(bool, bool)> {
        api.list_ref("v1", "Pod", Some(ns))
            .into_iter()
            .filter(|p| is_database(p))
            .map(|p| (patroni.ready(p).unwrap_or(false), patroni.stopped(p)))
            .collect()
    }

    /// Job outcomes the models do not decide: a killed Job or an unreachable object store
    /// fails it; otherwise it completes after `job_duration` (pgBackRest, which steps before,
    /// finishes its own Jobs by then).
    fn jobs(&mut self, api: &mut SimStore, now: Millis) {
        let mut writes = Vec::new();
        for j in api.list_ref("batch/v1", "Job", Some(&self.namespace)) {
            if j["status"]["succeeded"].as_i64().unwrap_or(0) > 0
                || j["status"]["failed"].as_i64().unwrap_or(0) > 0
                || j["metadata"].get("deletionTimestamp").is_some()
                || finished(j)
            {
                continue;
            }
            let start = parse_rfc3339(j["metadata"]["creationTimestamp"].as_str().unwrap_or(""))
                .unwrap_or(now);
            let mut new = status_only(j);
            let jname = name(j);
            if self.killed_jobs.contains(jname) || self.object_store_down {
                let reason = if self.object_store_down {
                    "object storage unavailable: the repository could not be reached"
                } else {
                    "the backup pod was killed"
                };
                new["status"] = json!({"startTime": rfc3339(start), "failed": 1, "active": 0,
                    "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": reason, "lastTransitionTime": rfc3339(now)}]});
            } else if now >= start + self.job_duration {
                new["status"] = json!({"startTime": rfc3339(start), "succeeded": 1, "active": 0,
                    "completionTime": rfc3339(now),
                    "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": rfc3339(now)}]});
            } else {
                self.wakeups.push(start + self.job_duration);
                continue;
            }
            writes.push(new);
        }
        for w in writes {
            let _ = api.update_status(w);
        }
    }

    /// Deletes every object whose owners are all gone (background propagation).
    fn garbage_collect(&mut self, api: &mut SimStore) {
        // A pass finds orphans only after a removal or an owner change: skip the others.
        if !api.take_orphans_possible() {
            return;
        }
        let all = api.all_ref();
        let uids: BTreeSet<&str> = all.iter().map(|o| uid(o)).collect();
        let mut doomed = Vec::new();
        for o in all {
            let Some(refs) = o["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty()
                || refs
                    .iter()
                    .any(|r| uids.contains(r["uid"].as_str().unwrap_or("")))
                || o["metadata"].get("deletionTimestamp").is_some()
            {
                continue;
            }
            doomed.push((
                o["apiVersion"].as_str().unwrap_or("").to_string(),
                o["kind"].as_str().unwrap_or("").to_string(),
                o["metadata"]["namespace"].as_str().map(str::to_string),
                name(o).to_string(),
                uid(o).to_string(),
            ));
        }
        for (av, kind, ns, n, u) in doomed {
            let _ = api.delete(&av, &kind, ns.as_deref(), &n, Some(&u), None);
        }
    }
}

fn finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

fn container_running(pod: &Value) -> bool {
    pod["status"]["containerStatuses"][0]["state"]["running"].is_object()
}

/// The pod's Ready condition.
pub fn pod_ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// An object's identity and status only: all `update_status` reads (the stored object keeps
/// everything else).
fn status_only(o: &Value) -> Value {
    json!({"apiVersion": o["apiVersion"], "kind": o["kind"],
        "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"],
                     "resourceVersion": ""},
        "status": o["status"]})
}
