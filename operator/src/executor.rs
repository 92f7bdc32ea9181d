//! Executes a [`Plan`] against the Kubernetes API, in order, stopping at the first failure
//! (every prefix of a plan is safe; the next reconcile finishes the job).

use crate::kinds::{self, Undeclared};
use crate::metrics::METRICS;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType as KubeEventType, Recorder};
use serde_json::{Value, json};
use std::sync::Arc;
use tusk_core::plan::FIELD_MANAGER;
use tusk_core::{Action, EventType, ObjectRef, Plan};

/// Runs the SQL statements of [`Action::Sql`] on a cluster's primary.
///
/// The production implementation would exec `psql` in the primary's `database` container; that
/// needs kube's websocket feature (not in this build's dependency set), so the operator ships
/// [`LogOnlySql`], and `tusk up` routes SQL to the simulated PostgreSQL, which has no SQL engine.
pub trait SqlRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        pod: &'a ObjectRef,
        database: &'a str,
        statements: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Records that SQL was requested (statement count only: statements may carry passwords).
pub struct LogOnlySql;

impl SqlRunner for LogOnlySql {
    fn run<'a>(
        &'a self,
        pod: &'a ObjectRef,
        database: &'a str,
        statements: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            tracing::info!(
                pod = %pod.name,
                database,
                statements = statements.len(),
                "SQL requested on the primary (exec runner not built in; statements not logged)"
            );
            Ok(())
        })
    }
}

/// One failed action, naming what and where.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{verb} {kind} {object} failed: {source}")]
    Api {
        verb: &'static str,
        kind: String,
        object: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("plan has a malformed object ({0}); this is a tusk bug, please report it")]
    Malformed(String),
    #[error(transparent)]
    Undeclared(#[from] Undeclared),
    #[error("SQL on pod {pod} failed: {message}")]
    Sql { pod: String, message: String },
}

impl ExecError {
    /// A short reason for metrics and the backoff policy.
    pub fn reason(&self) -> &'static str {
        match self {
            ExecError::Api { source, .. } => match api_code(source) {
                Some(409) => "conflict",
                Some(429) => "throttled",
                Some(403) => "forbidden",
                Some(404) => "not_found",
                Some(400 | 422) => "invalid",
                Some(c) if c >= 500 => "server_error",
                Some(_) => "api_error",
                None => "transport",
            },
            ExecError::Malformed(_) => "malformed_plan",
            ExecError::Undeclared(_) => "undeclared_kind",
            ExecError::Sql { .. } => "sql",
        }
    }
}

pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// What a write returned, so the next reconcile can wait until the caches have seen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The object now exists at this resourceVersion.
    At {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        resource_version: u64,
    },
    /// The object with this uid is being deleted or is gone.
    Deleted {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        uid: String,
    },
}

pub struct Executor {
    pub client: Client,
    pub recorder: Recorder,
    pub sql: Arc<dyn SqlRunner>,
}

impl Executor {
    /// Execute the plan's writes in order; returns what was written. Stops at the first error.
    pub async fn execute(&self, plan: &Plan) -> Result<Vec<Written>, ExecError> {
        let mut written = Vec::new();
        for action in &plan.actions {
            if let Some(w) = self.execute_one(action).await? {
                written.push(w);
            }
        }
        Ok(written)
    }

    fn api(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        sub: Option<&str>,
        verb: &str,
    ) -> Result<Api<DynamicObject>, Undeclared> {
        let spec = kinds::require(api_version, kind, sub, verb)?;
        let ar = spec.api_resource();
        Ok(match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        })
    }

    #[allow(unreachable_patterns)] // the core may add actions this build does not know yet
    async fn execute_one(&self, action: &Action) -> Result<Option<Written>, ExecError> {
        match action {
            Action::Apply { object } => {
                METRICS.action("apply");
                let (api_version, kind, ns, name) = address(object)?;
                let api = self.api(&api_version, &kind, ns.as_deref(), None, "patch")?;
                kinds::require(&api_version, &kind, None, "create")?;
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let out = api
                    .patch(&name, &params, &Patch::Apply(object))
                    .await
                    .map_err(|source| api_err("apply", &kind, ns.as_deref(), &name, source))?;
                Ok(Some(Written::At {
                    resource_version: rv_of(&out),
                    api_version,
                    kind,
                    namespace: ns,
                    name,
                }))
            }
            Action::Delete { target, uid } => {
                METRICS.action("delete");
                let api = self.api(
                    &target.api_version,
                    &target.kind,
                    target.namespace.as_deref(),
                    None,
                    "delete",
                )?;
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::background()
                };
                match api.delete(&target.name, &params).await {
                    Ok(_) => {}
                    // Gone already, or a newer object took the name: both mean done.
                    Err(e) if matches!(api_code(&e), Some(404 | 409)) => {}
                    Err(source) => {
                        return Err(api_err(
                            "delete",
                            &target.kind,
                            target.namespace.as_deref(),
                            &target.name,
                            source,
                        ));
                    }
                }
                Ok(Some(Written::Deleted {
                    api_version: target.api_version.clone(),
                    kind: target.kind.clone(),
                    namespace: target.namespace.clone(),
                    name: target.name.clone(),
                    uid: uid.clone(),
                }))
            }
            Action::PatchStatus { target, status } => {
                METRICS.action("status");
                let api = self.api(
                    &target.api_version,
                    &target.kind,
                    target.namespace.as_deref(),
                    Some("status"),
                    "patch",
                )?;
                let body = json!({
                    "apiVersion": target.api_version,
                    "kind": target.kind,
                    "metadata": {"name": target.name},
                    "status": status,
                });
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let out = api
                    .patch_status(&target.name, &params, &Patch::Apply(&body))
                    .await
                    .map_err(|source| {
                        api_err(
                            "patch status of",
                            &target.kind,
                            target.namespace.as_deref(),
                            &target.name,
                            source,
                        )
                    })?;
                Ok(Some(Written::At {
                    api_version: target.api_version.clone(),
                    kind: target.kind.clone(),
                    namespace: target.namespace.clone(),
                    name: target.name.clone(),
                    resource_version: rv_of(&out),
                }))
            }
            Action::Event {
                regarding,
                type_,
                reason,
                message,
            } => {
                METRICS.action("event");
                kinds::require("events.k8s.io/v1", "Event", None, "create")?;
                let reference = ObjectReference {
                    api_version: Some(regarding.api_version.clone()),
                    kind: Some(regarding.kind.clone()),
                    name: Some(regarding.name.clone()),
                    namespace: regarding.namespace.clone(),
                    ..Default::default()
                };
                let event = Event {
                    type_: match type_ {
                        EventType::Normal => KubeEventType::Normal,
                        EventType::Warning => KubeEventType::Warning,
                    },
                    reason: reason.clone(),
                    note: Some(message.chars().take(1000).collect()),
                    action: "Reconcile".into(),
                    secondary: None,
                };
                // An event that cannot be recorded must not block the cluster's reconcile.
                if let Err(e) = self.recorder.publish(&event, &reference).await {
                    tracing::warn!(reason = %reason, error = %e, "could not record event");
                }
                Ok(None)
            }
            Action::Sql {
                pod,
                database,
                statements,
            } => {
                METRICS.action("sql");
                kinds::require("v1", "Pod", Some("exec"), "create")?;
                self.sql
                    .run(pod, database, statements)
                    .await
                    .map_err(|message| ExecError::Sql {
                        pod: pod.name.clone(),
                        message,
                    })?;
                Ok(None)
            }
            Action::RemoveFinalizer { target, finalizer } => {
                METRICS.action("remove_finalizer");
                let api = self.api(
                    &target.api_version,
                    &target.kind,
                    target.namespace.as_deref(),
                    None,
                    "patch",
                )?;
                let err = |source| {
                    api_err(
                        "remove finalizer from",
                        &target.kind,
                        target.namespace.as_deref(),
                        &target.name,
                        source,
                    )
                };
                let current = match api.get_opt(&target.name).await.map_err(err)? {
                    Some(o) => o,
                    None => return Ok(None),
                };
                let Some(index) = current
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .position(|f| f == finalizer)
                else {
                    return Ok(None);
                };
                // test + remove: if the list changed since the read, the server refuses (and
                // the reconcile retries) instead of removing someone else's finalizer.
                let patch: json_patch::Patch = serde_json::from_value(json!([
                    {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": finalizer},
                    {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
                ]))
                .map_err(|e| ExecError::Malformed(e.to_string()))?;
                let out = api
                    .patch(
                        &target.name,
                        &PatchParams::default(),
                        &Patch::<()>::Json(patch),
                    )
                    .await
                    .map_err(err)?;
                Ok(Some(Written::At {
                    api_version: target.api_version.clone(),
                    kind: target.kind.clone(),
                    namespace: target.namespace.clone(),
                    name: target.name.clone(),
                    resource_version: rv_of(&out),
                }))
            }
            Action::RequeueAfter { .. } => Ok(None),
            _ => {
                tracing::warn!(
                    ?action,
                    "action not supported by this build of the operator; skipped"
                );
                Ok(None)
            }
        }
    }
}

fn api_err(
    verb: &'static str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
    source: kube::Error,
) -> ExecError {
    ExecError::Api {
        verb,
        kind: kind.to_string(),
        object: match ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        },
        source: Box::new(source),
    }
}

fn rv_of(obj: &DynamicObject) -> u64 {
    obj.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (apiVersion, kind, namespace, name) of an object in a plan.
fn address(object: &Value) -> Result<(String, String, Option<String>, String), ExecError> {
    let s = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let api_version =
        s("/apiVersion").ok_or_else(|| ExecError::Malformed("no apiVersion".into()))?;
    let kind = s("/kind")
        .ok_or_else(|| ExecError::Malformed(format!("{api_version} object without kind")))?;
    let name = s("/metadata/name")
        .ok_or_else(|| ExecError::Malformed(format!("{kind} without metadata.name")))?;
    Ok((api_version, kind, s("/metadata/namespace"), name))
}
