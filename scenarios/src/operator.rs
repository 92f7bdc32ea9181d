//! The operator inside the world: a cache that may lag behind the store, the reconcile function
//! (tusk's core, or any function with its signature), and an executor that applies a plan the way
//! the real one does: server-side apply with field manager `tusk`, deletes with a uid
//! precondition, status through the status subresource, Events, SQL on the primary. A failed
//! action stops the plan and the reconcile is retried with back-off; a crash fault stops the
//! operator after a given write and restarts it later with an empty cache.

use crate::clock::{Millis, SECOND, rfc3339};
use crate::labels;
use crate::models::patroni::Patroni;
use crate::rng::SimRng;
use crate::store::SimApi;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::{Value, json};
use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;
use tusk_core::api::PerconaPGCluster;
use tusk_core::plan::FIELD_MANAGER;
use tusk_core::{Action, Env, EventType, Observed, Plan};

/// Anything with the signature of `tusk_core::reconcile`, over the JSON form of the CR.
pub type ReconcileFn = dyn Fn(&Observed, &Env) -> Plan;

/// How long a watch event takes to reach the operator's cache and trigger a reconcile.
pub const REACTION: Millis = 100;

/// What happened when the operator acted, for the timeline and invariants.
#[derive(Debug, Clone, PartialEq)]
pub enum OpEvent {
    Wrote {
        what: String,
    },
    Failed {
        what: String,
        error: String,
    },
    Event {
        type_: String,
        reason: String,
        message: String,
    },
    Panicked {
        message: String,
    },
    Crashed {
        after_writes: u64,
    },
    Restarted,
    Sql {
        pod: String,
        statements: usize,
    },
}

pub struct Operator {
    reconcile: Box<ReconcileFn>,
    pub namespace: String,
    /// Revision of the last snapshot reconciled, per cluster name (what "changed since" means).
    fingerprint: std::collections::BTreeMap<String, u64>,
    /// The newest revision this incarnation has read (its session floor).
    pub floor: u64,
    pub requeue_at: Option<Millis>,
    pub due_at: Option<Millis>,
    pub down_until: Option<Millis>,
    /// When set, the operator reads a snapshot this many revisions old (never below its floor).
    pub stale_by: Option<u64>,
    /// When set, the operator crashes right after its next this-many writes.
    pub crash_after: Option<u64>,
    pub restart_delay: Millis,
    pub reconciles: u64,
    pub writes: u64,
    pub events: Vec<(Millis, OpEvent)>,
    /// Set when the store changed since the last look (the watch fired).
    last_seen_rev: u64,
    backoff: Millis,
    /// Fraction of writes that fail with a transient error (409/429/5xx storms).
    pub error_rate: f64,
    /// Watches dropped: changes are not seen until the next requeue or relist.
    pub watch_dropped: bool,
    /// Deserialized objects of the last snapshot (a memo, not state: keyed by resourceVersion).
    typed: TypedCache,
}

fn obj_ref(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap_or("?"),
        o["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The kinds a reconcile reads, as (apiVersion, kind).
const WATCHED: [(&str, &str); 15] = [
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Endpoints"),
    ("v1", "Pod"),
    ("v1", "PersistentVolumeClaim"),
    ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    (labels::CR_API, "PerconaPGBackup"),
    (labels::CR_API, "PerconaPGRestore"),
];

/// Whether `o` (of `kind`) belongs in the snapshot of cluster `name` (uid `uid`).
fn belongs(o: &Value, kind: &str, name: &str, uid: &str) -> bool {
    o["metadata"]["labels"][labels::CLUSTER] == name
        || o["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["uid"] == uid)
        || (kind == "PerconaPGBackup" && o["spec"]["pgCluster"] == name)
        || (kind == "PerconaPGRestore" && o["spec"]["pgCluster"] == name)
}

/// Every object of each [`WATCHED`] kind in `namespace` as it was at `revision` (a stale
/// read), one entry per kind in [`WATCHED`] order; None for a kind not written since
/// `revision`, whose objects then are as stored now (read borrowed, not copied). Read once
/// per operator step and shared by the fingerprint and the snapshot of every cluster: a
/// revision's history does not change.
type StaleLists = Vec<Option<Vec<Value>>>;

fn stale_lists(api: &dyn SimApi, namespace: &str, revision: u64) -> StaleLists {
    WATCHED
        .iter()
        .map(|(av, kind)| {
            (api.kind_revision(av, kind) > revision)
                .then(|| api.list_at(revision, av, kind, Some(namespace)))
        })
        .collect()
}

/// Every object of a watched kind that belongs to the cluster, with its kind's index in
/// [`WATCHED`], from `stale` (the lists of [`stale_lists`]) or, where None, as stored now,
/// kind by kind in [`WATCHED`] order, each kind in key order. Collected once per cluster and
/// step, for both the fingerprint and the snapshot.
fn owned<'a>(
    api: &'a dyn SimApi,
    namespace: &str,
    cluster: &Value,
    stale: Option<&'a [Option<Vec<Value>>]>,
) -> Vec<(usize, &'a Value)> {
    let name = cluster["metadata"]["name"].as_str().unwrap_or("");
    let uid = cluster["metadata"]["uid"].as_str().unwrap_or("");
    let mut out = Vec::new();
    for (i, (av, kind)) in WATCHED.iter().enumerate() {
        match stale.and_then(|lists| lists[i].as_ref()) {
            Some(list) => out.extend(
                list.iter()
                    .filter(|o| belongs(o, kind, name, uid))
                    .map(|o| (i, o)),
            ),
            None => out.extend(
                api.list_ref(av, kind, Some(namespace))
                    .into_iter()
                    .filter(|o| belongs(o, kind, name, uid))
                    .map(|o| (i, o)),
            ),
        }
    }
    out
}

/// What "changed since the last reconcile" compares: kind, name and resourceVersion of the CR
/// and of every object in its snapshot ([`owned`]). Computed from the stored objects, before
/// anything is deserialized, so an unchanged snapshot costs no copies.
fn fingerprint(cluster: &Value, owned: &[(usize, &Value)]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |v: &Value| {
        for part in [
            v["kind"].as_str().unwrap_or(""),
            v["metadata"]["name"].as_str().unwrap_or(""),
            v["metadata"]["resourceVersion"].as_str().unwrap_or(""),
        ] {
            for b in part.bytes().chain([0u8]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    };
    feed(cluster);
    for (_, o) in owned {
        feed(o);
    }
    h
}

/// One kind's typed objects by name, with the resourceVersion each was read at.
type TypedOfKind = BTreeMap<String, (String, Box<dyn Any>)>;

/// Typed objects already deserialized, by kind (index in [`WATCHED`]) and name, with the
/// resourceVersion they were read at: a resourceVersion names one content, so an unchanged
/// object is moved into the next snapshot instead of deserialized again. A snapshot takes its
/// objects out of the cache and [`TypedCache::recycle`] puts them back once the reconcile is
/// done with it, so nothing is copied.
#[derive(Default)]
pub struct TypedCache {
    entries: [TypedOfKind; WATCHED.len()],
    /// The CR last deserialized: (name, resourceVersion, typed).
    clusters: BTreeMap<String, (String, PerconaPGCluster)>,
}

impl TypedCache {
    fn push<T: serde::de::DeserializeOwned + 'static>(
        &mut self,
        idx: usize,
        into: &mut Vec<T>,
        o: &Value,
    ) {
        let name = o["metadata"]["name"].as_str().unwrap_or("");
        let rv = o["metadata"]["resourceVersion"].as_str().unwrap_or("");
        let entries = &mut self.entries[idx];
        if let Some((cached_rv, _)) = entries.get(name)
            && cached_rv == rv
            && let Some((_, t)) = entries.remove(name)
            && let Ok(t) = t.downcast::<T>()
        {
            into.push(*t);
            return;
        }
        if let Ok(t) = T::deserialize(o) {
            into.push(t);
        }
    }

    /// The typed CR, moved out of the cache when its resourceVersion did not change.
    fn cluster(&mut self, cluster: &Value) -> Result<PerconaPGCluster, serde_json::Error> {
        let name = cluster["metadata"]["name"].as_str().unwrap_or("");
        let rv = cluster["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        match self.clusters.remove(name) {
            Some((cached_rv, cr)) if cached_rv == rv => Ok(cr),
            _ => PerconaPGCluster::deserialize(cluster),
        }
    }

    /// Forgets what the snapshot being built did not take.
    fn prune(&mut self) {
        for e in &mut self.entries {
            e.clear();
        }
    }

    fn put_back<T: 'static>(&mut self, idx: usize, items: Vec<T>, meta: fn(&T) -> &ObjectMeta) {
        for t in items {
            let m = meta(&t);
            let name = m.name.clone().unwrap_or_default();
            let rv = m.resource_version.clone().unwrap_or_default();
            self.entries[idx].insert(name, (rv, Box::new(t)));
        }
    }

    /// Takes back the objects of a snapshot the reconcile is done with, for the next one.
    pub fn recycle(&mut self, obs: Observed) {
        let m = &obs.cluster.metadata;
        let name = m.name.clone().unwrap_or_default();
        let rv = m.resource_version.clone().unwrap_or_default();
        self.clusters.insert(name, (rv, obs.cluster));
        self.put_back(0, obs.stateful_sets, |t| &t.metadata);
        self.put_back(1, obs.deployments, |t| &t.metadata);
        self.put_back(2, obs.services, |t| &t.metadata);
        self.put_back(3, obs.config_maps, |t| &t.metadata);
        self.put_back(4, obs.secrets, |t| &t.metadata);
        self.put_back(5, obs.endpoints, |t| &t.metadata);
        self.put_back(6, obs.pods, |t| &t.metadata);
        self.put_back(7, obs.pvcs, |t| &t.metadata);
        self.put_back(8, obs.jobs, |t| &t.metadata);
        self.put_back(9, obs.pdbs, |t| &t.metadata);
        self.put_back(10, obs.service_accounts, |t| &t.metadata);
        self.put_back(11, obs.roles, |t| &t.metadata);
        self.put_back(12, obs.role_bindings, |t| &t.metadata);
        self.put_back(13, obs.backups, |t| &t.metadata);
        self.put_back(14, obs.restores, |t| &t.metadata);
    }
}

/// Builds the snapshot a reconcile of `cluster` sees, from the store at `revision` (None = now).
pub fn observe(
    api: &dyn SimApi,
    namespace: &str,
    cluster: &Value,
    revision: Option<u64>,
) -> Result<Observed, String> {
    observe_with(
        api,
        namespace,
        cluster,
        revision,
        &mut TypedCache::default(),
    )
}

/// [`observe`], reusing the typed objects of earlier snapshots that did not change.
pub fn observe_with(
    api: &dyn SimApi,
    namespace: &str,
    cluster: &Value,
    revision: Option<u64>,
    cache: &mut TypedCache,
) -> Result<Observed, String> {
    let stale = revision.map(|r| stale_lists(api, namespace, r));
    let owned = owned(api, namespace, cluster, stale.as_deref());
    observe_from(api, cluster, revision, &owned, cache)
}

/// [`observe_with`] from the cluster's objects ([`owned`], read at `revision` when it is
/// Some).
fn observe_from(
    api: &dyn SimApi,
    cluster: &Value,
    revision: Option<u64>,
    owned: &[(usize, &Value)],
    cache: &mut TypedCache,
) -> Result<Observed, String> {
    let name = cluster["metadata"]["name"].as_str().unwrap_or("");
    let cr = cache
        .cluster(cluster)
        .map_err(|e| format!("PerconaPGCluster {name} does not deserialize: {e}"))?;
    let mut obs = Observed {
        cluster: cr,
        revision: revision.unwrap_or_else(|| api.revision()).to_string(),
        ..Observed::default()
    };
    for &(i, o) in owned {
        match i {
            0 => cache.push(i, &mut obs.stateful_sets, o),
            1 => cache.push(i, &mut obs.deployments, o),
            2 => cache.push(i, &mut obs.services, o),
            3 => cache.push(i, &mut obs.config_maps, o),
            4 => cache.push(i, &mut obs.secrets, o),
            5 => cache.push(i, &mut obs.endpoints, o),
            6 => cache.push(i, &mut obs.pods, o),
            7 => cache.push(i, &mut obs.pvcs, o),
            8 => cache.push(i, &mut obs.jobs, o),
            9 => cache.push(i, &mut obs.pdbs, o),
            10 => cache.push(i, &mut obs.service_accounts, o),
            11 => cache.push(i, &mut obs.roles, o),
            12 => cache.push(i, &mut obs.role_bindings, o),
            13 => cache.push(i, &mut obs.backups, o),
            _ => cache.push(i, &mut obs.restores, o),
        }
    }
    cache.prune();
    obs.normalize();
    Ok(obs)
}

impl Operator {
    pub fn new(namespace: &str, reconcile: Box<ReconcileFn>) -> Self {
        Self {
            reconcile,
            namespace: namespace.to_string(),
            fingerprint: Default::default(),
            floor: 0,
            requeue_at: None,
            due_at: Some(0),
            down_until: None,
            stale_by: None,
            crash_after: None,
            restart_delay: 5 * SECOND,
            reconciles: 0,
            writes: 0,
            events: Vec::new(),
            last_seen_rev: 0,
            backoff: 0,
            error_rate: 0.0,
            watch_dropped: false,
            typed: TypedCache::default(),
        }
    }

    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        [self.due_at, self.requeue_at, self.down_until]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// Notes that the store changed (a watch event) so a reconcile is due shortly.
    pub fn notice(&mut self, api: &dyn SimApi, now: Millis) {
        let rev = api.revision();
        if rev != self.last_seen_rev {
            self.last_seen_rev = rev;
            if !self.watch_dropped && self.due_at.is_none() {
                self.due_at = Some(now + REACTION);
            }
        }
    }

    /// Crash now; restart after `restart_delay` with an empty cache.
    pub fn crash(&mut self, now: Millis) {
        self.events.push((
            now,
            OpEvent::Crashed {
                after_writes: self.writes,
            },
        ));
        self.down_until = Some(now + self.restart_delay);
        self.fingerprint.clear();
        self.typed = TypedCache::default();
        self.floor = 0;
        self.requeue_at = None;
        self.due_at = None;
        self.crash_after = None;
    }

    pub fn is_down(&self, now: Millis) -> bool {
        self.down_until.is_some_and(|t| t > now)
    }

    /// Reconciles every cluster in the namespace if due; executes the plans.
    pub fn step(
        &mut self,
        api: &mut dyn SimApi,
        patroni: &mut Patroni,
        rng: &mut SimRng,
        now: Millis,
    ) {
        if let Some(t) = self.down_until {
            if t > now {
                return;
            }
            self.down_until = None;
            self.events.push((now, OpEvent::Restarted));
            self.due_at = Some(now);
        }
        self.notice(api, now);
        let requeue_due = self.requeue_at.is_some_and(|t| t <= now);
        let due = self.due_at.is_some_and(|t| t <= now) || requeue_due;
        if !due {
            return;
        }
        self.due_at = None;
        self.requeue_at = None;
        let current = api.revision();
        let read_at = match self.stale_by {
            Some(lag) => {
                let lo = self.floor.max(current.saturating_sub(lag));
                Some(lo + rng.below(current - lo + 1).min(current - lo))
            }
            None => None,
        };
        let read_rev = read_at.unwrap_or(current);
        self.floor = self.floor.max(read_rev);
        let clusters = match read_at {
            Some(r) => api.list_at(r, labels::CR_API, labels::CR_KIND, Some(&self.namespace)),
            None => api.list(labels::CR_API, labels::CR_KIND, Some(&self.namespace)),
        };
        let mut min_requeue: Option<Duration> = None;
        // The stale lists with the store revision they were read at: a kind they lend from
        // the store as it is now must not have been written since (by an earlier cluster's
        // plan), so they are read again when the store moved.
        let mut stale: Option<(u64, StaleLists)> = None;
        for cr in clusters {
            let name = cr["metadata"]["name"].as_str().unwrap_or("").to_string();
            if let Some(r) = read_at
                && stale.as_ref().is_none_or(|(at, _)| *at != api.revision())
            {
                stale = Some((api.revision(), stale_lists(api, &self.namespace, r)));
            }
            let stale = stale.as_ref().map(|(_, lists)| lists.as_slice());
            let owned = owned(api, &self.namespace, &cr, stale);
            let fp = fingerprint(&cr, &owned);
            if !requeue_due && self.fingerprint.get(&name) == Some(&fp) {
                continue;
            }
            let observed = match observe_from(api, &cr, read_at, &owned, &mut self.typed) {
                Ok(o) => o,
                Err(error) => {
                    self.events.push((
                        now,
                        OpEvent::Failed {
                            what: format!("read {name}"),
                            error,
                        },
                    ));
                    continue;
                }
            };
            let env = Env::new(crate::clock::to_timestamp(now), rng.bytes32());
            self.reconciles += 1;
            let result = catch_unwind(AssertUnwindSafe(|| (self.reconcile)(&observed, &env)));
            self.typed.recycle(observed);
            let plan = match result {
                Ok(p) => p,
                Err(e) => {
                    let message = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    self.events.push((now, OpEvent::Panicked { message }));
                    continue;
                }
            };
            self.fingerprint.insert(name, fp);
            match self.execute(api, patroni, rng, &plan, now) {
                Ok(()) => {
                    self.backoff = 0;
                    if let Some(r) = plan.requeue_after() {
                        min_requeue = Some(min_requeue.map_or(r, |m| m.min(r)));
                    }
                }
                Err(()) => {
                    if self.is_down(now) {
                        return;
                    }
                    // Back off with jitter, as the real controller does on errors.
                    self.backoff = (self.backoff * 2).clamp(500, 60 * SECOND);
                    let jitter = rng.below(self.backoff as u64 / 4 + 1) as Millis;
                    let at = now + self.backoff + jitter;
                    self.requeue_at = Some(self.requeue_at.map_or(at, |r| r.min(at)));
                }
            }
        }
        if let Some(r) = min_requeue {
            let at = now + (r.as_millis() as Millis).max(1);
            self.requeue_at = Some(self.requeue_at.map_or(at, |x| x.min(at)));
        }
    }

    fn wrote(&mut self, now: Millis, what: String) -> bool {
        self.writes += 1;
        self.events.push((now, OpEvent::Wrote { what }));
        if let Some(n) = self.crash_after.as_mut() {
            if *n <= 1 {
                self.crash(now);
                return false;
            }
            *n -= 1;
        }
        true
    }

    fn execute(
        &mut self,
        api: &mut dyn SimApi,
        patroni: &mut Patroni,
        rng: &mut SimRng,
        plan: &Plan,
        now: Millis,
    ) -> Result<(), ()> {
        for action in &plan.actions {
            if !matches!(action, Action::RequeueAfter { .. })
                && self.error_rate > 0.0
                && rng.chance(self.error_rate)
            {
                let code = [409u16, 429, 500, 503][rng.below(4) as usize];
                self.events.push((
                    now,
                    OpEvent::Failed {
                        what: describe_action(action),
                        error: format!("injected HTTP {code}"),
                    },
                ));
                return Err(());
            }
            let result: Result<Option<String>, String> = match action {
                Action::Apply { object } => api
                    .apply(serde_json::Value::clone(object), FIELD_MANAGER)
                    .map(|_| Some(format!("apply {}", obj_ref(object))))
                    .map_err(|e| e.to_string()),
                Action::Delete { target, uid } => api
                    .delete(
                        &target.api_version,
                        &target.kind,
                        target.namespace.as_deref(),
                        &target.name,
                        Some(uid),
                        None,
                    )
                    .map(|_| Some(format!("delete {}/{}", target.kind, target.name)))
                    .map_err(|e| e.to_string()),
                Action::PatchStatus { target, status } => api
                    .apply_status(
                        &target.api_version,
                        &target.kind,
                        target.namespace.as_deref(),
                        &target.name,
                        status.clone(),
                    )
                    .map(|_| Some(format!("status {}/{}", target.kind, target.name)))
                    .map_err(|e| e.to_string()),
                Action::Event {
                    regarding,
                    type_,
                    reason,
                    message,
                } => {
                    let t = match type_ {
                        EventType::Normal => "Normal",
                        EventType::Warning => "Warning",
                    };
                    self.events.push((
                        now,
                        OpEvent::Event {
                            type_: t.into(),
                            reason: reason.clone(),
                            message: message.clone(),
                        },
                    ));
                    api.create(json!({"apiVersion": "v1", "kind": "Event",
                        "metadata": {"generateName": format!("{}.", regarding.name), "namespace": regarding.namespace.clone().unwrap_or_else(|| self.namespace.clone())},
                        "involvedObject": {"apiVersion": regarding.api_version, "kind": regarding.kind, "name": regarding.name, "namespace": regarding.namespace},
                        "type": t, "reason": reason, "message": message, "source": {"component": "tusk"},
                        "firstTimestamp": rfc3339(now), "lastTimestamp": rfc3339(now), "count": 1}))
                        .map(|_| None)
                        .map_err(|e| e.to_string())
                }
                Action::Sql {
                    pod, statements, ..
                } => patroni.sql(&pod.name, statements).map(|_| {
                    self.events.push((
                        now,
                        OpEvent::Sql {
                            pod: pod.name.clone(),
                            statements: statements.len(),
                        },
                    ));
                    Some(format!("sql on {}", pod.name))
                }),
                Action::Switchover { pod, candidate } => {
                    // Patroni's REST API on the primary: refuse unless it is the leader.
                    let ns = pod
                        .namespace
                        .clone()
                        .unwrap_or_else(|| self.namespace.clone());
                    match patroni.members.get(&pod.name) {
                        Some(m)
                            if m.running() && m.role == crate::models::patroni::Role::Primary =>
                        {
                            let cluster = m.cluster.clone();
                            Patroni::request_switchover(
                                api,
                                &ns,
                                &cluster,
                                Some(&pod.name),
                                candidate.as_deref(),
                            )
                            .map(|_| {
                                Some(format!(
                                    "switchover {} -> {}",
                                    pod.name,
                                    candidate.as_deref().unwrap_or("best replica")
                                ))
                            })
                        }
                        _ => Err(format!(
                            "switchover refused: {} is not the running primary",
                            pod.name
                        )),
                    }
                }
                Action::RefreshBackupInfo {
                    pod, config_map, ..
                } => {
                    // The world's pgBackRest model keeps the info ConfigMap itself (without
                    // tusk's read time), so the core does not ask; if it does, what the
                    // model published is what `pgbackrest info` would print.
                    let ns = pod
                        .namespace
                        .clone()
                        .unwrap_or_else(|| self.namespace.clone());
                    let name = config_map["metadata"]["name"].as_str().unwrap_or("");
                    let text = api
                        .get("v1", "ConfigMap", Some(&ns), name)
                        .and_then(|cm| cm["data"]["info.json"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "[]".into());
                    let mut cm = config_map.clone();
                    cm["data"] = json!({"info.json": text});
                    api.apply(cm, FIELD_MANAGER)
                        .map(|_| Some(format!("pgbackrest info on {}", pod.name)))
                        .map_err(|e| e.to_string())
                }
                Action::RemoveFinalizer { target, finalizer } => {
                    match api.get(
                        &target.api_version,
                        &target.kind,
                        target.namespace.as_deref(),
                        &target.name,
                    ) {
                        None => Ok(None),
                        Some(mut o) => {
                            let before = o["metadata"]["finalizers"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default();
                            let after: Vec<Value> = before
                                .iter()
                                .filter(|f| f.as_str() != Some(finalizer.as_str()))
                                .cloned()
                                .collect();
                            if after.len() == before.len() {
                                Ok(None)
                            } else {
                                o["metadata"]["finalizers"] = Value::Array(after);
                                api.update(o)
                                    .map(|_| {
                                        Some(format!(
                                            "remove finalizer {finalizer} from {}/{}",
                                            target.kind, target.name
                                        ))
                                    })
                                    .map_err(|e| e.to_string())
                            }
                        }
                    }
                }
                Action::RequeueAfter { .. } => Ok(None),
            };
            match result {
                Ok(Some(what)) => {
                    if !self.wrote(now, what) {
                        return Err(());
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    self.events.push((
                        now,
                        OpEvent::Failed {
                            what: describe_action(action),
                            error,
                        },
                    ));
                    return Err(());
                }
            }
        }
        Ok(())
    }
}

pub fn describe_action(a: &Action) -> String {
    match a {
        Action::Apply { object } => format!("apply {}", obj_ref(object)),
        Action::Delete { target, .. } => format!("delete {}/{}", target.kind, target.name),
        Action::PatchStatus { target, .. } => format!("status {}/{}", target.kind, target.name),
        Action::Event { reason, .. } => format!("event {reason}"),
        Action::Sql { pod, .. } => format!("sql on {}", pod.name),
        Action::RefreshBackupInfo { pod, .. } => format!("pgbackrest info on {}", pod.name),
        Action::Switchover { pod, .. } => format!("switchover from {}", pod.name),
        Action::RemoveFinalizer { target, finalizer } => {
            format!("remove finalizer {finalizer} from {}", target.name)
        }
        Action::RequeueAfter { after } => format!("requeue after {after:?}"),
    }
}
