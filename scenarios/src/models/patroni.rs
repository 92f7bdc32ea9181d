//! Patroni (3.x, Kubernetes DCS with `use_endpoints`) in front of each database pod, acting
//! through the API the way the real one does (research/apiserver.md §6):
//!
//! - the leader lock is the `<scope>` Endpoints (`scope` = `<cluster>-ha`) with annotations
//!   `leader`, `acquireTime`, `renewTime`, `transitions`, `ttl`, `optime`; it is renewed every
//!   `loop_wait` with a resourceVersion-conditional update; its subsets point at the leader pod,
//!   which is how the `-primary`/`-ha` Services route clients;
//! - there is no server-side TTL: a member treats the lock as expired when it has not seen the
//!   object change for `ttl` since it last observed a change;
//! - `<scope>-config` carries `initialize` (system identifier), `config` and `history`;
//!   `<scope>-failover` carries switchover requests (`leader`, `member`); `<scope>-sync` the
//!   synchronous standby (`leader`, `sync_standby`);
//! - each member labels its own pod with its role and annotates it with its `status`.
//!
//! A primary that cannot reach the API demotes itself once it could not renew for
//! `retry_timeout`, before any replica may consider the lock expired (`ttl`), so there is never
//! more than one primary accepting writes.

use super::postgres::{DataDir, fmt_lsn, run_sql};
use crate::clock::{Millis, SECOND, rfc3339};
use crate::labels;
use crate::rng::SimRng;
use crate::store::{ModelApi, peek};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use tusk_fake_apiserver::Objects;

/// Patroni settings for one cluster (from the CR: `spec.patroni`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub ttl: Millis,
    pub loop_wait: Millis,
    pub retry_timeout: Millis,
    pub synchronous_mode: bool,
    pub synchronous_mode_strict: bool,
    pub maximum_lag_on_failover: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ttl: 30 * SECOND,
            loop_wait: 10 * SECOND,
            retry_timeout: 10 * SECOND,
            synchronous_mode: false,
            synchronous_mode_strict: false,
            maximum_lag_on_failover: 1 << 20,
        }
    }
}

/// Whether a `<scope>-sync` object names `member` among its synchronous standbys.
fn lists_sync_standby(sync: &Value, member: &str) -> bool {
    ann(sync, "sync_standby").is_some_and(|s| s.split(',').any(|x| x.trim() == member))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.as_str(), "on" | "true" | "yes" | "1"),
        Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    }
}

impl Settings {
    /// Reads `spec.patroni` of a PerconaPGCluster.
    pub fn from_cluster(cr: &Value) -> Self {
        let p = &cr["spec"]["patroni"];
        let d = &p["dynamicConfiguration"];
        let mut s = Settings::default();
        if let Some(t) = p["leaderLeaseDurationSeconds"].as_i64() {
            s.ttl = t.max(1) * SECOND;
        }
        if let Some(t) = p["syncPeriodSeconds"].as_i64() {
            s.loop_wait = t.max(1) * SECOND;
        }
        // Patroni's own constraint: loop_wait + 2 * retry_timeout <= ttl.
        s.retry_timeout = ((s.ttl - s.loop_wait) / 2).clamp(SECOND, 10 * SECOND);
        // Patroni 4's `quorum` also waits for standbys before acknowledging a commit. The
        // model has one synchronous standby, stricter than "any k of n", so no commit it
        // acknowledges could be lost where quorum commit keeps it.
        s.synchronous_mode = truthy(&d["synchronous_mode"]) || d["synchronous_mode"] == "quorum";
        s.synchronous_mode_strict = truthy(&d["synchronous_mode_strict"]);
        if let Some(l) = d["maximum_lag_on_failover"].as_u64() {
            s.maximum_lag_on_failover = l;
        }
        s
    }
}

/// What the member's process is busy with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    Stopped,
    /// Postgres starting (crash recovery included).
    Starting {
        until: Millis,
    },
    /// initdb after winning the initialize race.
    Bootstrapping {
        until: Millis,
        system_id: u64,
    },
    /// pg_basebackup from the leader.
    BaseBackup {
        until: Millis,
        from: String,
    },
    /// pg_rewind onto the leader's timeline.
    Rewinding {
        until: Millis,
        from: String,
    },
    Running,
}

impl Activity {
    /// When a timed activity (start, initdb, base backup, rewind) ends.
    fn until(&self) -> Option<Millis> {
        match self {
            Activity::Starting { until }
            | Activity::Bootstrapping { until, .. }
            | Activity::BaseBackup { until, .. }
            | Activity::Rewinding { until, .. } => Some(*until),
            Activity::Stopped | Activity::Running => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
}

/// One Patroni member (one database pod incarnation).
#[derive(Debug, Clone)]
pub struct Member {
    pub pod: String,
    pub uid: String,
    pub namespace: String,
    pub cluster: String,
    pub scope: String,
    pub pvc: String,
    pub ip: String,
    pub activity: Activity,
    pub role: Role,
    pub following: Option<String>,
    /// Whether postgres accepts writes (a primary that has not been demoted).
    pub accepting_writes: bool,
    next_loop: Millis,
    leader_rv: String,
    leader_seen: Millis,
    last_renew: Millis,
    /// Shut down cleanly (the kubelet may remove the pod).
    pub stopped_gracefully: bool,
}

impl Member {
    pub fn running(&self) -> bool {
        self.activity == Activity::Running
    }
}

/// Something a model did that a timeline or an invariant cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    Bootstrapped {
        pod: String,
        system_id: u64,
    },
    Promoted {
        pod: String,
        timeline: u32,
        lsn: u64,
        data: DataDir,
        cluster: String,
        resumed: bool,
    },
    Demoted {
        pod: String,
        reason: String,
    },
    LeaderAcquired {
        pod: String,
        transitions: u64,
    },
    LeaderReleased {
        pod: String,
    },
    Rewound {
        pod: String,
        timeline: u32,
    },
    BaseBackup {
        pod: String,
        from: String,
    },
    Crashed {
        pod: String,
    },
    Stopped {
        pod: String,
    },
    Started {
        pod: String,
    },
    /// PostgreSQL stopped on a PANIC (a checkpoint could not write WAL to a full disk).
    Panicked {
        pod: String,
    },
    /// Patroni could not start PostgreSQL (crash recovery cannot write to a full disk); it
    /// keeps trying every loop. Reported once per outage.
    StartFailed {
        pod: String,
    },
    SwitchoverStarted {
        from: String,
        to: String,
    },
}

/// What the world lends the model about processes and the network.
pub trait Infra {
    /// Whether the database container of this pod is running (node up, not crashed).
    fn container_up(&self, pod: &Value, now: Millis) -> bool;
    /// Whether the containers of a pod being deleted have been told to stop. Only its
    /// kubelet tells them, so not while that kubelet cannot reach the API server.
    fn told_to_stop(&self, pod: &Value) -> bool {
        pod["metadata"].get("deletionTimestamp").is_some()
    }
}

/// Trusts pod status: a running first container means a running process. Used in real time.
pub struct PodStatusInfra;
impl Infra for PodStatusInfra {
    fn container_up(&self, pod: &Value, _now: Millis) -> bool {
        pod["status"]["phase"] == "Running"
            && pod["status"]["podIP"].is_string()
            && pod["status"]["containerStatuses"][0]["state"]["running"].is_object()
    }
}

/// What a member takes from its pod: read once per step from the borrowed object.
#[derive(Debug, Clone)]
struct PodFacts {
    name: String,
    uid: String,
    cluster: String,
    scope: String,
    pvc: String,
    terminating: bool,
    up: bool,
    ip: String,
}

impl PodFacts {
    /// The facts of a database pod, `up` and `terminating` left false: everything else is a
    /// function of the stored object, so of its (uid, resourceVersion).
    fn stored(pod: &Value) -> Self {
        let lbl = &pod["metadata"]["labels"];
        let cluster = lbl[labels::CLUSTER].as_str().unwrap_or("").to_string();
        let scope = lbl[labels::PATRONI]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{cluster}-ha"));
        let claims = || {
            pod["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        };
        let pvc = claims()
            .find(|c| c.contains("pgdata"))
            .or_else(|| claims().next())
            .unwrap_or("")
            .to_string();
        Self {
            name: pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
            uid: pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
            cluster,
            scope,
            pvc,
            // Both asked again every step: they depend on the node and the kubelet too.
            terminating: false,
            up: false,
            ip: pod["status"]["podIP"].as_str().unwrap_or("").to_string(),
        }
    }
}

/// [`PodFacts::stored`] of a pod (None: not a database pod), remembered with the pod's uid and
/// resourceVersion it was read at.
#[derive(Debug)]
struct StoredFacts {
    uid: String,
    rv: String,
    facts: Option<PodFacts>,
}

/// The Patroni + PostgreSQL model for every database pod of a namespace.
#[derive(Debug)]
pub struct Patroni {
    pub namespace: String,
    pub members: BTreeMap<String, Member>,
    /// Data directories by PVC name: they outlive pods.
    pub data: BTreeMap<String, DataDir>,
    /// Pods whose Patroni cannot reach the API server.
    pub partitioned: BTreeSet<String>,
    /// Pods whose disk is full: postgres refuses writes that need new space at once, PANICs
    /// at its next checkpoint, and cannot start again until there is space.
    pub disk_full: BTreeSet<String>,
    /// When a full disk's PostgreSQL PANICs: its next checkpoint.
    checkpoint_panic: BTreeMap<String, Millis>,
    /// Members whose start failed on a full disk (reported once).
    start_failing: BTreeSet<String>,
    /// Standbys receive WAL this long after it is committed (async replication lag).
    pub stream_delay: Millis,
    /// Standbys that receive WAL later than `stream_delay` (a replication-lag fault on one pod).
    pub lagging: BTreeMap<String, Millis>,
    pub events: Vec<(Millis, ModelEvent)>,
    /// Pods whose node clock is off by this much (clock-skew fault). Patroni writes its local
    /// time into what it stores (`acquireTime`, `renewTime`, history entries); it times the
    /// lock by when it saw it change, so skew never decides who leads.
    pub clock_skew: BTreeMap<String, Millis>,
    /// Per cluster: the synchronous standby the primary currently waits for.
    sync_standby: BTreeMap<String, Option<String>>,
    wakeups: Vec<Millis>,
    /// Jitter added to loop timings, drawn from the world's RNG.
    jitter: Vec<Millis>,
    /// Pod uids whose processes the kubelet stopped after a graceful delete, recorded by
    /// [`Patroni::sigterm`] when the model may not have stepped while the pod was terminating.
    sigterm: BTreeSet<String>,
    /// Per pod name, what [`Patroni::step`] last read from it (most pods are unchanged from
    /// one step to the next).
    pod_facts: BTreeMap<String, StoredFacts>,
}

const START_TIME: Millis = 2 * SECOND;
const INITDB_TIME: Millis = 5 * SECOND;
const BASEBACKUP_TIME: Millis = 8 * SECOND;
const REWIND_TIME: Millis = 3 * SECOND;
/// PostgreSQL's default `checkpoint_timeout`.
const CHECKPOINT_TIMEOUT: Millis = 5 * 60 * SECOND;
/// Patroni's default `loop_wait`: how often it retries starting PostgreSQL.
const START_RETRY: Millis = 10 * SECOND;

fn ann<'a>(o: &'a Value, k: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][k]
        .as_str()
        .filter(|s| !s.is_empty())
}

fn rv(o: &Value) -> String {
    rv_str(o).to_string()
}

fn rv_str(o: &Value) -> &str {
    o["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

impl Patroni {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            members: BTreeMap::new(),
            data: BTreeMap::new(),
            partitioned: BTreeSet::new(),
            disk_full: BTreeSet::new(),
            checkpoint_panic: BTreeMap::new(),
            start_failing: BTreeSet::new(),
            stream_delay: 200,
            lagging: BTreeMap::new(),
            events: Vec::new(),
            clock_skew: BTreeMap::new(),
            sync_standby: BTreeMap::new(),
            wakeups: Vec::new(),
            jitter: Vec::new(),
            sigterm: BTreeSet::new(),
            pod_facts: BTreeMap::new(),
        }
    }

    /// The kubelet stopped this pod's processes after a graceful delete: Patroni got SIGTERM.
    /// In real time the pod can be gone and recreated before the model steps again; the next
    /// step then shuts the old incarnation down cleanly (releasing the leader lock) instead of
    /// taking it for a crash.
    pub fn sigterm(&mut self, pod_uid: &str) {
        if self.members.values().any(|m| m.uid == pod_uid) {
            self.sigterm.insert(pod_uid.to_string());
        }
    }

    /// The disk under `pod` fills up: PostgreSQL refuses writes that need new space now, and
    /// PANICs at its next checkpoint (at most `checkpoint_timeout`, 5 minutes, away), when it
    /// must write WAL it has no room for.
    pub fn fill_disk(&mut self, pod: &str, now: Millis) {
        if self.disk_full.insert(pod.to_string()) {
            self.checkpoint_panic
                .insert(pod.to_string(), now + CHECKPOINT_TIMEOUT);
        }
    }

    /// There is space again: the next start attempt succeeds.
    pub fn free_disk(&mut self, pod: &str) {
        self.disk_full.remove(pod);
        self.checkpoint_panic.remove(pod);
        self.start_failing.remove(pod);
    }

    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        let mut t = self.wakeups.iter().copied().filter(|t| *t > now).min();
        for at in self.checkpoint_panic.values() {
            if *at > now {
                t = Some(t.map_or(*at, |x: Millis| x.min(*at)));
            }
        }
        for m in self.members.values() {
            let mut cand = vec![];
            if m.activity != Activity::Stopped {
                cand.push(m.next_loop);
            }
            cand.extend(m.activity.until());
            for c in cand {
                if c > now {
                    t = Some(t.map_or(c, |x: Millis| x.min(c)));
                }
            }
        }
        t
    }

    /// The time on the clock of the node `pod` runs on (the world's time plus any skew).
    pub fn local_time(&self, pod: &str, now: Millis) -> Millis {
        now + self.clock_skew.get(pod).copied().unwrap_or(0)
    }

    fn event(&mut self, now: Millis, e: ModelEvent) {
        self.events.push((now, e));
    }

    /// The member of the pod holding the lock per the DCS, if its process runs as primary.
    pub fn primary_of(&self, cluster: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.cluster == cluster && m.running() && m.role == Role::Primary)
    }

    /// Members that would accept a write right now.
    pub fn writable(&self) -> Vec<&Member> {
        self.members
            .values()
            .filter(|m| m.running() && m.role == Role::Primary && m.accepting_writes)
            .collect()
    }

    /// Draws some jitter for loop timings; the world refills it from its RNG each step.
    pub fn feed_jitter(&mut self, rng: &mut SimRng) {
        while self.jitter.len() < 8 {
            self.jitter.push(rng.range(0, 200));
        }
    }

    fn take_jitter(&mut self) -> Millis {
        self.jitter.pop().unwrap_or(0)
    }

    /// Replication: every streaming standby receives what its primary committed at least
    /// `stream_delay` ago. Runs first in a step, while the primary still lives at `now`.
    pub fn replicate(&mut self, now: Millis) {
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            let m = &self.members[&name];
            if !m.running() || m.role != Role::Replica {
                continue;
            }
            let Some(leader) = m.following.clone() else {
                continue;
            };
            let Some(p) = self.members.get(&leader) else {
                continue;
            };
            if !p.running() || p.role != Role::Primary {
                continue;
            }
            let (Some(pd), Some(md)) = (self.data.get(&p.pvc), self.data.get(&m.pvc)) else {
                continue;
            };
            if !pd.can_serve(md) {
                continue;
            }
            // Lend the primary's directory out of the map while the standby's is updated.
            let (ppvc, pvc) = (p.pvc.clone(), m.pvc.clone());
            if ppvc == pvc {
                continue;
            }
            let pd = self.data.remove(&ppvc).expect("checked above");
            let delay = self
                .lagging
                .get(&name)
                .copied()
                .unwrap_or(self.stream_delay);
            let upto = pd.visible_at(now, delay);
            if let Some(md) = self.data.get_mut(&pvc) {
                md.receive(&pd, upto);
            }
            self.data.insert(ppvc, pd);
        }
    }

    /// Whether this replica streams from its leader without needing a rewind.
    pub fn streaming(&self, name: &str) -> bool {
        let Some(m) = self.members.get(name) else {
            return false;
        };
        let Some(l) = m.following.as_ref().and_then(|l| self.members.get(l)) else {
            return false;
        };
        m.running()
            && m.role == Role::Replica
            && l.running()
            && l.role == Role::Primary
            && match (self.data.get(&l.pvc), self.data.get(&m.pvc)) {
                (Some(a), Some(b)) => a.can_serve(b),
                _ => false,
            }
    }

    /// A client write on `pod`. Returns the commit's `(timeline, lsn)` once acknowledged.
    pub fn write(
        &mut self,
        pod: &str,
        now: Millis,
        settings: &Settings,
    ) -> Result<(u32, u64), String> {
        let m = self.members.get(pod).ok_or("no postgres there")?;
        if !m.running() || m.role != Role::Primary || !m.accepting_writes {
            return Err(format!("{pod} is not accepting writes (read-only or down)"));
        }
        if self.disk_full.contains(pod) {
            return Err(format!(
                "{pod}: could not extend file: No space left on device"
            ));
        }
        let cluster = m.cluster.clone();
        let pvc = m.pvc.clone();
        let standby = if settings.synchronous_mode {
            match self.sync_standby.get(&cluster).cloned().flatten() {
                Some(s) if self.streaming(&s) => Some(s),
                Some(_) => return Err("waiting for the synchronous standby".into()),
                None if settings.synchronous_mode_strict => {
                    return Err("no synchronous standby (synchronous_mode_strict)".into());
                }
                None => None,
            }
        } else {
            None
        };
        let d = self.data.get_mut(&pvc).ok_or("no data directory")?;
        let lsn = d.commit(now, 128);
        let tl = d.timeline;
        if let Some(s) = standby {
            let spvc = self.members[&s].pvc.clone();
            if spvc != pvc {
                let primary = self.data.remove(&pvc).expect("written above");
                if let Some(sd) = self.data.get_mut(&spvc) {
                    sd.receive(&primary, lsn);
                }
                self.data.insert(pvc, primary);
            }
        }
        Ok((tl, lsn))
    }

    /// SQL from the operator, run on `pod` only if it is the primary (as the real executor
    /// refuses to run it anywhere else).
    pub fn sql(&mut self, pod: &str, statements: &[String]) -> Result<(), String> {
        let m = self
            .members
            .get(pod)
            .ok_or_else(|| format!("pod {pod} runs no postgres"))?;
        if !m.running() || m.role != Role::Primary || !m.accepting_writes {
            return Err(format!("pod {pod} is not the primary; SQL not run"));
        }
        let pvc = m.pvc.clone();
        let d = self.data.get_mut(&pvc).ok_or("no data directory")?;
        run_sql(d, statements);
        Ok(())
    }

    /// Data directory of a pod's member.
    pub fn data_of(&self, pod: &str) -> Option<&DataDir> {
        self.members.get(pod).and_then(|m| self.data.get(&m.pvc))
    }

    /// PostgreSQL on a full disk PANICs at its checkpoint: the process is gone (no lock
    /// release); Patroni then tries to start it again.
    fn checkpoint_panics(&mut self, now: Millis) {
        let due: Vec<String> = self
            .checkpoint_panic
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for pod in due {
            self.checkpoint_panic.remove(&pod);
            if let Some(m) = self.members.get_mut(&pod)
                && m.running()
            {
                m.activity = Activity::Stopped;
                m.accepting_writes = false;
                self.event(now, ModelEvent::Panicked { pod });
            }
        }
    }

    /// Kill a member's process at once (no lock release).
    pub fn kill(&mut self, pod: &str, now: Millis) {
        if let Some(m) = self.members.get_mut(pod)
            && m.activity != Activity::Stopped
        {
            m.activity = Activity::Stopped;
            m.accepting_writes = false;
            self.event(
                now,
                ModelEvent::Crashed {
                    pod: pod.to_string(),
                },
            );
        }
    }

    /// One pass: members follow their pods, then every member whose loop is due runs it.
    pub fn step(
        &mut self,
        api: &mut dyn ModelApi,
        now: Millis,
        infra: &dyn Infra,
        rng: &mut SimRng,
    ) {
        self.feed_jitter(rng);
        self.wakeups.clear();
        let ns = self.namespace.clone();
        let mut pods: Vec<PodFacts> = Vec::new();
        let memo = &mut self.pod_facts;
        let mut visited = 0usize;
        api.visit("v1", "Pod", Some(&ns), &mut |p| {
            visited += 1;
            let meta = &p["metadata"];
            let name = meta["name"].as_str().unwrap_or("");
            let uid = meta["uid"].as_str().unwrap_or("");
            let rv = meta["resourceVersion"].as_str().unwrap_or("");
            let known = memo
                .get(name)
                .filter(|m| !rv.is_empty() && m.rv == rv && m.uid == uid);
            let facts = match known {
                Some(m) => m.facts.clone(),
                None => {
                    let facts =
                        (meta["labels"][labels::DATA] == "postgres").then(|| PodFacts::stored(p));
                    memo.insert(
                        name.to_string(),
                        StoredFacts {
                            uid: uid.to_string(),
                            rv: rv.to_string(),
                            facts: facts.clone(),
                        },
                    );
                    facts
                }
            };
            if let Some(mut f) = facts {
                f.up = infra.container_up(p, now);
                f.terminating = infra.told_to_stop(p);
                pods.push(f);
            }
        });
        // Forget pods that are gone, now and then (the memo is only a shortcut).
        if memo.len() > visited + 64 {
            memo.clear();
        }
        let present: BTreeSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        // Pods that vanished take their process with them.
        let gone: Vec<String> = self
            .members
            .keys()
            .filter(|n| !present.contains(n.as_str()))
            .cloned()
            .collect();
        for g in gone {
            self.end_process(api, &g, now);
        }
        // PVCs that vanished take their data with them.
        let mut pvcs: BTreeSet<String> = BTreeSet::new();
        api.visit("v1", "PersistentVolumeClaim", Some(&ns), &mut |p| {
            pvcs.insert(p["metadata"]["name"].as_str().unwrap_or("").to_string());
        });
        self.data.retain(|k, _| pvcs.contains(k));

        for pod in pods {
            self.follow_pod(api, pod, now);
        }
        self.checkpoint_panics(now);
        // Who should wake early: a released lock wakes everyone (Patroni watches the leader).
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            self.advance_activity(api, &name, now);
            let Some(m) = self.members.get(&name) else {
                continue;
            };
            if !m.running() {
                continue;
            }
            let released = peek(&*api, "v1", "Endpoints", Some(&ns), &m.scope, |l| {
                rv_str(l) != m.leader_rv && ann(l, "leader").is_none()
            })
            .unwrap_or(false);
            if now >= m.next_loop || released {
                let settings = peek(
                    &*api,
                    labels::CR_API,
                    labels::CR_KIND,
                    Some(&ns),
                    &m.cluster,
                    Settings::from_cluster,
                )
                .unwrap_or_default();
                self.run_loop(api, &name, now, &settings);
            }
        }
    }

    fn follow_pod(&mut self, api: &mut dyn Objects, pod: PodFacts, now: Millis) {
        let PodFacts {
            name,
            uid,
            cluster,
            scope,
            pvc,
            terminating,
            up,
            ip,
        } = pod;
        if self.members.get(&name).is_some_and(|m| m.uid != uid) {
            // A new incarnation of the pod: the old process is gone.
            self.end_process(api, &name, now);
        }
        let m = self.members.entry(name.clone()).or_insert_with(|| Member {
            pod: name.clone(),
            uid: uid.clone(),
            namespace: self.namespace.clone(),
            cluster,
            scope,
            pvc,
            ip: String::new(),
            activity: Activity::Stopped,
            role: Role::Replica,
            following: None,
            accepting_writes: false,
            next_loop: now,
            leader_rv: String::new(),
            leader_seen: now,
            last_renew: now,
            stopped_gracefully: false,
        });
        m.ip = ip;
        if terminating {
            self.sigterm.remove(&uid);
            if m.activity != Activity::Stopped && up {
                self.graceful_stop(api, &name, now);
            } else if let Some(m) = self.members.get_mut(&name) {
                m.stopped_gracefully = true;
            }
            return;
        }
        if m.activity != Activity::Stopped && !up {
            m.activity = Activity::Stopped;
            m.accepting_writes = false;
            self.event(now, ModelEvent::Crashed { pod: name });
            return;
        }
        if m.activity == Activity::Stopped && up && !m.stopped_gracefully {
            m.activity = Activity::Starting {
                until: now + START_TIME,
            };
            m.role = Role::Replica;
            m.following = None;
            m.accepting_writes = false;
        }
    }

    /// A member's process is gone with its pod (deleted, or replaced by a new incarnation):
    /// cleanly if it was told to stop while the model was not looking ([`Patroni::sigterm`]),
    /// otherwise, unless it had stopped, as a crash (no lock release).
    fn end_process(&mut self, api: &mut dyn Objects, name: &str, now: Millis) {
        let Some(uid) = self.members.get(name).map(|m| m.uid.clone()) else {
            return;
        };
        if self.sigterm.remove(&uid) && !self.members[name].stopped_gracefully {
            self.graceful_stop(api, name, now);
        }
        if let Some(m) = self.members.remove(name)
            && m.activity != Activity::Stopped
            && !m.stopped_gracefully
        {
            self.event(
                now,
                ModelEvent::Crashed {
                    pod: name.to_string(),
                },
            );
        }
    }

    /// SIGTERM: a primary holding the lock lets its standbys catch up (shutdown checkpoint),
    /// then releases the lock so a replica takes over at once.
    fn graceful_stop(&mut self, api: &mut dyn Objects, name: &str, now: Millis) {
        let Some(m) = self.members.get(name).cloned() else {
            return;
        };
        if m.role == Role::Primary && m.running() {
            if let Some(pd) = self.data.get(&m.pvc).cloned() {
                let followers: Vec<String> = self
                    .members
                    .values()
                    .filter(|r| r.following.as_deref() == Some(name))
                    .map(|r| r.pod.clone())
                    .collect();
                for f in followers {
                    if self.streaming(&f) {
                        let pvc = self.members[&f].pvc.clone();
                        if let Some(d) = self.data.get_mut(&pvc) {
                            d.receive(&pd, pd.lsn);
                        }
                    }
                }
            }
            if !self.partitioned.contains(name) {
                self.release_lock(api, &m, now);
            }
        }
        let m = self.members.get_mut(name).expect("member");
        m.activity = Activity::Stopped;
        m.accepting_writes = false;
        m.stopped_gracefully = true;
        if let Some(d) = self.data.get_mut(&m.pvc) {
            d.was_primary = m.role == Role::Primary;
        }
        self.event(
            now,
            ModelEvent::Stopped {
                pod: name.to_string(),
            },
        );
    }

    fn release_lock(&mut self, api: &mut dyn Objects, m: &Member, now: Millis) {
        let Some(mut l) = api.get("v1", "Endpoints", Some(&m.namespace), &m.scope) else {
            return;
        };
        if ann(&l, "leader") != Some(m.pod.as_str()) {
            return;
        }
        if let Some(a) = l["metadata"]["annotations"].as_object_mut() {
            a.remove("leader");
        }
        l["subsets"] = json!([]);
        if api.update(l).is_ok() {
            self.event(now, ModelEvent::LeaderReleased { pod: m.pod.clone() });
        }
    }

    fn advance_activity(&mut self, api: &mut dyn Objects, name: &str, now: Millis) {
        // Most passes find nothing due: look before copying the member.
        let due = self
            .members
            .get(name)
            .and_then(|m| m.activity.until())
            .is_some_and(|until| until <= now);
        if !due {
            return;
        }
        let Some(m) = self.members.get(name).cloned() else {
            return;
        };
        match m.activity.clone() {
            Activity::Starting { until } if until <= now && self.disk_full.contains(name) => {
                // Crash recovery ends with a checkpoint it cannot write. Patroni holding the
                // lock gives it up ("removed leader key after trying and failing to start
                // postgres"), so a replica can take over, and tries again next loop.
                if self.start_failing.insert(name.to_string()) {
                    self.event(
                        now,
                        ModelEvent::StartFailed {
                            pod: name.to_string(),
                        },
                    );
                }
                if !self.partitioned.contains(name) {
                    self.release_lock(api, &m, now);
                }
                let mm = self.members.get_mut(name).expect("member");
                mm.activity = Activity::Starting {
                    until: now + START_RETRY,
                };
            }
            Activity::Starting { until } if until <= now => {
                let m = self.members.get_mut(name).expect("member");
                m.activity = Activity::Running;
                m.next_loop = now;
                self.event(
                    now,
                    ModelEvent::Started {
                        pod: name.to_string(),
                    },
                );
            }
            Activity::Bootstrapping { until, system_id } if until <= now => {
                self.data.insert(m.pvc.clone(), DataDir::initdb(system_id));
                let mm = self.members.get_mut(name).expect("member");
                mm.activity = Activity::Running;
                mm.next_loop = now;
                self.event(
                    now,
                    ModelEvent::Bootstrapped {
                        pod: name.to_string(),
                        system_id,
                    },
                );
                // Take the lock right away, as Patroni does after a successful bootstrap.
                let _ = api;
            }
            Activity::BaseBackup { until, from } if until <= now => {
                let src = self
                    .members
                    .get(&from)
                    .and_then(|f| self.data.get(&f.pvc))
                    .cloned();
                let mm = self.members.get_mut(name).expect("member");
                match src {
                    Some(mut d) => {
                        d.was_primary = false;
                        d.recent.clear();
                        self.data.insert(mm.pvc.clone(), d);
                        mm.activity = Activity::Running;
                        mm.following = Some(from.clone());
                        self.event(
                            now,
                            ModelEvent::BaseBackup {
                                pod: name.to_string(),
                                from,
                            },
                        );
                    }
                    None => mm.activity = Activity::Running,
                }
                let mm = self.members.get_mut(name).expect("member");
                mm.next_loop = now;
            }
            Activity::Rewinding { until, from } if until <= now => {
                let src = self
                    .members
                    .get(&from)
                    .and_then(|f| self.data.get(&f.pvc))
                    .cloned();
                let pvc = m.pvc.clone();
                if let (Some(s), Some(d)) = (src, self.data.get_mut(&pvc)) {
                    d.rewind_to(&s);
                    let tl = d.timeline;
                    self.event(
                        now,
                        ModelEvent::Rewound {
                            pod: name.to_string(),
                            timeline: tl,
                        },
                    );
                }
                let mm = self.members.get_mut(name).expect("member");
                mm.activity = Activity::Running;
                mm.following = Some(from);
                mm.next_loop = now;
            }
            _ => {}
        }
    }

    fn demote(&mut self, name: &str, now: Millis, reason: &str) {
        let m = self.members.get_mut(name).expect("member");
        if m.role == Role::Primary {
            m.role = Role::Replica;
            m.accepting_writes = false;
            m.following = None;
            if let Some(d) = self.data.get_mut(&m.pvc) {
                d.was_primary = false;
            }
            self.event(
                now,
                ModelEvent::Demoted {
                    pod: name.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
    }

    fn promote(&mut self, api: &mut dyn Objects, name: &str, now: Millis) {
        let m = self.members.get(name).cloned().expect("member");
        let Some(system_id) = self.data.get(&m.pvc).map(|d| d.system_id) else {
            return;
        };
        // The newest timeline of this database anywhere: the other data directories stand for
        // the history files their primaries archived.
        let newest = self
            .data
            .values()
            .filter(|o| o.system_id == system_id)
            .map(|o| o.timeline)
            .max()
            .unwrap_or(0);
        let Some(d) = self.data.get_mut(&m.pvc) else {
            return;
        };
        // A primary that restarts and takes the lock back resumes read-write on its timeline,
        // but only if no newer timeline was started meanwhile; otherwise Patroni starts it
        // read-only and promotes it, and PostgreSQL picks a timeline above every archived one.
        let resumed = d.was_primary && d.timeline >= newest;
        if !resumed {
            d.promote_after(newest);
        }
        let d = d.clone();
        let mm = self.members.get_mut(name).expect("member");
        mm.role = Role::Primary;
        mm.accepting_writes = true;
        mm.following = None;
        if !resumed {
            // history in `<scope>-config`, as Patroni records it after a promotion.
            if let Some(mut cfg) = api.get(
                "v1",
                "Endpoints",
                Some(&m.namespace),
                &format!("{}-config", m.scope),
            ) {
                let mut hist: Vec<Value> = ann(&cfg, "history")
                    .and_then(|h| serde_json::from_str(h).ok())
                    .unwrap_or_default();
                if let Some((tl, lsn)) = d.history.last() {
                    hist.push(json!([
                        tl,
                        lsn,
                        "no recovery target specified",
                        rfc3339(self.local_time(name, now)),
                        name
                    ]));
                }
                cfg["metadata"]["annotations"]["history"] =
                    json!(serde_json::to_string(&hist).unwrap_or_default());
                let _ = api.update(cfg);
            }
        }
        self.event(
            now,
            ModelEvent::Promoted {
                pod: name.to_string(),
                timeline: d.timeline,
                lsn: d.lsn,
                data: d,
                cluster: m.cluster.clone(),
                resumed,
            },
        );
    }

    /// The leader Endpoints as `m` writes it; `local` is the time on its own clock.
    fn leader_object(
        m: &Member,
        local: Millis,
        settings: &Settings,
        acquire: Option<(String, u64)>,
        optime: u64,
        old: Option<&Value>,
    ) -> Value {
        let mut obj = old.cloned().unwrap_or_else(|| {
            json!({"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": m.scope, "namespace": m.namespace,
                                "labels": {labels::CLUSTER: m.cluster, labels::PATRONI: m.scope},
                                "annotations": {}}})
        });
        let a = &mut obj["metadata"]["annotations"];
        if !a.is_object() {
            *a = json!({});
        }
        a["leader"] = json!(m.pod);
        a["renewTime"] = json!(rfc3339(local));
        a["ttl"] = json!((settings.ttl / SECOND).to_string());
        a["optime"] = json!(optime.to_string());
        if let Some((acq, transitions)) = acquire {
            a["acquireTime"] = json!(acq);
            a["transitions"] = json!(transitions.to_string());
        }
        obj["subsets"] = json!([{
            "addresses": [{"ip": m.ip, "hostname": m.pod,
                "targetRef": {"kind": "Pod", "namespace": m.namespace, "name": m.pod, "uid": m.uid}}],
            "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}]}]);
        obj
    }

    fn run_loop(&mut self, api: &mut dyn ModelApi, name: &str, now: Millis, settings: &Settings) {
        let jitter = self.take_jitter();
        let m = self.members.get_mut(name).expect("member");
        m.next_loop = now + settings.loop_wait + jitter;
        let m = m.clone();
        let ns = m.namespace.clone();

        if self.partitioned.contains(name) {
            // Cannot reach the DCS: a primary demotes itself once retry_timeout has passed
            // since its last successful renew (Patroni: "demoting self because DCS is not
            // accessible and I was a leader").
            if m.role == Role::Primary && now - m.last_renew >= settings.retry_timeout {
                self.demote(
                    name,
                    now,
                    "the API server is not reachable and I was the leader",
                );
            } else if m.role == Role::Primary {
                let mm = self.members.get_mut(name).expect("member");
                mm.next_loop = m.last_renew + settings.retry_timeout;
            }
            return;
        }

        let leader = api.get("v1", "Endpoints", Some(&ns), &m.scope);
        if let Some(l) = &leader {
            let mm = self.members.get_mut(name).expect("member");
            if rv(l) != mm.leader_rv {
                mm.leader_rv = rv(l);
                mm.leader_seen = now;
            }
        }
        let m = self.members[name].clone();
        let config_name = format!("{}-config", m.scope);
        let initialized = peek(&*api, "v1", "Endpoints", Some(&ns), &config_name, |c| {
            ann(c, "initialize").is_some()
        })
        .unwrap_or(false);
        let has_data = self.data.contains_key(&m.pvc);

        if !initialized {
            let system_id = match self.data.get(&m.pvc) {
                Some(d) => d.system_id,
                None => {
                    // initdb's system identifier, derived from the pod's (seeded) uid.
                    7_000_000_000_000_000_000
                        + u64::from_str_radix(&crate::kube::hash_hex(&json!(m.uid)), 16)
                            .unwrap_or(0)
                            % 1_000_000_000_000_000_000
                }
            };
            let cfg = json!({"ttl": settings.ttl / SECOND, "loop_wait": settings.loop_wait / SECOND,
                "retry_timeout": settings.retry_timeout / SECOND,
                "maximum_lag_on_failover": settings.maximum_lag_on_failover,
                "synchronous_mode": settings.synchronous_mode,
                "postgresql": {"use_pg_rewind": true, "use_slots": false}});
            let won = match api.get("v1", "Endpoints", Some(&ns), &config_name) {
                None => api
                    .create(json!({"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": config_name, "namespace": ns,
                            "labels": {labels::CLUSTER: m.cluster, labels::PATRONI: m.scope},
                            "annotations": {"initialize": system_id.to_string(),
                                            "config": cfg.to_string()}}}))
                    .is_ok(),
                Some(mut c) => {
                    c["metadata"]["annotations"]["initialize"] = json!(system_id.to_string());
                    c["metadata"]["annotations"]["config"] = json!(cfg.to_string());
                    api.update(c).is_ok()
                }
            };
            if won && !has_data {
                let mm = self.members.get_mut(name).expect("member");
                mm.activity = Activity::Bootstrapping {
                    until: now + INITDB_TIME,
                    system_id,
                };
            }
            return;
        }

        let leader_name = leader
            .as_ref()
            .and_then(|l| ann(l, "leader"))
            .map(str::to_string);
        let expired = leader_name.is_none() || now >= m.leader_seen + settings.ttl;

        if !has_data {
            // A fresh member clones the leader with pg_basebackup.
            if let Some(l) = leader_name.as_ref().filter(|_| !expired)
                && self
                    .members
                    .get(l)
                    .is_some_and(|p| p.running() && self.data.contains_key(&p.pvc))
            {
                let mm = self.members.get_mut(name).expect("member");
                mm.activity = Activity::BaseBackup {
                    until: now + BASEBACKUP_TIME,
                    from: l.clone(),
                };
            } else if leader_name.is_none()
                && self
                    .members
                    .values()
                    .all(|o| o.cluster != m.cluster || !self.data.contains_key(&o.pvc))
            {
                // Every data directory is gone (PVCs lost): nothing to clone, nothing to
                // bootstrap over; Patroni waits for a leader to appear.
            }
            self.touch_member(api, name);
            return;
        }

        if leader_name.as_deref() == Some(name) {
            self.lead(
                api,
                name,
                now,
                settings,
                leader.as_ref().expect("leader exists"),
            );
        } else if let (Some(l), false) = (leader_name.clone(), expired) {
            if m.role == Role::Primary {
                self.demote(name, now, &format!("{l} holds the leader lock"));
            }
            self.follow(name, &l, now);
        } else {
            self.race(api, name, now, settings, leader.as_ref());
        }
        self.touch_member(api, name);
    }

    fn follow(&mut self, name: &str, leader: &str, now: Millis) {
        let Some(l) = self.members.get(leader).cloned() else {
            return;
        };
        let m = self.members.get(name).cloned().expect("member");
        if !l.running() || l.role != Role::Primary {
            let mm = self.members.get_mut(name).expect("member");
            mm.following = Some(leader.to_string());
            return;
        }
        let (Some(ld), Some(md)) = (self.data.get(&l.pvc), self.data.get(&m.pvc)) else {
            return;
        };
        if ld.system_id != md.system_id || !ld.can_serve(md) {
            let mm = self.members.get_mut(name).expect("member");
            mm.activity = Activity::Rewinding {
                until: now + REWIND_TIME,
                from: leader.to_string(),
            };
            return;
        }
        let mm = self.members.get_mut(name).expect("member");
        mm.following = Some(leader.to_string());
    }

    /// The healthiest-node check before racing for an expired lock.
    fn eligible(&self, api: &dyn Objects, name: &str, settings: &Settings) -> bool {
        let m = &self.members[name];
        let Some(md) = self.data.get(&m.pvc) else {
            return false;
        };
        // In synchronous mode only the members `<scope>-sync` lists (the leader and its
        // synchronous standby) may take the lock: the others may lack acknowledged commits.
        let sync_allows = !settings.synchronous_mode
            || api
                .get(
                    "v1",
                    "Endpoints",
                    Some(&m.namespace),
                    &format!("{}-sync", m.scope),
                )
                .is_none_or(|sync| {
                    let leader = ann(&sync, "leader");
                    (ann(&sync, "sync_standby").is_none() && leader.is_none())
                        || lists_sync_standby(&sync, name)
                        || leader == Some(name)
                });
        let failover = api.get(
            "v1",
            "Endpoints",
            Some(&m.namespace),
            &format!("{}-failover", m.scope),
        );
        if let Some(f) = &failover
            && let Some(candidate) = ann(f, "member")
        {
            // As Patroni: during a switchover (the request names the leader) in synchronous
            // mode, even the named candidate races only if `<scope>-sync` lists it. Otherwise
            // a leader lost mid-switchover would hand the lock to a member without the commits
            // its synchronous standby acknowledged.
            if ann(f, "leader").is_some() && !sync_allows {
                return false;
            }
            if candidate == name {
                return true;
            }
            // As Patroni asks the candidate for its status: the others defer only to a
            // healthy one, whose PostgreSQL runs on a data directory (reports a WAL
            // position). A candidate whose claim was lost has nothing to promote.
            if self
                .members
                .get(candidate)
                .is_some_and(|c| c.running() && self.data.contains_key(&c.pvc))
            {
                return false;
            }
        }
        if !sync_allows {
            return false;
        }
        for o in self.members.values() {
            if o.pod == name
                || o.cluster != m.cluster
                || !o.running()
                || self.partitioned.contains(&o.pod)
            {
                continue;
            }
            let Some(od) = self.data.get(&o.pvc) else {
                continue;
            };
            if (od.timeline, od.lsn) > (md.timeline, md.lsn) {
                return false;
            }
        }
        true
    }

    fn race(
        &mut self,
        api: &mut dyn Objects,
        name: &str,
        now: Millis,
        settings: &Settings,
        leader: Option<&Value>,
    ) {
        if !self.eligible(api, name, settings) {
            return;
        }
        let m = self.members[name].clone();
        let optime = self.data.get(&m.pvc).map_or(0, |d| d.lsn);
        let prev = leader.and_then(|l| ann(l, "leader")).map(str::to_string);
        let transitions = leader
            .and_then(|l| ann(l, "transitions"))
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
            + u64::from(leader.is_some() && prev.as_deref() != Some(name));
        let local = self.local_time(name, now);
        let obj = Self::leader_object(
            &m,
            local,
            settings,
            Some((rfc3339(local), transitions)),
            optime,
            leader,
        );
        let ok = match leader {
            None => api.create(obj).is_ok(),
            Some(_) => api.update(obj).is_ok(),
        };
        if !ok {
            return;
        }
        self.event(
            now,
            ModelEvent::LeaderAcquired {
                pod: name.to_string(),
                transitions,
            },
        );
        {
            let mm = self.members.get_mut(name).expect("member");
            mm.last_renew = now;
            if let Some(l) = api.get("v1", "Endpoints", Some(&m.namespace), &m.scope) {
                mm.leader_rv = rv(&l);
                mm.leader_seen = now;
            }
        }
        if m.role != Role::Primary {
            self.promote(api, name, now);
        }
        // A completed switchover/failover clears the request.
        let fname = format!("{}-failover", m.scope);
        if let Some(f) = api.get("v1", "Endpoints", Some(&m.namespace), &fname)
            && ann(&f, "member").is_some_and(|c| c == name)
        {
            let _ = api.delete("v1", "Endpoints", Some(&m.namespace), &fname, None, None);
        }
        self.manage_sync(api, name, now, settings);
    }

    fn lead(
        &mut self,
        api: &mut dyn Objects,
        name: &str,
        now: Millis,
        settings: &Settings,
        leader: &Value,
    ) {
        let m = self.members[name].clone();
        let optime = self.data.get(&m.pvc).map_or(0, |d| d.lsn);
        let local = self.local_time(name, now);
        let mut ok = api
            .update(Self::leader_object(
                &m,
                local,
                settings,
                None,
                optime,
                Some(leader),
            ))
            .is_ok();
        if !ok {
            // On 409 Patroni re-reads and retries once if the lock is still its own.
            if let Some(l) = api.get("v1", "Endpoints", Some(&m.namespace), &m.scope)
                && ann(&l, "leader") == Some(name)
            {
                ok = api
                    .update(Self::leader_object(
                        &m,
                        local,
                        settings,
                        None,
                        optime,
                        Some(&l),
                    ))
                    .is_ok();
            }
        }
        if !ok {
            self.demote(name, now, "failed to update the leader lock");
            return;
        }
        {
            let mm = self.members.get_mut(name).expect("member");
            mm.last_renew = now;
            if let Some(l) = api.get("v1", "Endpoints", Some(&m.namespace), &m.scope) {
                mm.leader_rv = rv(&l);
                mm.leader_seen = now;
            }
        }
        if m.role != Role::Primary {
            self.promote(api, name, now);
        }
        // Switchover requests.
        let fname = format!("{}-failover", m.scope);
        if let Some(f) = api.get("v1", "Endpoints", Some(&m.namespace), &fname) {
            let want_leader = ann(&f, "leader");
            let member = ann(&f, "member").map(str::to_string);
            if want_leader.is_none_or(|l| l == name) && member.as_deref() != Some(name) {
                // In synchronous mode Patroni hands over only to its synchronous standby.
                let sync_standby = settings
                    .synchronous_mode
                    .then(|| self.sync_standby.get(&m.cluster).cloned().flatten());
                let candidate = match (member, sync_standby) {
                    (Some(c), Some(s)) if s.as_deref() != Some(c.as_str()) => None,
                    (None, Some(s)) => s.filter(|c| self.streaming(c)),
                    (Some(c), _) => Some(c).filter(|c| self.streaming(c)),
                    (None, None) => self
                        .members
                        .values()
                        .filter(|o| {
                            o.cluster == m.cluster && o.pod != name && self.streaming(&o.pod)
                        })
                        .max_by_key(|o| {
                            (
                                self.data.get(&o.pvc).map_or(0, |d| d.lsn),
                                std::cmp::Reverse(o.pod.clone()),
                            )
                        })
                        .map(|o| o.pod.clone()),
                };
                match candidate {
                    Some(c) => {
                        self.event(
                            now,
                            ModelEvent::SwitchoverStarted {
                                from: name.to_string(),
                                to: c.clone(),
                            },
                        );
                        // Make the candidate the target the others defer to, catch it up, step down.
                        let mut f2 = f.clone();
                        f2["metadata"]["annotations"]["member"] = json!(c);
                        let _ = api.update(f2);
                        let pd = self.data[&m.pvc].clone();
                        let cpvc = self.members[&c].pvc.clone();
                        if let Some(cd) = self.data.get_mut(&cpvc) {
                            cd.receive(&pd, pd.lsn);
                        }
                        self.demote(name, now, &format!("switchover to {c}"));
                        let mm = self.members[name].clone();
                        self.release_lock(api, &mm, now);
                        let mm = self.members.get_mut(name).expect("member");
                        mm.following = Some(c);
                        return;
                    }
                    None => {
                        // Patroni rejects a switchover without a healthy candidate.
                        let _ =
                            api.delete("v1", "Endpoints", Some(&m.namespace), &fname, None, None);
                    }
                }
            } else if member.as_deref() == Some(name) {
                let _ = api.delete("v1", "Endpoints", Some(&m.namespace), &fname, None, None);
            }
        }
        self.manage_sync(api, name, now, settings);
    }

    /// The leader keeps `<scope>-sync` naming one streaming standby in synchronous mode.
    fn manage_sync(
        &mut self,
        api: &mut dyn Objects,
        name: &str,
        _now: Millis,
        settings: &Settings,
    ) {
        let m = self.members[name].clone();
        if !settings.synchronous_mode {
            self.sync_standby.remove(&m.cluster);
            return;
        }
        let current = self.sync_standby.get(&m.cluster).cloned().flatten();
        let keep = current
            .filter(|c| self.streaming(c) && self.members[c].following.as_deref() == Some(name));
        let chosen = keep.or_else(|| {
            self.members
                .values()
                .filter(|o| {
                    o.cluster == m.cluster
                        && o.pod != name
                        && self.streaming(&o.pod)
                        && o.following.as_deref() == Some(name)
                })
                .map(|o| o.pod.clone())
                .next()
        });
        if let Some(c) = &chosen {
            // The new synchronous standby is caught up before it counts (pg_stat_replication
            // reports sync only once it is).
            let pd = self.data[&m.pvc].clone();
            let cpvc = self.members[c].pvc.clone();
            if let Some(cd) = self.data.get_mut(&cpvc) {
                cd.receive(&pd, pd.lsn);
            }
        }
        self.sync_standby.insert(m.cluster.clone(), chosen.clone());
        let sname = format!("{}-sync", m.scope);
        let desired_standby = chosen.clone().unwrap_or_default();
        match api.get("v1", "Endpoints", Some(&m.namespace), &sname) {
            Some(mut s) => {
                if ann(&s, "leader") != Some(name)
                    || ann(&s, "sync_standby").unwrap_or("") != desired_standby
                {
                    s["metadata"]["annotations"] =
                        json!({"leader": name, "sync_standby": desired_standby});
                    let _ = api.update(s);
                }
            }
            None => {
                let _ = api.create(json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": sname, "namespace": m.namespace,
                        "labels": {labels::CLUSTER: m.cluster, labels::PATRONI: m.scope},
                        "annotations": {"leader": name, "sync_standby": desired_standby}}}));
            }
        }
    }

    /// Patroni's touch_member: the role label and the status annotation on its own pod.
    fn touch_member(&mut self, api: &mut dyn ModelApi, name: &str) {
        let m = &self.members[name];
        let role = match (m.role, self.data.contains_key(&m.pvc)) {
            (Role::Primary, _) => labels::ROLE_PRIMARY,
            (Role::Replica, true) => labels::ROLE_REPLICA,
            (Role::Replica, false) => "uninitialized",
        };
        let tl = self.data.get(&m.pvc).map_or(0, |d| d.timeline);
        let state = if m.running() { "running" } else { "starting" };
        let status = json!({"state": state, "role": role, "timeline": tl,
            "conn_url": format!("postgres://{}:5432/postgres", m.ip),
            "api_url": format!("https://{}:8008/patroni", m.ip)})
        .to_string();
        // Look before copying: most loops find the pod already as they left it.
        let current = peek(&*api, "v1", "Pod", Some(&m.namespace), name, |pod| {
            if pod["metadata"]["uid"] != m.uid.as_str() {
                None
            } else {
                Some(
                    pod["metadata"]["labels"][labels::ROLE] == role
                        && pod["metadata"]["annotations"]["status"] == status.as_str(),
                )
            }
        });
        if current != Some(Some(false)) {
            return;
        }
        let Some(mut pod) = api.get("v1", "Pod", Some(&m.namespace), name) else {
            return;
        };
        pod["metadata"]["labels"][labels::ROLE] = json!(role);
        if !pod["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"]["status"] = json!(status);
        pod["metadata"]["resourceVersion"] = json!("");
        let _ = api.update(pod);
    }

    /// Readiness as Patroni's `/readiness` reports it: postgres up as primary, or as a replica
    /// that has a leader to follow.
    pub fn ready(&self, pod: &Value) -> Option<bool> {
        if pod["metadata"]["labels"][labels::DATA] != "postgres" {
            return None;
        }
        let name = pod["metadata"]["name"].as_str()?;
        let m = self.members.get(name)?;
        if m.uid != pod["metadata"]["uid"].as_str().unwrap_or("") {
            return Some(false);
        }
        Some(
            m.running()
                && self.data.contains_key(&m.pvc)
                && (m.role == Role::Primary || m.following.is_some()),
        )
    }

    /// Whether a terminating pod's postgres has shut down.
    pub fn stopped(&self, pod: &Value) -> bool {
        let Some(name) = pod["metadata"]["name"].as_str() else {
            return true;
        };
        self.members
            .get(name)
            .is_none_or(|m| m.activity == Activity::Stopped || m.stopped_gracefully)
    }

    /// Requests a switchover the way `patronictl switchover` does: writes `<scope>-failover`.
    pub fn request_switchover(
        api: &mut dyn Objects,
        namespace: &str,
        cluster: &str,
        leader: Option<&str>,
        candidate: Option<&str>,
    ) -> Result<(), String> {
        let scope = format!("{cluster}-ha");
        let fname = format!("{scope}-failover");
        // Patroni's REST API refuses, in synchronous mode, a candidate `<scope>-sync` does not
        // list as the synchronous standby (412).
        if let Some(c) = candidate
            && api
                .get(labels::CR_API, labels::CR_KIND, Some(namespace), cluster)
                .is_some_and(|cr| Settings::from_cluster(&cr).synchronous_mode)
            && let Some(sync) =
                api.get("v1", "Endpoints", Some(namespace), &format!("{scope}-sync"))
            && !lists_sync_standby(&sync, c)
        {
            return Err(format!(
                "candidate name does not match with sync_standby: {c} is not the synchronous standby ({})",
                ann(&sync, "sync_standby")
                    .filter(|s| !s.is_empty())
                    .unwrap_or("none")
            ));
        }
        let mut a = serde_json::Map::new();
        if let Some(l) = leader {
            a.insert("leader".into(), json!(l));
        }
        if let Some(c) = candidate {
            a.insert("member".into(), json!(c));
        }
        let obj = json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": fname, "namespace": namespace,
                "labels": {labels::CLUSTER: cluster, labels::PATRONI: scope}, "annotations": a}});
        match api.get("v1", "Endpoints", Some(namespace), &fname) {
            Some(mut o) => {
                o["metadata"]["annotations"] = obj["metadata"]["annotations"].clone();
                api.update(o).map(|_| ()).map_err(|e| e.to_string())
            }
            None => api.create(obj).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// A human line for a model event.
pub fn describe(e: &ModelEvent) -> String {
    match e {
        ModelEvent::Bootstrapped { pod, system_id } => {
            format!(
                "patroni: {pod} bootstrapped the cluster (initdb, system identifier {system_id})"
            )
        }
        ModelEvent::Promoted {
            pod,
            timeline,
            lsn,
            resumed: true,
            ..
        } => {
            format!(
                "postgres: {pod} running as primary on timeline {timeline} at LSN {}",
                fmt_lsn(*lsn)
            )
        }
        ModelEvent::Promoted {
            pod, timeline, lsn, ..
        } => {
            format!(
                "postgres: {pod} promoted to primary on timeline {timeline} at LSN {}",
                fmt_lsn(*lsn)
            )
        }
        ModelEvent::Demoted { pod, reason } => {
            format!("postgres: {pod} demoted to read-only ({reason})")
        }
        ModelEvent::LeaderAcquired { pod, transitions } => {
            format!("patroni: {pod} acquired the leader lock (transitions={transitions})")
        }
        ModelEvent::LeaderReleased { pod } => format!("patroni: {pod} released the leader lock"),
        ModelEvent::Rewound { pod, timeline } => {
            format!("postgres: {pod} pg_rewind onto timeline {timeline}")
        }
        ModelEvent::BaseBackup { pod, from } => {
            format!("postgres: {pod} cloned from {from} (pg_basebackup)")
        }
        ModelEvent::Crashed { pod } => format!("postgres: {pod} stopped abruptly"),
        ModelEvent::Stopped { pod } => format!("postgres: {pod} shut down cleanly"),
        ModelEvent::Started { pod } => format!("postgres: {pod} started"),
        ModelEvent::Panicked { pod } => format!(
            "postgres: {pod} PANIC: could not write to file \"pg_wal/xlogtemp\": No space left on device"
        ),
        ModelEvent::StartFailed { pod } => format!(
            "patroni: {pod} failed to start postgres (crash recovery: No space left on device); retrying every loop"
        ),
        ModelEvent::SwitchoverStarted { from, to } => format!("patroni: switchover {from} -> {to}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync_mode(v: Value) -> bool {
        Settings::from_cluster(&json!({"spec": {"patroni": {"dynamicConfiguration": {
            "synchronous_mode": v}}}}))
        .synchronous_mode
    }

    /// A commit acknowledged under Patroni 4's quorum mode must not be lost either: the model
    /// treats it as synchronous, not as asynchronous replication whose losses are only counted.
    #[test]
    fn every_synchronous_spelling_patroni_accepts_is_synchronous() {
        for on in [json!(true), json!("on"), json!("true"), json!("quorum")] {
            assert!(sync_mode(on.clone()), "{on}");
        }
        for off in [json!(false), json!("off"), Value::Null] {
            assert!(!sync_mode(off.clone()), "{off}");
        }
    }
}
