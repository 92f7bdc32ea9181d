//! Reconcile benchmarks: the full plan for the upstream `cr.yaml` from an empty world, and a
//! no-op reconcile of the same cluster once converged.

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::jiff::Timestamp;
use std::hint::black_box;
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

criterion_group!(reconcile_benches, benches, tls_benches);
criterion_main!(reconcile_benches);
