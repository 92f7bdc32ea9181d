//! The deterministic world: one thread, a simulated clock, one seeded RNG, the API server with
//! its built-in controllers, the behaviour models, the operator and the invariants.
//!
//! Each step runs, in this order: replication (standbys receive WAL up to now), faults due now,
//! controllers, models (Patroni/PostgreSQL, then the client workload), the operator (reconcile
//! when something it watches changed or its requeue is due, on a possibly stale snapshot; then
//! execute the plan), and the invariants. Time then jumps to the earliest next event.

use crate::clock::{Millis, SECOND, SimClock, fmt_offset, rfc3339};
use crate::faults::Fault;
use crate::invariants::Checker;
use crate::kube::{Kube, pod_ready};
use crate::labels;
use crate::models::patroni::{self, Infra, ModelEvent, Patroni, Settings};
use crate::models::workload::Workload;
use crate::operator::{OpEvent, Operator, ReconcileFn};
use crate::rng::SimRng;
use crate::store::{SimApi, SimStore};
use serde_json::Value;
use std::collections::BTreeMap;
use tusk_fake_apiserver::Objects;

/// How the world is put together.
pub struct WorldConfig {
    pub seed: u64,
    pub namespace: String,
    pub nodes: usize,
    /// Client writes through `-primary`, every this often (None: no workload).
    pub workload_interval: Option<Millis>,
    pub reconcile: Box<ReconcileFn>,
    /// How many revisions back the operator may be made to read (the largest `stale-reads`
    /// lag the run can inject); the store keeps that much history.
    pub stale_read_window: u64,
}

impl WorldConfig {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            namespace: "default".into(),
            nodes: 3,
            workload_interval: Some(SECOND),
            reconcile: default_reconciler(),
            stale_read_window: crate::store::STALE_READ_WINDOW,
        }
    }
}

/// The reconcile the world runs by default: tusk's core.
pub fn default_reconciler() -> Box<ReconcileFn> {
    crate::core_adapter::reconciler()
}

/// One timeline line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at: Millis,
    pub text: String,
}

impl Line {
    pub fn render(&self) -> String {
        format!("[{}] {}", fmt_offset(self.at), self.text)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct PodView {
    uid: String,
    ready: bool,
    node: Option<String>,
    terminating: bool,
}

#[derive(Debug, Default)]
struct Observer {
    pods: BTreeMap<String, PodView>,
    primary: BTreeMap<String, Option<String>>,
    state: BTreeMap<String, String>,
    sts: BTreeMap<String, String>,
    pvcs: BTreeMap<String, String>,
    jobs: BTreeMap<String, String>,
    backups: BTreeMap<String, String>,
    restores: BTreeMap<String, String>,
    clusters: BTreeMap<String, String>,
}

pub struct World {
    pub clock: SimClock,
    pub rng: SimRng,
    pub store: SimStore,
    pub kube: Kube,
    pub patroni: Patroni,
    /// pgBackRest: repos, WAL archive, backup/restore Jobs (models/pgbackrest.rs).
    pub pgbackrest: crate::models::pgbackrest::PgBackRest,
    pub workloads: Vec<Workload>,
    workload_interval: Option<Millis>,
    pub operator: Operator,
    pub checker: Checker,
    pub namespace: String,
    pub timeline: Vec<Line>,
    observer: Observer,
    /// Faults in force (lasting ones), for healing.
    pub active: Vec<Fault>,
    /// Lasting faults injected with a duration (`for:`), and when each heals itself.
    pub timed_heals: Vec<(Millis, Fault)>,
    /// Every fault class injected at least once.
    pub exercised: BTreeMap<String, u64>,
    pub steps: u64,
    model_events_seen: usize,
    op_events_seen: usize,
    /// Primaries seen per cluster: the number of primary changes.
    pub primary_changes: BTreeMap<String, u64>,
    pub last_primary: BTreeMap<String, String>,
    /// Optional trace lines too detailed for the timeline (operator writes).
    pub verbose: bool,
    /// Whether a rolling update is under way: a StatefulSet of a cluster has a pod whose
    /// `controller-revision-hash` is not the revision of the set's current pod template (the
    /// StatefulSets are OnDelete, so the operator still has pods to replace). Recomputed when
    /// the store changed.
    pub rollout_in_progress: bool,
    /// Store revision `rollout_in_progress` was computed at.
    rollout_checked_at: u64,
    /// Template revision per StatefulSet, keyed by name, with what it was computed from
    /// ([`RevisionKey`]).
    sts_revisions: BTreeMap<String, (RevisionKey, String)>,
    /// Store revision the timeline observer last looked at.
    observed_at: u64,
    /// pgBackRest restores whose ending promotion was seen.
    restores_seen: usize,
}

/// What a StatefulSet's template revision name depends on: its uid, its generation (the
/// template is in `spec`, and every spec change bumps the generation) and
/// `status.collisionCount`; the resourceVersion stands in for the generation when a set has
/// none. Status writes move the resourceVersion but not this key, so they cost no new hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RevisionKey {
    uid: String,
    generation: Option<i64>,
    collisions: i64,
    rv: String,
}

impl RevisionKey {
    fn of(sts: &Value) -> Self {
        let meta = &sts["metadata"];
        let generation = meta["generation"].as_i64();
        Self {
            uid: meta["uid"].as_str().unwrap_or("").to_string(),
            generation,
            collisions: sts["status"]["collisionCount"].as_i64().unwrap_or(0),
            rv: match generation {
                Some(_) => String::new(),
                None => meta["resourceVersion"].as_str().unwrap_or("").to_string(),
            },
        }
    }
}

/// The kinds [`World::observe`] reads (apiVersion, kind).
const OBSERVED_KINDS: &[(&str, &str)] = &[
    (labels::CR_API, labels::CR_KIND),
    ("v1", "Pod"),
    ("apps/v1", "StatefulSet"),
    ("v1", "PersistentVolumeClaim"),
    ("batch/v1", "Job"),
    (labels::CR_API, "PerconaPGBackup"),
    (labels::CR_API, "PerconaPGRestore"),
];

/// The models' view of the kubelet.
struct KubeInfra<'a>(&'a Kube);
impl Infra for KubeInfra<'_> {
    fn container_up(&self, pod: &Value, _now: Millis) -> bool {
        self.0.container_up(pod)
    }
    fn told_to_stop(&self, pod: &Value) -> bool {
        self.0.told_to_stop(pod)
    }
}

/// Whether `o`'s controller (ownerReference with `controller: true`) is of one of `kinds`.
fn controlled_by_kind(o: &Value, kinds: &[&str]) -> bool {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["controller"] == true && kinds.iter().any(|k| r["kind"] == *k))
}

/// Longest run the world allows before it calls a run stuck.
const MAX_STEPS: u64 = 2_000_000;
/// Controllers react this long after a change.
const REACTION: Millis = 10;

impl World {
    pub fn new(config: WorldConfig) -> Self {
        let mut rng = SimRng::new(config.seed);
        let mut store = SimStore::new(rng.fork());
        store.keep_history(config.stale_read_window);
        let mut kube = Kube::new(&config.namespace, rng.next_u64());
        kube.install(&mut store, config.nodes);
        Self {
            clock: SimClock::new(),
            rng,
            store,
            kube,
            patroni: Patroni::new(&config.namespace),
            pgbackrest: crate::models::pgbackrest::PgBackRest::new(&config.namespace),
            workloads: Vec::new(),
            workload_interval: config.workload_interval,
            operator: Operator::new(&config.namespace, config.reconcile),
            checker: Checker::default(),
            namespace: config.namespace,
            timeline: Vec::new(),
            observer: Observer::default(),
            active: Vec::new(),
            timed_heals: Vec::new(),
            exercised: BTreeMap::new(),
            steps: 0,
            model_events_seen: 0,
            op_events_seen: 0,
            primary_changes: BTreeMap::new(),
            last_primary: BTreeMap::new(),
            verbose: false,
            rollout_in_progress: false,
            rollout_checked_at: 0,
            sts_revisions: BTreeMap::new(),
            observed_at: 0,
            restores_seen: 0,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn log(&mut self, text: impl Into<String>) {
        self.timeline.push(Line {
            at: self.clock.now(),
            text: text.into(),
        });
    }

    /// Creates or replaces an object as a user would (`kubectl apply`).
    pub fn apply_user(&mut self, mut object: Value) -> Result<(), String> {
        schema_check(&object)?;
        if object["kind"] == "Secret"
            && let Some(name) = object["metadata"]["name"].as_str()
        {
            // The user sets (or clears, to have a new one generated) a password themselves.
            self.checker.user_touched_secret(name);
        }
        self.store.set_now(self.now());
        if object["metadata"]["namespace"].is_null() && object["kind"] != "Namespace" {
            object["metadata"]["namespace"] = Value::String(self.namespace.clone());
        }
        if object["kind"] == labels::CR_KIND {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if let Some(interval) = self.workload_interval
                && !self.workloads.iter().any(|w| w.cluster == name)
            {
                let mut w = Workload::new(&self.namespace, &name, interval);
                w.next = self.now() + interval;
                self.workloads.push(w);
            }
        }
        self.store
            .apply(object, "kubectl")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Merge-patches a user object.
    pub fn patch_user(
        &mut self,
        api_version: &str,
        kind: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), String> {
        let ns = self.namespace.clone();
        let mut obj = self
            .store
            .get(api_version, kind, Some(&ns), name)
            .ok_or_else(|| format!("{kind} {name} not found"))?;
        merge(&mut obj, patch);
        schema_check(&obj)?;
        obj["metadata"]["resourceVersion"] = Value::String(String::new());
        self.store.set_now(self.now());
        self.store
            .update(obj)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn delete_user(&mut self, api_version: &str, kind: &str, name: &str) -> Result<(), String> {
        let ns = self.namespace.clone();
        if kind == "PersistentVolumeClaim" {
            // The user's own deletion: not one the operator may be blamed for.
            self.checker.pvcs_lost_by_fault.insert(name.to_string());
        }
        if kind == "Secret" {
            // Deleting a user Secret is how a password rotation is asked for.
            self.checker.user_touched_secret(name);
        }
        self.store.set_now(self.now());
        self.store
            .delete(api_version, kind, Some(&ns), name, None, None)
            .map_err(|e| e.to_string())
    }

    /// The database pods not being deleted, in name order: what role targets choose from.
    fn database_pods<'a>(store: &'a SimStore, namespace: &str) -> Vec<&'a Value> {
        store
            .list_ref("v1", "Pod", Some(namespace))
            .into_iter()
            .filter(|p| {
                p["metadata"]["labels"][labels::DATA] == "postgres"
                    && p["metadata"].get("deletionTimestamp").is_none()
            })
            .collect()
    }

    /// Why `target` names no pod now, with the role targets that do name one.
    fn no_pod_for(&self, target: &str) -> String {
        // In the order `replica-N` counts them (database_pods is in name order).
        let named: Vec<String> = Self::database_pods(&self.store, &self.namespace)
            .into_iter()
            .filter(|p| p["metadata"]["labels"][labels::ROLE] == labels::ROLE_REPLICA)
            .filter_map(|p| p["metadata"]["name"].as_str())
            .enumerate()
            .map(|(i, n)| format!("replica-{i} = {n}"))
            .collect();
        if named.is_empty() {
            format!("no pod matches `{target}` (no replica is running now)")
        } else {
            format!(
                "no pod matches `{target}` (counting from 0: {})",
                named.join(", ")
            )
        }
    }

    /// The pod a target word names: `primary`, `replica` (first by name), `replica-N`, `any`
    /// (drawn from the RNG), or a pod name.
    pub fn resolve_pod(&mut self, target: &str) -> Option<String> {
        if let Some(idx) = target
            .strip_prefix("pgbouncer")
            .and_then(|rest| match rest {
                "" => Some(0),
                n => n.strip_prefix('-')?.parse::<usize>().ok(),
            })
        {
            return self
                .store
                .list_ref("v1", "Pod", Some(&self.namespace))
                .into_iter()
                .filter(|p| {
                    p["metadata"]["labels"][labels::ROLE] == labels::ROLE_PGBOUNCER
                        && p["metadata"].get("deletionTimestamp").is_none()
                })
                .nth(idx)
                .and_then(|p| p["metadata"]["name"].as_str())
                .map(str::to_string);
        }
        let pods = Self::database_pods(&self.store, &self.namespace);
        let role = |p: &Value| {
            p["metadata"]["labels"][labels::ROLE]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        let name = |p: &&Value| p["metadata"]["name"].as_str().unwrap_or("").to_string();
        match target {
            "primary" => pods
                .iter()
                .find(|p| labels::is_primary_role(&role(p)))
                .map(name),
            "any" => {
                if pods.is_empty() {
                    None
                } else {
                    let i = self.rng.below(pods.len() as u64) as usize;
                    Some(name(&pods[i]))
                }
            }
            t if t == "replica" || t.starts_with("replica-") => {
                let idx: usize = t
                    .strip_prefix("replica-")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                pods.iter()
                    .filter(|p| role(p) == labels::ROLE_REPLICA)
                    .nth(idx)
                    .map(name)
            }
            other => pods
                .iter()
                .find(|p| name(p) == other)
                .map(name)
                .or_else(|| Some(other.to_string())),
        }
    }

    /// In synchronous mode, when `pod` is listed in its `<scope>-sync` key (as leader or
    /// synchronous standby): the other members listed there. None otherwise.
    fn sync_listed_others(&self, pod: &str) -> Option<Vec<String>> {
        let m = self.patroni.members.get(pod)?;
        let ns = Some(self.namespace.as_str());
        let sync_mode = self
            .store
            .get_ref(labels::CR_API, labels::CR_KIND, ns, &m.cluster)
            .map(Settings::from_cluster)
            .is_some_and(|s| s.synchronous_mode);
        if !sync_mode {
            return None;
        }
        let sync = self
            .store
            .get_ref("v1", "Endpoints", ns, &format!("{}-sync", m.scope))?;
        let ann = |k: &str| {
            sync["metadata"]["annotations"][k]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        let mut listed: Vec<String> = ann("sync_standby")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        listed.push(ann("leader"));
        if !listed.iter().any(|l| l == pod) {
            return None;
        }
        Some(
            listed
                .into_iter()
                .filter(|l| l != pod && !l.is_empty())
                .collect(),
        )
    }

    fn node_of(&self, pod: &str) -> Option<String> {
        self.store
            .get("v1", "Pod", Some(&self.namespace), pod)
            .and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
    }

    /// The node a node fault hits: a node by name, or the node of a pod target.
    fn node_target(&mut self, target: &str) -> Result<String, String> {
        let node = if target.starts_with(crate::kube::NODE_PREFIX) {
            if self.store.get_ref("v1", "Node", None, target).is_none() {
                let nodes: Vec<String> = self
                    .store
                    .list_ref("v1", "Node", None)
                    .iter()
                    .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
                    .collect();
                return Err(format!(
                    "there is no node {target} (nodes: {})",
                    nodes.join(", ")
                ));
            }
            target.to_string()
        } else {
            let p = self
                .resolve_pod(target)
                .ok_or_else(|| self.no_pod_for(target))?;
            self.node_of(&p)
                .ok_or_else(|| format!("pod {p} is not on a node"))?
        };
        Ok(node)
    }

    /// Injects a fault now. Returns it with its targets resolved (the pod or node it hit).
    pub fn inject(&mut self, fault: Fault) -> Result<Fault, String> {
        let now = self.now();
        self.store.set_now(now);
        let ns = self.namespace.clone();
        *self.exercised.entry(fault.class().to_string()).or_default() += 1;
        let pod_target = |w: &mut World, t: &str| w.resolve_pod(t).ok_or_else(|| w.no_pod_for(t));
        let mut resolved = fault.clone();
        match &fault {
            Fault::PodDelete { target } => {
                let p = pod_target(self, target)?;
                resolved = Fault::PodDelete { target: p.clone() };
                self.store
                    .delete("v1", "Pod", Some(&ns), &p, None, None)
                    .map_err(|e| e.to_string())?;
            }
            Fault::PodKill { target, down } => {
                let p = pod_target(self, target)?;
                resolved = Fault::PodKill {
                    target: p.clone(),
                    down: down.clone(),
                };
                if let Some(d) = down {
                    let d = crate::clock::parse_duration(d)
                        .ok_or_else(|| format!("pod-kill: `{d}` is not a duration"))?;
                    self.kube.start_blocked.insert(p.clone(), now + d);
                }
                self.patroni.kill(&p, now);
                self.store
                    .delete("v1", "Pod", Some(&ns), &p, None, Some(0))
                    .map_err(|e| e.to_string())?;
            }
            Fault::ContainerCrash { target } => {
                let p = pod_target(self, target)?;
                resolved = Fault::ContainerCrash { target: p.clone() };
                self.kube
                    .crash_container(&mut self.store, &p)
                    .map_err(|e| format!("pod {p}: {e}"))?;
                self.patroni.kill(&p, now);
            }
            Fault::NodeDown { target } => {
                let node = self.node_target(target)?;
                resolved = Fault::NodeDown {
                    target: node.clone(),
                };
                self.kube
                    .take_node_down(&mut self.store, &node, now, &self.patroni)
                    .map_err(|e| format!("node {node}: {e}"))?;
            }
            Fault::NodeNotReady { target } => {
                let node = self.node_target(target)?;
                resolved = Fault::NodeNotReady {
                    target: node.clone(),
                };
                self.kube
                    .lose_kubelet(&mut self.store, &node, &self.patroni)
                    .map_err(|e| format!("node {node}: {e}"))?;
            }
            Fault::Partition { target } => {
                let p = pod_target(self, target)?;
                resolved = Fault::Partition { target: p.clone() };
                self.patroni.partitioned.insert(p);
            }
            Fault::ApiErrors { rate } => self.operator.error_rate = *rate,
            Fault::DropWatches => self.operator.watch_dropped = true,
            Fault::StaleReads { lag } => self.operator.stale_by = Some(*lag),
            Fault::OperatorCrash { after } => {
                // Counted when the crash happens (digest_events), which may be mid-rollout.
                self.operator.crash_after = Some((*after).max(1));
            }
            Fault::ClockSkew { target, seconds } => {
                let p = pod_target(self, target)?;
                self.patroni.clock_skew.insert(p.clone(), seconds * SECOND);
                resolved = Fault::ClockSkew {
                    target: p,
                    seconds: *seconds,
                };
            }
            Fault::DiskFull { target } => {
                let p = pod_target(self, target)?;
                resolved = Fault::DiskFull { target: p.clone() };
                self.patroni.fill_disk(&p, now);
            }
            Fault::BackupJobKill => {
                for j in self.store.list("batch/v1", "Job", Some(&ns)) {
                    if j["status"]["active"].as_i64().unwrap_or(0) > 0 {
                        self.checker.sometimes.backups_interrupted += 1;
                        self.kube
                            .killed_jobs
                            .insert(j["metadata"]["name"].as_str().unwrap_or("").to_string());
                    }
                }
            }
            Fault::ObjectStoreDown => self.kube.object_store_down = true,
            Fault::PvcLost { target } => {
                let p = pod_target(self, target)?;
                resolved = Fault::PvcLost { target: p.clone() };
                // The claim the pod mounts for its data directory.
                let pvc = self
                    .store
                    .get("v1", "Pod", Some(&ns), &p)
                    .and_then(|pod| {
                        pod["spec"]["volumes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
                            .find(|c| c.contains("pgdata"))
                            .map(str::to_string)
                    })
                    .ok_or_else(|| format!("pod {p} mounts no pgdata claim"))?;
                // Losing every copy of a database leaves nothing to converge to: the cluster
                // could only come back from a backup, and liveness after healing would be
                // meaningless. Chaos takes a copy only while another one exists.
                let last_copy = self.patroni.data.get(&pvc).is_some_and(|d| {
                    !self.patroni.data.iter().any(|(other, o)| {
                        other != &pvc
                            && o.system_id == d.system_id
                            && self
                                .store
                                .get_ref("v1", "PersistentVolumeClaim", Some(&ns), other)
                                .is_some_and(|c| c["metadata"].get("deletionTimestamp").is_none())
                    })
                });
                if last_copy {
                    return Err(format!(
                        "claim {pvc} holds the last copy of the database; losing it would leave nothing to recover"
                    ));
                }
                // In synchronous mode Patroni promotes only the members `<scope>-sync` lists
                // (the leader and the synchronous standby): losing the last of their copies
                // leaves copies nobody may promote, which is as unrecoverable.
                if let Some(others) = self.sync_listed_others(&p) {
                    let alive = others.iter().any(|o| {
                        self.patroni.members.get(o).is_some_and(|om| {
                            self.patroni.data.contains_key(&om.pvc)
                                && self
                                    .store
                                    .get_ref("v1", "PersistentVolumeClaim", Some(&ns), &om.pvc)
                                    .is_some_and(|c| {
                                        c["metadata"].get("deletionTimestamp").is_none()
                                    })
                        })
                    });
                    if !alive {
                        return Err(format!(
                            "claim {pvc} holds the last copy Patroni may promote in synchronous mode (members listed in the -sync key); losing it would leave nothing to recover"
                        ));
                    }
                }
                self.checker.pvcs_lost_by_fault.insert(pvc.clone());
                let _ =
                    self.store
                        .delete("v1", "PersistentVolumeClaim", Some(&ns), &pvc, None, None);
                self.patroni.kill(&p, now);
                let _ = self.store.delete("v1", "Pod", Some(&ns), &p, None, Some(0));
            }
            Fault::ReplicationLag {
                target: None,
                millis,
            } => self.patroni.stream_delay = (*millis).max(0),
            Fault::ReplicationLag {
                target: Some(target),
                millis,
            } => {
                let p = pod_target(self, target)?;
                self.patroni.lagging.insert(p.clone(), (*millis).max(0));
                resolved = Fault::ReplicationLag {
                    target: Some(p),
                    millis: *millis,
                };
            }
        }
        self.log(format!("fault: {resolved}"));
        if resolved.lasting() {
            self.active.push(resolved.clone());
        }
        Ok(resolved)
    }

    /// Injects a fault that heals itself after `lasts` (a lasting fault; others happen once).
    pub fn inject_for(&mut self, fault: Fault, lasts: Option<Millis>) -> Result<(), String> {
        let resolved = self.inject(fault)?;
        if let Some(d) = lasts
            && resolved.lasting()
        {
            self.timed_heals.push((self.now() + d, resolved));
        }
        Ok(())
    }

    /// Heals the faults injected with a duration that has run out.
    fn heal_timed(&mut self, now: Millis) {
        if !self.timed_heals.iter().any(|(t, _)| *t <= now) {
            return;
        }
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timed_heals)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.timed_heals = keep;
        for (_, f) in due {
            // Healed already (by a `heal` step) when it is no longer active.
            if let Some(i) = self.active.iter().position(|a| *a == f) {
                let f = self.active.remove(i);
                self.heal_faults(vec![f]);
            }
        }
    }

    /// The longest run of failed client writes so far, over every workload (milliseconds).
    pub fn longest_write_outage(&self) -> Millis {
        self.workloads
            .iter()
            .map(|w| w.longest_outage)
            .max()
            .unwrap_or(0)
    }

    /// Heals every lasting fault (or those of one class).
    pub fn heal(&mut self, class: Option<&str>) {
        let (heal, keep): (Vec<Fault>, Vec<Fault>) = std::mem::take(&mut self.active)
            .into_iter()
            .partition(|f| class.is_none_or(|c| c == "all" || f.class() == c));
        self.active = keep;
        self.heal_faults(heal);
        if class.is_none_or(|c| c == "all" || c == "operator-crash") {
            self.operator.crash_after = None;
        }
    }

    fn heal_faults(&mut self, heal: Vec<Fault>) {
        for f in heal {
            match &f {
                Fault::NodeDown { target } => {
                    self.store.set_now(self.clock.now());
                    self.kube.bring_node_up(&mut self.store, target);
                }
                Fault::NodeNotReady { target } => {
                    self.store.set_now(self.clock.now());
                    self.kube
                        .restore_kubelet(&mut self.store, target, &mut self.patroni);
                }
                Fault::Partition { target } => {
                    self.patroni.partitioned.remove(target);
                }
                Fault::ApiErrors { .. } => self.operator.error_rate = 0.0,
                Fault::DropWatches => {
                    self.operator.watch_dropped = false;
                    self.operator.due_at = Some(self.now());
                }
                Fault::StaleReads { .. } => self.operator.stale_by = None,
                Fault::DiskFull { target } => {
                    self.patroni.free_disk(target);
                }
                Fault::ClockSkew { target, .. } => {
                    self.patroni.clock_skew.remove(target);
                }
                Fault::ObjectStoreDown => self.kube.object_store_down = false,
                Fault::ReplicationLag { target: None, .. } => self.patroni.stream_delay = 200,
                Fault::ReplicationLag {
                    target: Some(p), ..
                } => {
                    self.patroni.lagging.remove(p);
                }
                _ => {}
            }
            self.log(format!("healed: {f}"));
        }
    }

    /// One step at the current time.
    pub fn step(&mut self) {
        let now = self.clock.now();
        self.steps += 1;
        self.store.set_now(now);
        self.heal_timed(now);
        for w in &mut self.workloads {
            w.acked_before_step = w.acked.len();
        }
        self.patroni.replicate(now);
        // pgBackRest finishes its Jobs before the built-in Job controller sees them.
        self.pgbackrest.step(
            &mut self.store,
            &mut self.patroni,
            &KubeInfra(&self.kube),
            now,
            self.kube.job_duration,
            self.kube.object_store_down,
        );
        self.kube.step(&mut self.store, now, &self.patroni);
        self.patroni
            .step(&mut self.store, now, &KubeInfra(&self.kube), &mut self.rng);
        for w in &mut self.workloads {
            if now < w.next {
                continue;
            }
            let settings = self
                .store
                .get_ref(
                    labels::CR_API,
                    labels::CR_KIND,
                    Some(&self.namespace),
                    &w.cluster,
                )
                .map(Settings::from_cluster)
                .unwrap_or_default();
            if let Some(text) = w.step(
                &self.store,
                &KubeInfra(&self.kube),
                &mut self.patroni,
                &settings,
                now,
            ) {
                self.timeline.push(Line { at: now, text });
            }
        }
        self.pgbackrest
            .archive(&self.store, &self.patroni, now, self.kube.object_store_down);
        if self.operator.stale_by.is_some() && !self.operator.is_down(now) {
            self.checker.sometimes.stale_reads += 1;
        }
        self.operator
            .step(&mut self.store, &mut self.patroni, &mut self.rng, now);
        self.update_rollout();
        self.digest_events();
        self.observe();
        self.checker
            .check(now, &self.store, &self.patroni, &self.namespace);
    }

    fn digest_events(&mut self) {
        let events: Vec<(Millis, ModelEvent)> =
            self.patroni.events[self.model_events_seen..].to_vec();
        self.model_events_seen = self.patroni.events.len();
        for (at, e) in events {
            if let ModelEvent::Promoted {
                pod,
                data,
                cluster,
                timeline,
                ..
            } = &e
            {
                if *timeline > 1 {
                    self.checker.sometimes.failovers += 1;
                }
                let settings = self
                    .store
                    .get(
                        labels::CR_API,
                        labels::CR_KIND,
                        Some(&self.namespace),
                        cluster,
                    )
                    .map(|c| Settings::from_cluster(&c))
                    .unwrap_or_default();
                // The promotion that ends a restore's recovery: what it rolls back (writes
                // after the target, or not yet archived) was given up by the user's request.
                let restore = self.pgbackrest.restores[self.restores_seen..]
                    .iter()
                    .rfind(|r| &r.cluster == cluster)
                    .map(|r| match r.target {
                        Some(t) => format!("restore {} to {}", r.restore, rfc3339(t)),
                        None => format!("restore {} to the end of the archive", r.restore),
                    });
                if let Some(what) = restore {
                    self.restores_seen = self.pgbackrest.restores.len();
                    if let Some(w) = self.workloads.iter_mut().find(|w| &w.cluster == cluster) {
                        let n = w.record_discard(data, pod);
                        if n > 0 {
                            self.timeline.push(Line {
                                at,
                                text: format!(
                                    "workload: {n} acknowledged write(s) rolled back by the {what} (not counted as lost)"
                                ),
                            });
                        }
                    }
                } else if let Some(w) = self.workloads.iter_mut().find(|w| &w.cluster == cluster) {
                    let lost = w.record_loss(data, pod);
                    if lost > 0 {
                        let mode = if settings.synchronous_mode {
                            "synchronous"
                        } else {
                            "asynchronous"
                        };
                        self.timeline.push(Line { at, text: format!("workload: {lost} acknowledged write(s) lost on promotion of {pod} ({mode} replication)") });
                    }
                    self.checker.on_promotion(at, pod, lost, &settings, true);
                }
            }
            match &e {
                ModelEvent::SwitchoverStarted { .. } => self.checker.sometimes.switchovers += 1,
                ModelEvent::Rewound { .. } => self.checker.sometimes.rewinds += 1,
                _ => {}
            }
            // Started/stopped lines are implied by pod readiness; keep the timeline readable.
            if matches!(e, ModelEvent::Started { .. } | ModelEvent::Stopped { .. }) {
                continue;
            }
            self.timeline.push(Line {
                at,
                text: patroni::describe(&e),
            });
        }
        let ops: Vec<(Millis, OpEvent)> = self.operator.events[self.op_events_seen..].to_vec();
        self.op_events_seen = self.operator.events.len();
        for (at, e) in ops {
            let text = match e {
                OpEvent::Panicked { message } => {
                    self.checker.operator_panicked(at, &message);
                    format!("operator: reconcile panicked: {message}")
                }
                OpEvent::Crashed { after_writes } => {
                    self.checker.sometimes.operator_crashes += 1;
                    if self.rollout_in_progress {
                        self.checker.sometimes.rollout_crossed_crash += 1;
                        format!(
                            "operator: crashed (after {after_writes} writes in total) during a rolling update"
                        )
                    } else {
                        format!("operator: crashed (after {after_writes} writes in total)")
                    }
                }
                OpEvent::Restarted => "operator: restarted with an empty cache".to_string(),
                OpEvent::Event {
                    type_,
                    reason,
                    message,
                } if type_ == "Warning" => {
                    format!("event: Warning {reason}: {message}")
                }
                OpEvent::Wrote { what } if self.verbose => format!("operator: {what}"),
                OpEvent::Failed { what, error } if self.verbose => {
                    format!("operator: {what} failed: {error}")
                }
                OpEvent::Sql { pod, statements } if self.verbose => {
                    format!("operator: ran {statements} SQL statement(s) on {pod}")
                }
                _ => continue,
            };
            self.timeline.push(Line { at, text });
        }
    }

    /// Whether an object of one of `kinds` was written after store revision `since`.
    fn moved_since(&self, kinds: &[(&str, &str)], since: u64) -> bool {
        kinds
            .iter()
            .any(|(av, kind)| self.store.kind_revision(av, kind) > since)
    }

    /// Recomputes [`World::rollout_in_progress`] if the store changed since the last time.
    fn update_rollout(&mut self) {
        let rev = self.store.revision();
        if rev == self.rollout_checked_at {
            return;
        }
        // Only Pods and StatefulSets are read: writes to other kinds change nothing here.
        let moved = self.moved_since(
            &[("v1", "Pod"), ("apps/v1", "StatefulSet")],
            self.rollout_checked_at,
        );
        self.rollout_checked_at = rev;
        if !moved {
            return;
        }
        let ns = Some(self.namespace.as_str());
        let pods = self.store.list_ref("v1", "Pod", ns);
        let mut under_way = false;
        let mut live = BTreeMap::new();
        for sts in self.store.list_ref("apps/v1", "StatefulSet", ns) {
            let meta = &sts["metadata"];
            if meta["labels"][labels::CLUSTER].is_null() || meta.get("deletionTimestamp").is_some()
            {
                continue;
            }
            let name = meta["name"].as_str().unwrap_or("").to_string();
            let key = RevisionKey::of(sts);
            // The revision name the StatefulSet controller gives the current template.
            let revision = match self.sts_revisions.remove(&name) {
                Some((k, revision)) if k == key => revision,
                _ => tusk_fake_apiserver::controllers::statefulset::revision_name(sts),
            };
            let uid = &meta["uid"];
            under_way |= pods.iter().any(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["uid"] == *uid)
                    && p["metadata"]["labels"]["controller-revision-hash"] != revision.as_str()
            });
            live.insert(name, (key, revision));
        }
        self.sts_revisions = live;
        self.rollout_in_progress = under_way;
    }

    /// Diffs the store against the last view and logs what a person would notice.
    fn observe(&mut self) {
        // A diff of the store against the last view: nothing to see if the store did not move.
        let rev = self.store.revision();
        if rev == self.observed_at {
            return;
        }
        // Writes to kinds the observer does not read (Endpoints, Leases, Events, ...) leave
        // its diff empty.
        let moved = self.moved_since(OBSERVED_KINDS, self.observed_at);
        self.observed_at = rev;
        if !moved {
            return;
        }
        let ns = self.namespace.clone();
        let now = self.now();
        let mut lines = Vec::new();
        let clusters = self
            .store
            .list_ref(labels::CR_API, labels::CR_KIND, Some(&ns));
        let mut cl_now: BTreeMap<String, String> = BTreeMap::new();
        for c in clusters {
            let name = c["metadata"]["name"].as_str().unwrap_or("").to_string();
            let state = c["status"]["state"].as_str().unwrap_or("").to_string();
            let deleting = c["metadata"].get("deletionTimestamp").is_some();
            cl_now.insert(
                name.clone(),
                if deleting {
                    "deleting".into()
                } else {
                    "present".into()
                },
            );
            if !state.is_empty() && self.observer.state.get(&name) != Some(&state) {
                let from = self.observer.state.get(&name).cloned();
                lines.push(match from {
                    Some(f) => format!("cluster {name} state {f} -> {state}"),
                    None => format!("cluster {name} state {state}"),
                });
                self.observer.state.insert(name.clone(), state);
            }
        }
        for (name, s) in &cl_now {
            match self.observer.clusters.get(name) {
                None => lines.push(format!("cluster {name} created")),
                Some(old) if old != s && s == "deleting" => {
                    lines.push(format!("cluster {name} deletion requested"))
                }
                _ => {}
            }
        }
        let gone: Vec<String> = self
            .observer
            .clusters
            .keys()
            .filter(|n| !cl_now.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            lines.push(format!("cluster {name} deleted"));
            // A cluster created again under the same name starts with no state.
            self.observer.state.remove(&name);
        }
        self.observer.clusters = cl_now;

        let mut pods_now = BTreeMap::new();
        let mut primaries: BTreeMap<String, Option<String>> = BTreeMap::new();
        for p in self.store.list_ref("v1", "Pod", Some(&ns)) {
            // Jobs' pods come and go under generated names; the timeline follows the
            // StatefulSets' pods, whose names are identities, the pgBouncer pods the client
            // connects through, and reports Jobs by their own objects.
            let pgbouncer = p["metadata"]["labels"][labels::ROLE] == labels::ROLE_PGBOUNCER;
            if controlled_by_kind(p, &["Job"])
                || (controlled_by_kind(p, &["ReplicaSet"]) && !pgbouncer)
            {
                continue;
            }
            let name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
            let view = PodView {
                uid: p["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                ready: pod_ready(p),
                node: p["spec"]["nodeName"].as_str().map(str::to_string),
                terminating: p["metadata"].get("deletionTimestamp").is_some(),
            };
            let cluster = p["metadata"]["labels"][labels::CLUSTER]
                .as_str()
                .unwrap_or("")
                .to_string();
            if p["metadata"]["labels"][labels::DATA] == "postgres" {
                let e = primaries.entry(cluster).or_insert(None);
                // A pod being deleted still leads while nobody stopped it (its kubelet lost).
                if labels::is_primary_role(
                    p["metadata"]["labels"][labels::ROLE].as_str().unwrap_or(""),
                ) && !self.kube.told_to_stop(p)
                {
                    *e = Some(name.clone());
                }
            }
            match self.observer.pods.get(&name) {
                Some(old) if old.uid == view.uid => {
                    if old.node.is_none() && view.node.is_some() {
                        lines.push(format!(
                            "pod {name} scheduled on {}",
                            view.node.clone().unwrap_or_default()
                        ));
                    }
                    if old.ready != view.ready && !view.terminating {
                        lines.push(format!(
                            "pod {name} {}",
                            if view.ready { "ready" } else { "not ready" }
                        ));
                    }
                    if !old.terminating && view.terminating {
                        lines.push(format!("pod {name} terminating"));
                    }
                }
                Some(_) => {
                    lines.push(format!("pod {name} deleted"));
                    lines.push(format!("pod {name} created"));
                }
                None => lines.push(format!("pod {name} created")),
            }
            pods_now.insert(name, view);
        }
        for name in self.observer.pods.keys() {
            if !pods_now.contains_key(name) {
                lines.push(format!("pod {name} deleted"));
            }
        }
        self.observer.pods = pods_now;
        for (c, p) in &primaries {
            if self.observer.primary.get(c) != Some(p) {
                if let Some(p) = p {
                    let prev = self.last_primary.get(c).cloned();
                    match prev {
                        Some(prev) if &prev != p => {
                            *self.primary_changes.entry(c.clone()).or_default() += 1;
                            lines.push(format!("primary of {c} changed: {prev} -> {p}"));
                        }
                        Some(_) => lines.push(format!("primary of {c} is {p} again")),
                        None => lines.push(format!("primary of {c} is {p}")),
                    }
                    self.last_primary.insert(c.clone(), p.clone());
                } else if self.observer.primary.get(c).is_some_and(Option::is_some) {
                    lines.push(format!("cluster {c} has no primary"));
                }
            }
        }
        self.observer.primary = primaries;

        for (kind, av, map, label) in [
            ("StatefulSet", "apps/v1", 0, "statefulset"),
            ("PersistentVolumeClaim", "v1", 1, "pvc"),
            ("Job", "batch/v1", 2, "job"),
            ("PerconaPGBackup", labels::CR_API, 3, "backup"),
            ("PerconaPGRestore", labels::CR_API, 4, "restore"),
        ] {
            let objs = self.store.list_ref(av, kind, Some(&ns));
            let mut seen = BTreeMap::new();
            for o in objs {
                let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                let state = match kind {
                    "Job" => {
                        if o["status"]["succeeded"].as_i64().unwrap_or(0) > 0 {
                            "succeeded".to_string()
                        } else if o["status"]["failed"].as_i64().unwrap_or(0) > 0 {
                            "failed".to_string()
                        } else {
                            "running".to_string()
                        }
                    }
                    "PerconaPGBackup" | "PerconaPGRestore" => {
                        o["status"]["state"].as_str().unwrap_or("new").to_string()
                    }
                    // Held by pvc-protection while a pod still mounts it.
                    "PersistentVolumeClaim" if o["metadata"].get("deletionTimestamp").is_some() => {
                        "terminating".to_string()
                    }
                    _ => String::new(),
                };
                seen.insert(name, state);
            }
            let old = match map {
                0 => &mut self.observer.sts,
                1 => &mut self.observer.pvcs,
                2 => &mut self.observer.jobs,
                3 => &mut self.observer.backups,
                _ => &mut self.observer.restores,
            };
            for (n, s) in &seen {
                match old.get(n) {
                    None => lines.push(if s.is_empty() {
                        format!("{label} {n} created")
                    } else {
                        format!("{label} {n} created ({s})")
                    }),
                    Some(o) if o != s => lines.push(format!("{label} {n} {s}")),
                    _ => {}
                }
            }
            for n in old.keys() {
                if !seen.contains_key(n) {
                    lines.push(format!("{label} {n} deleted"));
                }
            }
            *old = seen;
        }
        for text in lines {
            self.timeline.push(Line { at: now, text });
        }
    }

    /// The earliest time anything has work to do.
    pub fn next_event(&self) -> Millis {
        let now = self.now();
        let mut cands: Vec<Millis> = vec![];
        cands.extend(self.kube.next_wakeup(now));
        cands.extend(self.patroni.next_wakeup(now));
        cands.extend(self.operator.next_wakeup(now));
        cands.extend(
            self.timed_heals
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| *t > now),
        );
        cands.extend(
            self.workloads
                .iter()
                .map(|w| w.next_wakeup())
                .filter(|t| *t > now),
        );
        cands.into_iter().min().unwrap_or(now + 60 * SECOND)
    }

    /// Runs until `until` returns true (checked after each step) or `deadline` passes.
    /// Returns whether the condition was met.
    pub fn run_until(&mut self, deadline: Millis, mut until: impl FnMut(&World) -> bool) -> bool {
        loop {
            let rev = self.store.revision();
            self.step();
            if until(self) {
                return true;
            }
            if self.steps > MAX_STEPS {
                self.checker.violations.push(format!(
                    "[{}] the world did not settle (more than {MAX_STEPS} steps)",
                    fmt_offset(self.now())
                ));
                return false;
            }
            let mut next = self.next_event();
            if self.store.revision() != rev {
                next = next.min(self.now() + REACTION);
            }
            if next > deadline {
                self.clock.advance_to(deadline);
                return false;
            }
            self.clock.advance_to(next);
        }
    }

    /// Runs for `duration` of simulated time.
    pub fn advance(&mut self, duration: Millis) {
        let deadline = self.now() + duration;
        self.run_until(deadline, |_| false);
        self.step();
    }

    /// Whether a cluster is ready: CR state ready, exactly one pod with the primary role, every
    /// database pod ready.
    pub fn cluster_ready(&self, name: &str) -> bool {
        let ns = Some(self.namespace.as_str());
        let Some(cr) = self
            .store
            .get_ref(labels::CR_API, labels::CR_KIND, ns, name)
        else {
            return false;
        };
        if cr["status"]["state"] != "ready" {
            return false;
        }
        let pods: Vec<&Value> = self
            .store
            .list_ref("v1", "Pod", ns)
            .into_iter()
            .filter(|p| {
                p["metadata"]["labels"][labels::CLUSTER] == name
                    && p["metadata"]["labels"][labels::DATA] == "postgres"
            })
            .collect();
        let primaries = pods
            .iter()
            .filter(|p| {
                labels::is_primary_role(
                    p["metadata"]["labels"][labels::ROLE].as_str().unwrap_or(""),
                )
            })
            .count();
        // As many database pods as the spec asks for: right after a pod is deleted the CR
        // still reads ready until the operator notices, and that is not a ready cluster.
        let desired: i64 = cr["spec"]["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|set| set["replicas"].as_i64().unwrap_or(1).max(0))
            .sum();
        let present = pods
            .iter()
            .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
            .count();
        primaries == 1
            && present as i64 == desired
            && pods.iter().all(|p| pod_ready(p))
            && self
                .patroni
                .writable()
                .iter()
                .filter(|m| m.cluster == name)
                .count()
                == 1
    }

    /// The timeline as printed.
    pub fn rendered_timeline(&self) -> Vec<String> {
        self.timeline.iter().map(Line::render).collect()
    }

    /// A digest of the run for determinism checks: timeline, final store and model state.
    pub fn trace_digest(&self) -> u64 {
        use std::fmt::Write as _;
        let mut h = Fnv(0xcbf2_9ce4_8422_2325u64);
        for l in &self.timeline {
            h.feed(l.render().as_bytes());
        }
        // Streamed into the hash: the same bytes as each object's `to_string()`, without
        // copying the objects or building the strings.
        for o in self.store.all_ref() {
            let _ = serde_json::to_writer(&mut h, o);
        }
        let _ = write!(h, "{:?}", self.patroni.data);
        for w in &self.workloads {
            let _ = write!(h, "{:?}{:?}", w.acked.len(), w.lost);
        }
        h.0
    }
}

/// FNV-1a over the bytes written to it.
struct Fnv(u64);

impl Fnv {
    fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.feed(s.as_bytes());
        Ok(())
    }
}

/// What the CRD's schema makes the API server do with tusk's own kinds: a PerconaPGCluster,
/// PerconaPGBackup or PerconaPGRestore whose fields have the wrong type is rejected (422)
/// with the first offending field, as `kubectl apply` reports it. Other kinds pass.
pub fn schema_check(object: &Value) -> Result<(), String> {
    use tusk_core::validate::{parse_backup, parse_cluster, parse_restore};
    let kind = object["kind"].as_str().unwrap_or("");
    let result = match kind {
        labels::CR_KIND => parse_cluster(object.clone()).map(|_| ()),
        "PerconaPGBackup" => parse_backup(object.clone()).map(|_| ()),
        "PerconaPGRestore" => parse_restore(object.clone()).map(|_| ()),
        _ => return Ok(()),
    };
    result.map_err(|errors| {
        let name = object["metadata"]["name"].as_str().unwrap_or("?");
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        format!("the API server rejects {kind} {name} (Invalid, 422): {first}")
    })
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}
