//! What the operator's caches hold, in heap bytes, without a 20-minute scale run.
//!
//! For N clusters (`TUSK_FOOTPRINT_CLUSTERS`, comma-separated, default `100,300`): renders each
//! cluster's objects with the core (as `tusk render` does, upstream `deploy/cr.yaml` with three
//! instances), stores them in the in-process fake API server, lets its built-in controllers
//! create the pods and claims, then starts the operator's [`Caches`] against it over kube's
//! client (a tower service, no sockets) and reads the heap with a counting global allocator:
//! - each kind's cache alone (bytes per cluster and per object, and the JSON size of what it
//!   holds, to compare typed objects with their wire form),
//! - all caches together once ready,
//! - after one reconcile per cluster (`observe` + the core's `reconcile`, plan not executed),
//!   which adds the core's render memo (bounded by `TUSK_RENDER_CACHE_MIB`, default 16 as in
//!   `tusk run`).
//!
//! Heap figures are deltas against the heap with the server populated, so the server's own
//! store is not counted (its per-watch state is, a few KiB). `cargo bench -p tusk-operator
//! --bench footprint`.

use futures::StreamExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::client::ClientBuilder;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers, Nodes};
use tusk_fake_apiserver::{ApiServer, Config, ManualClock};
use tusk_operator::observe::{Caches, Scope, cluster_resource};

/// Live heap bytes of the whole process, and the most since [`reset_peak`].
static HEAP: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = HEAP.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn reset_peak() {
    PEAK.store(heap(), Ordering::Relaxed);
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

mod common;
use common::{NAMESPACE, scale_cluster as cluster_cr};

/// A server holding `n` clusters as the operator and the built-in controllers leave them: the
/// CRs and every rendered object written by server-side apply (field manager `tusk`, as the
/// executor does, so managedFields are as in a real run), then pods and claims created by the
/// built-in controllers.
async fn populated(n: usize) -> ApiServer {
    let clock = Arc::new(ManualClock::at_epoch_2025());
    let server = ApiServer::new(Config {
        clock: clock.clone(),
        seed: 1,
        auto_gc: false,
        ..Config::default()
    });
    tusk_operator::up::install_crds(&server).expect("CRDs install");
    let client = ClientBuilder::new(server.router(), NAMESPACE).build();
    let ssa = PatchParams::apply(tusk_core::FIELD_MANAGER).force();
    let api_of = |api_version: &str, kind: &str| -> Api<DynamicObject> {
        let spec = tusk_operator::kinds::KINDS
            .iter()
            .find(|k| k.kind == kind && k.api_version() == api_version)
            .unwrap_or_else(|| panic!("{api_version} {kind} declared"));
        Api::namespaced_with(client.clone(), NAMESPACE, &spec.api_resource())
    };
    let clusters = api_of(tusk_operator::core_glue::API_VERSION, "PerconaPGCluster");
    server.with_store(|store| Nodes::create(store, 8).expect("nodes"));
    for i in 0..n {
        let name = format!("c{i:04}");
        let user = PatchParams::apply("kubectl").force();
        let created = clusters
            .patch(&name, &user, &Patch::Apply(cluster_cr(&name)))
            .await
            .expect("apply cluster");
        let typed: tusk_core::api::PerconaPGCluster =
            serde_json::from_value(serde_json::to_value(created).expect("json")).expect("typed");
        // Rendered without the memo, so that the measurements start with it empty.
        let objs = tusk_core::build::memo::without_memo(|| tusk_core::render(&typed, i as u64));
        for obj in objs.expect("render") {
            let api = api_of(
                obj["apiVersion"].as_str().unwrap_or_default(),
                obj["kind"].as_str().unwrap_or_default(),
            );
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            api.patch(&name, &ssa, &Patch::Apply(&obj))
                .await
                .expect("apply rendered object");
        }
    }
    let mut controllers = Controllers::new(ControllerConfig {
        seed: 1,
        pdb_status: true,
        endpoints: true,
        ..ControllerConfig::default()
    });
    server.with_store(|store| {
        controllers.settle(store, 50);
        clock.advance(SignedDuration::from_secs(120));
        controllers.settle(store, 50);
    });
    server
}

struct Measured {
    bytes: isize,
    /// The most heap above the start while the caches listed.
    peak: isize,
    counts: Vec<(&'static str, usize)>,
    json_bytes: usize,
}

/// Starts the caches of the kinds `only` accepts, waits until they are ready and the trigger
/// stream is drained, and returns the heap they added.
async fn measure(
    server: &ApiServer,
    only: impl Fn(&str) -> bool,
    reconcile: bool,
) -> (Measured, Option<(isize, String)>) {
    let before = heap();
    reset_peak();
    let client = ClientBuilder::new(server.router(), NAMESPACE).build();
    let scope = Scope::Namespace(NAMESPACE.into());
    let (caches, mut triggers) = Caches::start_only(&client, &scope, &only).expect("kinds");
    let drain = tokio::spawn(async move { while triggers.next().await.is_some() {} });
    let watched: Vec<bool> = caches
        .counts()
        .iter()
        .map(|(k, _)| only(kind_name(k)))
        .collect();
    // Wait for the watched caches only (the others never list).
    loop {
        let ready = watched_ready(&caches, &watched);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the trigger stream and the watch connections settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = caches.counts();
    let json_bytes = json_size(&caches);
    let bytes = heap() - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let after_reconcile = if reconcile {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &cluster_resource());
        let clusters = api
            .list(&ListParams::default())
            .await
            .expect("list clusters");
        let env = tusk_core::Env::from_seed(Timestamp::now(), 7);
        let mut observing = Duration::ZERO;
        for cluster in &clusters.items {
            let t = Instant::now();
            let observed = caches.observe(cluster).expect("observe");
            observing += t.elapsed();
            let plan = tusk_operator::core_glue::reconcile(&observed, &env);
            std::hint::black_box(plan);
        }
        // observe() again, alone, now that the memo is warm: its cost per cluster should not
        // grow with the number of clusters.
        let t = Instant::now();
        for cluster in &clusters.items {
            std::hint::black_box(caches.observe(cluster).expect("observe"));
        }
        let again = t.elapsed();
        let n = clusters.items.len().max(1) as u32;
        let note = format!(
            "observe(): {:.0} µs per cluster during the reconciles, {:.0} µs alone ({} clusters)",
            (observing / n).as_secs_f64() * 1e6,
            (again / n).as_secs_f64() * 1e6,
            n
        );
        drop(clusters);
        Some((heap() - before, note))
    } else {
        None
    };
    drain.abort();
    let _ = drain.await;
    drop(caches);
    (
        Measured {
            bytes,
            peak,
            counts,
            json_bytes,
        },
        after_reconcile,
    )
}

/// The heap of a reflector store of every PerconaPGCluster, as kube's `Controller` keeps.
async fn cluster_reflector(server: &ApiServer) -> (isize, isize) {
    let before = heap();
    reset_peak();
    let client = ClientBuilder::new(server.router(), NAMESPACE).build();
    let ar = cluster_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client, NAMESPACE, &ar);
    let (store, stream) = tusk_operator::controller::cluster_cache(api, ar);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    let _ = store.wait_until_ready().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = (heap() - before, PEAK.load(Ordering::Relaxed) - before);
    task.abort();
    let _ = task.await;
    out
}

/// The heap the in-process server itself needs to answer one LIST (it shares this process's
/// heap, so the peaks above include it; in `tusk run` it is another process).
async fn server_list_peak(server: &ApiServer, path: &str) -> (isize, bytes::Bytes) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let before = heap();
    reset_peak();
    let request = http::Request::get(format!(
        "{path}?labelSelector=postgres-operator.crunchydata.com%2Fcluster&resourceVersion=0&limit=500"
    ))
    .body(axum::body::Body::empty())
    .expect("request");
    let response = server.router().oneshot(request).await.expect("response");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (PEAK.load(Ordering::Relaxed) - before, body)
}

/// The heap kube's client needs to decode one LIST page of `body` as typed objects.
fn client_decode_peak<K: serde::de::DeserializeOwned + Clone>(body: &[u8]) -> isize {
    let before = heap();
    reset_peak();
    let list: kube::core::ObjectList<K> = serde_json::from_slice(body).expect("list decodes");
    std::hint::black_box(&list);
    drop(list);
    PEAK.load(Ordering::Relaxed) - before
}

/// The kind name of a `Caches::counts` entry.
fn kind_name(field: &str) -> &str {
    match field {
        "stateful_sets" => "StatefulSet",
        "deployments" => "Deployment",
        "services" => "Service",
        "config_maps" => "ConfigMap",
        "secrets" => "Secret",
        "endpoints" => "Endpoints",
        "pods" => "Pod",
        "pvcs" => "PersistentVolumeClaim",
        "jobs" => "Job",
        "pdbs" => "PodDisruptionBudget",
        "service_accounts" => "ServiceAccount",
        "roles" => "Role",
        "role_bindings" => "RoleBinding",
        other => other,
    }
}

fn watched_ready(caches: &Caches, watched: &[bool]) -> bool {
    let ready = caches.readiness();
    ready.iter().zip(watched).all(|(r, w)| *r || !*w)
}

/// Bytes of the cached objects serialized as JSON (their wire form, managedFields stripped).
fn json_size(caches: &Caches) -> usize {
    caches.json_bytes()
}

fn per(bytes: isize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { bytes as f64 / n as f64 }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("TUSK_FOOTPRINT_CLUSTERS")
        .unwrap_or_else(|_| "100,300".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let memo_mib: usize = std::env::var("TUSK_RENDER_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tusk_operator::cli::DEFAULT_RENDER_CACHE_MIB);
    tusk_operator::core_glue::set_render_cache_bytes(memo_mib << 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for n in sizes {
        let t = Instant::now();
        let server = rt.block_on(populated(n));
        let objects = server.with_store(|s| s.object_count());
        eprintln!(
            "{n} clusters: server populated with {objects} objects in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        rt.block_on(async {
            println!("\n## {n} clusters\n");
            println!("| kind | objects | heap KiB | bytes/cluster | bytes/object | JSON bytes/object | peak KiB while listing |");
            println!("|---|---:|---:|---:|---:|---:|---:|");
            let kinds = [
                "PerconaPGBackup",
                "PerconaPGRestore",
                "StatefulSet",
                "Deployment",
                "Service",
                "ConfigMap",
                "Secret",
                "Endpoints",
                "Pod",
                "PersistentVolumeClaim",
                "Job",
                "PodDisruptionBudget",
                "ServiceAccount",
                "RoleBinding",
                "Role",
            ];
            let mut sum = 0;
            for kind in kinds {
                let (m, _) = measure(&server, |k| k == kind, false).await;
                let count: usize = m
                    .counts
                    .iter()
                    .filter(|(k, _)| kind_name(k) == kind)
                    .map(|(_, c)| *c)
                    .sum();
                sum += m.bytes;
                println!(
                    "| {kind} | {count} | {} | {:.0} | {:.0} | {:.0} | {} |",
                    m.bytes / 1024,
                    per(m.bytes, n),
                    per(m.bytes, count),
                    per(m.json_bytes as isize, count),
                    m.peak / 1024,
                );
            }
            println!("| sum of kinds alone | | {} | {:.0} | | |", sum / 1024, per(sum, n));
            let (all, after) = measure(&server, |_| true, true).await;
            let objects: usize = all.counts.iter().map(|(_, c)| c).sum();
            println!(
                "| all caches together | {objects} | {} | {:.0} | {:.0} | {:.0} | {} |",
                all.bytes / 1024,
                per(all.bytes, n),
                per(all.bytes, objects),
                per(all.json_bytes as isize, objects),
                all.peak / 1024,
            );
            for path in ["/apis/apps/v1/namespaces/default/statefulsets", "/api/v1/namespaces/default/pods"] {
                let (peak, body) = server_list_peak(&server, path).await;
                println!("| server side of one LIST {path} (limit 500) | | | | | {} KiB body | {} |", body.len() / 1024, peak / 1024);
                let decode = if path.ends_with("pods") {
                    client_decode_peak::<k8s_openapi::api::core::v1::Pod>(&body)
                } else {
                    client_decode_peak::<k8s_openapi::api::apps::v1::StatefulSet>(&body)
                };
                println!("| client side: decoding that page as typed objects | | | | | | {} |", decode / 1024);
            }
            let (bytes, peak) = cluster_reflector(&server).await;
            println!(
                "| PerconaPGCluster (the controller's reflector store) | {n} | {} | {:.0} | {:.0} | | {} |",
                bytes / 1024,
                per(bytes, n),
                per(bytes, n),
                peak / 1024,
            );
            if let Some((after, note)) = after {
                let (entries, memo) = tusk_core::build::memo::stats();
                println!(
                    "| after one reconcile per cluster (memo {memo_mib} MiB: {entries} entries, {} KiB estimated) | | {} | {:.0} | | |",
                    memo / 1024,
                    after / 1024,
                    per(after, n),
                );
                println!("\n{note}");
            }
        });
        tusk_core::build::memo::clear();
    }
}
