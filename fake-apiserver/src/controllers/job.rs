//! The Job controller (NonIndexed completion mode): pods `<job>-<5 chars>`, completions and
//! parallelism, pod-failure back-off (10s doubling, capped at 6 minutes), backoffLimit,
//! activeDeadlineSeconds, suspend, and status with the Complete/SuccessCriteriaMet and
//! Failed/FailureTarget conditions. Whether a pod succeeds is up to the kubelet's
//! [`super::PodBehaviour`].
//!
//! Simplification: finished pods are counted from the pod objects that still exist (upstream
//! tracks them with the `batch.kubernetes.io/job-tracking` finalizer and
//! `uncountedTerminatedPods`), so deleting finished pods by hand lowers the counts.

use super::util::{
    self, NameSource, condition_status, controller_ref, from_secs, i64_at, is_terminating,
    pod_phase, pod_ready, pod_terminal, secs, set_condition, str_at, time_at,
};
use super::{Action, ControllerConfig, StepReport, Writer};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Map, Value, json};

pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

fn finished(job: &Value) -> bool {
    condition_status(job, "/status/conditions", "Complete") == Some("True")
        || condition_status(job, "/status/conditions", "Failed") == Some("True")
}

fn restarts(pod: &Value) -> i64 {
    pod.at("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            pod.at("/status/initContainerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .sum()
}

fn finished_at(pod: &Value) -> Option<i64> {
    pod.at("/status/containerStatuses")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| time_at(c, "/state/terminated/finishedAt").map(secs))
        .max()
}

pub fn step(
    objects: &mut dyn Objects,
    _config: &ControllerConfig,
    names: &mut NameSource,
) -> StepReport {
    let mut report = StepReport::default();
    let jobs = objects.list_shared("batch/v1", "Job", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "job",
    };
    for job in jobs {
        if !is_terminating(&job) {
            sync(&mut w, &job, names);
        }
    }
    report
}

fn create_pod(w: &mut Writer<'_>, job: &Value, names: &mut NameSource) -> bool {
    let ns = util::namespace(job).to_string();
    let name = util::name(job).to_string();
    let uid = util::uid(job).to_string();
    let t = job.at("/spec/template").cloned().unwrap_or(json!({}));
    let mut labels: Map<String, Value> = t
        .at("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        ("controller-uid", &uid),
        (CONTROLLER_UID_LABEL, &uid),
        ("job-name", &name),
        (JOB_NAME_LABEL, &name),
    ] {
        labels.insert(k.to_string(), json!(v));
    }
    let mut meta =
        json!({"namespace": ns, "labels": labels, "ownerReferences": [controller_ref(job)]});
    if let Some(a) = t.at("/metadata/annotations") {
        meta["annotations"] = a.clone();
    }
    for _ in 0..8 {
        meta["name"] = json!(format!("{name}-{}", names.suffix()));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta.clone(),
            "spec": t.get("spec").cloned().unwrap_or(json!({}))});
        let action = Action {
            controller: "job",
            verb: "create",
            kind: "Pod".into(),
            namespace: ns.clone(),
            name: util::name(&pod).to_string(),
            detail: format!("pod of {name}"),
        };
        match w.objects.create(pod) {
            Ok(p) => {
                w.report.actions.push(action);
                let msg = format!("Created pod: {}", util::name(&p));
                w.event(job, false, "SuccessfulCreate", msg);
                return true;
            }
            Err(e) if e.reason == "AlreadyExists" => continue,
            Err(e) => {
                w.report.errors.push((action, e));
                return false;
            }
        }
    }
    false
}

fn sync(w: &mut Writer<'_>, job: &Value, names: &mut NameSource) {
    let now = w.now();
    let now_s = secs(now);
    let ns = util::namespace(job).to_string();
    let name = util::name(job).to_string();
    let uid = util::uid(job).to_string();
    let pods: Vec<Value> = w.objects.controlled("v1", "Pod", &ns, &uid, false);
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| !is_terminating(p) && !pod_terminal(p))
        .collect();
    if finished(job) {
        // A finished Job keeps no running pods.
        for p in active {
            w.delete(p, None, "job finished");
        }
        return;
    }
    let parallelism = i64_at(job, "/spec/parallelism").unwrap_or(1).max(0);
    let completions = i64_at(job, "/spec/completions")
        .or_else(|| job.at("/spec/parallelism").is_none().then_some(1));
    let backoff_limit = i64_at(job, "/spec/backoffLimit").unwrap_or(6);
    let suspended = job
        .at("/spec/suspend")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let on_failure = str_at(job, "/spec/template/spec/restartPolicy") == Some("OnFailure");
    let succeeded = pods.iter().filter(|p| pod_phase(p) == "Succeeded").count() as i64;
    let failed_pods: Vec<&Value> = pods.iter().filter(|p| pod_phase(p) == "Failed").collect();
    let failed = failed_pods.len() as i64;
    let terminating = pods
        .iter()
        .filter(|p| is_terminating(p) && !pod_terminal(p))
        .count() as i64;

    let mut status = job.get("status").cloned().unwrap_or(json!({}));
    if status.get("startTime").is_none() && !suspended {
        status["startTime"] = json!(util::fmt_time(now));
    }
    let start = time_at(&status, "/startTime").map(secs);
    let mut conds: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let restart_total: i64 = active.iter().map(|p| restarts(p)).sum();
    let mut failure: Option<(&str, &str)> = None;
    // restartPolicy OnFailure: container restarts count against the limit.
    let past_limit_on_failure = on_failure
        && if backoff_limit == 0 {
            restart_total > 0
        } else {
            restart_total >= backoff_limit
        };
    if failed > backoff_limit || past_limit_on_failure {
        failure = Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    }
    if failure.is_none()
        && let (Some(d), Some(s)) = (i64_at(job, "/spec/activeDeadlineSeconds"), start)
        && !suspended
    {
        if now_s - s >= d {
            failure = Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        } else {
            w.report.wake_at(from_secs(s + d));
        }
    }
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded >= 1 && active.is_empty(),
    };
    let mut active_count = active.len() as i64;
    if let Some((reason, message)) = failure {
        w.event(job, true, reason, message.to_string());
        for p in &active {
            w.delete(p, None, &format!("job failed: {reason}"));
        }
        active_count = 0;
        set_condition(
            &mut conds,
            "FailureTarget",
            "True",
            Some(reason),
            Some(message),
            now,
            false,
        );
        set_condition(
            &mut conds,
            "Failed",
            "True",
            Some(reason),
            Some(message),
            now,
            false,
        );
        for c in &mut conds {
            c["lastProbeTime"] = c["lastTransitionTime"].clone();
        }
    } else if complete {
        w.event(job, false, "Completed", "Job completed".to_string());
        for p in &active {
            w.delete(p, None, "job complete");
        }
        active_count = 0;
        set_condition(
            &mut conds,
            "SuccessCriteriaMet",
            "True",
            Some("CompletionsReached"),
            Some("Reached expected number of succeeded pods"),
            now,
            false,
        );
        set_condition(
            &mut conds,
            "Complete",
            "True",
            Some("CompletionsReached"),
            Some("Reached expected number of succeeded pods"),
            now,
            false,
        );
        for c in &mut conds {
            c["lastProbeTime"] = c["lastTransitionTime"].clone();
        }
        status["completionTime"] = json!(util::fmt_time(now));
    } else {
        let want = if suspended {
            0
        } else {
            match completions {
                Some(c) => parallelism.min(c - succeeded).max(0),
                None => {
                    if succeeded > 0 {
                        0
                    } else {
                        parallelism
                    }
                }
            }
        };
        if active_count < want {
            // Pod-failure back-off: 10s doubling per failure, capped at 6 minutes.
            let last_failure = failed_pods.iter().filter_map(|p| finished_at(p)).max();
            let delay = if failed == 0 {
                0
            } else {
                (10i64 << (failed - 1).min(10)).min(360)
            };
            match last_failure {
                Some(t) if now_s < t + delay => w.report.wake_at(from_secs(t + delay)),
                _ => {
                    let missing = want - active_count;
                    for _ in 0..missing {
                        if create_pod(w, job, names) {
                            active_count += 1;
                        }
                    }
                }
            }
        } else if active_count > want {
            let mut extra: Vec<&Value> = active.clone();
            extra.sort_by_key(|p| {
                (
                    u8::from(pod_ready(p)),
                    std::cmp::Reverse(util::name(p).to_string()),
                )
            });
            for p in extra.iter().take((active_count - want) as usize) {
                w.delete(p, None, "too many active pods");
            }
            active_count = want;
        }
        if suspended {
            set_condition(
                &mut conds,
                "Suspended",
                "True",
                Some("JobSuspended"),
                Some("Job suspended"),
                now,
                false,
            );
        } else if condition_status(job, "/status/conditions", "Suspended") == Some("True") {
            set_condition(
                &mut conds,
                "Suspended",
                "False",
                Some("JobResumed"),
                Some("Job resumed"),
                now,
                false,
            );
        }
    }
    let ready = active.iter().filter(|p| pod_ready(p)).count() as i64;
    let obj = status.as_object_mut().expect("status is an object");
    for (k, v) in [
        ("active", active_count),
        ("succeeded", succeeded),
        ("failed", failed),
    ] {
        if v > 0 {
            obj.insert(k.into(), json!(v));
        } else {
            obj.remove(k);
        }
    }
    obj.insert(
        "ready".into(),
        json!(if failure.is_some() || complete {
            0
        } else {
            ready
        }),
    );
    obj.insert("terminating".into(), json!(terminating));
    obj.insert("uncountedTerminatedPods".into(), json!({}));
    if conds.is_empty() {
        obj.remove("conditions");
    } else {
        obj.insert("conditions".into(), Value::Array(conds));
    }
    if job.get("status") != Some(&status) {
        let mut cur = w
            .objects
            .get("batch/v1", "Job", Some(&ns), &name)
            .unwrap_or_else(|| job.clone());
        cur["status"] = status;
        w.update_status(cur, "status");
    }
}
