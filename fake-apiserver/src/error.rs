//! API errors as the real server reports them (a `Status` body with code and reason).

use crate::resources::ResourceInfo;
use serde_json::{Value, json};

/// A failed API call: HTTP code, Kubernetes `reason` (Conflict, NotFound, AlreadyExists,
/// Invalid, ...) and a message worded like the real server's. `details` is the Status
/// `details` object; `retry_after` adds a Retry-After header and `details.retryAfterSeconds`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

fn qualified(info: &ResourceInfo) -> String {
    info.group_resource()
}

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": info.plural});
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(500, "InternalError", msg)
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(info)),
        )
        .with_details(details(info, name))
    }

    /// 404 for a URL that names no known resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
        .with_details(json!({}))
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(info)),
        )
        .with_details(details(info, name))
    }

    /// The optimistic-concurrency 409, worded as upstream.
    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict_msg(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict_msg(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(info)
            ),
        )
        .with_details(details(info, name))
    }

    /// 422 with one cause: `{Kind}.{group} "{name}" is invalid: {field}: {msg}`.
    pub fn invalid(
        info: &ResourceInfo,
        name: &str,
        field: &str,
        cause_type: &str,
        msg: &str,
    ) -> Self {
        let kind_group = if info.group.is_empty() {
            info.kind.clone()
        } else {
            format!("{}.{}", info.kind, info.group)
        };
        let mut d = details(info, name);
        d["kind"] = json!(info.kind);
        d["causes"] = json!([{"reason": cause_type, "message": msg, "field": field}]);
        Self::new(
            422,
            "Invalid",
            format!("{kind_group} \"{name}\" is invalid: {field}: {msg}"),
        )
        .with_details(d)
    }

    /// 422 without a resource context.
    pub fn invalid_simple(msg: impl Into<String>) -> Self {
        Self::new(422, "Invalid", msg)
    }

    pub fn unsupported_media(msg: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", msg)
    }

    pub fn method_not_allowed(msg: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", msg)
    }

    pub fn expired(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }

    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    pub fn is_conflict(&self) -> bool {
        self.code == 409 && self.reason == "Conflict"
    }

    /// The `Status` object sent on the wire.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut d = self.details.clone();
        if let Some(r) = self.retry_after {
            let dd = d.get_or_insert_with(|| json!({}));
            dd["retryAfterSeconds"] = json!(r);
        }
        if let Some(d) = d {
            s["details"] = d;
        }
        s
    }
}
