//! `pods/log`: what `kubectl logs` reads. There are no real containers, so the text comes from
//! a pluggable [`LogSource`] (installed with [`crate::ApiServer::set_log_source`]; a world
//! can print what its PostgreSQL model did) or, by default, from what the kubelet knows of
//! the container: when it started, when it exited and with which code. Deterministic: the
//! text depends only on the pod.
//!
//! The checks are upstream's: a pod with several containers needs `container` (400 listing
//! the choices), an unknown container is a 400, an unscheduled pod has an empty log, a
//! container that has not started is a 400 "is waiting to start", `previous=true` needs a
//! terminated instance. Query parameters `tailLines`, `limitBytes` and `timestamps` apply to
//! the text from either source.

use crate::error::ApiError;
use crate::json_ptr::At;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One log read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// `previous=true`: the last terminated instance.
    pub previous: bool,
}

/// One line of a container's log: when it was written and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// RFC 3339 time, shown with `timestamps=true`.
    pub time: String,
    pub text: String,
}

/// Supplies a container's log lines; `None` falls back to the kubelet's view.
pub type LogSource = Arc<dyn Fn(&LogRequest, &Value) -> Option<Vec<LogLine>> + Send + Sync>;

fn names(list: Option<&Value>) -> Vec<&str> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect()
}

/// Which container a request names, with upstream's 400s.
pub fn container_of(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let containers = names(pod.at("/spec/containers"));
    let inits = names(pod.at("/spec/initContainers"));
    let ephemeral = names(pod.at("/spec/ephemeralContainers"));
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers.contains(&c) || inits.contains(&c) || ephemeral.contains(&c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.to_string()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                if !inits.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: [{}]",
                        inits.join(" ")
                    ));
                }
                Err(ApiError::bad_request(msg))
            }
        },
    }
}

fn status_of<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| pod.at(&format!("/status/{k}")).and_then(Value::as_array))
    .flatten()
    .find(|s| s.get("name").and_then(Value::as_str) == Some(container))
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.at(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// What the kubelet knows of one container instance, as log lines.
fn kubelet_lines(pod: &Value, container: &str, previous: bool) -> Result<Vec<LogLine>, ApiError> {
    let pod_name = s(pod, "/metadata/name");
    let st = status_of(pod, container);
    let image = st
        .map(|c| s(c, "/image"))
        .filter(|i| !i.is_empty())
        .unwrap_or("unknown");
    let restarts = st
        .and_then(|c| c.get("restartCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let state = if previous {
        match st.and_then(|c| c.at("/lastState/terminated")) {
            Some(t) => json_state("terminated", t),
            None => {
                return Err(ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
                )));
            }
        }
    } else {
        match st.and_then(|c| c.get("state")).and_then(Value::as_object) {
            Some(m) => match m.iter().next() {
                Some((k, v)) => json_state(k, v),
                None => ("waiting", Value::Null),
            },
            None => ("waiting", Value::Null),
        }
    };
    let (kind, detail) = state;
    let instance = if previous { restarts - 1 } else { restarts }.max(0);
    match kind {
        "waiting" => Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {}",
            detail
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating")
        ))),
        "running" => {
            let at = s(&detail, "/startedAt").to_string();
            Ok(vec![LogLine {
                time: at,
                text: format!("container {container} started (image {image}, restart {instance})"),
            }])
        }
        _ => {
            let mut out = vec![LogLine {
                time: s(&detail, "/startedAt").to_string(),
                text: format!("container {container} started (image {image}, restart {instance})"),
            }];
            let code = detail.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
            let reason = s(&detail, "/reason");
            out.push(LogLine {
                time: s(&detail, "/finishedAt").to_string(),
                text: format!(
                    "container {container} exited with code {code}{}",
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    }
                ),
            });
            Ok(out)
        }
    }
}

fn json_state<'a>(kind: &'a str, v: &Value) -> (&'a str, Value) {
    (kind, v.clone())
}

/// The body of `GET pods/NAME/log` for this pod and query.
pub fn render(
    pod: &Value,
    q: &HashMap<String, String>,
    source: Option<&LogSource>,
) -> Result<String, ApiError> {
    let container = container_of(pod, q.get("container").map(String::as_str))?;
    if s(pod, "/spec/nodeName").is_empty() {
        // Not scheduled: upstream has no kubelet to ask and returns an empty body.
        return Ok(String::new());
    }
    let previous = matches!(q.get("previous").map(String::as_str), Some("true" | "1"));
    let req = LogRequest {
        namespace: s(pod, "/metadata/namespace").to_string(),
        pod: s(pod, "/metadata/name").to_string(),
        container: container.clone(),
        previous,
    };
    let lines = match source.and_then(|f| f(&req, pod)) {
        Some(lines) => lines,
        None => kubelet_lines(pod, &container, previous)?,
    };
    let tail = match q.get("tailLines") {
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "tailLines: Invalid value: \"{t}\": must be an integer"
            ))
        })?),
        None => None,
    };
    if let Some(t) = tail
        && t < 0
    {
        return Err(ApiError::invalid_simple(format!(
            "tailLines: Invalid value: {t}: must be greater than or equal to 0"
        )));
    }
    let skip = match tail {
        Some(t) => lines
            .len()
            .saturating_sub(usize::try_from(t).unwrap_or(usize::MAX)),
        None => 0,
    };
    let stamps = matches!(q.get("timestamps").map(String::as_str), Some("true" | "1"));
    let mut out = String::new();
    for l in &lines[skip..] {
        if stamps {
            out.push_str(&nano_time(&l.time));
            out.push(' ');
        }
        out.push_str(&l.text);
        out.push('\n');
    }
    if let Some(limit) = q.get("limitBytes").and_then(|b| b.parse::<usize>().ok()) {
        let mut end = limit.min(out.len());
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    Ok(out)
}

/// `2025-01-01T00:00:00Z` → `2025-01-01T00:00:00.000000000Z`, as the kubelet stamps lines.
fn nano_time(t: &str) -> String {
    match t.strip_suffix('Z') {
        Some(base) if !base.contains('.') => format!("{base}.000000000Z"),
        _ => t.to_string(),
    }
}
