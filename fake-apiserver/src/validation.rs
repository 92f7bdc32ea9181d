//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`): which fields of a
//! request body the server does not know.
//!
//! Custom resources are checked against their version's structural schema (honouring
//! `x-kubernetes-preserve-unknown-fields`, `additionalProperties` and embedded resources);
//! built-in kinds against what this server knows of them: `metadata` and the top-level fields
//! of each kind. Paths are written as upstream prints them: `spec.foo`,
//! `spec.containers[0].foo`.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use serde_json::{Map, Value};

/// The `fieldValidation` directive. Upstream's default, when the parameter is absent, is Warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Strict,
    Warn,
    Ignore,
}

impl Directive {
    /// Parses the query parameter; anything else is upstream's 400.
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Invalid value: \"{other}\": fieldValidation must be one of Ignore, Warn, or Strict"
            ))),
        }
    }
}

/// ObjectMeta's fields.
const META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The top-level fields of a built-in kind, besides apiVersion, kind and metadata.
fn top_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "configmaps") => &["data", "binaryData", "immutable"],
        ("", "secrets") => &["data", "stringData", "type", "immutable"],
        ("", "endpoints") => &["subsets"],
        ("", "serviceaccounts") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "events") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "events") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        ("rbac.authorization.k8s.io", "roles") => &["rules"],
        ("rbac.authorization.k8s.io", "clusterroles") => &["rules", "aggregationRule"],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            &["subjects", "roleRef"]
        }
        ("storage.k8s.io", "storageclasses") => &[
            "provisioner",
            "parameters",
            "reclaimPolicy",
            "mountOptions",
            "allowVolumeExpansion",
            "volumeBindingMode",
            "allowedTopologies",
        ],
        ("scheduling.k8s.io", "priorityclasses") => {
            &["value", "globalDefault", "description", "preemptionPolicy"]
        }
        ("apps", "controllerrevisions") => &["data", "revision"],
        ("discovery.k8s.io", "endpointslices") => &["addressType", "endpoints", "ports"],
        ("policy", "evictions") => &["deleteOptions"],
        _ => &["spec", "status"],
    }
}

/// The unknown fields of `body` for this resource, in document order.
pub fn unknown_fields(info: &ResourceInfo, body: &Value) -> Vec<String> {
    let mut out = vec![];
    let Some(m) = body.as_object() else {
        return out;
    };
    match (&info.schema, info.custom) {
        (Some(schema), true) => walk_schema(m, schema, "", true, &mut out),
        _ => {
            let known = top_fields(&info.group, &info.plural);
            for (k, v) in m {
                match k.as_str() {
                    "apiVersion" | "kind" => {}
                    "metadata" => meta(v, "metadata", &mut out),
                    _ if known.contains(&k.as_str()) || is_directive(k) => {}
                    _ => out.push(k.clone()),
                }
            }
        }
    }
    out
}

/// Strategic-merge-patch directives (`$patch`, `$setElementOrder/x`, ...), not fields.
fn is_directive(k: &str) -> bool {
    k.starts_with('$')
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}

fn meta(v: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(m) = v.as_object() {
        for k in m.keys() {
            if !META.contains(&k.as_str()) {
                out.push(join(path, k));
            }
        }
    }
}

fn walk_schema(m: &Map<String, Value>, s: &Value, path: &str, top: bool, out: &mut Vec<String>) {
    let flag = |name: &str| s.get(name).and_then(Value::as_bool) == Some(true);
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let embedded = flag("x-kubernetes-embedded-resource");
    let props = s.get("properties").and_then(Value::as_object);
    let addl = s.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in m {
        if top || embedded {
            match k.as_str() {
                "apiVersion" | "kind" => continue,
                "metadata" => {
                    meta(v, &join(path, "metadata"), out);
                    continue;
                }
                _ => {}
            }
        }
        let child = join(path, k);
        match (props.and_then(|p| p.get(k)), addl) {
            (Some(ps), _) | (None, Some(ps)) => value(v, ps, &child, out),
            (None, None)
                if preserve || s.get("additionalProperties") == Some(&Value::Bool(true)) => {}
            (None, None) => out.push(child),
        }
    }
}

fn value(v: &Value, s: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => walk_schema(m, s, path, false, out),
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    value(it, is, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// A JSON patch seen as the fields it writes: `add`/`replace`/`copy`/`move` targets with
/// their values, laid into one object so the same walk checks it. Array indices become
/// one-element arrays, `-` likewise.
pub fn json_patch_fields(patch: &Value) -> Value {
    let mut root = Value::Object(Map::new());
    for op in patch.as_array().into_iter().flatten() {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        if !matches!(kind, "add" | "replace" | "copy" | "move") {
            continue;
        }
        let Some(path) = op.get("path").and_then(Value::as_str) else {
            continue;
        };
        let leaf = match kind {
            "add" | "replace" => op.get("value").cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let segs: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        insert(&mut root, &segs, leaf);
    }
    root
}

fn insert(at: &mut Value, segs: &[String], leaf: Value) {
    let Some((first, rest)) = segs.split_first() else {
        *at = leaf;
        return;
    };
    let is_index = first == "-" || first.parse::<usize>().is_ok();
    if is_index {
        if !at.is_array() {
            *at = Value::Array(vec![]);
        }
        let arr = at.as_array_mut().expect("array");
        arr.push(Value::Null);
        let last = arr.last_mut().expect("pushed");
        insert(last, rest, leaf);
    } else {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let m = at.as_object_mut().expect("object");
        insert(m.entry(first.clone()).or_insert(Value::Null), rest, leaf);
    }
}

/// The 400 for unknown fields under Strict. Create and update name the kind as upstream's
/// decoder does; patches give the bare strict decoding error.
pub fn strict_error(
    info: &ResourceInfo,
    duplicates: &[String],
    fields: &[String],
    whole_object: bool,
) -> ApiError {
    let list = duplicates
        .iter()
        .map(|f| format!("duplicate field \"{f}\""))
        .chain(fields.iter().map(|f| format!("unknown field \"{f}\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let base = format!("strict decoding error: {list}");
    if whole_object {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {base}",
            kind = info.kind,
            v = info.version
        ))
    } else {
        ApiError::bad_request(base)
    }
}

/// One `Warning` header value per unknown (or duplicate) field, as upstream's warning
/// recorder writes them.
pub fn warning_header(what: &str, field: &str) -> String {
    let text = format!("{what} field \"{field}\"");
    format!(
        "299 - \"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// Paths of keys that appear twice in one JSON object of `body` (upstream's strict decoder
/// reports them as `duplicate field "spec.replicas"`). Not JSON (YAML apply bodies, which
/// the YAML parser already rejects on duplicates): empty.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut out = vec![];
    let mut p = Scan { b: body, i: 0 };
    p.ws();
    if p.peek() == Some(b'{') || p.peek() == Some(b'[') {
        // A malformed body was already refused by the JSON parser; stop quietly.
        let _ = p.value("", &mut out);
    }
    out
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(c)).then(|| self.i += 1)
    }

    /// A string starting at the current `"`, decoded.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return serde_json::from_slice(&self.b[start..self.i]).ok();
                }
                _ => self.i += 1,
            }
        }
    }

    fn value(&mut self, path: &str, out: &mut Vec<String>) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let mut seen = std::collections::HashSet::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let k = self.string()?;
                    self.eat(b':')?;
                    let child = join(path, &k);
                    if !seen.insert(k) {
                        out.push(child.clone());
                    }
                    self.value(&child, out)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Some(());
                }
                let mut n = 0;
                loop {
                    self.value(&format!("{path}[{n}]"), out)?;
                    n += 1;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                while !matches!(self.peek(), None | Some(b',' | b'}' | b']')) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}
