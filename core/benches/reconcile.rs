//! Reconcile benchmarks: the full plan for the upstream `cr.yaml` from an empty world, and a
//! no-op reconcile of the same cluster once converged.

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::jiff::Timestamp;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts live heap bytes, so the bench can say what the render memo really holds.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;
use tusk_core::api::PerconaPGCluster;
use tusk_core::build::memo::without_memo;
use tusk_core::{Env, Observed, reconcile};

fn cluster() -> PerconaPGCluster {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/percona/cr.yaml"
    ))
    .expect("shared/percona/cr.yaml");
    let mut cr: PerconaPGCluster = serde_yaml::from_str(&text).expect("cr.yaml parses");
    cr.metadata.namespace = Some("pg".into());
    cr.metadata.uid = Some("bench-uid".into());
    cr.metadata.generation = Some(1);
    cr
}

fn benches(c: &mut Criterion) {
    let env = Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), 1);
    let empty = Observed::new(cluster());
    c.bench_function("reconcile/full_plan_from_empty", |b| {
        b.iter(|| reconcile(black_box(&empty), black_box(&env)))
    });
    let (converged, _) = tusk_core::testkit::converge(&empty, &env, 30).expect("cr.yaml converges");
    assert!(reconcile(&converged, &env).writes().next().is_none());
    c.bench_function("reconcile/noop_converged", |b| {
        b.iter(|| reconcile(black_box(&converged), black_box(&env)))
    });
    // The full plan without the cryptography: an empty world except for the converged TLS
    // Secrets, which are carried over, so no key is generated and nothing is signed.
    let mut tls_only = Observed::new(cluster());
    tls_only.secrets = converged
        .secrets
        .iter()
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(tusk_core::labels::CLUSTER_CERTIFICATE))
        })
        .cloned()
        .collect();
    assert!(!tls_only.secrets.is_empty());
    c.bench_function("reconcile/full_plan_tls_reused", |b| {
        b.iter(|| reconcile(black_box(&tls_only), black_box(&env)))
    });
    // The same two with the render memo bypassed (tusk_core::build::memo): what a reconcile
    // costs when the spec has just changed, or the first time a cluster is seen.
    c.bench_function("reconcile/noop_converged_no_memo", |b| {
        b.iter(|| without_memo(|| reconcile(black_box(&converged), black_box(&env))))
    });
    c.bench_function("reconcile/full_plan_tls_reused_no_memo", |b| {
        b.iter(|| without_memo(|| reconcile(black_box(&tls_only), black_box(&env))))
    });
}

/// A no-op reconcile with 1,000 converged clusters taking turns on one thread, as in an
/// operator with many clusters and a small reconcile pool: every reconcile is of a different
/// cluster than the one before, so it is fast only if the memo holds them all.
fn many_clusters(c: &mut Criterion) {
    const CLUSTERS: usize = 1000;
    let env = Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), 1);
    let before = tusk_core::build::memo::set_budget(usize::MAX);
    let converged: Vec<Observed> = (0..CLUSTERS)
        .map(|i| {
            let mut cr = cluster();
            cr.metadata.name = Some(format!("c{i}"));
            cr.metadata.uid = Some(format!("uid-{i}"));
            let (mut o, _) = tusk_core::testkit::converge(&Observed::new(cr), &env, 30)
                .expect("cr.yaml converges");
            // As read from an API server: every object has a resourceVersion.
            tusk_core::testkit::stamp_versions(&mut o);
            o
        })
        .collect();
    // What the memo holds: the live heap with every cluster's no-op reconcile memoised
    // (twice, so the remembered comparisons are in) minus the live heap with the memo empty.
    tusk_core::build::memo::clear();
    let empty = LIVE.load(Ordering::Relaxed);
    for _ in 0..2 {
        for o in &converged {
            assert!(reconcile(o, &env).writes().next().is_none());
        }
    }
    let full = LIVE.load(Ordering::Relaxed);
    let (held, estimate) = tusk_core::build::memo::stats();
    let mib = |b: f64| b / f64::from(1 << 20);
    eprintln!(
        "memo with {CLUSTERS} clusters: {held} held, {:.1} MiB of heap ({:.0} KiB per cluster), estimated {:.1} MiB",
        mib((full - empty) as f64),
        (full - empty) as f64 / 1024.0 / held.max(1) as f64,
        mib(estimate as f64),
    );
    let mut next = 0;
    c.bench_function("reconcile/noop_1000_clusters_rotating", |b| {
        b.iter(|| {
            next = (next + 1) % CLUSTERS;
            reconcile(black_box(&converged[next]), black_box(&env))
        })
    });
    tusk_core::build::memo::set_budget(before);
}

/// The pieces of the TLS generation the full plan pays for: a key (one multiplication of the
/// generator) and a signature (another, plus a scalar inversion), against RustCrypto's own.
fn tls_benches(c: &mut Criterion) {
    use p256::ecdsa::signature::Signer;
    use tusk_core::tls::EcKey;
    let bytes = [0x5au8; 32];
    let msg = [0x42u8; 600];
    c.bench_function("tls/key_from_scalar", |b| {
        b.iter(|| EcKey::from_slice(black_box(&bytes)))
    });
    c.bench_function("tls/key_from_scalar_rustcrypto", |b| {
        b.iter(|| p256::ecdsa::SigningKey::from_slice(black_box(&bytes)))
    });
    let key = EcKey::from_slice(&bytes).unwrap();
    c.bench_function("tls/sign", |b| b.iter(|| key.sign_message(black_box(&msg))));
    let theirs = p256::ecdsa::SigningKey::from_slice(&bytes).unwrap();
    c.bench_function("tls/sign_rustcrypto", |b| {
        b.iter(|| -> p256::ecdsa::Signature { theirs.sign(black_box(&msg)) })
    });
}

criterion_group!(reconcile_benches, benches, tls_benches, many_clusters);
criterion_main!(reconcile_benches);
