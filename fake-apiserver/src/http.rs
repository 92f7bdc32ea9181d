//! The HTTP front: one axum router that serves discovery, OpenAPI, CRUD, subresources and
//! watches. Used in-process as a tower Service and over TCP.

use crate::discovery;
use crate::error::ApiError;
use crate::json_ptr::At;
use crate::patch::PatchKind;
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::ApiServer;
use crate::store::{
    DeleteOptions, Deleted, ListOptions, Store, WatchFilter, WatchMsg, WatchStart, WriteOptions,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub fn router(server: ApiServer) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/pods/{pod}/exec",
            axum::routing::get(crate::exec::upgrade).post(crate::exec::upgrade),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{pod}/portforward",
            axum::routing::get(port_forward).post(port_forward),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{pod}/attach",
            axum::routing::get(attach).post(attach),
        )
        .fallback(handle)
        .with_state(server)
}

/// `pods/portforward` (`kubectl port-forward`): no process listens in a simulated pod, so the
/// request fails with one line saying so (kubectl prints it after `error upgrading
/// connection:`) instead of a 404 for an unknown path.
async fn port_forward(
    State(server): State<ApiServer>,
    axum::extract::Path((namespace, pod)): axum::extract::Path<(String, String)>,
) -> Response {
    unsupported(
        &server,
        &namespace,
        &pod,
        format!(
            "port-forward to {namespace}/{pod} is not supported: this API server simulates pods and nothing listens in them; use kubectl exec for what the server's exec handler runs"
        ),
    )
}

/// `pods/attach` (`kubectl attach`, `kubectl run -it`): no process runs to attach to.
async fn attach(
    State(server): State<ApiServer>,
    axum::extract::Path((namespace, pod)): axum::extract::Path<(String, String)>,
) -> Response {
    unsupported(
        &server,
        &namespace,
        &pod,
        format!(
            "attach to {namespace}/{pod} is not supported: this API server simulates pods and no process runs in them; kubectl logs shows what the kubelet reports"
        ),
    )
}

/// A 400 saying why a streaming subresource of an existing pod cannot work (404 without the pod).
fn unsupported(server: &ApiServer, namespace: &str, pod: &str, why: String) -> Response {
    let exists =
        server.with_store(|s| crate::Objects::get(s, "v1", "Pod", Some(namespace), pod).is_some());
    let err = if exists {
        ApiError::bad_request(why)
    } else {
        ApiError::new(404, "NotFound", format!("pods \"{pod}\" not found"))
            .with_details(json!({"name": pod, "kind": "pods"}))
    };
    error_response(&err)
}

fn json_response(code: u16, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("valid response")
}

pub(crate) fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn parse_bool(s: Option<&String>) -> bool {
    matches!(
        s.map(|s| s.as_str()),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

/// What a URL names.
struct Target {
    info: Arc<ResourceInfo>,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Doc(Value),
    Resource(Target, bool),
}

fn route(server: &ApiServer, path: &str, host: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let store = server.lock();
    let reg = store.registry();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return Ok(Route::Doc(discovery::version())),
        ["healthz"] | ["readyz"] | ["livez"] => return Ok(Route::Doc(json!("ok"))),
        ["api"] => return Ok(Route::Doc(discovery::api_versions(host))),
        ["apis"] => return Ok(Route::Doc(discovery::api_group_list(reg))),
        ["openapi", "v3"] => return Ok(Route::Doc(discovery::openapi_v3_root(reg))),
        ["openapi", "v3", rest @ ..] => {
            return discovery::openapi_v3_gv(reg, &rest.join("/"))
                .map(Route::Doc)
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["api", v] => {
            return discovery::resource_list(reg, "", v)
                .map(Route::Doc)
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["apis", g] => {
            return discovery::api_group(reg, g)
                .map(Route::Doc)
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["apis", g, v] => {
            return discovery::resource_list(reg, g, v)
                .map(Route::Doc)
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route(path)),
    };
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let is_ns_sub = |s: &str| matches!(s, "status" | "finalize");
    let (ns, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !is_ns_sub(plural) => (
            Some(ns.to_string()),
            *plural,
            tail.first().map(|s| s.to_string()),
            tail.get(1).map(|s| s.to_string()),
        ),
        [plural, tail @ ..] => (
            None,
            *plural,
            tail.first().map(|s| s.to_string()),
            tail.get(1).map(|s| s.to_string()),
        ),
        [] => return Err(ApiError::no_route(path)),
    };
    let info = reg
        .by_path(group, version, plural)
        .ok_or_else(|| ApiError::no_route(path))?;
    if !info.namespaced && ns.is_some() {
        return Err(ApiError::no_route(path));
    }
    if info.namespaced && ns.is_none() && name.is_some() {
        return Err(ApiError::no_route(path));
    }
    Ok(Route::Resource(
        Target {
            info,
            ns,
            name,
            sub,
        },
        legacy_watch,
    ))
}

fn query_map(req: &Request) -> HashMap<String, String> {
    let q = req.uri().query().unwrap_or_default();
    let mut out = HashMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

/// Decodes a query-string component (`+` is a space, `%XX` a byte). Works on bytes: a `%`
/// before a multi-byte character must not split it (slicing the str there would panic).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn verb_of(method: &Method, t: &Target, watch: bool) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).or_else(|_| {
        // Apply patches may be YAML.
        serde_yaml::from_slice::<Value>(bytes).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
    })
}

fn list_options(q: &HashMap<String, String>, info: &ResourceInfo) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        labels: LabelSelector::parse(
            q.get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )?,
        fields: FieldSelector::parse(
            q.get("fieldSelector")
                .map(String::as_str)
                .unwrap_or_default(),
            &info.plural,
        )?,
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        continue_token: q.get("continue").filter(|c| !c.is_empty()).cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q
            .get("resourceVersionMatch")
            .filter(|c| !c.is_empty())
            .cloned(),
    })
}

fn write_options(q: &HashMap<String, String>, sub: Option<&str>) -> WriteOptions {
    WriteOptions {
        field_manager: q.get("fieldManager").cloned(),
        force: parse_bool(q.get("force")),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        subresource: sub.map(String::from),
        in_process: false,
    }
}

fn success_status(info: &ResourceInfo, obj: &Value) -> Value {
    let mut d = json!({
        "name": obj.at("/metadata/name").cloned().unwrap_or(Value::Null),
        "kind": info.plural,
        "uid": obj.at("/metadata/uid").cloned().unwrap_or(Value::Null),
    });
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

async fn handle(State(server): State<ApiServer>, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let path = req.uri().path().to_string();
    let trimmed = path.trim_matches('/');
    if (trimmed == "api" || trimmed == "apis")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|h| h.to_str().ok())
            .is_some_and(discovery::wants_aggregated)
    {
        let doc = discovery::aggregated(server.lock().registry(), trimmed == "api");
        let mut r = json_response(200, &doc);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(discovery::AGGREGATED_V2),
        );
        return r;
    }
    if trimmed == "openapi/v2" {
        // kubectl validates `kind: List` files against the OpenAPI v2 document, which it asks
        // for as protobuf. A document without definitions (just `swagger: "2.0"`) leaves
        // every kind unvalidated client-side; the server still validates (fieldValidation).
        let proto = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|a| a.contains("protobuf"));
        if proto {
            return Response::builder()
                .status(200)
                .header(
                    header::CONTENT_TYPE,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )
                // openapi_v2.Document { swagger: "2.0" }: field 1, length-delimited.
                .body(Body::from(&b"\x0a\x032.0"[..]))
                .expect("valid");
        }
        return json_response(
            200,
            &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": discovery::version()["gitVersion"]}, "paths": {}, "definitions": {}}),
        );
    }
    let target = match route(&server, &path, &host) {
        Ok(Route::Doc(d)) => {
            if d == json!("ok") {
                return Response::builder()
                    .status(200)
                    .body(Body::from("ok"))
                    .expect("valid");
            }
            return json_response(200, &d);
        }
        Ok(Route::Resource(t, legacy)) => (t, legacy),
        Err(e) => return error_response(&e),
    };
    let (t, legacy_watch) = target;
    let q = query_map(&req);
    let method = req.method().clone();
    let watch = legacy_watch || parse_bool(q.get("watch"));
    let verb = verb_of(&method, &t, watch);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the body failed: {e}"
            )));
        }
    };

    // JSON (and YAML for apply) bodies, plus the protobuf kinds kubectl create sends; other
    // protobuf and CBOR bodies get 415.
    let mut body = body;
    let mut content_type = content_type;
    if content_type.contains("protobuf")
        && let Some(v) = crate::protobuf::decode(&body)
    {
        body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        content_type = "application/json".into();
    }
    if content_type.contains("protobuf") && crate::discovery::review(&t.info, &json!({})).is_some()
    {
        // kubectl auth can-i / whoami send their review as protobuf; the answer needs none
        // of its fields (the spec is not echoed back then).
        body = Bytes::from_static(b"{}");
        content_type = "application/json".into();
    }
    if !body.is_empty() && (content_type.contains("protobuf") || content_type.contains("cbor")) {
        server.lock().count(verb);
        return error_response(&ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})"
        )));
    }
    // Faults are decided first: a failed request changes nothing.
    let outcome = {
        let mut s = server.lock();
        s.count(verb);
        s.faults
            .check(verb, &t.info, t.ns.as_deref(), t.name.as_deref())
    };
    if !outcome.latency.is_zero() {
        tokio::time::sleep(outcome.latency).await;
    }
    if let Some(e) = outcome.error {
        return error_response(&e);
    }
    if verb == "watch" {
        let table = accept
            .contains("as=Table")
            .then(|| crate::table::Include::from_query(q.get("includeObject").map(String::as_str)));
        return match start_watch(&server, &t, &q, table) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
    }
    if t.sub.as_deref() == Some("log") && verb == "get" {
        return pod_log(&server, &t, &q);
    }
    let mut warnings = vec![];
    let result = {
        let mut s = server.lock();
        let r = execute(
            &mut s,
            &t,
            verb,
            &q,
            &body,
            &content_type,
            outcome.stale_revision,
            &mut warnings,
        );
        if r.is_ok() && s.auto_gc && s.gc_pending() && !matches!(verb, "get" | "list") {
            s.gc_until_settled();
        }
        r
    };
    let mut resp = match result {
        Ok((code, _)) if t.sub.as_deref() == Some("log") => Response::builder()
            .status(code)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::empty())
            .expect("valid response"),
        Ok((code, v)) => {
            if accept.contains("as=Table") && matches!(verb, "get" | "list") && t.sub.is_none() {
                let s = server.lock();
                let include =
                    crate::table::Include::from_query(q.get("includeObject").map(String::as_str));
                return json_response(
                    code,
                    &crate::table::to_table_with(&t.info, &v, s.now(), include),
                );
            }
            json_response(code, &v)
        }
        Err(e) => error_response(&e),
    };
    for w in &warnings {
        if let Ok(v) = HeaderValue::from_str(w) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// `GET pods/NAME/log` as text (see [`crate::logs`]).
fn pod_log(server: &ApiServer, t: &Target, q: &HashMap<String, String>) -> Response {
    let source = server.log_source();
    let pod = {
        let s = server.lock();
        s.get(
            &t.info,
            t.ns.as_deref(),
            t.name.as_deref().unwrap_or_default(),
        )
    };
    // The source runs without the store lock: it may be a world model with its own locks.
    match pod.and_then(|p| crate::logs::render(&p, q, source.as_ref())) {
        Ok(text) => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(text))
            .expect("valid response"),
        Err(e) => error_response(&e),
    }
}

/// Applies `?fieldValidation=` to a write's body: Strict fails with upstream's 400, Warn adds
/// one warning per unknown field, Ignore says nothing.
fn field_validation(
    info: &ResourceInfo,
    q: &HashMap<String, String>,
    body: &[u8],
    fields_of: &Value,
    whole_object: bool,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    use crate::validation::{
        Directive, duplicate_fields, strict_error, unknown_fields, warning_header,
    };
    let directive = Directive::parse(q.get("fieldValidation").map(String::as_str))?;
    if directive == Directive::Ignore {
        return Ok(());
    }
    let duplicates = duplicate_fields(body);
    let unknown = unknown_fields(info, fields_of);
    if unknown.is_empty() && duplicates.is_empty() {
        return Ok(());
    }
    if directive == Directive::Strict {
        return Err(strict_error(info, &duplicates, &unknown, whole_object));
    }
    warnings.extend(duplicates.iter().map(|f| warning_header("duplicate", f)));
    warnings.extend(unknown.iter().map(|f| warning_header("unknown", f)));
    Ok(())
}

// One request's parts; bundling them would only move the list elsewhere.
#[allow(clippy::too_many_arguments)]
fn execute(
    s: &mut Store,
    t: &Target,
    verb: &str,
    q: &HashMap<String, String>,
    body: &Bytes,
    content_type: &str,
    stale: Option<u64>,
    warnings: &mut Vec<String>,
) -> Result<(u16, Value), ApiError> {
    let info = &t.info;
    let ns = t.ns.as_deref();
    let sub = t.sub.as_deref();
    if let Some(sb) = sub {
        let ok = (sb == "status" && info.status)
            || (sb == "scale" && info.scale.is_some())
            || (sb == "log" && info.plural == "pods")
            || (sb == "eviction" && info.plural == "pods" && info.group.is_empty());
        if !ok {
            return Err(ApiError::no_route(&format!("{}/{}", info.plural, sb)));
        }
    }
    let name = t.name.as_deref().unwrap_or_default();
    if sub == Some("eviction") {
        return match (verb, ns) {
            ("create", Some(ns)) => crate::eviction::evict(s, info, ns, name, &parse_body(body)?),
            _ => Err(ApiError::method_not_allowed(
                "pods/eviction only accepts POST on a namespaced pod",
            )),
        };
    }
    match verb {
        "get" => {
            if sub == Some("scale") {
                return crate::scale::get(s, info, ns, name).map(|v| (200, v));
            }
            if sub == Some("log") {
                s.get(info, ns, name)?;
                return Ok((200, Value::String(String::new())));
            }
            match stale {
                Some(r) => s.get_at(info, ns, name, r).map(|v| (200, v)),
                None => s.get(info, ns, name).map(|v| (200, v)),
            }
        }
        "list" => {
            let opts = list_options(q, info)?;
            if parse_bool(q.get("sendInitialEvents")) {
                return Err(ApiError::invalid_simple(
                    "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
                ));
            }
            match stale {
                Some(r) => s.list_at(info, ns, &opts, r).map(|v| (200, v)),
                None => {
                    let mut list = s.list(info, ns, &opts)?;
                    if info.group.is_empty() && info.plural == "events" {
                        crate::events::merge_into_core_list(s, ns, &opts, &mut list)?;
                    }
                    Ok((200, list))
                }
            }
        }
        "create" => {
            if t.name.is_some() {
                return Err(ApiError::method_not_allowed(
                    "POST on a named resource is not supported",
                ));
            }
            let obj = parse_body(body)?;
            if let Some(review) = crate::discovery::review(info, &obj) {
                // Reviews are answered, never stored (kubectl auth can-i / whoami).
                return Ok((201, review));
            }
            field_validation(info, q, body, &obj, true, warnings)?;
            s.create(info, ns, obj, &write_options(q, None))
                .map(|v| (201, v))
        }
        "update" => {
            let obj = parse_body(body)?;
            if sub == Some("scale") {
                return crate::scale::update(s, info, ns, name, &obj, &write_options(q, None))
                    .map(|v| (200, v));
            }
            field_validation(info, q, body, &obj, true, warnings)?;
            let (v, created) = s.replace(info, ns, name, obj, &write_options(q, sub))?;
            Ok((if created { 201 } else { 200 }, v))
        }
        "patch" => {
            let kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
                ApiError::unsupported_media(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"))
            })?;
            let patch = parse_body(body)?;
            if sub == Some("scale") {
                return crate::scale::patch(
                    s,
                    info,
                    ns,
                    name,
                    kind,
                    &patch,
                    &write_options(q, None),
                )
                .map(|v| (200, v));
            }
            if kind == PatchKind::Json {
                let fields = crate::validation::json_patch_fields(&patch);
                field_validation(info, q, body, &fields, false, warnings)?;
            } else {
                field_validation(info, q, body, &patch, false, warnings)?;
            }
            let (v, created) = s.patch(info, ns, name, kind, &patch, &write_options(q, sub))?;
            Ok((if created { 201 } else { 200 }, v))
        }
        "delete" => {
            let opts = delete_options(q, body)?;
            match s.delete(info, ns, name, &opts)? {
                Deleted::Gone(o) if !info.return_deleted => Ok((200, success_status(info, &o))),
                Deleted::Gone(o) | Deleted::Pending(o) => Ok((200, o)),
            }
        }
        "deletecollection" => {
            let opts = list_options(q, info)?;
            let del = delete_options(q, body)?;
            s.delete_collection(info, ns, &opts, &del).map(|v| (200, v))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn delete_options(q: &HashMap<String, String>, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let v = parse_body(body)?;
    let mut o = DeleteOptions::from_json(&v);
    if let Some(g) = q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        o.grace_period_seconds = Some(g);
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation_policy = Some(p.clone());
    }
    if let Some(orphan) = q.get("orphanDependents")
        && o.propagation_policy.is_none()
    {
        o.propagation_policy = Some(
            if parse_bool(Some(orphan)) {
                "Orphan"
            } else {
                "Background"
            }
            .into(),
        );
    }
    if q.get("dryRun").is_some_and(|d| d == "All") {
        o.dry_run = true;
    }
    Ok(o)
}

#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

struct WatchState {
    rx: tokio::sync::mpsc::UnboundedReceiver<WatchMsg>,
    server: ApiServer,
    info: Arc<ResourceInfo>,
    bookmarks: bool,
    deadline: tokio::time::Instant,
    next_bookmark: tokio::time::Instant,
    last_rv: u64,
    buffer: std::collections::VecDeque<Bytes>,
    done: bool,
    /// For a `core/v1` events watch: the `events.k8s.io/v1` events of the same namespace and
    /// labels, shown converted and filtered by the watch's field selector, as one storage
    /// serves both APIs upstream (`kubectl get events -w`).
    merged: Option<(
        tokio::sync::mpsc::UnboundedReceiver<WatchMsg>,
        FieldSelector,
    )>,
    /// `as=Table` was asked for (`kubectl get -w`): each event's object is a one-row Table,
    /// its row carrying what `includeObject` asks.
    table: Option<crate::table::Include>,
}

impl WatchState {
    fn bookmark(&self, rev: u64, initial_end: bool) -> Bytes {
        let mut md = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": md}),
        )
    }

    fn render(&mut self, msg: WatchMsg) -> Option<Bytes> {
        match msg {
            WatchMsg::Event(kind, obj) => {
                if let Some(rv) = obj
                    .at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|r| r.parse().ok())
                {
                    self.last_rv = self.last_rv.max(rv);
                }
                if let Some(include) = self.table {
                    let now = self.server.lock().now();
                    let shown = Store::present(&self.info, &obj);
                    Some(line(
                        kind.as_str(),
                        &crate::table::to_table_with(&self.info, &shown, now, include),
                    ))
                } else if self.info.converts_on_read() {
                    Some(line(kind.as_str(), &Store::present(&self.info, &obj)))
                } else {
                    Some(line(kind.as_str(), &obj))
                }
            }
            WatchMsg::Error(status) => {
                self.done = true;
                Some(line("ERROR", &status))
            }
            WatchMsg::Bookmark(rev, initial_end) => {
                self.last_rv = self.last_rv.max(rev);
                (self.bookmarks || initial_end).then(|| self.bookmark(rev, initial_end))
            }
        }
    }

    /// A message of the merged `events.k8s.io/v1` watch, converted to `core/v1`; bookmarks
    /// are left to the main watch, which shares the revision.
    fn render_merged(&mut self, msg: WatchMsg) -> Option<Bytes> {
        match msg {
            WatchMsg::Event(kind, obj) => {
                let core = crate::events::to_core(&obj);
                let fields = &self.merged.as_ref()?.1;
                fields
                    .matches(&core)
                    .then(|| self.render(WatchMsg::Event(kind, Arc::new(core))))
                    .flatten()
            }
            WatchMsg::Error(status) => self.render(WatchMsg::Error(status)),
            WatchMsg::Bookmark(..) => None,
        }
    }

    /// Queue everything delivered so far, then a bookmark at the current revision.
    fn drain_and_bookmark(&mut self) {
        let rev = {
            let s = self.server.lock();
            let rev = s.revision();
            let mut msgs = vec![];
            while let Ok(m) = self.rx.try_recv() {
                msgs.push((false, m));
            }
            if let Some((rx, _)) = self.merged.as_mut() {
                while let Ok(m) = rx.try_recv() {
                    msgs.push((true, m));
                }
            }
            drop(s);
            for (merged, m) in msgs {
                let b = if merged {
                    self.render_merged(m)
                } else {
                    self.render(m)
                };
                if let Some(b) = b {
                    self.buffer.push_back(b);
                }
            }
            rev
        };
        if !self.done {
            let r = rev.max(self.last_rv);
            self.last_rv = r;
            let b = self.bookmark(r, false);
            self.buffer.push_back(b);
        }
    }
}

/// The next message of the merged events watch; never ready when there is none.
async fn recv_merged(
    merged: &mut Option<(
        tokio::sync::mpsc::UnboundedReceiver<WatchMsg>,
        FieldSelector,
    )>,
) -> Option<WatchMsg> {
    match merged {
        Some((rx, _)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn start_watch(
    server: &ApiServer,
    t: &Target,
    q: &HashMap<String, String>,
    table: Option<crate::table::Include>,
) -> Result<Response, ApiError> {
    let info = t.info.clone();
    let mut opts = list_options(q, &info)?;
    if let Some(n) = &t.name {
        if let Some(f) = opts.fields.name()
            && f != n
        {
            return Err(ApiError::bad_request(format!(
                "fieldSelector metadata.name={f} does not match the name in the URL ({n})"
            )));
        }
        opts.fields = FieldSelector::parse(&format!("metadata.name={n}"), &info.plural)?;
    }
    let send_initial = q.get("sendInitialEvents").map(|v| parse_bool(Some(v)));
    let rvm = q.get("resourceVersionMatch").filter(|s| !s.is_empty());
    if send_initial.is_some() && rvm.map(String::as_str) != Some("NotOlderThan") {
        return Err(ApiError::invalid_simple(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if send_initial.is_none() && rvm.is_some() {
        return Err(ApiError::invalid_simple(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let rv = q
        .get("resourceVersion")
        .filter(|s| !s.is_empty() && *s != "0");
    let start = match (send_initial, rv) {
        (Some(true), _) => WatchStart::InitialWithBookmark,
        (_, None) => WatchStart::Initial,
        (_, Some(r)) => WatchStart::From(
            r.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
        ),
    };
    let namespace = if info.namespaced { t.ns.clone() } else { None };
    let merged_filter = (info.group.is_empty() && info.plural == "events").then(|| {
        let filter = WatchFilter {
            group_resource: "events.events.k8s.io".to_string(),
            namespace: namespace.clone(),
            labels: opts.labels.clone(),
            fields: FieldSelector::default(),
        };
        (filter, opts.fields.clone())
    });
    let filter = WatchFilter {
        group_resource: info.group_resource(),
        namespace,
        labels: opts.labels,
        fields: opts.fields,
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let bookmarks = parse_bool(q.get("allowWatchBookmarks"));
    let (rx, merged) = {
        let mut s = server.lock();
        let merged = merged_filter
            .filter(|(f, _)| s.registry().by_group_resource(&f.group_resource).is_some())
            .map(|(f, fields)| (s.watch(f, start), fields));
        (s.watch(filter, start), merged)
    };
    let now = tokio::time::Instant::now();
    let state = WatchState {
        rx,
        server: server.clone(),
        info,
        bookmarks,
        deadline: now + Duration::from_secs(timeout),
        next_bookmark: now + Duration::from_secs(60),
        last_rv: 0,
        buffer: Default::default(),
        done: false,
        merged,
        table,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.buffer.pop_front() {
                return Some((Ok::<Bytes, std::convert::Infallible>(b), st));
            }
            if st.done {
                return None;
            }
            tokio::select! {
                biased;
                m = st.rx.recv() => match m {
                    Some(m) => {
                        if let Some(b) = st.render(m) {
                            return Some((Ok(b), st));
                        }
                    }
                    None => return None,
                },
                Some(m) = recv_merged(&mut st.merged) => {
                    if let Some(b) = st.render_merged(m) {
                        return Some((Ok(b), st));
                    }
                }
                _ = tokio::time::sleep_until(st.deadline) => {
                    if st.bookmarks {
                        st.drain_and_bookmark();
                    }
                    st.done = true;
                }
                _ = tokio::time::sleep_until(st.next_bookmark), if st.bookmarks => {
                    st.next_bookmark += Duration::from_secs(60);
                    st.drain_and_bookmark();
                }
            }
        }
    });
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("valid response"))
}
