//! Throughput and memory of the fake API server.
//! `cargo bench -p tusk-fake-apiserver --bench apiserver`

use criterion::{Criterion, Throughput, criterion_group};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use tusk_fake_apiserver::selectors::{FieldSelector, LabelSelector};
use tusk_fake_apiserver::store::{ListOptions, WatchFilter, WatchStart, WriteOptions};
use tusk_fake_apiserver::{ApiServer, Config, ManualClock};

/// Counts live heap bytes, for the memory-per-object figure.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const N: usize = 10_000;

fn server() -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 1,
        auto_gc: false,
        ..Config::default()
    })
}

fn obj(i: usize) -> serde_json::Value {
    json!({"metadata": {"name": format!("cm-{i}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}}, "data": {"key": "value", "n": i.to_string()}})
}

fn watch_all(
    s: &ApiServer,
) -> Vec<tokio::sync::mpsc::UnboundedReceiver<tusk_fake_apiserver::WatchMsg>> {
    (0..10)
        .map(|i| {
            let rev = s.lock().revision();
            s.lock().watch(
                WatchFilter {
                    group_resource: "configmaps".into(),
                    namespace: Some("default".into()),
                    labels: if i % 2 == 0 {
                        LabelSelector::default()
                    } else {
                        LabelSelector::parse("app=bench").unwrap()
                    },
                    fields: FieldSelector::default(),
                },
                WatchStart::From(rev),
            )
        })
        .collect()
}

fn creates_in_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("create");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    g.bench_function("store_10k_creates_10_watchers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = server();
                let watchers = watch_all(&s);
                let info = s.lock().resource("v1", "ConfigMap").unwrap();
                let w = WriteOptions {
                    field_manager: Some("bench".into()),
                    ..Default::default()
                };
                let start = Instant::now();
                {
                    let mut st = s.lock();
                    for i in 0..N {
                        st.create(&info, Some("default"), obj(i), &w).unwrap();
                    }
                }
                total += start.elapsed();
                drop(watchers);
            }
            total
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    g.bench_function("tower_10k_creates_10_watchers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                use tower::ServiceExt;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let s = server();
                    let watchers = watch_all(&s);
                    let router = s.router();
                    let start = Instant::now();
                    for i in 0..N {
                        let req = http::Request::post("/api/v1/namespaces/default/configmaps")
                            .body(axum::body::Body::from(obj(i).to_string()))
                            .unwrap();
                        let resp = router.clone().oneshot(req).await.unwrap();
                        assert_eq!(resp.status(), 201);
                    }
                    total += start.elapsed();
                    drop(watchers);
                }
                total
            })
        })
    });
    g.bench_function("http_10k_creates_10_watchers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let s = server();
                    let watchers = watch_all(&s);
                    let h = s.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
                    let url = h.url();
                    let client = hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build_http::<http_body_util::Full<bytes::Bytes>>();
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..8)
                        .map(|t| {
                            let client = client.clone();
                            let url = url.clone();
                            tokio::spawn(async move {
                                for i in (t..N).step_by(8) {
                                    let req = http::Request::post(format!(
                                        "{url}/api/v1/namespaces/default/configmaps"
                                    ))
                                    .header("content-type", "application/json")
                                    .body(http_body_util::Full::new(bytes::Bytes::from(
                                        obj(i).to_string(),
                                    )))
                                    .unwrap();
                                    let resp = client.request(req).await.unwrap();
                                    assert_eq!(resp.status(), 201);
                                    let _ =
                                        http_body_util::BodyExt::collect(resp.into_body()).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    total += start.elapsed();
                    drop(watchers);
                    h.shutdown().await;
                }
                total
            })
        })
    });
    g.finish();
}

fn list_10k(c: &mut Criterion) {
    let s = server();
    let info = s.lock().resource("v1", "ConfigMap").unwrap();
    {
        let mut st = s.lock();
        for i in 0..N {
            st.create(&info, Some("default"), obj(i), &WriteOptions::default())
                .unwrap();
        }
    }
    let mut g = c.benchmark_group("list");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    g.bench_function("store_list_10k", |b| {
        b.iter(|| {
            s.lock()
                .list(&info, Some("default"), &ListOptions::default())
                .unwrap()
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    g.bench_function("tower_list_10k_json", |b| {
        b.iter(|| {
            rt.block_on(async {
                use tower::ServiceExt;
                let req = http::Request::get("/api/v1/namespaces/default/configmaps")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let resp = s.router().oneshot(req).await.unwrap();
                http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .unwrap()
                    .to_bytes()
                    .len()
            })
        })
    });
    g.finish();
}

/// Not a timing: live heap bytes per stored object beyond its JSON size, printed once.
fn memory_per_object() {
    let s = server();
    let info = s.lock().resource("v1", "ConfigMap").unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let mut json_bytes = 0usize;
    {
        let mut st = s.lock();
        for i in 0..N {
            let o = st
                .create(&info, Some("default"), obj(i), &WriteOptions::default())
                .unwrap();
            json_bytes += serde_json::to_vec(&o).unwrap().len();
        }
    }
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / N as f64;
    let json = json_bytes as f64 / N as f64;
    println!(
        "memory: {per:.0} B per stored ConfigMap (JSON {json:.0} B, overhead {:.0} B beyond JSON), history included",
        per - json
    );
    // Where it goes: the serde_json tree of one object as stored (managedFields packed into
    // one string), and the tree clients get back (every non-empty JSON object is a BTreeMap
    // node of about 630 B, whatever its size).
    let stored = s
        .lock()
        .get_arc(&info, Some("default"), "cm-0")
        .expect("stored");
    let shown = s
        .lock()
        .get(&info, Some("default"), "cm-0")
        .expect("stored");
    let live = |v: &serde_json::Value| {
        let b = LIVE.load(Ordering::Relaxed);
        let copies: Vec<serde_json::Value> = (0..100).map(|_| v.clone()).collect();
        let a = LIVE.load(Ordering::Relaxed);
        drop(copies);
        (a - b) as f64 / 100.0 - 32.0
    };
    println!(
        "memory: of which the stored tree {:.0} B (its packed managedFields {:.0} B); the tree served to clients would be {:.0} B (managedFields {:.0} B)",
        live(&stored),
        live(&stored["metadata"]["managedFields"]),
        live(&shown),
        live(&shown["metadata"]["managedFields"])
    );
}

fn all(c: &mut Criterion) {
    memory_per_object();
    creates_in_process(c);
    list_10k(c);
}

criterion_group!(benches, all);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
