//! What the processes inside simulated containers do: when they are ready, whether and how
//! they exit. The kubelet asks a [`PodBehaviour`] on every step, so a world can attach a
//! Patroni/PostgreSQL model to database pods and let it decide readiness.

use super::util::{self, time_at};
use crate::json_ptr::At;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;

/// Annotation (on the pod, usually via its template) overriding the default behaviour:
/// seconds after a container starts before it reports ready.
pub const READY_AFTER_ANNOTATION: &str = "sim.tusk.dev/ready-after";
/// Seconds a run-to-completion (Job) container runs before it exits.
pub const RUN_SECONDS_ANNOTATION: &str = "sim.tusk.dev/run-seconds";
/// Exit code of a run-to-completion container.
pub const EXIT_CODE_ANNOTATION: &str = "sim.tusk.dev/exit-code";

/// The simulated processes of a pod. `pod` is the pod as the kubelet is about to write it,
/// so `status.containerStatuses[].state.running.startedAt` is the current start time.
/// `ready`, `exit` and `next_change` are questions: the kubelet may ask them again in the
/// same pass with the same arguments (it does for a pod it first checks for a quick skip),
/// so their answers must not depend on how often they were asked.
pub trait PodBehaviour: Send {
    /// A container of `pod` has just (re)started at `now`.
    fn on_start(&mut self, _pod: &Value, _container: &str, _now: Timestamp) {}

    /// The pod's containers were stopped: its graceful deletion was confirmed, or the pod
    /// vanished (force delete, pod GC). Called once per pod uid.
    fn on_stop(&mut self, _pod: &Value, _now: Timestamp) {}

    /// Whether a running container passes its readiness probe now.
    fn ready(&mut self, pod: &Value, container: &str, now: Timestamp) -> bool;

    /// Some(exit code) when a running container's process exits now: Job containers
    /// finishing, or a model deciding that its process crashed.
    fn exit(&mut self, pod: &Value, container: &str, now: Timestamp) -> Option<i32>;

    /// Seconds this pod's processes take to stop after a graceful delete (capped at the
    /// grace period); None uses [`super::ControllerConfig::pod_termination_delay`].
    fn stop_delay(&self, _pod: &Value) -> Option<i64> {
        None
    }

    /// The earliest time this pod's containers may start (the kubelet adds the start delay
    /// to whichever is later, this or the pod's scheduling): a world holding a killed pod's
    /// replacement down for a while. None: no hold.
    fn hold_until(&self, _pod: &Value) -> Option<Timestamp> {
        None
    }

    /// The next time this behaviour's answers may change without anything else happening,
    /// so an event-driven world knows when to step again.
    fn next_change(&self, _pod: &Value, _now: Timestamp) -> Option<Timestamp> {
        None
    }
}

/// When the container named `container` last started, from the pod's status.
pub fn container_started_at(pod: &Value, container: &str) -> Option<Timestamp> {
    container_status(pod, container).and_then(|s| time_at(s, "/state/running/startedAt"))
}

pub fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    pod.at("/status/containerStatuses")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
}

/// Whether the pod runs to completion (it belongs to a Job).
pub fn is_job_pod(pod: &Value) -> bool {
    util::label(pod, "batch.kubernetes.io/job-name").is_some()
        || util::label(pod, "job-name").is_some()
        || util::controller_owner(pod)
            .and_then(|o| o.get("kind"))
            .and_then(Value::as_str)
            == Some("Job")
}

fn annotation_i64(pod: &Value, key: &str) -> Option<i64> {
    pod.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .and_then(|s| s.trim().parse().ok())
}

/// Ready `ready_after` seconds after start; Job pods exit with `job_exit_code` after
/// `job_run_seconds`. Per-pod overrides come from the `sim.tusk.dev/*` annotations above.
#[derive(Debug, Clone)]
pub struct DefaultBehaviour {
    pub ready_after: i64,
    pub job_run_seconds: i64,
    pub job_exit_code: i32,
}

impl Default for DefaultBehaviour {
    fn default() -> Self {
        Self {
            ready_after: 0,
            job_run_seconds: 5,
            job_exit_code: 0,
        }
    }
}

impl DefaultBehaviour {
    fn ready_after(&self, pod: &Value) -> i64 {
        annotation_i64(pod, READY_AFTER_ANNOTATION).unwrap_or(self.ready_after)
    }

    fn run_seconds(&self, pod: &Value) -> i64 {
        annotation_i64(pod, RUN_SECONDS_ANNOTATION).unwrap_or(self.job_run_seconds)
    }

    fn exit_code(&self, pod: &Value) -> i32 {
        annotation_i64(pod, EXIT_CODE_ANNOTATION)
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(self.job_exit_code)
    }
}

impl PodBehaviour for DefaultBehaviour {
    fn ready(&mut self, pod: &Value, container: &str, now: Timestamp) -> bool {
        let Some(start) = container_started_at(pod, container) else {
            return false;
        };
        util::secs(now) - util::secs(start) >= self.ready_after(pod)
    }

    fn exit(&mut self, pod: &Value, container: &str, now: Timestamp) -> Option<i32> {
        if !is_job_pod(pod) {
            return None;
        }
        let start = container_started_at(pod, container)?;
        (util::secs(now) - util::secs(start) >= self.run_seconds(pod)).then(|| self.exit_code(pod))
    }

    fn next_change(&self, pod: &Value, now: Timestamp) -> Option<Timestamp> {
        let statuses = pod.at("/status/containerStatuses")?.as_array()?;
        let mut best: Option<i64> = None;
        for s in statuses {
            let Some(start) = time_at(s, "/state/running/startedAt") else {
                continue;
            };
            let start = util::secs(start);
            let mut candidates = vec![start + self.ready_after(pod)];
            if is_job_pod(pod) {
                candidates.push(start + self.run_seconds(pod));
            }
            for c in candidates {
                if c > util::secs(now) {
                    best = Some(best.map_or(c, |b| b.min(c)));
                }
            }
        }
        best.map(util::from_secs)
    }
}

/// Which pods a registered behaviour applies to.
pub enum PodMatcher {
    /// Exactly this pod.
    Name { namespace: String, name: String },
    /// Pods (in a namespace, or any) carrying all these labels.
    Labels {
        namespace: Option<String>,
        labels: BTreeMap<String, String>,
    },
    /// Anything else.
    Predicate(Box<dyn Fn(&Value) -> bool + Send>),
}

impl PodMatcher {
    pub fn matches(&self, pod: &Value) -> bool {
        match self {
            PodMatcher::Name { namespace, name } => {
                util::namespace(pod) == namespace && util::name(pod) == name
            }
            PodMatcher::Labels { namespace, labels } => {
                if namespace
                    .as_deref()
                    .is_some_and(|ns| ns != util::namespace(pod))
                {
                    return false;
                }
                labels
                    .iter()
                    .all(|(k, v)| util::label(pod, k) == Some(v.as_str()))
            }
            PodMatcher::Predicate(f) => f(pod),
        }
    }
}

/// A registry of behaviours: the first rule whose matcher accepts the pod decides, otherwise
/// the default (a [`DefaultBehaviour`] unless replaced).
pub struct PodBehaviours {
    rules: Vec<(PodMatcher, Box<dyn PodBehaviour>)>,
    default: Box<dyn PodBehaviour>,
}

impl Default for PodBehaviours {
    fn default() -> Self {
        Self::new(DefaultBehaviour::default())
    }
}

impl PodBehaviours {
    pub fn new(default: impl PodBehaviour + 'static) -> Self {
        Self {
            rules: Vec::new(),
            default: Box::new(default),
        }
    }

    pub fn set_default(&mut self, default: impl PodBehaviour + 'static) {
        self.default = Box::new(default);
    }

    pub fn add(&mut self, matcher: PodMatcher, behaviour: impl PodBehaviour + 'static) {
        self.rules.push((matcher, Box::new(behaviour)));
    }

    pub fn add_for_pod(
        &mut self,
        namespace: &str,
        name: &str,
        behaviour: impl PodBehaviour + 'static,
    ) {
        self.add(
            PodMatcher::Name {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            behaviour,
        );
    }

    pub fn add_for_labels(
        &mut self,
        namespace: Option<&str>,
        labels: &[(&str, &str)],
        behaviour: impl PodBehaviour + 'static,
    ) {
        self.add(
            PodMatcher::Labels {
                namespace: namespace.map(str::to_string),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            behaviour,
        );
    }

    fn pick(&mut self, pod: &Value) -> &mut dyn PodBehaviour {
        match self.rules.iter_mut().find(|(m, _)| m.matches(pod)) {
            Some((_, b)) => b.as_mut(),
            None => self.default.as_mut(),
        }
    }

    fn pick_ref(&self, pod: &Value) -> &dyn PodBehaviour {
        match self.rules.iter().find(|(m, _)| m.matches(pod)) {
            Some((_, b)) => b.as_ref(),
            None => self.default.as_ref(),
        }
    }
}

impl PodBehaviour for PodBehaviours {
    fn on_start(&mut self, pod: &Value, container: &str, now: Timestamp) {
        self.pick(pod).on_start(pod, container, now);
    }

    fn on_stop(&mut self, pod: &Value, now: Timestamp) {
        self.pick(pod).on_stop(pod, now);
    }

    fn ready(&mut self, pod: &Value, container: &str, now: Timestamp) -> bool {
        self.pick(pod).ready(pod, container, now)
    }

    fn exit(&mut self, pod: &Value, container: &str, now: Timestamp) -> Option<i32> {
        self.pick(pod).exit(pod, container, now)
    }

    fn next_change(&self, pod: &Value, now: Timestamp) -> Option<Timestamp> {
        self.pick_ref(pod).next_change(pod, now)
    }

    fn stop_delay(&self, pod: &Value) -> Option<i64> {
        self.pick_ref(pod).stop_delay(pod)
    }

    fn hold_until(&self, pod: &Value) -> Option<Timestamp> {
        self.pick_ref(pod).hold_until(pod)
    }
}
