//! Built-in Kubernetes behaviour the world needs: nodes, the scheduler, a kubelet whose pod
//! readiness is decided by the behaviour models, StatefulSets (one pod and its PVCs per ordinal,
//! OnDelete), Deployments and Jobs (status only), PVC binding and the garbage collector.
//!
//! This is the world's own small stand-in, deterministic and event-driven (see [`Kube::next_wakeup`]);
//! it talks to the store only through [`SimApi`].

use crate::clock::{MINUTE, Millis, SECOND, parse_rfc3339, rfc3339};
use crate::labels;
use crate::store::SimApi;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What the models tell the kubelet about a pod's main container.
pub trait PodBehaviour {
    /// Readiness of a running pod; `None` for pods no model manages (ready once running).
    fn ready(&self, pod: &Value) -> Option<bool>;
    /// Whether the containers of a terminating pod have exited (graceful shutdown done).
    fn stopped(&self, pod: &Value) -> bool;
}

/// Pods whose behaviour nobody models: ready once running, stop at once.
pub struct NoBehaviour;
impl PodBehaviour for NoBehaviour {
    fn ready(&self, _: &Value) -> Option<bool> {
        None
    }
    fn stopped(&self, _: &Value) -> bool {
        true
    }
}

#[derive(Debug, Clone)]
struct KubeletPod {
    started_at: Option<Millis>,
    restarts: i64,
    /// The container is down until this time (crash loop back-off).
    down_until: Option<Millis>,
    /// Crashes counted for the back-off (reset after ten minutes up, as the kubelet does).
    backoff_crashes: u32,
    /// When the container last came up (or will, after a back-off).
    up_since: Millis,
}

/// Tunables, in simulated milliseconds.
#[derive(Debug, Clone)]
pub struct KubeTiming {
    /// From binding to containers running (image pull, init containers).
    pub pod_start: Millis,
    /// node-monitor-grace-period: a silent node turns NotReady after this.
    pub node_grace: Millis,
    /// How long a backup Job runs.
    pub job_duration: Millis,
}

impl Default for KubeTiming {
    fn default() -> Self {
        Self {
            pod_start: 3 * SECOND,
            node_grace: 40 * SECOND,
            job_duration: 30 * SECOND,
        }
    }
}

/// The built-in controllers and the simulated nodes.
#[derive(Debug)]
pub struct Kube {
    pub timing: KubeTiming,
    pub namespace: String,
    pods: BTreeMap<String, KubeletPod>,
    /// Nodes whose kubelet is gone, with the time they went down.
    pub down_nodes: BTreeMap<String, Millis>,
    /// Jobs killed by a fault (by name).
    pub killed_jobs: BTreeSet<String>,
    /// When true, backup Jobs fail (object storage unavailable).
    pub object_store_down: bool,
    /// Pods (by name) whose containers cannot start before the given time.
    pub start_blocked: BTreeMap<String, Millis>,
    next_ip: u32,
    wakeups: Vec<Millis>,
    last_rev_gc: u64,
    /// Revisions of the kinds each state-driven controller read when it last ran: it runs again
    /// only when one of them moved (its result is a function of those objects alone).
    seen_sts: [u64; 3],
    seen_deploy: u64,
    seen_pvc: (u64, u64),
    /// The controller revision of each StatefulSet's template, by (uid, generation).
    sts_revision: BTreeMap<(String, i64), String>,
    /// Per pod uid: the inputs of the kubelet's last pass over it when that pass wrote nothing
    /// Same inputs, same (empty) result.
    kubelet_quiet: BTreeMap<String, KubeletInputs>,
}

/// What the kubelet's pass over a pod depends on: resourceVersion, container up, started by
/// now, the model's readiness, restarts, start time.
type KubeletInputs = (String, bool, bool, Option<bool>, i64, Millis);

/// A write a controller decided on while reading borrowed objects; applied in order afterwards
/// (every controller read its inputs before writing, so deferring changes nothing).
enum Write {
    Create(Value),
    Update(Value),
    UpdateStatus(Value),
    Delete {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        uid: String,
        grace: Option<i64>,
    },
}

fn apply_writes(api: &mut dyn SimApi, writes: Vec<Write>) {
    for w in writes {
        let _ = match w {
            Write::Create(o) => api.create(o).map(|_| ()),
            Write::Update(o) => api.update(o).map(|_| ()),
            Write::UpdateStatus(o) => api.update_status(o).map(|_| ()),
            Write::Delete {
                api_version,
                kind,
                namespace,
                name,
                uid,
                grace,
            } => api.delete(
                &api_version,
                &kind,
                namespace.as_deref(),
                &name,
                Some(&uid),
                grace,
            ),
        };
    }
}

fn delete_pod(ns: &str, p: &Value, grace: Option<i64>) -> Write {
    Write::Delete {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: Some(ns.to_string()),
        name: name(p).to_string(),
        uid: uid(p).to_string(),
        grace,
    }
}

pub const NODE_PREFIX: &str = "node-";

/// The PVCs a pod mounts.
fn claim_names(pod: &Value) -> impl Iterator<Item = &str> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

fn owner_ref(o: &Value) -> Value {
    json!({
        "apiVersion": o["apiVersion"], "kind": o["kind"], "name": name(o), "uid": uid(o),
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// A short stable hash, for controller revisions.
pub fn hash_hex(v: &Value) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in serde_json::to_string(v).unwrap_or_default().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

impl Kube {
    pub fn new(namespace: &str) -> Self {
        Self {
            timing: KubeTiming::default(),
            namespace: namespace.to_string(),
            pods: BTreeMap::new(),
            down_nodes: BTreeMap::new(),
            killed_jobs: BTreeSet::new(),
            object_store_down: false,
            start_blocked: BTreeMap::new(),
            next_ip: 0,
            wakeups: Vec::new(),
            last_rev_gc: 0,
            seen_sts: [u64::MAX; 3],
            seen_deploy: u64::MAX,
            seen_pvc: (u64::MAX, u64::MAX),
            sts_revision: BTreeMap::new(),
            kubelet_quiet: BTreeMap::new(),
        }
    }

    /// Creates `n` Ready nodes named `node-1`..`node-n` and the namespace.
    pub fn install(&mut self, api: &mut dyn SimApi, n: usize) {
        let _ = api.create(
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": self.namespace}}),
        );
        for i in 1..=n {
            let _ = api.create(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": format!("{NODE_PREFIX}{i}"), "labels": {
                    "kubernetes.io/hostname": format!("{NODE_PREFIX}{i}"),
                    "topology.kubernetes.io/zone": format!("zone-{}", (i - 1) % 3 + 1)}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}],
                           "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}}
            }));
        }
    }

    /// The earliest future time at which this component has something to do.
    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        self.wakeups.iter().copied().filter(|t| *t > now).min()
    }

    /// Crash the database container of a pod: it restarts after a back-off.
    /// The back-off starts at 10 s and doubles per crash up to 5 minutes; a container that
    /// stayed up for 10 minutes starts again from 10 s. Only a running container can crash.
    pub fn crash_container(&mut self, pod_uid: &str, now: Millis) -> Result<(), String> {
        if !self.container_up(pod_uid, now) {
            return Err("its database container is not running (starting or in back-off)".into());
        }
        let Some(p) = self.pods.get_mut(pod_uid) else {
            return Err("the kubelet does not run it".into());
        };
        if now - p.up_since >= 10 * MINUTE {
            p.backoff_crashes = 0;
        }
        let backoff = ((10 * SECOND) << p.backoff_crashes.min(5)).min(300 * SECOND);
        p.backoff_crashes += 1;
        p.restarts += 1;
        p.down_until = Some(now + backoff);
        p.up_since = now + backoff;
        Ok(())
    }

    pub fn container_up(&self, pod_uid: &str, now: Millis) -> bool {
        self.pods.get(pod_uid).is_some_and(|p| {
            p.started_at.is_some_and(|s| s <= now) && p.down_until.is_none_or(|d| d <= now)
        })
    }

    pub fn restarts(&self, pod_uid: &str) -> i64 {
        self.pods.get(pod_uid).map_or(0, |p| p.restarts)
    }

    pub fn node_down(&self, node: &str) -> bool {
        self.down_nodes.contains_key(node)
    }

    /// One pass of every controller.
    pub fn step(&mut self, api: &mut dyn SimApi, now: Millis, behaviour: &dyn PodBehaviour) {
        self.wakeups.clear();
        api.set_now(now);
        self.nodes(api, now);
        self.statefulsets(api);
        self.deployments(api);
        self.jobs(api, now);
        self.pvcs(api);
        self.schedule(api);
        self.kubelet(api, now, behaviour);
        self.garbage_collect(api);
    }

    fn nodes(&mut self, api: &mut dyn SimApi, now: Millis) {
        let mut writes = Vec::new();
        for node in api.list_ref("v1", "Node", None) {
            let n = name(node).to_string();
            let want_ready = match self.down_nodes.get(&n) {
                Some(since) if now >= since + self.timing.node_grace => false,
                Some(since) => {
                    self.wakeups.push(since + self.timing.node_grace);
                    true
                }
                None => true,
            };
            let is_ready = node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if is_ready != want_ready {
                let mut new = status_only(node);
                new["status"]["conditions"] = json!([{"type": "Ready",
                    "status": if want_ready { "True" } else { "Unknown" },
                    "reason": if want_ready { "KubeletReady" } else { "NodeStatusUnknown" },
                    "lastTransitionTime": rfc3339(now)}]);
                new["metadata"]["resourceVersion"] = json!("");
                writes.push(Write::UpdateStatus(new));
            }
        }
        apply_writes(api, writes);
    }

    fn statefulsets(&mut self, api: &mut dyn SimApi) {
        let seen = [
            api.kind_revision("v1", "Pod"),
            api.kind_revision("v1", "PersistentVolumeClaim"),
            api.kind_revision("apps/v1", "StatefulSet"),
        ];
        if seen == self.seen_sts {
            return;
        }
        self.seen_sts = seen;
        let ns = self.namespace.clone();
        let mut writes = Vec::new();
        let pods = api.list_ref("v1", "Pod", Some(&ns));
        let pvcs: BTreeSet<&str> = api
            .list_ref("v1", "PersistentVolumeClaim", Some(&ns))
            .into_iter()
            .map(name)
            .collect();
        let mut revisions = BTreeMap::new();
        for sts in api.list_ref("apps/v1", "StatefulSet", Some(&ns)) {
            if sts["metadata"].get("deletionTimestamp").is_some() {
                continue;
            }
            let sname = name(sts).to_string();
            let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
            let template = &sts["spec"]["template"];
            let key = (
                uid(sts).to_string(),
                sts["metadata"]["generation"].as_i64().unwrap_or(0),
            );
            let revision = match self.sts_revision.remove(&key) {
                Some(r) => r,
                None => format!("{sname}-{}", hash_hex(template)),
            };
            revisions.insert(key, revision.clone());
            let owned: Vec<&Value> = pods
                .iter()
                .copied()
                .filter(|p| {
                    p["metadata"]["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["uid"] == sts["metadata"]["uid"])
                })
                .collect();
            let mut ready = 0;
            let mut updated = 0;
            for ord in 0..replicas {
                let pname = format!("{sname}-{ord}");
                // PVCs first, so the pod finds its volumes.
                for t in sts["spec"]["volumeClaimTemplates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let claim = format!("{}-{pname}", name(t));
                    if !pvcs.contains(claim.as_str()) {
                        let mut labels = t["metadata"]["labels"].clone();
                        if !labels.is_object() {
                            labels = json!({});
                        }
                        for (k, v) in template["metadata"]["labels"]
                            .as_object()
                            .into_iter()
                            .flatten()
                        {
                            if k.starts_with("postgres-operator.crunchydata.com/cluster")
                                || k.ends_with("/instance-set")
                                || k.ends_with("/instance")
                            {
                                labels[k] = v.clone();
                            }
                        }
                        writes.push(Write::Create(json!({
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": claim, "namespace": ns, "labels": labels,
                                         "annotations": t["metadata"]["annotations"].clone()},
                            "spec": t["spec"].clone(),
                            "status": {"phase": "Pending"}
                        })));
                    }
                }
                match owned.iter().find(|p| name(p) == pname) {
                    Some(p) => {
                        if p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str()
                        {
                            updated += 1;
                        }
                        if pod_ready(p) {
                            ready += 1;
                        }
                    }
                    None => {
                        if pods.iter().any(|p| name(p) == pname) {
                            continue; // the old pod is still terminating
                        }
                        let mut pod = json!({
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {
                                "name": pname, "namespace": ns,
                                "labels": template["metadata"]["labels"].clone(),
                                "annotations": template["metadata"]["annotations"].clone(),
                                "ownerReferences": [owner_ref(sts)],
                            },
                            "spec": template["spec"].clone(),
                            "status": {"phase": "Pending"}
                        });
                        if !pod["metadata"]["labels"].is_object() {
                            pod["metadata"]["labels"] = json!({});
                        }
                        if pod["metadata"]["annotations"].is_null() {
                            pod["metadata"]
                                .as_object_mut()
                                .expect("map")
                                .remove("annotations");
                        }
                        pod["metadata"]["labels"]["controller-revision-hash"] = json!(revision);
                        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] =
                            json!(pname);
                        pod["spec"]["hostname"] = json!(pname);
                        if let Some(svc) = sts["spec"]["serviceName"].as_str() {
                            pod["spec"]["subdomain"] = json!(svc);
                        }
                        let mut volumes = pod["spec"]["volumes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        for t in sts["spec"]["volumeClaimTemplates"]
                            .as_array()
                            .into_iter()
                            .flatten()
                        {
                            let vname = name(t);
                            volumes.retain(|v| v["name"] != vname);
                            volumes.push(json!({"name": vname, "persistentVolumeClaim": {"claimName": format!("{vname}-{pname}")}}));
                        }
                        pod["spec"]["volumes"] = Value::Array(volumes);
                        writes.push(Write::Create(pod));
                    }
                }
            }
            // Scale down: highest ordinals first.
            for p in &owned {
                let ord: i64 = name(p)
                    .rsplit('-')
                    .next()
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0);
                if ord >= replicas && p["metadata"].get("deletionTimestamp").is_none() {
                    writes.push(delete_pod(&ns, p, None));
                }
            }
            let status = json!({
                "observedGeneration": sts["metadata"]["generation"],
                "replicas": owned.len().min(replicas as usize),
                "readyReplicas": ready, "availableReplicas": ready,
                "currentReplicas": updated, "updatedReplicas": updated,
                "currentRevision": revision, "updateRevision": revision,
                "collisionCount": 0,
            });
            if sts["status"] != status {
                let mut new = status_only(sts);
                new["status"] = status;
                new["metadata"]["resourceVersion"] = json!("");
                writes.push(Write::UpdateStatus(new));
            }
        }
        self.sts_revision = revisions;
        apply_writes(api, writes);
    }

    fn deployments(&mut self, api: &mut dyn SimApi) {
        let seen = api.kind_revision("apps/v1", "Deployment");
        if seen == self.seen_deploy {
            return;
        }
        self.seen_deploy = seen;
        let mut writes = Vec::new();
        // Deployments run stateless pods (pgBouncer) that no scenario inspects one by one:
        // their status is reported as if every replica came up.
        for d in api.list_ref("apps/v1", "Deployment", Some(&self.namespace)) {
            let r = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let status = json!({"observedGeneration": d["metadata"]["generation"], "replicas": r,
                "readyReplicas": r, "availableReplicas": r, "updatedReplicas": r});
            if d["status"] != status {
                let mut new = status_only(d);
                new["status"] = status;
                new["metadata"]["resourceVersion"] = json!("");
                writes.push(Write::UpdateStatus(new));
            }
        }
        apply_writes(api, writes);
    }

    fn jobs(&mut self, api: &mut dyn SimApi, now: Millis) {
        let mut writes = Vec::new();
        for j in api.list_ref("batch/v1", "Job", Some(&self.namespace)) {
            if j["status"]["succeeded"].as_i64().unwrap_or(0) > 0
                || j["status"]["failed"].as_i64().unwrap_or(0) > 0
            {
                continue;
            }
            let start = parse_rfc3339(j["metadata"]["creationTimestamp"].as_str().unwrap_or(""))
                .unwrap_or(now);
            let mut new = status_only(j);
            new["metadata"]["resourceVersion"] = json!("");
            let jname = name(j).to_string();
            if self.killed_jobs.contains(&jname) || self.object_store_down {
                let reason = if self.object_store_down {
                    "object storage unavailable: the repository could not be reached"
                } else {
                    "the backup pod was killed"
                };
                new["status"] = json!({"startTime": rfc3339(start), "failed": 1, "active": 0,
                    "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": reason, "lastTransitionTime": rfc3339(now)}]});
            } else if now >= start + self.timing.job_duration {
                new["status"] = json!({"startTime": rfc3339(start), "succeeded": 1, "active": 0,
                    "completionTime": rfc3339(now),
                    "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": rfc3339(now)}]});
            } else {
                self.wakeups.push(start + self.timing.job_duration);
                new["status"] = json!({"startTime": rfc3339(start), "active": 1});
            }
            if new["status"] != j["status"] {
                writes.push(Write::UpdateStatus(new));
            }
        }
        apply_writes(api, writes);
    }

    /// PVC binding, and the pvc-protection controller: a claim being deleted keeps its
    /// `kubernetes.io/pvc-protection` finalizer (and so stays, Terminating) while a scheduled
    /// pod that has not terminated mounts it; then the finalizer goes and the claim with it.
    /// Unscheduled pods do not hold a claim (the scheduler will not place them on a claim
    /// being deleted, and the kubelet would not start them).
    fn pvcs(&mut self, api: &mut dyn SimApi) {
        let seen = (
            api.kind_revision("v1", "PersistentVolumeClaim"),
            api.kind_revision("v1", "Pod"),
        );
        if seen == self.seen_pvc {
            return;
        }
        let pvcs_moved = seen.0 != self.seen_pvc.0;
        self.seen_pvc = seen;
        let mut writes = Vec::new();
        let claims = api.list_ref("v1", "PersistentVolumeClaim", Some(&self.namespace));
        let terminating: Vec<&Value> = claims
            .iter()
            .copied()
            .filter(|p| {
                p["metadata"].get("deletionTimestamp").is_some()
                    && p["metadata"]["finalizers"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x == labels::PVC_PROTECTION))
            })
            .collect();
        if !terminating.is_empty() {
            let mut in_use: BTreeSet<&str> = BTreeSet::new();
            for pod in api.list_ref("v1", "Pod", Some(&self.namespace)) {
                let phase = pod["status"]["phase"].as_str().unwrap_or("");
                if !pod["spec"]["nodeName"].is_string() || matches!(phase, "Succeeded" | "Failed") {
                    continue;
                }
                in_use.extend(claim_names(pod));
            }
            for p in terminating {
                if in_use.contains(name(p)) {
                    continue;
                }
                let mut new = p.clone();
                if let Some(list) = new["metadata"]["finalizers"].as_array_mut() {
                    list.retain(|f| f != labels::PVC_PROTECTION);
                }
                writes.push(Write::Update(new));
            }
        }
        if !pvcs_moved {
            apply_writes(api, writes);
            return;
        }
        for p in claims {
            if p["metadata"].get("deletionTimestamp").is_some() {
                continue;
            }
            if p["status"]["phase"] != "Bound" {
                let mut new = status_only(p);
                new["status"] = json!({"phase": "Bound", "accessModes": p["spec"]["accessModes"],
                    "capacity": p["spec"]["resources"]["requests"]});
                new["metadata"]["resourceVersion"] = json!("");
                writes.push(Write::UpdateStatus(new));
            }
        }
        apply_writes(api, writes);
    }

    fn schedule(&mut self, api: &mut dyn SimApi) {
        let ns = self.namespace.clone();
        let pending = api.list_where("v1", "Pod", Some(&ns), &|p| {
            !p["spec"]["nodeName"].is_string() && p["metadata"].get("deletionTimestamp").is_none()
        });
        if pending.is_empty() {
            return;
        }
        let nodes: Vec<String> = api
            .list_ref("v1", "Node", None)
            .into_iter()
            .filter(|n| {
                !self.down_nodes.contains_key(name(n))
                    && n["spec"]["unschedulable"].as_bool() != Some(true)
            })
            .map(|n| name(n).to_string())
            .collect();
        let mut load: BTreeMap<String, usize> = nodes.iter().map(|n| (n.clone(), 0)).collect();
        for p in api.list_ref("v1", "Pod", Some(&ns)) {
            if let Some(n) = p["spec"]["nodeName"].as_str()
                && let Some(c) = load.get_mut(n)
            {
                *c += 1;
            }
        }
        // Claims a pod may be placed on: present and not being deleted (the scheduler's
        // volume binding refuses a missing claim or one being deleted).
        let usable: BTreeSet<String> = api
            .list_ref("v1", "PersistentVolumeClaim", Some(&ns))
            .into_iter()
            .filter(|c| c["metadata"].get("deletionTimestamp").is_none())
            .map(|c| name(c).to_string())
            .collect();
        for p in pending {
            if claim_names(&p).any(|c| !usable.contains(c)) {
                continue;
            }
            // Spread pods of one cluster: prefer nodes with fewer pods of the same cluster
            // (counting the pods this pass already placed).
            let cluster = &p["metadata"]["labels"][crate::labels::CLUSTER];
            let pods = api.list_ref("v1", "Pod", Some(&ns));
            let Some(node) = load
                .iter()
                .min_by_key(|(n, c)| {
                    let same = pods
                        .iter()
                        .filter(|q| {
                            q["spec"]["nodeName"] == n.as_str()
                                && !cluster.is_null()
                                && q["metadata"]["labels"][crate::labels::CLUSTER] == *cluster
                        })
                        .count();
                    (same, **c, (*n).clone())
                })
                .map(|(n, _)| n.clone())
            else {
                continue;
            };
            let mut new = p.clone();
            new["spec"]["nodeName"] = json!(node);
            if api.update(new).is_ok() {
                *load.get_mut(&node).expect("node") += 1;
            }
        }
    }

    fn kubelet(&mut self, api: &mut dyn SimApi, now: Millis, behaviour: &dyn PodBehaviour) {
        let ns = self.namespace.clone();
        let mut writes = Vec::new();
        let nodes_not_ready: BTreeSet<String> = api
            .list_ref("v1", "Node", None)
            .into_iter()
            .filter(|n| {
                !n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .map(|n| name(n).to_string())
            .collect();
        let pods = api.list_ref("v1", "Pod", Some(&ns));
        let live: BTreeSet<&str> = pods.iter().map(|p| uid(p)).collect();
        self.pods.retain(|u, _| live.contains(u.as_str()));
        self.kubelet_quiet.retain(|u, _| live.contains(u.as_str()));
        for p in pods {
            let Some(node) = p["spec"]["nodeName"].as_str() else {
                continue;
            };
            let puid = uid(p);
            let node_down = self.down_nodes.contains_key(node);
            if node_down {
                // Nobody reports for this pod; once the node is NotReady, the node controller
                // marks its pods not ready.
                if nodes_not_ready.contains(node) && pod_ready(p) {
                    let mut new = status_only(p);
                    set_ready(&mut new, false, now);
                    new["metadata"]["resourceVersion"] = json!("");
                    writes.push(Write::UpdateStatus(new));
                }
                continue;
            }
            if !self.pods.contains_key(puid) {
                self.pods.insert(
                    puid.to_string(),
                    KubeletPod {
                        started_at: None,
                        restarts: 0,
                        down_until: None,
                        backoff_crashes: 0,
                        up_since: now,
                    },
                );
            }
            let entry = self.pods.get_mut(puid).expect("inserted");
            if p["metadata"].get("deletionTimestamp").is_some() {
                let deadline =
                    parse_rfc3339(p["metadata"]["deletionTimestamp"].as_str().unwrap_or(""))
                        .unwrap_or(now)
                        + p["metadata"]["deletionGracePeriodSeconds"]
                            .as_i64()
                            .unwrap_or(30)
                            * SECOND;
                if behaviour.stopped(p) || now >= deadline || entry.started_at.is_none() {
                    writes.push(delete_pod(&ns, p, Some(0)));
                } else {
                    self.wakeups.push(deadline);
                }
                continue;
            }
            let blocked = self.start_blocked.get(name(p)).copied().unwrap_or(0);
            let started = *entry
                .started_at
                .get_or_insert((now + self.timing.pod_start).max(blocked + self.timing.pod_start));
            if let Some(d) = entry.down_until {
                if d <= now {
                    entry.down_until = None;
                } else {
                    self.wakeups.push(d);
                }
            }
            let restarts = entry.restarts;
            let up = started <= now && entry.down_until.is_none();
            if started > now {
                self.wakeups.push(started);
            }
            // Readiness depends on the pod's metadata (which model manages it), not on the
            // status written below.
            let model_ready = if up { behaviour.ready(p) } else { None };
            let rv = p["metadata"]["resourceVersion"].as_str().unwrap_or("");
            let same = |q: &KubeletInputs| {
                q.0 == rv
                    && q.1 == up
                    && q.2 == (started <= now)
                    && q.3 == model_ready
                    && q.4 == restarts
                    && q.5 == started
            };
            if self.kubelet_quiet.get(puid).is_some_and(same) {
                continue;
            }
            let inputs = (
                rv.to_string(),
                up,
                started <= now,
                model_ready,
                restarts,
                started,
            );
            let mut new = status_only(p);
            if up || started <= now {
                if p["status"]["podIP"].is_null() {
                    self.next_ip += 1;
                    let ip = format!("10.0.{}.{}", self.next_ip / 250, self.next_ip % 250 + 2);
                    new["status"]["podIP"] = json!(ip);
                    new["status"]["podIPs"] = json!([{"ip": ip}]);
                    new["status"]["hostIP"] = json!(format!(
                        "192.168.0.{}",
                        node.trim_start_matches(NODE_PREFIX)
                    ));
                    new["status"]["startTime"] = json!(rfc3339(started));
                }
                new["status"]["phase"] = json!("Running");
                let ready = up && model_ready.unwrap_or(true);
                let containers: Vec<Value> = p["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, c)| {
                        let state = if up || i > 0 {
                            json!({"running": {"startedAt": rfc3339(started)}})
                        } else {
                            json!({"waiting": {"reason": "CrashLoopBackOff"}})
                        };
                        json!({"name": c["name"], "image": c["image"], "ready": ready || (i > 0 && up),
                               "started": up || i > 0, "restartCount": if i == 0 { restarts } else { 0 },
                               "state": state})
                    })
                    .collect();
                new["status"]["containerStatuses"] = Value::Array(containers);
                set_ready(&mut new, ready, now);
            }
            if new["status"] != p["status"] {
                new["metadata"]["resourceVersion"] = json!("");
                writes.push(Write::UpdateStatus(new));
                self.kubelet_quiet.remove(puid);
            } else {
                self.kubelet_quiet.insert(puid.to_string(), inputs);
            }
        }
        apply_writes(api, writes);
    }

    fn garbage_collect(&mut self, api: &mut dyn SimApi) {
        let rev = api.revision();
        if rev == self.last_rev_gc {
            return;
        }
        self.last_rev_gc = rev;
        let all = api.all_ref();
        let uids: BTreeSet<&str> = all.iter().map(|o| uid(o)).collect();
        let mut writes = Vec::new();
        for o in all {
            let refs = o["metadata"]["ownerReferences"].as_array();
            let Some(refs) = refs else { continue };
            if refs.is_empty()
                || refs
                    .iter()
                    .any(|r| uids.contains(r["uid"].as_str().unwrap_or("")))
            {
                continue;
            }
            if o["metadata"].get("deletionTimestamp").is_some() {
                continue;
            }
            writes.push(Write::Delete {
                api_version: o["apiVersion"].as_str().unwrap_or("").to_string(),
                kind: o["kind"].as_str().unwrap_or("").to_string(),
                namespace: o["metadata"]["namespace"].as_str().map(str::to_string),
                name: name(o).to_string(),
                uid: uid(o).to_string(),
                grace: None,
            });
        }
        apply_writes(api, writes);
    }
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
/// everything else), so a controller's status write copies no spec.
fn status_only(o: &Value) -> Value {
    json!({"apiVersion": o["apiVersion"], "kind": o["kind"],
        "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"],
                     "resourceVersion": ""},
        "status": o["status"]})
}

fn set_ready(p: &mut Value, ready: bool, now: Millis) {
    let s = if ready { "True" } else { "False" };
    let old = p["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let prev = |t: &str| old.iter().find(|c| c["type"] == t).cloned();
    let cond = |t: &str, status: &str| match prev(t) {
        Some(c) if c["status"] == status => c,
        _ => json!({"type": t, "status": status, "lastTransitionTime": rfc3339(now)}),
    };
    p["status"]["conditions"] = json!([
        cond("PodScheduled", "True"),
        cond("Initialized", "True"),
        cond("ContainersReady", s),
        cond("Ready", s),
    ]);
}
