//! The narrow, synchronous view of the store that built-in controllers, simulated kubelets and
//! behaviour models use. It goes through the same semantics as an API request (revisions,
//! preconditions, finalizers, events) but without HTTP, so a deterministic driver can call it.
//!
//! Objects are JSON values with `apiVersion`, `kind` and `metadata`.

use crate::error::ApiError;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

pub trait Objects {
    /// The time the store stamps on objects (creationTimestamp, deletionTimestamp, ...).
    fn now(&self) -> Timestamp;

    /// Objects of a kind, in one namespace or all (`None`), sorted by namespace then name.
    fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value>;

    fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str)
    -> Option<Value>;

    /// Create; `metadata.generateName` is honoured. Returns the stored object.
    fn create(&mut self, object: Value) -> Result<Value, ApiError>;

    /// Replace the main resource; a non-empty `metadata.resourceVersion` is a precondition
    /// (409 Conflict when stale). Status changes are ignored where a status subresource exists.
    fn update(&mut self, object: Value) -> Result<Value, ApiError>;

    /// Replace only `.status` (through the status subresource), same precondition rules.
    fn update_status(&mut self, object: Value) -> Result<Value, ApiError>;

    /// Delete with the normal semantics (finalizers, graceful deletion for pods when
    /// `grace_seconds` is Some and non-zero). `uid`, when given, is a precondition.
    fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        grace_seconds: Option<i64>,
    ) -> Result<(), ApiError>;
}
