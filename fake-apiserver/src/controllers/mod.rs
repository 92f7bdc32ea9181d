//! Built-in controllers and simulated nodes: StatefulSet, Deployment → ReplicaSet → Pod,
//! Job, PVC binding, a scheduler, kubelets and the node lifecycle controller (heartbeats,
//! NotReady/Unknown, taint-based eviction, pod GC).
//!
//! Every controller is a plain step function over [`Objects`]: it reads the store, writes
//! through the same API semantics as any client (revisions, preconditions, finalizers) and
//! reports what it did. Time is `objects.now()`; randomness (pod name suffixes) comes from a
//! seeded [`NameSource`]. Nothing reads the wall clock, so the same steps give the same store.
//!
//! [`Controllers`] bundles them in a fixed order. A deterministic world calls
//! [`Controllers::settle`] after each change and jumps its clock to
//! [`Controllers::next_wakeup`]; the standalone server calls [`Controllers::step`] on a timer.
//!
//! ```
//! use serde_json::json;
//! use tusk_fake_apiserver::Objects;
//! use tusk_fake_apiserver::controllers::{faults, testing::MemObjects, ControllerConfig, Controllers, Nodes};
//!
//! let mut store = MemObjects::new(); // or the real `Store`: both implement `Objects`
//! Nodes::create(&mut store, 3).unwrap();
//! let mut controllers = Controllers::new(ControllerConfig { seed: 7, ..Default::default() });
//! store.create(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
//!     "metadata": {"name": "pg", "namespace": "db"},
//!     "spec": {"replicas": 2, "serviceName": "pg", "selector": {"matchLabels": {"app": "pg"}},
//!              "template": {"metadata": {"labels": {"app": "pg"}},
//!                           "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}})).unwrap();
//! controllers.settle(&mut store, 100);
//! assert_eq!(store.list("v1", "Pod", Some("db")).len(), 2);
//! faults::node_down(&mut store, "node-1").unwrap();
//! controllers.settle(&mut store, 100);
//! // Jump to the next deadline (node-monitor grace period) instead of ticking.
//! let t = controllers.next_wakeup().unwrap();
//! store.set_now(t);
//! controllers.settle(&mut store, 100);
//! ```
//!
//! Fault state (a node's kubelet down or NotReady, a container in a crash loop) lives in the
//! store as `sim.tusk.dev/*` annotations, set by the functions in [`faults`], so it survives
//! a restart of the driver and shows up in store dumps.

pub mod behaviour;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod faults;
pub mod job;
pub mod kubelet;
pub mod nodes;
pub mod recorder;
pub mod scheduler;
pub mod serviceaccounts;
pub mod statefulset;
pub mod testing;
#[cfg(test)]
mod tests;
pub(crate) mod util;
pub mod volumes;

use crate::error::ApiError;
use crate::json_ptr::At;
use crate::objects::Objects;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

pub use behaviour::{DefaultBehaviour, PodBehaviour, PodBehaviours};
pub use kubelet::Kubelet;
pub use nodes::{NodeTemplate, Nodes};
pub use util::NameSource;

/// Annotation and label prefix for simulation-only state.
pub const SIM_PREFIX: &str = "sim.tusk.dev/";

/// Tunables of the simulated cluster. All durations in seconds of simulated time.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Seed of pod-name suffixes (`<rs>-xxxxx`, `<job>-xxxxx`).
    pub seed: u64,
    /// kube-controller-manager `--node-monitor-grace-period` (40s): a node whose kubelet has
    /// not posted status or renewed its Lease for this long becomes Ready=Unknown.
    pub node_monitor_grace_period: i64,
    /// tolerationSeconds the DefaultTolerationSeconds admission plugin gives every pod for
    /// the `not-ready` and `unreachable` NoExecute taints (300s).
    pub default_toleration_seconds: i64,
    /// Kubelet Lease renewal interval (10s).
    pub lease_renew_interval: i64,
    /// How often a healthy kubelet refreshes its node conditions' heartbeat (upstream reports
    /// unchanged status every 5 minutes; 60s keeps the store readable).
    pub node_status_report_interval: i64,
    /// Delay between a pod being bound and its containers starting (image pull, sandbox).
    pub pod_start_delay: i64,
    /// Delay between a graceful delete and the kubelet confirming it, capped at the grace
    /// period. 0: the kubelet stops containers and removes the pod on its next step.
    pub pod_termination_delay: i64,
    /// Crash-loop back-off: first delay and cap (kubelet: 10s doubling to 300s).
    pub crash_backoff_initial: i64,
    pub crash_backoff_max: i64,
    /// A container that ran this long before crashing starts its back-off again from the
    /// first delay (kubelet: 10 minutes).
    pub crash_backoff_reset: i64,
    /// Model volumes as node-local (`WaitForFirstConsumer`, like kind's `standard` class):
    /// a PV is pinned to the node of the first pod that uses it, and later pods of that claim
    /// can only run there. false: network volumes, bound immediately, usable on any node.
    pub local_volumes: bool,
    /// storageClassName given to claims that name none.
    pub default_storage_class: String,
    /// Images that cannot be pulled: pods using them stay Pending in ImagePullBackOff
    /// (a bad image in a rollout). Change it between steps; pods start once it is removed.
    pub unpullable_images: Vec<String>,
    /// Publish PodDisruptionBudget status (expectedPods, currentHealthy, desiredHealthy,
    /// disruptionsAllowed) as the disruption controller does. Off by default so worlds whose
    /// recorded timelines predate it keep their revisions; the standalone server turns it on.
    pub pdb_status: bool,
    /// Write the Events the controllers record (SuccessfulCreate, ScalingReplicaSet,
    /// Scheduled, Started, NodeNotReady, ...) as `core/v1` Events. Off by default so worlds
    /// whose recorded timelines predate it keep their revisions; the standalone server turns
    /// it on. The events are in every [`StepReport`] either way.
    pub events: bool,
    /// Give every active namespace its `default` ServiceAccount, as the service-account
    /// controller does. Off by default (recorded worlds keep their revisions); the standalone
    /// server and `tusk up` turn it on.
    pub service_accounts: bool,
    /// Keep an Endpoints object for every Service with a selector, as the endpoints
    /// controller does. Off by default (recorded worlds keep their revisions, and in the
    /// simulated world Patroni writes its own Endpoints); the standalone server turns it on.
    pub endpoints: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            node_monitor_grace_period: 40,
            default_toleration_seconds: 300,
            lease_renew_interval: 10,
            node_status_report_interval: 60,
            pod_start_delay: 0,
            pod_termination_delay: 0,
            crash_backoff_initial: 10,
            crash_backoff_max: 300,
            crash_backoff_reset: 600,
            local_volumes: true,
            default_storage_class: "standard".to_string(),
            unpullable_images: Vec::new(),
            pdb_status: false,
            events: false,
            service_accounts: false,
            endpoints: false,
        }
    }
}

/// One write a controller made (or tried to make), for timelines and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub controller: &'static str,
    /// create, update, update-status, delete
    pub verb: &'static str,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    /// Why, in a few words ("ordinal 2", "evict: node unreachable", ...).
    pub detail: String,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {} ", self.controller, self.verb, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        write!(f, "{}", self.name)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// What a step did. Failed writes are not fatal: controllers are level-based and retry on
/// the next step, as real ones requeue.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    pub actions: Vec<Action>,
    pub errors: Vec<(Action, ApiError)>,
    /// The earliest future time at which something time-driven is due.
    pub next_wakeup: Option<Timestamp>,
    /// Events the controllers recorded; written only with `ControllerConfig::events`.
    pub events: Vec<recorder::PendingEvent>,
}

impl StepReport {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn extend(&mut self, other: StepReport) {
        self.actions.extend(other.actions);
        self.errors.extend(other.errors);
        self.events.extend(other.events);
        if let Some(t) = other.next_wakeup {
            self.wake_at(t);
        }
    }

    /// Ask to be stepped again at `t`.
    pub fn wake_at(&mut self, t: Timestamp) {
        self.next_wakeup = Some(match self.next_wakeup {
            Some(old) if old <= t => old,
            _ => t,
        });
    }

    /// One line per action, for snapshots and timelines.
    pub fn lines(&self) -> Vec<String> {
        self.actions.iter().map(ToString::to_string).collect()
    }
}

/// A write helper that records the outcome in a report.
pub(crate) struct Writer<'a> {
    pub objects: &'a mut dyn Objects,
    pub report: &'a mut StepReport,
    pub controller: &'static str,
}

impl Writer<'_> {
    fn action(&self, verb: &'static str, obj: &Value, detail: &str) -> Action {
        Action {
            controller: self.controller,
            verb,
            kind: util::str_at(obj, "/kind").unwrap_or("").to_string(),
            namespace: util::namespace(obj).to_string(),
            name: util::name(obj).to_string(),
            detail: detail.to_string(),
        }
    }

    fn record(&mut self, action: Action, r: Result<Value, ApiError>) -> Option<Value> {
        match r {
            Ok(v) => {
                let mut action = action;
                if action.name.is_empty() {
                    action.name = util::name(&v).to_string();
                }
                self.report.actions.push(action);
                Some(v)
            }
            Err(e) => {
                tracing::debug!(%action, error = %e, "simulated controller write failed");
                self.report.errors.push((action, e));
                None
            }
        }
    }

    pub fn now(&self) -> Timestamp {
        self.objects.now()
    }

    /// Note an event about `regarding` (written only when events are on).
    pub fn event(
        &mut self,
        regarding: &Value,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        self.event_at(regarding, None, String::new(), warning, reason, message);
    }

    /// Note an event about a container (`fieldPath`) or from a host (kubelet events).
    pub fn event_at(
        &mut self,
        regarding: &Value,
        field_path: Option<String>,
        host: String,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        self.report.events.push(recorder::PendingEvent {
            regarding: recorder::reference(regarding, field_path),
            warning,
            reason,
            message,
            component: recorder::component_of(self.controller),
            host,
        });
    }

    pub fn create(&mut self, obj: Value, detail: &str) -> Option<Value> {
        let a = self.action("create", &obj, detail);
        let r = self.objects.create(obj);
        self.record(a, r)
    }

    pub fn update(&mut self, obj: Value, detail: &str) -> Option<Value> {
        let a = self.action("update", &obj, detail);
        let r = self.objects.update(obj);
        self.record(a, r)
    }

    pub fn update_status(&mut self, obj: Value, detail: &str) -> Option<Value> {
        let a = self.action("update-status", &obj, detail);
        let r = self.objects.update_status(obj);
        self.record(a, r)
    }

    /// Objects of a kind in `owner`'s namespace that `owner` controls or could adopt (no
    /// controller, labels match `selector`): the input [`Writer::owned_or_adopted`] needs,
    /// without copying everything else in the namespace.
    pub fn candidates(
        &self,
        owner: &Value,
        api_version: &str,
        kind: &str,
        selector: &Value,
    ) -> Vec<Value> {
        let owner_uid = util::uid(owner);
        let mut found =
            self.objects
                .controlled(api_version, kind, util::namespace(owner), owner_uid, true);
        found.retain(|o| {
            util::controlled_by(o, owner_uid) || util::selector_matches(selector, &util::labels(o))
        });
        found
    }

    /// The objects `owner` controls, after adopting orphans: objects with no controller
    /// whose labels match `selector` and that pass `eligible` get `owner` as their
    /// controller (upstream's ControllerRefManager). This is how a StatefulSet deleted with
    /// `--cascade=orphan` and recreated takes its pods back instead of colliding with them.
    pub fn owned_or_adopted(
        &mut self,
        owner: &Value,
        objects: Vec<Value>,
        selector: &Value,
        eligible: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let owner_uid = util::uid(owner).to_string();
        let selective = selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
            || selector
                .get("matchExpressions")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        let mut out = Vec::new();
        for obj in objects {
            if util::controlled_by(&obj, &owner_uid) {
                out.push(obj);
            } else if selective
                && util::controller_owner(&obj).is_none()
                && !util::is_terminating(&obj)
                && util::selector_matches(selector, &util::labels(&obj))
                && eligible(&obj)
            {
                let mut adopted = obj.clone();
                let mut refs: Vec<Value> = obj
                    .at("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                refs.push(util::controller_ref(owner));
                adopted["metadata"]["ownerReferences"] = Value::Array(refs);
                let detail = format!("adopted by {}", util::name(owner));
                if let Some(a) = self.update(adopted, &detail) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// As [`Writer::candidates`], sharing the objects instead of copying them.
    pub fn candidates_shared(
        &self,
        owner: &Value,
        api_version: &str,
        kind: &str,
        selector: &Value,
    ) -> Vec<Arc<Value>> {
        let owner_uid = util::uid(owner);
        let mut found = self.objects.controlled_shared(
            api_version,
            kind,
            util::namespace(owner),
            owner_uid,
            true,
        );
        found.retain(|o| {
            util::controlled_by(o, owner_uid) || util::selector_matches(selector, &util::labels(o))
        });
        found
    }

    /// As [`Writer::owned_or_adopted`] over shared objects: only an adopted object is copied
    /// (to be written back).
    pub fn owned_or_adopted_shared(
        &mut self,
        owner: &Value,
        objects: Vec<Arc<Value>>,
        selector: &Value,
        eligible: impl Fn(&Value) -> bool,
    ) -> Vec<Arc<Value>> {
        let owner_uid = util::uid(owner).to_string();
        let mut out = Vec::with_capacity(objects.len());
        let mut orphans = Vec::new();
        for obj in objects {
            if util::controlled_by(&obj, &owner_uid) {
                out.push(Some(obj));
            } else {
                // Keep the adoption order: adopted objects take their place in the list.
                orphans.push((out.len(), Arc::unwrap_or_clone(obj)));
                out.push(None);
            }
        }
        if orphans.is_empty() {
            return out.into_iter().flatten().collect();
        }
        for (i, obj) in orphans {
            let adopted = self.owned_or_adopted(owner, vec![obj], selector, &eligible);
            out[i] = adopted.into_iter().next().map(Arc::new);
        }
        out.into_iter().flatten().collect()
    }

    /// Delete by uid precondition; `grace` None uses the object's default.
    pub fn delete(&mut self, obj: &Value, grace: Option<i64>, detail: &str) -> bool {
        let a = self.action("delete", obj, detail);
        let api_version = util::str_at(obj, "/apiVersion").unwrap_or("");
        let kind = util::str_at(obj, "/kind").unwrap_or("");
        let r = self.objects.delete(
            api_version,
            kind,
            util::ns_opt(obj),
            util::name(obj),
            Some(util::uid(obj)),
            grace,
        );
        self.record(a, r.map(|()| Value::Null)).is_some()
    }
}

/// All built-in controllers, run in a fixed order by [`Controllers::step`].
pub struct Controllers {
    pub config: ControllerConfig,
    pub behaviours: PodBehaviours,
    pub kubelet: Kubelet,
    recorder: recorder::Recorder,
    names: NameSource,
    next_wakeup: Option<Timestamp>,
    revision_hashes: statefulset::RevisionHashes,
}

impl Controllers {
    pub fn new(config: ControllerConfig) -> Self {
        Self {
            names: NameSource::new(config.seed),
            kubelet: Kubelet::default(),
            recorder: recorder::Recorder::default(),
            behaviours: PodBehaviours::default(),
            next_wakeup: None,
            revision_hashes: statefulset::RevisionHashes::default(),
            config,
        }
    }

    /// Replace the pod behaviour registry (readiness, exits), e.g. to attach database models.
    pub fn with_behaviours(mut self, behaviours: PodBehaviours) -> Self {
        self.behaviours = behaviours;
        self
    }

    /// One round of every controller, in this order: node heartbeats, node lifecycle
    /// (Unknown/NotReady, taints, eviction, pod GC), Deployment, ReplicaSet, StatefulSet, Job,
    /// volume binding, scheduler, volume binding (for claims the scheduler just placed),
    /// kubelets. A change made late in a round is seen by earlier controllers on the next
    /// round; use [`Controllers::settle`] to run rounds until nothing changes.
    pub fn step(&mut self, objects: &mut dyn Objects) -> StepReport {
        let mut behaviours = std::mem::take(&mut self.behaviours);
        let report = self.step_with(objects, &mut behaviours);
        self.behaviours = behaviours;
        report
    }

    /// Like [`Controllers::step`] with a caller-supplied pod behaviour instead of the
    /// registry (a world can pass a view of its own models without sharing ownership).
    pub fn step_with(
        &mut self,
        objects: &mut dyn Objects,
        behaviour: &mut dyn PodBehaviour,
    ) -> StepReport {
        let c = &self.config;
        let mut report = StepReport::default();
        report.extend(nodes::heartbeat_step(objects, c));
        report.extend(nodes::lifecycle_step(objects, c));
        report.extend(deployment::step(objects, c));
        report.extend(deployment::replicaset_step(objects, c, &mut self.names));
        report.extend(statefulset::step(objects, c, &mut self.revision_hashes));
        report.extend(job::step(objects, c, &mut self.names));
        report.extend(volumes::step(objects, c));
        report.extend(scheduler::step(objects, c));
        report.extend(volumes::step(objects, c));
        report.extend(self.kubelet.step(objects, c, behaviour));
        if c.pdb_status {
            report.extend(disruption::step(objects));
        }
        if c.service_accounts {
            report.extend(serviceaccounts::step(objects));
        }
        if c.endpoints {
            report.extend(endpoints::step(objects));
        }
        if c.events {
            self.recorder.write(objects, &report.events);
        }
        let now = objects.now();
        report.next_wakeup = report.next_wakeup.filter(|t| *t > now);
        self.next_wakeup = report.next_wakeup;
        report
    }

    /// Run rounds until one changes nothing (at most `max_rounds`), so that chains such as
    /// "create pod → bind → start → ready → next ordinal" finish at the current time.
    pub fn settle(&mut self, objects: &mut dyn Objects, max_rounds: usize) -> StepReport {
        let mut behaviours = std::mem::take(&mut self.behaviours);
        let report = self.settle_with(objects, &mut behaviours, max_rounds);
        self.behaviours = behaviours;
        report
    }

    pub fn settle_with(
        &mut self,
        objects: &mut dyn Objects,
        behaviour: &mut dyn PodBehaviour,
        max_rounds: usize,
    ) -> StepReport {
        let mut total = StepReport::default();
        for _ in 0..max_rounds.max(1) {
            let r = self.step_with(objects, behaviour);
            let quiet = r.is_empty();
            let wake = r.next_wakeup;
            total.actions.extend(r.actions);
            total.errors.extend(r.errors);
            total.events.extend(r.events);
            total.next_wakeup = wake;
            if quiet {
                break;
            }
        }
        total
    }

    /// The earliest future time at which a controller has something to do on its own
    /// (eviction and node-monitor deadlines, crash back-off, termination delays, Job back-off
    /// and deadlines, pods becoming available after minReadySeconds, behaviour changes), as
    /// of the last step. Heartbeats are not included: a kubelet renews its Lease at whatever
    /// time it is stepped, before the node controller looks, so jumping the clock never
    /// makes a live node look dead.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.next_wakeup
    }
}
