//! Simulated kubelets: start bound pods (phase, IPs, containerStatuses, conditions), ask the
//! [`PodBehaviour`] for readiness and exits, restart containers per `restartPolicy` with the
//! CrashLoopBackOff schedule, and confirm graceful deletions.
//!
//! A node whose kubelet is `down` changes nothing on its pods. A `not-ready` kubelet still
//! heartbeats and confirms deletions (so evicted pods go away) but does not start pods or
//! change readiness, as a kubelet whose container runtime is unavailable.

use super::behaviour::PodBehaviour;
use super::nodes::{KubeletState, kubelet_state};
use super::util::{
    self, condition_status, fmt_time, fnv64a, from_secs, is_terminating, secs, set_condition,
    str_at, time_at,
};
use super::{ControllerConfig, StepReport, Writer};
use crate::json_ptr::At;
use crate::objects::Objects;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Pod annotation naming containers (comma-separated, or `*`) that crash as soon as they
/// start: a crash loop. Set by [`super::faults::crash_loop`].
pub const CRASH_LOOP_ANNOTATION: &str = "sim.tusk.dev/crash-loop";

/// Per-driver kubelet memory: the next pod IP per node and each container's crash back-off,
/// which a real kubelet also keeps only in memory.
#[derive(Debug, Default, Clone)]
pub struct Kubelet {
    ip_next: BTreeMap<String, u32>,
    backoff: BTreeMap<(String, String), i64>,
    /// Pods whose containers this kubelet started, by uid (last seen), so that a pod that
    /// vanishes without a confirmed graceful deletion (force delete, pod GC) still gets
    /// `on_stop`.
    running: BTreeMap<String, Value>,
    /// Pods whose last sync wrote nothing and started nothing, by uid, with the
    /// resourceVersion it saw: while the pod is unchanged, a pass only asks the behaviour
    /// the same questions again ([`Kubelet::still_quiet`]) instead of rebuilding its status.
    quiet: BTreeMap<String, String>,
}

fn should_restart(policy: &str, code: i64) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

fn crash_looping(pod: &Value, container: &str) -> bool {
    pod.at("/metadata/annotations")
        .and_then(|a| a.get(CRASH_LOOP_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|s| {
            s.split(',')
                .any(|c| c.trim() == "*" || c.trim() == container)
        })
}

fn container_id(pod: &Value, container: &str, restarts: i64) -> String {
    let h = fnv64a(format!("{}/{container}/{restarts}", util::uid(pod)).as_bytes());
    format!("containerd://{h:016x}{:016x}", h.rotate_left(17))
}

/// When a container waiting in back-off may start again (seconds): its last exit plus the
/// back-off its message names.
fn restart_due(cs: &Value, now: Timestamp) -> i64 {
    let finished = cs
        .at("/lastState/terminated/finishedAt")
        .and_then(Value::as_str)
        .and_then(util::parse_time)
        .map(secs)
        .unwrap_or(secs(now));
    finished + backoff_from_message(cs)
}

/// The back-off a waiting container is serving, parsed back from its message.
fn backoff_from_message(cs: &Value) -> i64 {
    str_at(cs, "/state/waiting/message")
        .and_then(|m| m.strip_prefix("back-off "))
        .and_then(|m| m.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn host_ip(node: &Value) -> String {
    node.at("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|x| str_at(x, "/type") == Some("InternalIP"))
                .and_then(|x| str_at(x, "/address"))
        })
        .unwrap_or("172.18.0.2")
        .to_string()
}

fn ip_prefix(node: &Value) -> String {
    str_at(node, "/spec/podCIDR")
        .and_then(|c| c.split('/').next())
        .and_then(|ip| ip.rsplit_once('.'))
        .map(|(p, _)| format!("{p}."))
        .unwrap_or_else(|| "10.0.0.".to_string())
}

impl Kubelet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before restarting a container that just exited: the first restart is
    /// immediate, then `initial`, doubling to `max`; a run of `reset` seconds starts over.
    fn next_backoff(
        &mut self,
        uid: &str,
        container: &str,
        ran_for: i64,
        config: &ControllerConfig,
    ) -> i64 {
        let key = (uid.to_string(), container.to_string());
        let delay = match self.backoff.get(&key) {
            None => 0,
            Some(_) if ran_for >= config.crash_backoff_reset => 0,
            Some(0) => config.crash_backoff_initial,
            Some(d) => (d * 2).min(config.crash_backoff_max),
        };
        self.backoff.insert(key, delay);
        delay
    }

    fn forget(&mut self, uid: &str) {
        self.backoff.retain(|(u, _), _| u != uid);
        self.running.remove(uid);
        self.quiet.remove(uid);
    }

    fn allocate_ip(&mut self, node: &Value, used: &mut BTreeSet<String>) -> String {
        let prefix = ip_prefix(node);
        let counter = self
            .ip_next
            .entry(util::name(node).to_string())
            .or_insert(2);
        for _ in 0..253 {
            let candidate = format!("{prefix}{counter}");
            *counter = if *counter >= 254 { 2 } else { *counter + 1 };
            if used.insert(candidate.clone()) {
                return candidate;
            }
        }
        format!("{prefix}254")
    }

    /// One pass over every pod bound to a node.
    pub fn step(
        &mut self,
        objects: &mut dyn Objects,
        config: &ControllerConfig,
        behaviour: &mut dyn PodBehaviour,
    ) -> StepReport {
        let mut report = StepReport::default();
        let now = objects.now();
        let nodes: BTreeMap<String, Arc<Value>> = objects
            .list_shared("v1", "Node", None)
            .into_iter()
            .map(|n| (util::name(&n).to_string(), n))
            .collect();
        let pods = objects.list_shared("v1", "Pod", None);
        let mut used_ips: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &pods {
            if let (Some(n), Some(ip)) = (str_at(p, "/spec/nodeName"), str_at(p, "/status/podIP")) {
                used_ips
                    .entry(n.to_string())
                    .or_default()
                    .insert(ip.to_string());
            }
        }
        let live_uids: BTreeSet<&str> = pods.iter().map(|p| util::uid(p)).collect();
        self.backoff
            .retain(|(u, _), _| live_uids.contains(u.as_str()));
        self.quiet.retain(|u, _| live_uids.contains(u.as_str()));
        let vanished: Vec<String> = self
            .running
            .keys()
            .filter(|u| !live_uids.contains(u.as_str()))
            .cloned()
            .collect();
        for uid in vanished {
            if let Some(last) = self.running.remove(&uid) {
                behaviour.on_stop(&last, now);
            }
        }
        let mut w = Writer {
            objects,
            report: &mut report,
            controller: "kubelet",
        };
        for pod in &pods {
            let Some(node) = str_at(pod, "/spec/nodeName").and_then(|n| nodes.get(n)) else {
                continue;
            };
            let state = kubelet_state(node);
            if state == KubeletState::Down {
                continue;
            }
            if is_terminating(pod) {
                self.terminate(&mut w, pod, config, behaviour, now);
                continue;
            }
            if state == KubeletState::NotReady {
                continue;
            }
            let used = used_ips.entry(util::name(node).to_string()).or_default();
            self.sync(&mut w, pod, node, used, config, behaviour, now);
        }
        report
    }

    fn terminate(
        &mut self,
        w: &mut Writer<'_>,
        pod: &Value,
        config: &ControllerConfig,
        behaviour: &mut dyn PodBehaviour,
        now: Timestamp,
    ) {
        let grace = util::i64_at(pod, "/metadata/deletionGracePeriodSeconds").unwrap_or(0);
        if grace == 0 {
            // Already confirmed; only finalizers hold it.
            return;
        }
        let Some(deadline) = time_at(pod, "/metadata/deletionTimestamp").map(secs) else {
            return;
        };
        let requested = deadline - grace;
        let delay = behaviour
            .stop_delay(pod)
            .unwrap_or(config.pod_termination_delay);
        let due = (requested + delay).min(deadline);
        if secs(now) < due {
            w.report.wake_at(from_secs(due));
            return;
        }
        behaviour.on_stop(pod, now);
        self.forget(util::uid(pod));
        let host = util::str_at(pod, "/spec/nodeName")
            .unwrap_or_default()
            .to_string();
        let names: Vec<String> = pod
            .at("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| str_at(c, "/name").map(String::from))
            .collect();
        if w.delete(pod, Some(0), "containers stopped") {
            for cname in names {
                let path = Some(format!("spec.containers{{{cname}}}"));
                let msg = format!("Stopping container {cname}");
                w.event_at(pod, path, host.clone(), false, "Killing", msg);
            }
        }
    }

    /// For a pod whose last sync, at the same resourceVersion, wrote nothing and started
    /// nothing: whether this pass would write nothing either. The status the kubelet builds
    /// is a function of the pod and of the behaviour's answers (and of `now` only where
    /// those answers or a back-off expiry change something), so it is enough to ask the
    /// same questions in the same order (`exit` of each running container, then `ready`,
    /// then `next_change`) and compare the answers with what the pod's status says. On
    /// false the caller runs the full sync, which asks again: behaviours answer questions,
    /// they do not count them.
    fn still_quiet(
        &self,
        w: &mut Writer<'_>,
        pod: &Value,
        behaviour: &mut dyn PodBehaviour,
        now: Timestamp,
    ) -> bool {
        let statuses: &[Value] = pod
            .at("/status/containerStatuses")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let mut wake: Option<i64> = None;
        for cs in statuses {
            let cname = str_at(cs, "/name").unwrap_or("");
            if cs.at("/state/running").is_some() {
                if crash_looping(pod, cname) || behaviour.exit(pod, cname, now).is_some() {
                    return false;
                }
            } else if cs.at("/state/terminated").is_some() {
                // Final (the last sync restarted nothing at this resourceVersion).
            } else if cs.at("/state/waiting").is_some() {
                let restart_at = restart_due(cs, now);
                if secs(now) >= restart_at {
                    return false;
                }
                wake = Some(wake.map_or(restart_at, |t| t.min(restart_at)));
            }
        }
        for cs in statuses {
            let cname = str_at(cs, "/name").unwrap_or("");
            let running = cs.at("/state/running").is_some();
            let ready = running && behaviour.ready(pod, cname, now);
            if cs.get("ready").and_then(Value::as_bool) != Some(ready)
                || cs.get("started").and_then(Value::as_bool) != Some(running)
            {
                return false;
            }
        }
        if let Some(t) = wake {
            w.report.wake_at(from_secs(t));
        }
        if let Some(t) = behaviour.next_change(pod, now) {
            w.report.wake_at(t);
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn sync(
        &mut self,
        w: &mut Writer<'_>,
        pod: &Value,
        node: &Value,
        used_ips: &mut BTreeSet<String>,
        config: &ControllerConfig,
        behaviour: &mut dyn PodBehaviour,
        now: Timestamp,
    ) {
        if util::pod_terminal(pod) {
            return;
        }
        let uid = util::uid(pod);
        let rv = str_at(pod, "/metadata/resourceVersion").unwrap_or("");
        if !rv.is_empty()
            && self.quiet.get(uid).is_some_and(|seen| seen == rv)
            && self.running.contains_key(uid)
            && self.still_quiet(w, pod, behaviour, now)
        {
            return;
        }
        self.quiet.remove(uid);
        let now_s = fmt_time(now);
        let policy = str_at(pod, "/spec/restartPolicy")
            .unwrap_or("Always")
            .to_string();
        let containers: Vec<(String, String)> = pod
            .at("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    str_at(c, "/name").unwrap_or("").to_string(),
                    str_at(c, "/image").unwrap_or("").to_string(),
                )
            })
            .collect();
        let mut new = pod.clone();
        let mut events: Vec<String> = Vec::new();
        let mut started: Vec<String> = Vec::new();
        let pulling = |cs: &Value| {
            matches!(
                str_at(cs, "/state/waiting/reason"),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
        };
        let not_started = new.at("/status/startTime").is_none()
            || new
                .at("/status/containerStatuses")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty() && a.iter().all(pulling));
        if not_started {
            let scheduled_at = util::condition(pod, "/status/conditions", "PodScheduled")
                .and_then(|c| time_at(c, "/lastTransitionTime"))
                .map(secs)
                .unwrap_or(secs(now));
            let held = behaviour.hold_until(pod).map_or(scheduled_at, secs);
            let start_at = scheduled_at.max(held) + config.pod_start_delay;
            if secs(now) < start_at {
                w.report.wake_at(from_secs(start_at));
                return;
            }
            let host_network = pod
                .at("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let ip = match str_at(pod, "/status/podIP") {
                Some(ip) => ip.to_string(),
                None if host_network => host_ip(node),
                None => self.allocate_ip(node, used_ips),
            };
            let hip = host_ip(node);
            let unpullable: Vec<&(String, String)> = containers
                .iter()
                .filter(|(_, image)| config.unpullable_images.iter().any(|u| u == image))
                .collect();
            if !unpullable.is_empty() {
                // The sandbox is up (IP, startTime) but an image cannot be pulled: the pod
                // stays Pending with every container waiting, until the image is fixed.
                let st = &mut new["status"];
                st["phase"] = json!("Pending");
                if st.get("startTime").is_none() {
                    st["startTime"] = json!(now_s);
                }
                st["hostIP"] = json!(hip);
                st["hostIPs"] = json!([{"ip": hip}]);
                st["podIP"] = json!(ip);
                st["podIPs"] = json!([{"ip": ip}]);
                st["containerStatuses"] = Value::Array(
                    containers
                        .iter()
                        .map(|(name, image)| {
                            json!({
                                "name": name, "image": image, "imageID": "",
                                "ready": false, "started": false, "restartCount": 0,
                                "state": {"waiting": {
                                    "reason": "ImagePullBackOff",
                                    "message": format!("Back-off pulling image \"{}\"", unpullable[0].1),
                                }},
                            })
                        })
                        .collect(),
                );
                let mut conds: Vec<Value> = new
                    .at("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
                let msg = format!("containers with unready status: [{}]", names.join(" "));
                set_condition(
                    &mut conds,
                    "PodReadyToStartContainers",
                    "True",
                    None,
                    None,
                    now,
                    false,
                );
                set_condition(&mut conds, "Initialized", "True", None, None, now, false);
                set_condition(
                    &mut conds,
                    "Ready",
                    "False",
                    Some("ContainersNotReady"),
                    Some(&msg),
                    now,
                    false,
                );
                set_condition(
                    &mut conds,
                    "ContainersReady",
                    "False",
                    Some("ContainersNotReady"),
                    Some(&msg),
                    now,
                    false,
                );
                new["status"]["conditions"] = Value::Array(conds);
                if new != *pod {
                    w.update_status(new, &format!("image pull back-off: {}", unpullable[0].1));
                }
                return;
            }
            let st = &mut new["status"];
            st["phase"] = json!("Running");
            if st.get("startTime").is_none() {
                st["startTime"] = json!(now_s);
            }
            st["hostIP"] = json!(hip);
            st["hostIPs"] = json!([{"ip": hip}]);
            st["podIP"] = json!(ip);
            st["podIPs"] = json!([{"ip": ip}]);
            let inits: Vec<Value> = pod
                .at("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let name = str_at(c, "/name").unwrap_or("");
                    json!({
                        "name": name,
                        "image": str_at(c, "/image").unwrap_or(""),
                        "imageID": "",
                        "containerID": container_id(pod, name, 0),
                        "ready": true,
                        "started": false,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                            "startedAt": now_s, "finishedAt": now_s,
                            "containerID": container_id(pod, name, 0)}},
                    })
                })
                .collect();
            if !inits.is_empty() {
                st["initContainerStatuses"] = Value::Array(inits);
            }
            st["containerStatuses"] = Value::Array(
                containers
                    .iter()
                    .map(|(name, image)| {
                        json!({
                            "name": name,
                            "image": image,
                            "imageID": "",
                            "containerID": container_id(pod, name, 0),
                            "ready": false,
                            "started": true,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": now_s}},
                        })
                    })
                    .collect(),
            );
            started.extend(containers.iter().map(|(n, _)| n.clone()));
            events.push(format!("start on {} ip {ip}", util::name(node)));
        } else {
            let uid = util::uid(pod).to_string();
            let mut statuses: Vec<Value> = new
                .at("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for cs in statuses.iter_mut() {
                let cname = str_at(cs, "/name").unwrap_or("").to_string();
                let mut exited: Option<Value> = None;
                if let Some(run) = cs.at("/state/running") {
                    let started_at = str_at(run, "/startedAt").unwrap_or(&now_s).to_string();
                    let code = if crash_looping(pod, &cname) {
                        Some(1)
                    } else {
                        behaviour.exit(pod, &cname, now)
                    };
                    if let Some(code) = code {
                        exited = Some(json!({
                            "exitCode": code,
                            "reason": if code == 0 { "Completed" } else { "Error" },
                            "startedAt": started_at,
                            "finishedAt": now_s,
                            "containerID": cs.get("containerID").cloned().unwrap_or(Value::Null),
                        }));
                    }
                } else if let Some(t) = cs.at("/state/terminated") {
                    // A terminated container that the policy restarts: an injected crash
                    // not yet handled. Otherwise it is final.
                    let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
                    if should_restart(&policy, code) {
                        exited = Some(t.clone());
                    }
                } else if cs.at("/state/waiting").is_some() {
                    let restart_at = restart_due(cs, now);
                    if secs(now) >= restart_at {
                        restart(cs, pod, &cname, &now_s);
                        started.push(cname.clone());
                        events.push(format!("restart {cname}"));
                    } else {
                        w.report.wake_at(from_secs(restart_at));
                    }
                }
                if let Some(term) = exited {
                    let code = term.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
                    cs["ready"] = json!(false);
                    cs["started"] = json!(false);
                    events.push(format!("{cname} exited {code}"));
                    if should_restart(&policy, code) {
                        let ran = match (
                            term.get("startedAt")
                                .and_then(Value::as_str)
                                .and_then(util::parse_time),
                            term.get("finishedAt")
                                .and_then(Value::as_str)
                                .and_then(util::parse_time),
                        ) {
                            (Some(a), Some(b)) => secs(b) - secs(a),
                            _ => 0,
                        };
                        cs["lastState"] = json!({"terminated": term});
                        let delay = self.next_backoff(&uid, &cname, ran, config);
                        if delay == 0 {
                            restart(cs, pod, &cname, &now_s);
                            started.push(cname.clone());
                            events.push(format!("restart {cname}"));
                        } else {
                            cs["state"] = json!({"waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": format!(
                                    "back-off {delay}s restarting failed container={cname} pod={}_{}({uid})",
                                    util::name(pod), util::namespace(pod)),
                            }});
                            w.report.wake_at(from_secs(secs(now) + delay));
                        }
                    } else {
                        cs["state"] = json!({"terminated": term});
                    }
                }
            }
            new["status"]["containerStatuses"] = Value::Array(statuses);
        }
        for c in &started {
            behaviour.on_start(&new, c, now);
        }
        // Copy the pod only when it differs from what is kept (comparing allocates nothing).
        if self.running.get(uid) != Some(&new) {
            self.running.insert(uid.to_string(), new.clone());
        }
        // Readiness, conditions and phase.
        let mut statuses: Vec<Value> = new
            .at("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut unready = Vec::new();
        let mut all_terminated = !statuses.is_empty();
        let mut all_zero = true;
        for cs in statuses.iter_mut() {
            let cname = str_at(cs, "/name").unwrap_or("").to_string();
            let running = cs.at("/state/running").is_some();
            let ready = running && behaviour.ready(&new, &cname, now);
            cs["ready"] = json!(ready);
            cs["started"] = json!(running);
            if !ready {
                unready.push(cname);
            }
            match cs.at("/state/terminated/exitCode").and_then(Value::as_i64) {
                Some(code) => all_zero &= code == 0,
                None => all_terminated = false,
            }
        }
        new["status"]["containerStatuses"] = Value::Array(statuses);
        let gates_ok = pod
            .at("/spec/readinessGates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| str_at(g, "/conditionType"))
            .all(|t| condition_status(pod, "/status/conditions", t) == Some("True"));
        let mut conds: Vec<Value> = new
            .at("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        set_condition(
            &mut conds,
            "PodReadyToStartContainers",
            "True",
            None,
            None,
            now,
            false,
        );
        set_condition(&mut conds, "Initialized", "True", None, None, now, false);
        if all_terminated {
            new["status"]["phase"] = json!(if all_zero { "Succeeded" } else { "Failed" });
            set_condition(
                &mut conds,
                "ContainersReady",
                "False",
                Some("PodCompleted"),
                None,
                now,
                false,
            );
            set_condition(
                &mut conds,
                "Ready",
                "False",
                Some("PodCompleted"),
                None,
                now,
                false,
            );
            set_condition(
                &mut conds,
                "PodReadyToStartContainers",
                "False",
                None,
                None,
                now,
                false,
            );
            events.push(format!(
                "phase {}",
                if all_zero { "Succeeded" } else { "Failed" }
            ));
        } else if unready.is_empty() {
            set_condition(
                &mut conds,
                "ContainersReady",
                "True",
                None,
                None,
                now,
                false,
            );
            if gates_ok {
                set_condition(&mut conds, "Ready", "True", None, None, now, false);
            } else {
                set_condition(
                    &mut conds,
                    "Ready",
                    "False",
                    Some("ReadinessGatesNotReady"),
                    Some("the status of pod readiness gate is not set to True"),
                    now,
                    false,
                );
            }
        } else {
            let msg = format!("containers with unready status: [{}]", unready.join(" "));
            set_condition(
                &mut conds,
                "ContainersReady",
                "False",
                Some("ContainersNotReady"),
                Some(&msg),
                now,
                false,
            );
            set_condition(
                &mut conds,
                "Ready",
                "False",
                Some("ContainersNotReady"),
                Some(&msg),
                now,
                false,
            );
        }
        // Keep the kubelet's conditions in a stable order.
        let order = |t: &str| match t {
            "PodReadyToStartContainers" => 0,
            "Initialized" => 1,
            "Ready" => 2,
            "ContainersReady" => 3,
            "PodScheduled" => 4,
            _ => 5,
        };
        conds.sort_by_key(|c| order(str_at(c, "/type").unwrap_or("")));
        new["status"]["conditions"] = Value::Array(conds);
        if let Some(t) = behaviour.next_change(&new, now) {
            w.report.wake_at(t);
        }
        if new == *pod {
            if started.is_empty() && !rv.is_empty() {
                self.quiet.insert(uid.to_string(), rv.to_string());
            }
        } else {
            let was_ready = util::pod_ready(pod);
            let is_ready = util::pod_ready(&new);
            if was_ready != is_ready {
                events.push(if is_ready {
                    "ready".into()
                } else {
                    "not ready".into()
                });
            }
            if events.is_empty() {
                events.push("status".into());
            }
            if let Some(updated) = w.update_status(new, &events.join(", ")) {
                let host = util::name(node).to_string();
                for cname in &started {
                    let image = containers
                        .iter()
                        .find(|(n, _)| n == cname)
                        .map(|(_, i)| i.as_str())
                        .unwrap_or_default();
                    let path = Some(format!("spec.containers{{{cname}}}"));
                    for (reason, msg) in [
                        (
                            "Pulled",
                            format!("Container image \"{image}\" already present on machine"),
                        ),
                        ("Created", format!("Created container: {cname}")),
                        ("Started", format!("Started container {cname}")),
                    ] {
                        w.event_at(&updated, path.clone(), host.clone(), false, reason, msg);
                    }
                }
            }
        }
    }
}

fn restart(cs: &mut Value, pod: &Value, cname: &str, now_s: &str) {
    let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0) + 1;
    cs["restartCount"] = json!(restarts);
    cs["containerID"] = json!(container_id(pod, cname, restarts));
    cs["state"] = json!({"running": {"startedAt": now_s}});
    cs["started"] = json!(true);
    cs["ready"] = json!(false);
}
