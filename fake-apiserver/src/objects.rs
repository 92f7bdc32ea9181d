//! The narrow, synchronous view of the store that built-in controllers, simulated kubelets and
//! behaviour models use. It goes through the same semantics as an API request (revisions,
//! preconditions, finalizers, events) but without HTTP, so a deterministic driver can call it.
//!
//! Objects are JSON values with `apiVersion`, `kind` and `metadata`.
//!
//! Implemented by [`crate::store::Store`] (reach it with `ApiServer::lock()`). Notes for
//! implementers of controllers:
//! - `update` on a custom resource needs `metadata.resourceVersion` (422 otherwise), as upstream.
//! - `update_status` on kinds without a status subresource is a plain update.
//! - `delete` of a bound, running pod with `grace_seconds: None` is graceful (30 s or the pod's
//!   terminationGracePeriodSeconds); pass `Some(0)` to remove it at once (the kubelet's confirm).
//! - Writes through this trait are not counted as API requests and never hit injected faults.

use crate::error::ApiError;
use crate::json_ptr::At;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;

pub trait Objects {
    /// The time the store stamps on objects (creationTimestamp, deletionTimestamp, ...).
    fn now(&self) -> Timestamp;

    /// Objects of a kind, in one namespace or all (`None`), sorted by namespace then name.
    fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value>;

    /// As [`Objects::list`], only the objects `keep` accepts. Stores override it to test
    /// before copying: a controller looking for one owner's pods must not copy every pod of
    /// the namespace (that made every StatefulSet sync cost O(all pods)).
    fn list_where(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.list(api_version, kind, namespace)
            .into_iter()
            .filter(|o| keep(o))
            .collect()
    }

    /// As [`Objects::list`], sharing the objects instead of copying each: for controllers
    /// that read every pod or claim each round and write few. What they write back they
    /// copy first. A store may share its stored form, so `metadata.managedFields` may be
    /// absent or not an array: readers must not look at it (the update pipeline ignores it).
    fn list_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Arc<Value>> {
        self.list(api_version, kind, namespace)
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    /// Objects of a kind in `namespace` whose controller ownerReference points at
    /// `owner_uid`, and, when `with_orphans`, those with no controller at all (what an owner
    /// may adopt), sorted by name. Stores override it with an index: a StatefulSet or Job sync
    /// must cost what its own pods cost, not a scan of every pod of the namespace.
    fn controlled(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Value> {
        self.list_where(api_version, kind, Some(namespace), &|o| {
            is_controlled_by(o, owner_uid, with_orphans)
        })
    }

    /// As [`Objects::controlled`], sharing the objects instead of copying each (same caveat
    /// as [`Objects::list_shared`] about managedFields): a StatefulSet sync reads its pods and
    /// ControllerRevisions on every pass and writes few of them.
    fn controlled_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Arc<Value>> {
        self.controlled(api_version, kind, namespace, owner_uid, with_orphans)
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value>;

    /// As [`Objects::get`], sharing the object instead of copying it (same caveat as
    /// [`Objects::list_shared`] about managedFields).
    fn get_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.get(api_version, kind, namespace, name).map(Arc::new)
    }

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

/// `object`'s controller: None without a controller ownerReference (`controller: true`),
/// else the uid it names ("" when it names none).
pub fn controller_uid(object: &Value) -> Option<&str> {
    let owner = object
        .at("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    Some(owner.get("uid").and_then(Value::as_str).unwrap_or(""))
}

/// Whether [`Objects::controlled`] answers `object` for `owner_uid`: its controller is that
/// owner, or, when `with_orphans`, it has no controller.
pub fn is_controlled_by(object: &Value, owner_uid: &str, with_orphans: bool) -> bool {
    match controller_uid(object) {
        Some(uid) => uid == owner_uid,
        None => with_orphans,
    }
}

use crate::store::{DeleteOptions, Store, WriteOptions};

/// Field manager recorded for writes made through [`Objects`].
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";

fn info_of(
    store: &Store,
    object: &Value,
) -> Result<std::sync::Arc<crate::resources::ResourceInfo>, ApiError> {
    let av = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    store.resource(av, kind)
}

fn ns_of(object: &Value) -> Option<&str> {
    object.at("/metadata/namespace").and_then(Value::as_str)
}

fn meta_name(object: &Value) -> &str {
    object
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The real store behind the trait: the same pipeline as API requests (no HTTP, no faults,
/// no request counting). Writes are recorded under the manager `kube-controller-manager`.
impl Store {
    /// The stored objects [`Objects::controlled`] answers, from the controller index, sorted
    /// by name.
    fn controlled_stored(
        &self,
        info: &crate::resources::ResourceInfo,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<&Arc<Value>> {
        let gr = info.group_resource();
        let mut found: Vec<&Arc<Value>> = self
            .iter_controlled(&gr, namespace, Some(owner_uid))
            .collect();
        if with_orphans {
            found.extend(self.iter_controlled(&gr, namespace, None));
            found.sort_by(|a, b| meta_name(a).cmp(meta_name(b)));
        }
        found
    }
}

impl Objects for Store {
    fn now(&self) -> Timestamp {
        Store::now(self)
    }

    fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        self.list_where(api_version, kind, namespace, &|_| true)
    }

    fn list_where(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let Ok(info) = self.resource(api_version, kind) else {
            return vec![];
        };
        self.iter_scope(&info.group_resource(), namespace)
            .filter(|o| keep(o))
            .map(|o| Store::present_unmanaged(&info, o))
            .collect()
    }

    fn list_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Arc<Value>> {
        let Ok(info) = self.resource(api_version, kind) else {
            return vec![];
        };
        let gr = info.group_resource();
        let stored = self.iter_scope(&gr, namespace);
        if info.converts_on_read() {
            // Stored at another version: only a converted copy is right.
            return stored
                .map(|o| Arc::new(Store::present_unmanaged(&info, o)))
                .collect();
        }
        stored.cloned().collect()
    }

    fn get_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        let info = self.resource(api_version, kind).ok()?;
        let stored = self.get_arc(&info, namespace, name)?;
        if info.converts_on_read() {
            return Some(Arc::new(Store::present_unmanaged(&info, &stored)));
        }
        Some(stored)
    }

    fn controlled(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Value> {
        let Ok(info) = self.resource(api_version, kind) else {
            return vec![];
        };
        self.controlled_stored(&info, namespace, owner_uid, with_orphans)
            .into_iter()
            .map(|o| Store::present_unmanaged(&info, o))
            .collect()
    }

    fn controlled_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Arc<Value>> {
        let Ok(info) = self.resource(api_version, kind) else {
            return vec![];
        };
        let found = self.controlled_stored(&info, namespace, owner_uid, with_orphans);
        if info.converts_on_read() {
            // Stored at another version: only a converted copy is right.
            return found
                .into_iter()
                .map(|o| Arc::new(Store::present_unmanaged(&info, o)))
                .collect();
        }
        found.into_iter().cloned().collect()
    }

    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let info = self.resource(api_version, kind).ok()?;
        let stored = self.get_arc(&info, namespace, name)?;
        Some(Store::present_unmanaged(&info, &stored))
    }

    fn create(&mut self, object: Value) -> Result<Value, ApiError> {
        let info = info_of(self, &object)?;
        let ns = ns_of(&object).map(String::from);
        let opts = WriteOptions {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            in_process: true,
            ..Default::default()
        };
        Store::create(self, &info, ns.as_deref(), object, &opts)
    }

    fn update(&mut self, object: Value) -> Result<Value, ApiError> {
        let info = info_of(self, &object)?;
        let ns = ns_of(&object).map(String::from);
        let name = object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let opts = WriteOptions {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            in_process: true,
            ..Default::default()
        };
        self.replace(&info, ns.as_deref(), &name, object, &opts)
            .map(|(o, _)| o)
    }

    fn update_status(&mut self, object: Value) -> Result<Value, ApiError> {
        let info = info_of(self, &object)?;
        let ns = ns_of(&object).map(String::from);
        let name = object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let opts = WriteOptions {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            in_process: true,
            subresource: info.status.then(|| "status".to_string()),
            ..Default::default()
        };
        self.replace(&info, ns.as_deref(), &name, object, &opts)
            .map(|(o, _)| o)
    }

    fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        grace_seconds: Option<i64>,
    ) -> Result<(), ApiError> {
        let info = self.resource(api_version, kind)?;
        let opts = DeleteOptions {
            uid: uid.map(String::from),
            grace_period_seconds: grace_seconds,
            ..Default::default()
        };
        Store::delete(self, &info, namespace, name, &opts).map(|_| ())
    }
}
