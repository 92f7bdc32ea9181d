//! Label and field selectors, as the query parameters `labelSelector` and `fieldSelector`.

use crate::error::ApiError;
use crate::json_ptr::At;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<LabelReq>,
}

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(msg)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl LabelSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Parse the string form (`a=b,c in (d,e),!f`).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = vec![];
        // Split on commas outside parentheses.
        let mut parts = vec![];
        let mut depth = 0;
        let mut cur = String::new();
        for c in s.chars() {
            match c {
                '(' => {
                    depth += 1;
                    cur.push(c)
                }
                ')' => {
                    depth -= 1;
                    cur.push(c)
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        for raw in parts {
            let p = raw.trim();
            if p.is_empty() {
                if s.trim().is_empty() {
                    continue;
                }
                return Err(bad(format!(
                    "unable to parse requirement: found '', expected: identifier in selector {s:?}"
                )));
            }
            let err = || {
                bad(format!(
                    "unable to parse requirement: {p:?} is not a valid label selector term"
                ))
            };
            let req = if let Some(k) = p.strip_prefix('!') {
                let k = k.trim();
                if !valid_key(k) {
                    return Err(err());
                }
                LabelReq::NotExists(k.into())
            } else if let Some(i) = p.find("!=") {
                LabelReq::NotEq(p[..i].trim().into(), p[i + 2..].trim().into())
            } else if let Some(i) = p.find("==") {
                LabelReq::Eq(p[..i].trim().into(), p[i + 2..].trim().into())
            } else if let Some(i) = p.find('=') {
                LabelReq::Eq(p[..i].trim().into(), p[i + 1..].trim().into())
            } else if let Some((k, rest)) = split_word(p, " notin ") {
                LabelReq::NotIn(k, parse_set(&rest).ok_or_else(err)?)
            } else if let Some((k, rest)) = split_word(p, " in ") {
                LabelReq::In(k, parse_set(&rest).ok_or_else(err)?)
            } else if let Some(i) = p.find('>') {
                LabelReq::Gt(
                    p[..i].trim().into(),
                    p[i + 1..].trim().parse().map_err(|_| err())?,
                )
            } else if let Some(i) = p.find('<') {
                LabelReq::Lt(
                    p[..i].trim().into(),
                    p[i + 1..].trim().parse().map_err(|_| err())?,
                )
            } else {
                LabelReq::Exists(p.into())
            };
            let (k, vals): (&str, Vec<&str>) = match &req {
                LabelReq::Eq(k, v) | LabelReq::NotEq(k, v) => (k, vec![v.as_str()]),
                LabelReq::In(k, vs) | LabelReq::NotIn(k, vs) => {
                    (k, vs.iter().map(|s| s.as_str()).collect())
                }
                LabelReq::Exists(k)
                | LabelReq::NotExists(k)
                | LabelReq::Gt(k, _)
                | LabelReq::Lt(k, _) => (k, vec![]),
            };
            if !valid_key(k) || !vals.iter().all(|v| valid_value(v)) {
                return Err(err());
            }
            reqs.push(req);
        }
        Ok(Self { reqs })
    }

    /// From a `metav1.LabelSelector` object (matchLabels / matchExpressions).
    pub fn from_object(sel: &Value) -> Result<Self, ApiError> {
        let mut reqs = vec![];
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(LabelReq::Eq(
                    k.clone(),
                    v.as_str().unwrap_or_default().into(),
                ));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let vals: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                reqs.push(match op {
                    "In" => LabelReq::In(key, vals),
                    "NotIn" => LabelReq::NotIn(key, vals),
                    "Exists" => LabelReq::Exists(key),
                    "DoesNotExist" => LabelReq::NotExists(key),
                    other => {
                        return Err(ApiError::invalid_simple(format!(
                            "{other:?} is not a valid label selector operator"
                        )));
                    }
                });
            }
        }
        Ok(Self { reqs })
    }

    /// The canonical string form (used in the Scale status selector).
    pub fn to_string_form(&self) -> String {
        self.reqs
            .iter()
            .map(|r| match r {
                LabelReq::Eq(k, v) => format!("{k}={v}"),
                LabelReq::NotEq(k, v) => format!("{k}!={v}"),
                LabelReq::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                LabelReq::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                LabelReq::Exists(k) => k.clone(),
                LabelReq::NotExists(k) => format!("!{k}"),
                LabelReq::Gt(k, n) => format!("{k}>{n}"),
                LabelReq::Lt(k, n) => format!("{k}<{n}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn matches_labels(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.is_empty()
            || self.matches_labels(obj.at("/metadata/labels").and_then(Value::as_object))
    }
}

fn split_word(p: &str, word: &str) -> Option<(String, String)> {
    let i = p.find(word)?;
    Some((
        p[..i].trim().to_string(),
        p[i + word.len()..].trim().to_string(),
    ))
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

/// A parsed field selector: terms `f=v`, `f==v`, `f!=v`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

/// Fields each resource supports beyond metadata.name / metadata.namespace.
fn extra_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reportingController",
        ],
        "secrets" => &["type"],
        "nodes" => &["spec.unschedulable"],
        "namespaces" => &["status.phase"],
        "jobs" => &["status.successful"],
        "replicasets" => &["status.replicas"],
        _ => &[],
    }
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Parse and check the fields against what the resource supports (400 otherwise).
    pub fn parse(s: &str, plural: &str) -> Result<Self, ApiError> {
        let mut terms = vec![];
        // Split on unescaped commas.
        let mut parts: Vec<String> = vec![];
        let mut cur = String::new();
        let mut esc = false;
        for c in s.chars() {
            if esc {
                cur.push('\\');
                cur.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == ',' {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        parts.push(cur);
        for p in parts {
            if p.trim().is_empty() {
                continue;
            }
            let (f, neg, v) = if let Some(i) = p.find("!=") {
                (&p[..i], true, &p[i + 2..])
            } else if let Some(i) = p.find("==") {
                (&p[..i], false, &p[i + 2..])
            } else if let Some(i) = p.find('=') {
                (&p[..i], false, &p[i + 1..])
            } else {
                return Err(bad(format!(
                    "invalid selector: '{s}'; can't understand '{p}'"
                )));
            };
            let f = f.trim().to_string();
            if f != "metadata.name"
                && f != "metadata.namespace"
                && !extra_fields(plural).contains(&f.as_str())
            {
                return Err(bad(format!("field label not supported: {f}")));
            }
            let v = v
                .replace("\\,", ",")
                .replace("\\=", "=")
                .replace("\\\\", "\\");
            terms.push((f, neg, v));
        }
        Ok(Self { terms })
    }

    /// The single `metadata.name=X` value, if that is a term.
    pub fn name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, neg, _)| f == "metadata.name" && !neg)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(f, neg, v)| {
            let actual = field_value(obj, f);
            (actual == *v) != *neg
        })
    }
}

fn field_value(obj: &Value, field: &str) -> String {
    if field == "source" {
        return obj
            .at("/source/component")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
    }
    let ptr = format!("/{}", field.replace('.', "/"));
    match obj.at(&ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            // Unset booleans read as false, as the conversion funcs do.
            if field == "spec.unschedulable" || field == "spec.hostNetwork" {
                "false".into()
            } else {
                String::new()
            }
        }
    }
}
