//! The output of a reconcile: an ordered list of actions for a driver to execute.
//!
//! Every prefix of a plan must leave the cluster safe: a driver may stop (crash) after any
//! action, and the next reconcile, reading what was written, finishes the job.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The field manager every server-side apply of tusk uses.
pub const FIELD_MANAGER: &str = "tusk";

/// Enough to address one object through the API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Server-side apply of a whole object (apiVersion, kind, metadata.name and namespace set),
    /// field manager [`FIELD_MANAGER`], force. Fields tusk stops sending are removed by the server.
    /// Shared: a rendered object held by the render memo goes into the plan without a copy.
    Apply {
        #[serde(with = "shared_value")]
        object: Arc<Value>,
    },
    /// Delete, with a UID precondition so that a newer object of the same name survives.
    Delete { target: ObjectRef, uid: String },
    /// Replace what tusk owns of the object's status through the status subresource
    /// (server-side apply of `{"status": status}`).
    PatchStatus { target: ObjectRef, status: Value },
    /// An Event about `regarding`.
    Event {
        regarding: ObjectRef,
        #[serde(rename = "type")]
        type_: EventType,
        reason: String,
        message: String,
    },
    /// SQL to run on the current primary, in one session, as the superuser. Statements must be
    /// idempotent: a crash may replay them.
    Sql {
        /// The pod that held the primary role when the plan was made; a driver refuses to run
        /// the statements anywhere else.
        pod: ObjectRef,
        database: String,
        statements: Vec<String>,
    },
    /// Ask Patroni to hand the primary role from `pod` (the current primary) to `candidate`
    /// (a pod name; `None` lets Patroni choose the healthiest replica). The operator POSTs
    /// `{"leader": <pod>, "candidate": <candidate>}` to Patroni's REST API `/switchover` on
    /// `pod`; the world's Patroni model performs the same. tusk never writes the leader lock.
    Switchover {
        pod: ObjectRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<String>,
    },
    /// Remove one finalizer from `target`'s `metadata.finalizers`, leaving the others: a JSON
    /// patch `test` + `remove` at the finalizer's current index (retry on conflict), because a
    /// server-side apply by `tusk` cannot remove entries other managers (the user) own.
    RemoveFinalizer {
        target: ObjectRef,
        finalizer: String,
    },
    /// Read which backups the repos hold: run `command` (`pgbackrest info --stanza=db
    /// --output=json`) in `container` of `pod` and server-side apply `config_map` (metadata
    /// complete, no data) with the command's standard output under `data.info.json`. A driver
    /// refuses output that is not a JSON array, so a failed `info` never replaces a good one.
    RefreshBackupInfo {
        pod: ObjectRef,
        container: String,
        command: Vec<String>,
        config_map: Value,
    },
    /// Reconcile again after this long even if nothing changes.
    RequeueAfter {
        #[serde(with = "duration_secs")]
        after: Duration,
    },
}

/// An ordered list of actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
}

impl Plan {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The actions that write to the API or the database (everything but requeues).
    pub fn writes(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .filter(|a| !matches!(a, Action::RequeueAfter { .. }))
    }

    /// The shortest requested requeue, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::RequeueAfter { after } => Some(*after),
                _ => None,
            })
            .min()
    }
}

/// An `Arc<Value>` (de)serialised as the value itself.
mod shared_value {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &Arc<Value>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Value>, D::Error> {
        Value::deserialize(d).map(Arc::new)
    }
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
