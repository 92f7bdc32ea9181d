//! Small helpers over JSON objects shared by the simulated controllers.

use crate::json_ptr::At;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The alphabet Kubernetes uses for generated suffixes and hashes (no vowels, no look-alikes).
pub(crate) const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.at(ptr).and_then(Value::as_str)
}

pub(crate) fn i64_at(v: &Value, ptr: &str) -> Option<i64> {
    v.at(ptr).and_then(Value::as_i64)
}

pub(crate) fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or("")
}

pub(crate) fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace").unwrap_or("")
}

pub(crate) fn uid(v: &Value) -> &str {
    str_at(v, "/metadata/uid").unwrap_or("")
}

pub(crate) fn ns_opt(v: &Value) -> Option<&str> {
    str_at(v, "/metadata/namespace").filter(|s| !s.is_empty())
}

pub(crate) fn labels(v: &Value) -> BTreeMap<String, String> {
    v.at("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.at("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

pub(crate) fn is_terminating(v: &Value) -> bool {
    v.at("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// RFC 3339 with second precision, as Kubernetes serialises `metav1.Time`.
pub(crate) fn fmt_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `metav1.MicroTime` (Leases, Events).
pub(crate) fn fmt_micro_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

pub(crate) fn time_at(v: &Value, ptr: &str) -> Option<Timestamp> {
    str_at(v, ptr).and_then(parse_time)
}

pub(crate) fn secs(ts: Timestamp) -> i64 {
    ts.as_second()
}

pub(crate) fn from_secs(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) fn owner_uids(v: &Value) -> impl Iterator<Item = &str> {
    v.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
}

pub(crate) fn controller_owner(v: &Value) -> Option<&Value> {
    v.at("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// True when `v` is controlled by the object with this uid.
pub(crate) fn controlled_by(v: &Value, owner_uid: &str) -> bool {
    controller_owner(v)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        == Some(owner_uid)
}

pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Evaluate a `metav1.LabelSelector` (matchLabels and matchExpressions) against labels.
/// An empty selector matches everything, as upstream's `LabelSelectorAsSelector` does.
pub(crate) fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            if !expression_matches(e, |k| labels.get(k).map(String::as_str)) {
                return false;
            }
        }
    }
    true
}

/// One `matchExpressions` term (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`).
pub(crate) fn expression_matches<'a>(e: &Value, get: impl Fn(&str) -> Option<&'a str>) -> bool {
    let key = e.get("key").and_then(Value::as_str).unwrap_or("");
    let values: Vec<&str> = e
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let actual = get(key);
    match e.get("operator").and_then(Value::as_str).unwrap_or("") {
        "In" => actual.is_some_and(|a| values.contains(&a)),
        "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        "Gt" | "Lt" => {
            let (Some(a), Some(b)) = (
                actual.and_then(|a| a.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if e.get("operator").and_then(Value::as_str) == Some("Gt") {
                a > b
            } else {
                a < b
            }
        }
        _ => false,
    }
}

/// JSON with object keys sorted, so hashes do not depend on insertion order.
pub(crate) fn canonical_json(v: &Value) -> String {
    // Keys are sorted explicitly: with serde_json's `preserve_order` (feature unification can
    // turn it on) map order would follow insertion and hashes would drift.
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub(crate) fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

pub(crate) fn fnv64a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Like upstream's `rand.SafeEncodeString(fmt.Sprint(hash))`: each decimal digit mapped into
/// the safe alphabet, which is how pod-template-hash and revision hashes look.
pub(crate) fn safe_encode_decimal(n: u64) -> String {
    n.to_string()
        .bytes()
        .map(|d| SAFE_ALPHABET[usize::from(d - b'0')] as char)
        .collect()
}

/// The hash of a pod template (plus collision count) used in revision and ReplicaSet names.
/// A pod template as Go decodes it: `metadata.creationTimestamp: null` (what Go encodes for
/// the zero time, and what `kubectl rollout undo` sends back) is the same as no timestamp.
pub(crate) fn template_normalized(template: &Value) -> std::borrow::Cow<'_, Value> {
    if template.at("/metadata/creationTimestamp") == Some(&Value::Null) {
        let mut t = template.clone();
        if let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            m.remove("creationTimestamp");
            if m.is_empty()
                && let Some(o) = t.as_object_mut()
            {
                o.remove("metadata");
            }
        }
        std::borrow::Cow::Owned(t)
    } else {
        std::borrow::Cow::Borrowed(template)
    }
}

pub(crate) fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut s = canonical_json(&template_normalized(template));
    if collision_count > 0 {
        s.push_str(&collision_count.to_string());
    }
    safe_encode_decimal(u64::from(fnv32a(s.as_bytes())))
}

/// Set a condition in a `conditions` array the way controllers do: lastTransitionTime only
/// moves when the status changes. Returns true when anything changed.
pub(crate) fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: Timestamp,
    with_update_time: bool,
) -> bool {
    let now_s = fmt_time(now);
    let pos = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let mut new = json!({"type": kind, "status": status});
    if let Some(r) = reason {
        new["reason"] = json!(r);
    }
    if let Some(m) = message {
        new["message"] = json!(m);
    }
    match pos {
        Some(i) => {
            let old = &conditions[i];
            let same_status = old.get("status").and_then(Value::as_str) == Some(status);
            let same_reason = old.get("reason").and_then(Value::as_str) == reason
                && old.get("message").and_then(Value::as_str) == message;
            if same_status && same_reason {
                return false;
            }
            new["lastTransitionTime"] = if same_status {
                old.get("lastTransitionTime")
                    .cloned()
                    .unwrap_or(json!(now_s))
            } else {
                json!(now_s)
            };
            if with_update_time {
                new["lastUpdateTime"] = json!(now_s);
            }
            if let Some(p) = old.get("lastProbeTime") {
                new["lastProbeTime"] = p.clone();
            }
            conditions[i] = new;
            true
        }
        None => {
            if with_update_time {
                new["lastUpdateTime"] = json!(now_s);
            }
            new["lastTransitionTime"] = json!(now_s);
            conditions.push(new);
            true
        }
    }
}

pub(crate) fn condition<'a>(v: &'a Value, ptr: &str, kind: &str) -> Option<&'a Value> {
    v.at(ptr)
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

pub(crate) fn condition_status<'a>(v: &'a Value, ptr: &str, kind: &str) -> Option<&'a str> {
    condition(v, ptr, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

/// Pod phase; a pod the API has not defaulted yet counts as Pending.
pub(crate) fn pod_phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase").unwrap_or("Pending")
}

pub(crate) fn pod_ready(pod: &Value) -> bool {
    condition_status(pod, "/status/conditions", "Ready") == Some("True")
}

pub(crate) fn pod_running_and_ready(pod: &Value) -> bool {
    pod_phase(pod) == "Running" && pod_ready(pod)
}

/// Ready for at least `min_ready` seconds (the "available" notion of workload controllers).
pub(crate) fn pod_available(pod: &Value, min_ready: i64, now: Timestamp) -> bool {
    if !pod_running_and_ready(pod) {
        return false;
    }
    if min_ready <= 0 {
        return true;
    }
    condition(pod, "/status/conditions", "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)
        .is_some_and(|t| secs(now) - secs(t) >= min_ready)
}

/// When a ready pod becomes available, if that is still in the future.
pub(crate) fn pod_available_at(pod: &Value, min_ready: i64) -> Option<Timestamp> {
    if min_ready <= 0 || !pod_running_and_ready(pod) {
        return None;
    }
    let t = time_at(
        condition(pod, "/status/conditions", "Ready")?,
        "/lastTransitionTime",
    )?;
    Some(from_secs(secs(t) + min_ready))
}

pub(crate) fn pod_terminal(pod: &Value) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

/// Deterministic pod-name suffixes (5 characters of the safe alphabet), drawn from a seed
/// and a counter: the stand-in for the API server's random `generateName`.
#[derive(Debug, Clone)]
pub struct NameSource {
    seed: u64,
    counter: u64,
}

impl NameSource {
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    pub fn suffix(&mut self) -> String {
        self.counter += 1;
        let mut bytes = self.seed.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.counter.to_le_bytes());
        let mut h = fnv64a(&bytes);
        let n = SAFE_ALPHABET.len() as u64;
        (0..5)
            .map(|_| {
                let c = SAFE_ALPHABET[(h % n) as usize] as char;
                h /= n;
                c
            })
            .collect()
    }
}

/// Percent-or-int (`intstr.IntOrString`) resolved against a total, rounding up or down.
pub(crate) fn int_or_percent(v: Option<&Value>, total: i64, default: &str, round_up: bool) -> i64 {
    let v = v.cloned().unwrap_or_else(|| json!(default));
    if let Some(n) = v.as_i64() {
        return n.max(0);
    }
    let s = v.as_str().unwrap_or(default);
    if let Some(p) = s.strip_suffix('%') {
        let p: i64 = p.trim().parse().unwrap_or(0);
        let x = total * p;
        return if round_up { (x + 99) / 100 } else { x / 100 }.max(0);
    }
    s.parse().unwrap_or(0)
}
