//! A small in-memory [`Objects`] for testing controllers without the real store: one global
//! resourceVersion, uid, creationTimestamp, generation on spec changes, generateName,
//! resourceVersion preconditions, status kept apart for kinds with a status subresource,
//! finalizers, deletionTimestamp and graceful pod deletion. No watches, no GC.

use super::util::{self, fmt_time, from_secs, secs};
use crate::error::ApiError;
use crate::json_ptr::At;
use crate::objects::Objects;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;

type Key = (String, String, String); // kind, namespace, name

pub struct MemObjects {
    now: Timestamp,
    rv: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
}

impl Default for MemObjects {
    fn default() -> Self {
        Self::new()
    }
}

fn has_status_subresource(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Node"
            | "StatefulSet"
            | "Deployment"
            | "ReplicaSet"
            | "Job"
            | "PersistentVolumeClaim"
            | "PersistentVolume"
            | "Namespace"
            | "Service"
    )
}

fn not_found(kind: &str, name: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("{}s \"{name}\" not found", kind.to_lowercase()),
    )
}

fn conflict(kind: &str, name: &str) -> ApiError {
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {}s \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.to_lowercase()
        ),
    )
}

impl MemObjects {
    /// Starts at 2025-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self {
            now: from_secs(1_735_689_600),
            rv: 0,
            uids: 0,
            objects: BTreeMap::new(),
        }
    }

    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    pub fn advance(&mut self, seconds: i64) {
        self.now = from_secs(secs(self.now) + seconds);
    }

    pub fn revision(&self) -> u64 {
        self.rv
    }

    /// Every object, keyed `kind/namespace/name`, for whole-store comparisons.
    pub fn dump(&self) -> Value {
        let mut m = serde_json::Map::new();
        for ((k, ns, n), v) in &self.objects {
            m.insert(format!("{k}/{ns}/{n}"), v.clone());
        }
        Value::Object(m)
    }

    fn key_of(v: &Value) -> Key {
        (
            util::str_at(v, "/kind").unwrap_or("").to_string(),
            util::namespace(v).to_string(),
            util::name(v).to_string(),
        )
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Store `new` in place of `old` unless nothing changed (no-op writes bump nothing).
    fn commit(&mut self, key: Key, old: &Value, mut new: Value) -> Value {
        normalise(&mut new);
        if &new == old {
            return new;
        }
        if util::is_terminating(&new)
            && new
                .at("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty())
            && util::i64_at(&new, "/metadata/deletionGracePeriodSeconds").unwrap_or(0) == 0
        {
            self.objects.remove(&key);
            self.rv += 1;
            return new;
        }
        new["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.objects.insert(key, new.clone());
        new
    }

    fn check_rv(old: &Value, new: &Value) -> Result<(), ApiError> {
        let want = util::str_at(new, "/metadata/resourceVersion").unwrap_or("");
        if !want.is_empty() && Some(want) != util::str_at(old, "/metadata/resourceVersion") {
            return Err(conflict(
                util::str_at(old, "/kind").unwrap_or(""),
                util::name(old),
            ));
        }
        Ok(())
    }
}

fn normalise(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["finalizers", "labels", "annotations", "ownerReferences"] {
            let empty = match meta.get(k) {
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(k);
            }
        }
    }
}

impl Objects for MemObjects {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), v)| {
                k == kind
                    && util::str_at(v, "/apiVersion") == Some(api_version)
                    && namespace.is_none_or(|n| n == ns)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.objects
            .get(&(
                kind.to_string(),
                namespace.unwrap_or("").to_string(),
                name.to_string(),
            ))
            .filter(|v| util::str_at(v, "/apiVersion") == Some(api_version))
            .cloned()
    }

    fn create(&mut self, mut object: Value) -> Result<Value, ApiError> {
        if util::name(&object).is_empty() {
            let Some(prefix) = util::str_at(&object, "/metadata/generateName").map(str::to_string)
            else {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "metadata.name: Required value: name or generateName is required",
                ));
            };
            self.uids += 1;
            object["metadata"]["name"] = json!(format!("{prefix}{:05}", self.uids));
        }
        if util::str_at(&object, "/metadata/resourceVersion").is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::new(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let key = Self::key_of(&object);
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{}s \"{}\" already exists", key.0.to_lowercase(), key.2),
            ));
        }
        self.uids += 1;
        let meta = &mut object["metadata"];
        meta["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", self.uids));
        meta["creationTimestamp"] = json!(fmt_time(self.now));
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        if has_status_subresource(&key.0) && key.0 != "Pod" && key.0 != "Namespace" {
            object["metadata"]["generation"] = json!(1);
        }
        if key.0 == "Pod" {
            // The pod strategy resets status on create: phase Pending.
            object["status"] = json!({"phase": "Pending"});
        }
        normalise(&mut object);
        object["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.objects.insert(key, object.clone());
        Ok(object)
    }

    fn update(&mut self, mut object: Value) -> Result<Value, ApiError> {
        let key = Self::key_of(&object);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(&key.0, &key.2))?;
        Self::check_rv(&old, &object)?;
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old["metadata"].get(k) {
                Some(v) => object["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = object["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        if util::is_terminating(&old) {
            let old_f = old.at("/metadata/finalizers").cloned();
            let new_f = object.at("/metadata/finalizers").cloned();
            let grew = new_f.as_ref().and_then(Value::as_array).is_some_and(|n| {
                n.iter().any(|f| {
                    !old_f
                        .as_ref()
                        .and_then(Value::as_array)
                        .is_some_and(|o| o.contains(f))
                })
            });
            if grew {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        if has_status_subresource(&key.0) {
            match old.get("status") {
                Some(s) => object["status"] = s.clone(),
                None => {
                    if let Some(m) = object.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if old.get("spec") != object.get("spec") && old["metadata"].get("generation").is_some()
            {
                let g = util::i64_at(&old, "/metadata/generation").unwrap_or(0);
                object["metadata"]["generation"] = json!(g + 1);
            }
        }
        Ok(self.commit(key, &old, object))
    }

    fn update_status(&mut self, object: Value) -> Result<Value, ApiError> {
        let key = Self::key_of(&object);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(&key.0, &key.2))?;
        Self::check_rv(&old, &object)?;
        let mut new = old.clone();
        match object.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        Ok(self.commit(key, &old, new))
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
        let key = (
            kind.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        let old = self
            .get(api_version, kind, namespace, name)
            .ok_or_else(|| not_found(kind, name))?;
        if let Some(u) = uid
            && u != util::uid(&old)
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {u}, UID in object meta: {}",
                    util::uid(&old)
                ),
            ));
        }
        let has_finalizers = old
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let mut grace = 0;
        if kind == "Pod" {
            let scheduled = util::str_at(&old, "/spec/nodeName").is_some_and(|n| !n.is_empty());
            grace = grace_seconds
                .or_else(|| util::i64_at(&old, "/spec/terminationGracePeriodSeconds"))
                .unwrap_or(30);
            if !scheduled || util::pod_terminal(&old) {
                grace = 0;
            }
        }
        let mut new = old.clone();
        let now = secs(self.now);
        if grace > 0 {
            let deadline = now + grace;
            let current = util::time_at(&old, "/metadata/deletionTimestamp").map(secs);
            if current.is_some_and(|c| c <= deadline) {
                return Ok(());
            }
            new["metadata"]["deletionTimestamp"] = json!(fmt_time(from_secs(deadline)));
            new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            self.commit(key, &old, new);
            return Ok(());
        }
        if has_finalizers {
            if !util::is_terminating(&old) {
                new["metadata"]["deletionTimestamp"] = json!(fmt_time(self.now));
            }
            new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            self.commit(key, &old, new);
            return Ok(());
        }
        self.objects.remove(&key);
        self.rv += 1;
        Ok(())
    }
}
