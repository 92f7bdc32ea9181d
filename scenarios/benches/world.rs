//! World speed: a 10-minute fault phase on a 3-instance cluster (about 12 simulated minutes in
//! all, with bootstrap and convergence), and simulated seconds per wall second.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tusk_scenarios::FaultSet;
use tusk_scenarios::explore::explore_with;

fn ten_minutes_with_faults(c: &mut Criterion) {
    let faults = FaultSet::all();
    c.bench_function("world/10min-3-instances-with-faults", |b| {
        let mut seed = 0u64;
        b.iter(|| {
            seed += 1;
            black_box(explore_with(seed..seed + 1, &faults, 10, &mut |_| {}))
        })
    });
    // Simulated seconds per wall second over a fixed batch of seeds.
    let start = std::time::Instant::now();
    let sum = explore_with(0..20, &faults, 10, &mut |_| {});
    let wall = start.elapsed().as_secs_f64();
    let simulated = sum.simulated as f64 / 1000.0;
    eprintln!(
        "20 seeds: {simulated:.0} simulated s in {wall:.2} wall s = {:.0} simulated s per wall s; 1,000 seeds extrapolate to {:.1} s",
        simulated / wall,
        wall * 50.0
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = ten_minutes_with_faults
}
criterion_main!(benches);
