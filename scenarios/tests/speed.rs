//! Wall-clock figures for the README (ignored by default: timing is not a correctness test).

use tusk_scenarios::FaultSet;
use tusk_scenarios::explore::scenario_for;
use tusk_scenarios::script::run_scenario;

#[test]
#[ignore]
fn ten_simulated_minutes_with_faults() {
    let start = std::time::Instant::now();
    let mut sim = 0i64;
    for seed in 0..5 {
        let s = scenario_for(seed, &FaultSet::all(), 10);
        let out = run_scenario(&s, seed).unwrap();
        sim += out.simulated;
        if !out.failures.is_empty() {
            eprintln!(
                "seed {seed}: {:?}\n{}",
                out.failures,
                out.timeline[out.timeline.len().saturating_sub(25)..].join("\n")
            );
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let sim = sim as f64 / 1000.0;
    eprintln!(
        "5 seeds: {sim:.0} simulated s in {wall:.2} wall s ({:.0} simulated s per wall s, {:.0} ms per seed)",
        sim / wall,
        wall * 1000.0 / 5.0
    );
}

/// Prints the trace digest (timeline, final store, model state) of explore seeds, one line per
/// seed, so a speed change can be checked to change no behaviour: run it before and after and
/// diff the output. `TUSK_DIGEST_SEEDS` sets how many seeds (default 20), `TUSK_DIGEST_START`
/// the first one (default 0).
#[test]
#[ignore]
fn explore_digests() {
    let n: u64 = std::env::var("TUSK_DIGEST_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let start = std::time::Instant::now();
    let from: u64 = std::env::var("TUSK_DIGEST_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in from..from + n {
        let s = scenario_for(seed, &FaultSet::all(), 10);
        let out = run_scenario(&s, seed).unwrap();
        println!(
            "seed {seed}: digest {:016x} steps {} simulated {} failures {}",
            out.digest,
            out.steps,
            out.simulated,
            out.failures.len()
        );
    }
    eprintln!("{n} seeds in {:.2} s wall", start.elapsed().as_secs_f64());
}
