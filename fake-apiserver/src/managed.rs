//! Field ownership for server-side apply: field sets in the FieldsV1 shape, list semantics
//! (atomic, set, map by keys) for built-in kinds and CRD schemas, and the apply merge.

use crate::json_ptr::At;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A set of field paths as a tree; keys are FieldsV1 path elements (`f:name`, `k:{..}`,
/// `v:..`, `.`). An empty node is a leaf (the field itself is owned).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet(pub BTreeMap<String, FieldSet>);

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn from_fields_v1(v: &Value) -> Self {
        let mut out = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, c) in m {
                out.0.insert(k.clone(), Self::from_fields_v1(c));
            }
        }
        out
    }

    pub fn to_fields_v1(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_fields_v1()))
                .collect(),
        )
    }

    pub fn union(&mut self, other: &FieldSet) {
        for (k, v) in &other.0 {
            self.0.entry(k.clone()).or_default().union(v);
        }
    }

    /// Remove every path of `other` from self; nodes emptied by the removal disappear.
    pub fn subtract(&mut self, other: &FieldSet) {
        let keys: Vec<String> = self.0.keys().cloned().collect();
        for k in keys {
            let Some(o) = other.0.get(&k) else { continue };
            let mine = self.0.get_mut(&k).expect("key listed");
            if o.is_empty() {
                if mine.is_empty() {
                    self.0.remove(&k);
                }
                continue;
            }
            if mine.is_empty() {
                continue;
            }
            mine.subtract(o);
            if mine.is_empty() {
                self.0.remove(&k);
            }
        }
    }

    /// All leaf paths.
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = vec![];
        self.collect(&mut vec![], &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (k, v) in &self.0 {
            prefix.push(k.clone());
            if v.is_empty() {
                out.push(prefix.clone());
            } else {
                v.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    pub fn contains_leaf(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.is_empty(),
            Some((h, rest)) => self.0.get(h).is_some_and(|c| c.contains_leaf(rest)),
        }
    }

    /// True when the path or anything below it is in the set.
    pub fn touches(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => true,
            Some((h, rest)) => self
                .0
                .get(h)
                .is_some_and(|c| c.is_empty() || c.touches(rest)),
        }
    }

    pub fn insert_leaf(&mut self, path: &[String]) {
        let mut node = self;
        for p in path {
            node = node.0.entry(p.clone()).or_default();
        }
    }
}

/// How a list field merges.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Where we are in an object while walking it: field names from the root, and the CRD
/// schema node for this position (None for built-ins).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub builtin: bool,
    pub schema: Option<&'a Value>,
    pub field: &'a str,
    pub parent: &'a str,
}

impl<'a> Ctx<'a> {
    pub fn root(builtin: bool, schema: Option<&'a Value>) -> Self {
        Self {
            builtin,
            schema,
            field: "",
            parent: "",
        }
    }

    pub fn child(&self, name: &'a str) -> Ctx<'a> {
        let schema = self.schema.and_then(|s| {
            s.get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        });
        Ctx {
            builtin: self.builtin,
            schema,
            field: name,
            parent: self.field,
        }
    }

    pub fn item(&self) -> Ctx<'a> {
        Ctx {
            builtin: self.builtin,
            schema: self.schema.and_then(|s| s.get("items")),
            field: self.field,
            parent: self.parent,
        }
    }

    /// List semantics of the list at this position.
    pub fn list_type(&self) -> ListType {
        if self.field == "finalizers" && self.parent == "metadata" {
            return ListType::Set;
        }
        if self.field == "ownerReferences" && self.parent == "metadata" {
            return ListType::Map(vec!["uid".into()]);
        }
        if let Some(s) = self.schema {
            return match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListType::Set,
                Some("map") => ListType::Map(
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListType::Atomic,
            };
        }
        if !self.builtin {
            return ListType::Atomic;
        }
        builtin_list_type(self.field, self.parent)
    }
}

fn keys(k: &[&str]) -> ListType {
    ListType::Map(k.iter().map(|s| s.to_string()).collect())
}

/// Merge keys of the common built-in list fields (SSA flavour).
pub fn builtin_list_type(field: &str, parent: &str) -> ListType {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => keys(&["name"]),
        "ports" if parent == "spec" => keys(&["port", "protocol"]),
        "ports" => keys(&["containerPort", "protocol"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "conditions" => keys(&["type"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        "taints" => keys(&["key", "effect"]),
        _ => ListType::Atomic,
    }
}

fn default_key_value(k: &str) -> Option<Value> {
    (k == "protocol").then(|| json!("TCP"))
}

/// The `k:{...}` element key of a list item (missing key fields take their defaults).
pub fn element_key(item: &Value, key_fields: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in key_fields {
        match item.get(k).cloned().or_else(|| default_key_value(k)) {
            Some(v) => {
                m.insert(k.clone(), v);
            }
            None if key_fields.len() > 1 => {}
            None => return None,
        }
    }
    if m.is_empty() {
        return None;
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// The fields an object sets (skipping server-owned metadata).
pub fn fields_of(obj: &Value, ctx: Ctx) -> FieldSet {
    let mut fs = FieldSet::default();
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            if ctx.field.is_empty() && (k == "apiVersion" || k == "kind") {
                continue;
            }
            if ctx.parent.is_empty()
                && ctx.field == "metadata"
                && matches!(
                    k.as_str(),
                    "name"
                        | "namespace"
                        | "uid"
                        | "resourceVersion"
                        | "generation"
                        | "creationTimestamp"
                        | "managedFields"
                        | "deletionTimestamp"
                        | "deletionGracePeriodSeconds"
                        | "selfLink"
                        | "generateName"
                )
            {
                continue;
            }
            let c = ctx.child(k);
            let sub = value_fields(v, c);
            // Metadata holding only server-owned fields (name, namespace, ...) is no field of
            // its own: upstream strips those paths and leaves no `f:metadata` behind (an empty
            // node here would own all of metadata and conflict with every other manager).
            if ctx.field.is_empty() && k == "metadata" && sub.is_empty() {
                continue;
            }
            fs.0.insert(format!("f:{k}"), sub);
        }
    }
    fs
}

fn value_fields(v: &Value, ctx: Ctx) -> FieldSet {
    match v {
        Value::Object(m) if !m.is_empty() => fields_of(v, ctx),
        Value::Array(items) => match ctx.list_type() {
            ListType::Atomic => FieldSet::default(),
            ListType::Set => {
                let mut fs = FieldSet::default();
                for it in items {
                    fs.0.insert(format!("v:{it}"), FieldSet::default());
                }
                fs
            }
            ListType::Map(kf) => {
                let mut fs = FieldSet::default();
                for it in items {
                    if let Some(k) = element_key(it, &kf) {
                        let mut e = fields_of(it, ctx.item());
                        e.0.insert(".".into(), FieldSet::default());
                        fs.0.insert(k, e);
                    }
                }
                fs
            }
        },
        _ => FieldSet::default(),
    }
}

/// The fields whose value differs between two objects (for Update ownership).
pub fn changed_fields(old: &Value, new: &Value, ctx: Ctx) -> FieldSet {
    let mut fs = FieldSet::default();
    let (Some(om), Some(nm)) = (old.as_object(), new.as_object()) else {
        return fs;
    };
    for (k, nv) in nm {
        if ctx.field.is_empty() && (k == "apiVersion" || k == "kind") {
            continue;
        }
        if ctx.parent.is_empty()
            && ctx.field == "metadata"
            && matches!(
                k.as_str(),
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "managedFields"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "selfLink"
                    | "generateName"
            )
        {
            continue;
        }
        let c = ctx.child(k);
        match om.get(k) {
            Some(ov) if ov == nv => {}
            Some(ov)
                if ov.is_object()
                    && nv.is_object()
                    && !nv.as_object().is_some_and(Map::is_empty) =>
            {
                let sub = changed_fields(ov, nv, c);
                if !sub.is_empty() {
                    fs.0.insert(format!("f:{k}"), sub);
                }
            }
            Some(Value::Array(oa)) if nv.is_array() => {
                let sub = changed_list(oa, nv.as_array().expect("checked"), c);
                match sub {
                    Some(s) if !s.is_empty() => {
                        fs.0.insert(format!("f:{k}"), s);
                    }
                    Some(_) => {}
                    None => {
                        fs.0.insert(format!("f:{k}"), FieldSet::default());
                    }
                }
            }
            _ => {
                fs.0.insert(format!("f:{k}"), value_fields(nv, c));
            }
        }
    }
    fs
}

/// None: the list is atomic and changed as a whole.
fn changed_list(old: &[Value], new: &[Value], ctx: Ctx) -> Option<FieldSet> {
    match ctx.list_type() {
        ListType::Atomic => None,
        ListType::Set => {
            let mut fs = FieldSet::default();
            for it in new {
                if !old.contains(it) {
                    fs.0.insert(format!("v:{it}"), FieldSet::default());
                }
            }
            Some(fs)
        }
        ListType::Map(kf) => {
            let mut fs = FieldSet::default();
            for it in new {
                let Some(k) = element_key(it, &kf) else {
                    continue;
                };
                match old
                    .iter()
                    .find(|o| element_key(o, &kf).as_deref() == Some(&k))
                {
                    Some(o) if o == it => {}
                    Some(o) => {
                        let sub = changed_fields(o, it, ctx.item());
                        if !sub.is_empty() {
                            fs.0.insert(k, sub);
                        }
                    }
                    None => {
                        let mut e = fields_of(it, ctx.item());
                        e.0.insert(".".into(), FieldSet::default());
                        fs.0.insert(k, e);
                    }
                }
            }
            Some(fs)
        }
    }
}

/// Deep-merge an applied configuration into the live object.
pub fn merge_applied(live: &mut Value, applied: &Value, ctx: Ctx) {
    let (Some(lm), Some(am)) = (live.as_object_mut(), applied.as_object()) else {
        *live = applied.clone();
        return;
    };
    for (k, av) in am {
        let c = ctx.child(k);
        match (lm.get_mut(k), av) {
            (Some(lv @ Value::Object(_)), Value::Object(_)) => merge_applied(lv, av, c),
            (Some(Value::Array(la)), Value::Array(aa)) => match c.list_type() {
                ListType::Atomic => *la = aa.clone(),
                ListType::Set => {
                    for it in aa {
                        if !la.contains(it) {
                            la.push(it.clone());
                        }
                    }
                }
                ListType::Map(kf) => {
                    for it in aa {
                        let key = element_key(it, &kf);
                        match la
                            .iter_mut()
                            .find(|l| key.is_some() && element_key(l, &kf) == key)
                        {
                            Some(l) => merge_applied(l, it, c.item()),
                            None => la.push(it.clone()),
                        }
                    }
                }
            },
            _ => {
                lm.insert(k.clone(), av.clone());
            }
        }
    }
}

/// Remove the field at a FieldsV1 path from an object (used when a manager stops applying it).
pub fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if let Some(f) = head.strip_prefix("f:") {
        let Some(m) = obj.as_object_mut() else { return };
        if rest.is_empty() {
            m.remove(f);
        } else if let Some(child) = m.get_mut(f) {
            remove_path(child, rest);
        }
    } else if let Some(k) = head.strip_prefix("k:") {
        let Some(arr) = obj.as_array_mut() else {
            return;
        };
        let Ok(Value::Object(keyobj)) = serde_json::from_str::<Value>(k) else {
            return;
        };
        let kf: Vec<String> = keyobj.keys().cloned().collect();
        let Some(idx) = arr
            .iter()
            .position(|e| element_key(e, &kf).as_deref() == Some(head))
        else {
            return;
        };
        if rest.is_empty() || rest == ["."] {
            arr.remove(idx);
        } else {
            remove_path(&mut arr[idx], rest);
        }
    } else if let Some(v) = head.strip_prefix("v:") {
        let Some(arr) = obj.as_array_mut() else {
            return;
        };
        if let Ok(val) = serde_json::from_str::<Value>(v) {
            arr.retain(|e| *e != val);
        }
    }
}

/// The value at a FieldsV1 path (None when absent).
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(obj);
    };
    if head == "." {
        return Some(obj);
    }
    if let Some(f) = head.strip_prefix("f:") {
        value_at(obj.get(f)?, rest)
    } else if let Some(k) = head.strip_prefix("k:") {
        let Ok(Value::Object(keyobj)) = serde_json::from_str::<Value>(k) else {
            return None;
        };
        let kf: Vec<String> = keyobj.keys().cloned().collect();
        let e = obj
            .as_array()?
            .iter()
            .find(|e| element_key(e, &kf).as_deref() == Some(head))?;
        value_at(e, rest)
    } else if let Some(v) = head.strip_prefix("v:") {
        let val: Value = serde_json::from_str(v).ok()?;
        obj.as_array()?.iter().find(|e| **e == val)
    } else {
        None
    }
}

/// `.spec.template.spec.containers[name="c"].image`, as conflict messages print paths.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(k) {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

// ----- the stored form ------------------------------------------------------------------
//
// A JSON tree costs one `BTreeMap` node (about 630 B) per non-empty object whatever its size,
// and managedFields are mostly small objects (`{"f:data": {".": {}, "f:a": {}}}`): about
// 3.3 KiB for a small ConfigMap whose whole JSON is 500 B. The store keeps them packed, as
// the serialized array in one string (its exact JSON, so unpacking gives back the same
// tree and the same bytes), and unpacks them wherever an object leaves the store.

fn managed_fields_slot(obj: &mut Value) -> Option<&mut Value> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.get_mut("managedFields"))
}

/// Replace `metadata.managedFields` (an array) by its serialized JSON, as the store keeps it.
pub fn pack(obj: &mut Value) {
    pack_taking(obj);
}

/// As [`pack`], returning the array it replaced (to show watchers without parsing it back).
pub fn pack_taking(obj: &mut Value) -> Option<Value> {
    let mf = managed_fields_slot(obj).filter(|mf| mf.is_array())?;
    let text = serde_json::to_string(mf).expect("a JSON tree serializes");
    // An exact-size allocation: the serializer's buffer grows by doubling.
    Some(std::mem::replace(
        mf,
        Value::String(String::from(text.into_boxed_str())),
    ))
}

/// Whether `metadata.managedFields` is in the packed (stored) form.
pub fn is_packed(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(Value::is_string)
}

/// Turn packed managedFields back into the JSON array clients see.
pub fn unpack(obj: &mut Value) {
    if let Some(mf) = managed_fields_slot(obj)
        && let Value::String(text) = mf
    {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => *mf = v,
            Err(_) => {
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
            }
        }
    }
}

/// `obj` with managedFields unpacked: the same `Arc` when there is nothing to unpack.
pub fn unpacked(obj: &std::sync::Arc<Value>) -> std::sync::Arc<Value> {
    if is_packed(obj) {
        let mut o = (**obj).clone();
        unpack(&mut o);
        std::sync::Arc::new(o)
    } else {
        obj.clone()
    }
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let parsed;
    let mf = match obj.at("/metadata/managedFields") {
        Some(Value::String(text)) => {
            parsed = serde_json::from_str::<Value>(text).ok();
            parsed.as_ref()
        }
        other => other,
    };
    mf.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .into(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    time: e.get("time").and_then(Value::as_str).map(String::from),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(String::from),
                    fields: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
            });
            if let Some(t) = &e.time {
                v["time"] = json!(t);
            }
            v["fieldsType"] = json!("FieldsV1");
            v["fieldsV1"] = e.fields.to_fields_v1();
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

/// Record an Update by `manager`: it takes the changed fields from everyone else.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    time: &str,
    ctx: Ctx,
) {
    let changed = match old {
        Some(o) => changed_fields(o, new, ctx),
        None => fields_of(new, ctx),
    };
    if changed.is_empty() {
        // Nobody's ownership moves: the old entries stand as stored (packed or not), which
        // spares parsing and rewriting them on every no-op write.
        let kept = old.and_then(|o| o.at("/metadata/managedFields")).cloned();
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match kept {
                Some(v) => {
                    m.insert("managedFields".into(), v);
                }
                None => {
                    m.remove("managedFields");
                }
            }
        }
        return;
    }
    let mut entries = old.map(read_entries).unwrap_or_default();
    for e in &mut entries {
        e.fields.subtract(&changed);
    }
    match entries.iter_mut().find(|e| {
        e.manager == manager && e.operation == "Update" && e.subresource.as_deref() == subresource
    }) {
        Some(e) => {
            e.fields.union(&changed);
            e.time = Some(time.into());
            e.api_version = api_version.into();
        }
        None => entries.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: Some(time.into()),
            subresource: subresource.map(String::from),
            fields: changed,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(new, &entries);
}

/// A field-manager conflict (force=false).
#[derive(Debug, Clone)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub operation: String,
    pub path: String,
}

/// Server-side apply of `applied` onto `live` (None to create). Returns the merged object with
/// managedFields updated, or the conflicts.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
    time: &str,
    ctx: Ctx,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = live.map(read_entries).unwrap_or_default();
    let new_set = fields_of(applied, ctx);
    let mut obj = live.cloned().unwrap_or_else(|| json!({}));
    let mine = |e: &Entry| {
        e.manager == manager && e.operation == "Apply" && e.subresource.as_deref() == subresource
    };

    // Fields another manager owns with a different value than the one applied.
    let mut conflicts = vec![];
    let mut taken = FieldSet::default();
    for leaf in new_set.leaves() {
        if leaf.last().is_some_and(|l| l == ".") {
            continue;
        }
        let live_v = value_at(&obj, &leaf);
        let new_v = value_at(applied, &leaf);
        if live_v.is_none() || live_v == new_v {
            continue;
        }
        for e in entries.iter().filter(|e| !mine(e)) {
            if e.fields.contains_leaf(&leaf) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    operation: e.operation.clone(),
                    path: path_string(&leaf),
                });
                taken.insert_leaf(&leaf);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    // Fields this manager applied before but no longer does, and nobody else owns.
    let mut dropped = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    dropped.subtract(&new_set);
    let mut leaves = dropped.leaves();
    // Remove deeper paths first so list elements go after their fields.
    leaves.sort_by_key(|l| std::cmp::Reverse(l.len()));
    for leaf in leaves {
        let owned_elsewhere = entries.iter().filter(|e| !mine(e)).any(|e| {
            if leaf.last().is_some_and(|l| l == ".") {
                e.fields.touches(&leaf[..leaf.len() - 1])
            } else {
                e.fields.touches(&leaf)
            }
        });
        if !owned_elsewhere {
            let target = if leaf.last().is_some_and(|l| l == ".") {
                &leaf[..leaf.len() - 1]
            } else {
                &leaf[..]
            };
            remove_path(&mut obj, target);
        }
    }

    merge_applied(&mut obj, applied, ctx);

    for e in entries.iter_mut().filter(|e| !mine(e)) {
        e.fields.subtract(&taken);
    }
    let prev_time = entries
        .iter()
        .find(|e| mine(e))
        .and_then(|e| e.time.clone());
    let prev_fields = entries.iter().find(|e| mine(e)).map(|e| e.fields.clone());
    entries.retain(|e| !mine(e));
    let t = if prev_fields.as_ref() == Some(&new_set) {
        prev_time.unwrap_or_else(|| time.into())
    } else {
        time.into()
    };
    entries.push(Entry {
        manager: manager.into(),
        operation: "Apply".into(),
        api_version: api_version.into(),
        time: Some(t),
        subresource: subresource.map(String::from),
        fields: new_set,
    });
    entries.retain(|e| !e.fields.is_empty());
    write_entries(&mut obj, &entries);
    Ok(obj)
}

/// The 409 message upstream prints for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    let mut by_mgr: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in conflicts {
        let who = if c.operation == "Update" {
            format!("\"{}\" using {}", c.manager, c.api_version)
        } else {
            format!("\"{}\"", c.manager)
        };
        by_mgr.entry(who).or_default().push(c.path.clone());
    }
    let n = conflicts.len();
    let mut msg = format!(
        "Apply failed with {n} conflict{}: ",
        if n == 1 { "" } else { "s" }
    );
    let parts: Vec<String> = by_mgr
        .iter()
        .map(|(who, paths)| {
            if paths.len() == 1 {
                format!("conflict with {who}: {}", paths[0])
            } else {
                format!("conflicts with {who}:\n- {}", paths.join("\n- "))
            }
        })
        .collect();
    msg.push_str(&parts.join("\n"));
    msg
}
