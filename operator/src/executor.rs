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

/// What the operator asks of a cluster's database pods, beyond the Kubernetes API: SQL on the
/// primary ([`Action::Sql`]) and Patroni switchovers ([`Action::Switchover`]).
///
/// `tusk run` uses [`PatroniRest`]; `tusk up` routes both to the simulated Patroni/PostgreSQL.
pub trait DatabaseOps: Send + Sync {
    /// Run `statements` in one session on `pod` (the primary when the plan was made).
    fn sql<'a>(
        &'a self,
        pod: &'a ObjectRef,
        database: &'a str,
        statements: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Ask Patroni on `leader` (its REST API at `leader_address`, `host:port`, once the pod
    /// has an IP) to hand the primary role to `candidate` (or to the replica Patroni picks).
    fn switchover<'a>(
        &'a self,
        leader: &'a ObjectRef,
        leader_address: Option<&'a str>,
        candidate: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Run `command` in `container` of `pod` and return its standard output (pgBackRest's
    /// `info`, read-only). Err carries its stderr or why it could not run.
    fn read_output<'a>(
        &'a self,
        pod: &'a ObjectRef,
        container: &'a str,
        command: &'a [String],
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// The production [`DatabaseOps`]: switchovers through Patroni's REST API on the leader pod,
/// SQL through `pods/exec` of `psql` in the primary's `database` container, with the
/// statements on stdin (never on the command line, where passwords would show in `ps`).
pub struct PatroniRest {
    /// How long one REST call or one psql session may take before the reconcile gives up and
    /// retries.
    pub timeout: std::time::Duration,
    /// The client `pods/exec` goes through; without one, SQL fails with a clear error.
    pub client: Option<kube::Client>,
}

impl Default for PatroniRest {
    fn default() -> Self {
        Self {
            timeout: std::time::Duration::from_secs(10),
            client: None,
        }
    }
}

impl PatroniRest {
    pub fn with_client(client: kube::Client) -> Self {
        Self {
            client: Some(client),
            ..Self::default()
        }
    }
}

/// The container of a database pod that runs PostgreSQL (and psql).
pub const DATABASE_CONTAINER: &str = tusk_core::naming::DATABASE_CONTAINER;

/// The psql command tusk runs: no psqlrc, no password prompt, stop at the first error, read
/// the script from stdin; it connects over the local socket as the container's user.
pub fn psql_command(database: &str) -> Vec<String> {
    [
        "psql",
        "--no-psqlrc",
        "--no-password",
        "--quiet",
        "--set=ON_ERROR_STOP=1",
        "--dbname",
        database,
        "--file=-",
    ]
    .map(String::from)
    .to_vec()
}

/// Runs `psql_command(database)` in `pod` with `script` on stdin; Ok when it exited 0,
/// otherwise its stderr (or the status message) as the error.
pub async fn exec_psql(
    client: &kube::Client,
    pod: &ObjectRef,
    database: &str,
    script: &str,
) -> Result<(), String> {
    exec_capture(
        client,
        pod,
        DATABASE_CONTAINER,
        psql_command(database),
        Some(script.as_bytes()),
    )
    .await
    .map(|_| ())
}

/// Runs `command` in `container` of `pod` through `pods/exec`, with `stdin` (closed at its
/// end) when given; Ok(stdout) when it exited 0, otherwise its stderr (or the status message)
/// as the error, naming the program and the pod.
pub async fn exec_capture(
    client: &kube::Client,
    pod: &ObjectRef,
    container: &str,
    command: Vec<String>,
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::AttachParams;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let program = command.first().cloned().unwrap_or_default();
    let namespace = pod.namespace.as_deref().unwrap_or("default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    let mut process = pods
        .exec(&pod.name, command, &params)
        .await
        .map_err(|e| format!("exec of {program} in pod {}/{}: {e}", namespace, pod.name))?;
    if let Some(input) = stdin {
        let mut writer = process.stdin().ok_or("exec gave no stdin")?;
        writer
            .write_all(input)
            .await
            .map_err(|e| format!("writing to {program} in {}: {e}", pod.name))?;
        writer.shutdown().await.ok();
        // Closing stdin is what tells the program its input is complete.
        drop(writer);
    }
    let mut stdout = process.stdout().ok_or("exec gave no stdout")?;
    let mut stderr = process.stderr().ok_or("exec gave no stderr")?;
    let status = process.take_status().ok_or("exec gave no status")?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (read_out, read_err) =
        tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    read_out.ok();
    read_err.ok();
    let status = status.await;
    let _ = process.join().await;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(out),
        Some(s) => {
            let err = String::from_utf8_lossy(&err);
            let detail = if err.trim().is_empty() {
                s.message.unwrap_or_else(|| format!("{program} failed"))
            } else {
                err.trim().to_string()
            };
            Err(format!("{program} in pod {}: {detail}", pod.name))
        }
        None => Err(format!(
            "{program} in pod {}: the exec stream ended without a status",
            pod.name
        )),
    }
}

/// The psql input for `statements`: one per line, ending with a newline.
pub fn sql_script(statements: &[String]) -> String {
    let mut script = statements.join("\n");
    script.push('\n');
    script
}

impl DatabaseOps for PatroniRest {
    fn sql<'a>(
        &'a self,
        pod: &'a ObjectRef,
        database: &'a str,
        statements: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let client = self.client.as_ref().ok_or_else(|| {
                format!(
                    "cannot run SQL in pod {}: this runner has no Kubernetes client for pods/exec",
                    pod.name
                )
            })?;
            let script = sql_script(statements);
            let run = exec_psql(client, pod, database, &script);
            match tokio::time::timeout(self.timeout, run).await {
                Err(_) => Err(format!(
                    "psql in pod {} did not finish within {:?}",
                    pod.name, self.timeout
                )),
                Ok(result) => {
                    if result.is_ok() {
                        tracing::info!(pod = %pod.name, database, statements = statements.len(), "SQL applied on the primary");
                    }
                    result
                }
            }
        })
    }

    fn switchover<'a>(
        &'a self,
        leader: &'a ObjectRef,
        leader_address: Option<&'a str>,
        candidate: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let address = leader_address.ok_or_else(|| {
                format!(
                    "pod {} has no IP yet, so its Patroni REST API cannot be reached; retrying",
                    leader.name
                )
            })?;
            let url = format!("http://{address}/switchover");
            let body = switchover_body(&leader.name, candidate);
            let call = post_json(&url, body);
            match tokio::time::timeout(self.timeout, call).await {
                Err(_) => Err(format!("{url} did not answer within {:?}", self.timeout)),
                Ok(Err(e)) => Err(format!("{url}: {e}")),
                Ok(Ok((status, text))) if status.is_success() => {
                    tracing::info!(leader = %leader.name, candidate, response = %text.trim(), "Patroni accepted the switchover");
                    Ok(())
                }
                Ok(Ok((status, text))) => Err(format!(
                    "Patroni on {} refused the switchover ({status}): {}",
                    leader.name,
                    text.trim()
                )),
            }
        })
    }

    fn read_output<'a>(
        &'a self,
        pod: &'a ObjectRef,
        container: &'a str,
        command: &'a [String],
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let client = self.client.as_ref().ok_or_else(|| {
                format!(
                    "cannot run {command:?} in pod {}: this runner has no Kubernetes client for pods/exec",
                    pod.name
                )
            })?;
            // Listing a cloud repo can take longer than one SQL session.
            let limit = self.timeout.max(std::time::Duration::from_secs(60));
            let run = exec_capture(client, pod, container, command.to_vec(), None);
            match tokio::time::timeout(limit, run).await {
                Err(_) => Err(format!(
                    "{command:?} in pod {} did not finish within {limit:?}",
                    pod.name
                )),
                Ok(result) => result.map(|out| String::from_utf8_lossy(&out).into_owned()),
            }
        })
    }
}

/// The info ConfigMap to apply: the plan's object with `pgbackrest info`'s output as
/// `data.info.json`. Output that is not a JSON array of stanzas is refused (with its start,
/// which carries no secret: pgBackRest prints repo paths and labels), so a broken read never
/// replaces a good one.
pub fn info_config_map(config_map: &Value, output: &str) -> Result<Value, String> {
    let trimmed = output.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Array(_)) => {}
        _ => {
            let start: String = trimmed.chars().take(200).collect();
            return Err(format!(
                "pgbackrest info did not print a JSON array of stanzas: {start:?}"
            ));
        }
    }
    let mut object = config_map.clone();
    object["data"] = json!({ tusk_core::backup::retention::INFO_KEY: trimmed });
    Ok(object)
}

/// The body Patroni's `/switchover` takes: the current leader, and the candidate if chosen.
pub fn switchover_body(leader: &str, candidate: Option<&str>) -> String {
    let mut body = json!({ "leader": leader });
    if let Some(c) = candidate {
        body["candidate"] = json!(c);
    }
    body.to_string()
}

/// One plain-HTTP JSON POST (Patroni's REST API as tusk configures it has no TLS).
async fn post_json(url: &str, body: String) -> Result<(http::StatusCode, String), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client: HttpClient<_, Full<bytes::Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
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
    #[error("switchover from pod {pod} failed: {message}")]
    Switchover { pod: String, message: String },
    #[error("reading pgbackrest info in pod {pod} failed: {message}")]
    BackupInfo { pod: String, message: String },
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
            ExecError::Switchover { .. } => "switchover",
            ExecError::BackupInfo { .. } => "backup_info",
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
    pub database: Arc<dyn DatabaseOps>,
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

    /// Server-side apply of a whole object as field manager `tusk`, forced.
    async fn apply_object(&self, object: &Value) -> Result<Option<Written>, ExecError> {
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

    #[allow(unreachable_patterns)] // the core may add actions this build does not know yet
    pub async fn execute_one(&self, action: &Action) -> Result<Option<Written>, ExecError> {
        match action {
            Action::Apply { object } => {
                METRICS.action("apply");
                self.apply_object(object).await
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
                // kubectl describe selects events by the object's uid too, so look it up
                // (best effort: an event without one is still recorded).
                let uid = match self.api(
                    &regarding.api_version,
                    &regarding.kind,
                    regarding.namespace.as_deref(),
                    None,
                    "get",
                ) {
                    Ok(api) => api
                        .get_opt(&regarding.name)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|o| o.metadata.uid),
                    Err(_) => None,
                };
                let reference = ObjectReference {
                    api_version: Some(regarding.api_version.clone()),
                    kind: Some(regarding.kind.clone()),
                    name: Some(regarding.name.clone()),
                    namespace: regarding.namespace.clone(),
                    uid,
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
                // The plan named the primary when it was made; after a failover the statements
                // must not go to a pod that is now a replica (they would fail read-only, or
                // worse, run on a demoted primary). The next reconcile targets the new one.
                let pods = self.api("v1", "Pod", pod.namespace.as_deref(), None, "get")?;
                let err =
                    |source| api_err("get", "Pod", pod.namespace.as_deref(), &pod.name, source);
                let current = pods.get_opt(&pod.name).await.map_err(err)?;
                let still_primary = current.as_ref().is_some_and(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(tusk_core::labels::ROLE))
                        .is_some_and(|r| tusk_core::labels::is_primary_role(r))
                        && p.metadata.deletion_timestamp.is_none()
                });
                if !still_primary {
                    return Err(ExecError::Sql {
                        pod: pod.name.clone(),
                        message: "the pod no longer holds the primary role; the next reconcile runs the SQL on the new primary".into(),
                    });
                }
                self.database
                    .sql(pod, database, statements)
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
            Action::Switchover { pod, candidate } => {
                METRICS.action("switchover");
                let pods = self.api("v1", "Pod", pod.namespace.as_deref(), None, "get")?;
                let err =
                    |source| api_err("get", "Pod", pod.namespace.as_deref(), &pod.name, source);
                // The leader pod may be gone since the plan was made: nothing to hand over
                // from; the next reconcile sees the new state.
                let Some(leader) = pods.get_opt(&pod.name).await.map_err(err)? else {
                    return Ok(None);
                };
                let address = patroni_address(&leader.data);
                self.database
                    .switchover(pod, address.as_deref(), candidate.as_deref())
                    .await
                    .map_err(|message| ExecError::Switchover {
                        pod: pod.name.clone(),
                        message,
                    })?;
                Ok(None)
            }
            Action::RefreshBackupInfo {
                pod,
                container,
                command,
                config_map,
            } => {
                METRICS.action("backup_info");
                kinds::require("v1", "Pod", Some("exec"), "create")?;
                let fail = |message: String| ExecError::BackupInfo {
                    pod: pod.name.clone(),
                    message,
                };
                let pods = self.api("v1", "Pod", pod.namespace.as_deref(), None, "get")?;
                let err =
                    |source| api_err("get", "Pod", pod.namespace.as_deref(), &pod.name, source);
                // A pod that is gone or going cannot answer; the next reconcile picks another.
                let alive = pods
                    .get_opt(&pod.name)
                    .await
                    .map_err(err)?
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_none());
                if !alive {
                    return Err(fail(
                        "the pod is gone or terminating; the next reconcile reads on the new primary".into(),
                    ));
                }
                let text = self
                    .database
                    .read_output(pod, container, command)
                    .await
                    .map_err(fail)?;
                let object = info_config_map(config_map, &text).map_err(fail)?;
                self.apply_object(&object).await
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

/// `host:port` of a pod's Patroni REST API: its IP and the `patroni` container port tusk
/// renders from `spec.patroni.port` (8008 when the pod does not name one).
pub fn patroni_address(pod: &Value) -> Option<String> {
    let ip = pod
        .pointer("/status/podIP")?
        .as_str()
        .filter(|ip| !ip.is_empty())?;
    let port = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == "patroni")
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or(tusk_core::api::defaults::PATRONI_PORT as u64);
    Some(if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn patroni_address_uses_the_pods_patroni_port() {
        let pod = json!({
            "spec": {"containers": [
                {"name": "database", "ports": [
                    {"name": "postgres", "containerPort": 5432},
                    {"name": "patroni", "containerPort": 8018}]}]},
            "status": {"podIP": "10.1.2.3"}
        });
        assert_eq!(patroni_address(&pod).as_deref(), Some("10.1.2.3:8018"));
        let v6 = json!({"spec": {"containers": []}, "status": {"podIP": "fd00::5"}});
        assert_eq!(patroni_address(&v6).as_deref(), Some("[fd00::5]:8008"));
        let pending = json!({"spec": {}, "status": {}});
        assert_eq!(patroni_address(&pending), None);
    }

    /// A stand-in for Patroni's REST API on loopback: records each POST and answers with the
    /// given status.
    async fn fake_patroni(status: u16) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
        use axum::extract::{OriginalUri, State};
        type Seen = Arc<Mutex<Vec<(String, String)>>>;
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .fallback(
                move |State(seen): State<Seen>, uri: OriginalUri, body: String| async move {
                    seen.lock().unwrap().push((uri.0.path().to_string(), body));
                    (
                        http::StatusCode::from_u16(status).unwrap(),
                        "switchover answer",
                    )
                },
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (address, seen)
    }

    fn leader() -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some("pg".into()),
            name: "cluster1-instance1-abcd-0".into(),
        }
    }

    #[tokio::test]
    async fn switchover_posts_leader_and_candidate_to_patroni() {
        let (address, seen) = fake_patroni(200).await;
        PatroniRest::default()
            .switchover(&leader(), Some(&address), Some("cluster1-instance1-efgh-0"))
            .await
            .expect("accepted");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "/switchover");
        let body: Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(
            body,
            json!({"leader": "cluster1-instance1-abcd-0", "candidate": "cluster1-instance1-efgh-0"})
        );
    }

    #[tokio::test]
    async fn a_refused_or_unreachable_switchover_is_an_error_naming_the_pod() {
        let (address, _) = fake_patroni(412).await;
        let err = PatroniRest::default()
            .switchover(&leader(), Some(&address), None)
            .await
            .unwrap_err();
        assert!(err.contains("refused") && err.contains("412"), "{err}");
        assert!(err.contains("cluster1-instance1-abcd-0"), "{err}");
        let err = PatroniRest::default()
            .switchover(&leader(), None, None)
            .await
            .unwrap_err();
        assert!(err.contains("no IP"), "{err}");
    }
}
