//! Random chaos: per seed, a random valid cluster and a random fault schedule (BUGGIFY-style:
//! each enabled fault class is switched on for the seed with some probability), a fault phase,
//! then everything heals and the cluster must converge. A failing schedule is shrunk (steps
//! removed while it still fails) and printed as a scenario file that reproduces it.

use crate::clock::{MINUTE, Millis, SECOND};
use crate::faults::{Fault, FaultSet, FaultStep};
use crate::invariants::Sometimes;
use crate::rng::SimRng;
use crate::script::{Expect, Scenario, Step, SwitchoverStep, Wait, run_scenario};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::Range;

/// Reported after each seed.
#[derive(Debug, Clone)]
pub struct ExploreProgress {
    pub done: u64,
    pub total: u64,
    pub failures: usize,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct ExploreFailure {
    pub seed: u64,
    pub failures: Vec<String>,
    /// The exact command that replays the seed.
    pub replay: String,
    /// A minimal scenario file reproducing the failure (`tusk sim run FILE --seed SEED`).
    pub scenario_yaml: String,
}

#[derive(Debug, Clone, Default)]
pub struct ExploreSummary {
    pub seeds: u64,
    pub faults_exercised: BTreeMap<String, u64>,
    pub invariant_checks: u64,
    pub failures: Vec<ExploreFailure>,
    pub sometimes: Sometimes,
    pub simulated: Millis,
    pub acked_writes: u64,
    pub lost_writes_async: u64,
}

impl ExploreSummary {
    /// "Sometimes" properties never reached over the whole run (a vacuous suite).
    pub fn unreached(&self) -> Vec<&'static str> {
        let s = &self.sometimes;
        let mut out = vec![];
        if s.failovers == 0 {
            out.push("failover");
        }
        if s.operator_crashes == 0 && self.faults_exercised.contains_key("operator-crash") {
            out.push("operator crash");
        }
        out
    }
}

/// The liveness bound: after healing, the cluster must be ready within this. The kubelet's
/// longest crash-loop back-off is 5 minutes and healing does not reset it (a container that
/// crashed often during the fault phase may wait that long to start), so the bound is that plus
/// 3 minutes for a failover, a clone and the operator to notice.
pub const CONVERGE_WITHIN: &str = "8m";

fn base_cluster(rng: &mut SimRng) -> (Value, bool) {
    let replicas = rng.range(2, 4);
    let sync = rng.chance(0.3);
    let mut cr = json!({
        "apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGCluster",
        "metadata": {"name": "cluster1"},
        "spec": {
            "crVersion": "2.9.0",
            "image": "docker.io/percona/percona-distribution-postgresql:17.7-1",
            "postgresVersion": 17,
            "instances": [{"name": "instance1", "replicas": replicas,
                "dataVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            "patroni": {"leaderLeaseDurationSeconds": 30, "syncPeriodSeconds": 10},
            "backups": {"pgbackrest": {"image": "docker.io/percona/percona-pgbackrest:2.57.0-1",
                "repos": [{"name": "repo1", "volume": {"volumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}]}}
        }
    });
    if sync {
        cr["spec"]["patroni"]["dynamicConfiguration"] = json!({"synchronous_mode": true});
    }
    (cr, sync)
}

fn target(rng: &mut SimRng) -> String {
    ["primary", "replica", "any"][rng.below(3) as usize].to_string()
}

fn random_fault(class: &str, rng: &mut SimRng) -> Fault {
    match class {
        "pod-delete" => Fault::PodDelete {
            target: target(rng),
        },
        "pod-kill" => Fault::PodKill {
            target: target(rng),
            down: rng.chance(0.5).then(|| format!("{}s", rng.range(10, 120))),
        },
        "container-crash" => Fault::ContainerCrash {
            target: target(rng),
        },
        "node-down" => Fault::NodeDown {
            target: target(rng),
        },
        "partition" => Fault::Partition {
            target: target(rng),
        },
        "api-errors" => Fault::ApiErrors {
            rate: [0.1, 0.3, 0.6][rng.below(3) as usize],
        },
        "drop-watches" => Fault::DropWatches,
        "stale-reads" => Fault::StaleReads {
            lag: rng.range(1, 50) as u64,
        },
        "operator-crash" => Fault::OperatorCrash {
            after: rng.range(1, 6) as u64,
        },
        "clock-skew" => Fault::ClockSkew {
            target: target(rng),
            seconds: rng.range(-300, 300),
        },
        "disk-full" => Fault::DiskFull {
            target: target(rng),
        },
        "backup-job-kill" => Fault::BackupJobKill,
        "object-store-down" => Fault::ObjectStoreDown,
        "pvc-lost" => Fault::PvcLost {
            target: "replica".into(),
        },
        _ => Fault::ReplicationLag {
            target: None,
            millis: rng.range(100, 5000),
        },
    }
}

/// The scenario a seed stands for: everything derives from the seed.
/// A quarter of the seeds also roll the database pods once or twice during the fault phase (a
/// new image, as a minor upgrade does), so chaos crosses rollouts. The choice comes from a
/// stream of its own: the other three quarters keep the schedules they always had, and with
/// them the seeds regression tests name (the stream's salt is one under which none of those
/// seeds rolls).
fn add_rollouts(seed: u64, steps: &mut Vec<Step>) {
    let mut rng = SimRng::new(seed ^ 0x0011_0a75_7e0f_0034);
    if !rng.chance(0.25) || steps.len() < 3 {
        return;
    }
    for (i, tag) in ["17.8-1", "17.7-1"]
        .iter()
        .take(rng.range(1, 2) as usize)
        .enumerate()
    {
        // After the first wait; the second rollout after the first.
        let lowest = if i == 0 { 1 } else { steps.len() / 2 };
        let at = lowest + rng.below((steps.len() - lowest) as u64) as usize;
        steps.insert(
            at,
            Step::Patch(json!({"spec": {"image": format!("docker.io/percona/percona-distribution-postgresql:{tag}")}})),
        );
    }
}

const KUBELET_LOSS: &str = "node-not-ready";

/// A sixth of the seeds (every seed when it is the only class enabled) also cut one node's
/// kubelet off the API server for 1 to 8 minutes during the fault phase, so that some cross
/// the 300 s after which its pods are evicted and left Terminating. Like rollouts, the choice
/// comes from a stream of its own, salted so that no seed a regression test names is touched.
fn add_kubelet_loss(seed: u64, steps: &mut Vec<Step>, always: bool) {
    let mut rng = SimRng::new(seed ^ 0x6b75_6265_6c65_7402);
    if !(always || rng.chance(1.0 / 6.0)) || steps.len() < 3 {
        return;
    }
    let at = 1 + rng.below((steps.len() - 2) as u64) as usize;
    let fault = Fault::NodeNotReady {
        target: target(&mut rng),
    };
    let minutes = rng.range(1, 8);
    steps.insert(
        at,
        Step::Fault(FaultStep {
            fault,
            lasts: Some(format!("{minutes}m")),
        }),
    );
}

pub fn scenario_for(seed: u64, faults: &FaultSet, fault_minutes: i64) -> Scenario {
    let mut rng = SimRng::new(seed ^ 0x5eed_c4a0_5000_0001);
    let (cluster, sync) = base_cluster(&mut rng);
    let replicas = cluster["spec"]["instances"][0]["replicas"]
        .as_i64()
        .unwrap_or(3);
    // BUGGIFY: each enabled class is on for this seed with probability 1/4 (at least one).
    // A lost kubelet comes from a stream of its own (see `add_kubelet_loss`).
    let enabled: Vec<&String> = faults
        .0
        .iter()
        .filter(|c| c.as_str() != KUBELET_LOSS)
        .collect();
    let mut on: Vec<String> = enabled
        .iter()
        .filter(|_| rng.chance(0.25))
        .map(|s| s.to_string())
        .collect();
    if on.is_empty() && !enabled.is_empty() {
        on.push(enabled[rng.below(enabled.len() as u64) as usize].clone());
    }
    let mut steps = vec![Step::Wait(Wait::Full {
        condition: "ready".into(),
        timeout: Some("5m".into()),
    })];
    let mut t: Millis = 0;
    let budget = fault_minutes * MINUTE;
    let mut lasting = false;
    while t < budget {
        let gap = rng.range(5, 60) * SECOND;
        t += gap;
        steps.push(Step::Advance(format!("{}s", gap / SECOND)));
        match rng.below(10) {
            0 => {
                let n = (replicas + rng.range(-1, 1)).clamp(1, 5);
                steps.push(Step::Patch(json!({"spec": {"instances": [{"name": "instance1", "replicas": n,
                    "dataVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})));
            }
            1 => steps.push(Step::Switchover(SwitchoverStep { to: None })),
            2 if lasting => {
                steps.push(Step::Heal("all".into()));
                lasting = false;
            }
            _ => {
                if on.is_empty() {
                    continue;
                }
                let class = on[rng.below(on.len() as u64) as usize].clone();
                let f = random_fault(&class, &mut rng);
                lasting |= f.lasting();
                steps.push(Step::Fault(f.into()));
            }
        }
    }
    add_rollouts(seed, &mut steps);
    if faults.0.contains(KUBELET_LOSS) {
        add_kubelet_loss(seed, &mut steps, enabled.is_empty());
    }
    steps.push(Step::Heal("all".into()));
    steps.push(Step::Wait(Wait::Full {
        condition: "ready".into(),
        timeout: Some(CONVERGE_WITHIN.into()),
    }));
    steps.push(Step::Advance("30s".into()));
    Scenario {
        name: format!("explore-seed-{seed}"),
        description: format!(
            "random schedule for seed {seed}; faults on: {}",
            on.join(", ")
        ),
        pending: None,
        nodes: 3,
        namespace: "default".into(),
        workload: "1s".into(),
        verbose: false,
        cluster,
        steps,
        expect: Expect {
            state: Some("ready".into()),
            lost_writes: sync.then_some(0),
            ..Expect::default()
        },
    }
}

/// A scenario as a file `tusk sim run` accepts.
pub fn to_yaml(s: &Scenario) -> String {
    let steps: Vec<Value> = s
        .steps
        .iter()
        .map(|st| serde_json::to_value(st).unwrap_or(Value::Null))
        .collect();
    let doc = json!({
        "name": s.name,
        "description": s.description,
        "nodes": s.nodes,
        "workload": s.workload,
        "cluster": s.cluster,
        "steps": steps,
        "expect": serde_json::to_value(&s.expect).unwrap_or(Value::Null),
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

fn fails(s: &Scenario, seed: u64) -> Option<Vec<String>> {
    match run_scenario(s, seed) {
        Ok(o) if o.failures.is_empty() => None,
        Ok(o) => Some(o.failures),
        Err(e) => Some(vec![e]),
    }
}

/// Removes steps while the scenario keeps failing (the first wait and the final heal/wait stay).
pub fn shrink(mut s: Scenario, seed: u64) -> Scenario {
    let mut i = 1;
    let mut budget = 60;
    while i + 3 < s.steps.len() && budget > 0 {
        budget -= 1;
        let mut candidate = s.clone();
        candidate.steps.remove(i);
        if fails(&candidate, seed).is_some() {
            s = candidate;
        } else {
            i += 1;
        }
    }
    s
}

/// Explores `seeds` with the given fault classes, one seed per core at a time
/// ([`default_threads`]); the summary does not depend on the number of threads.
pub fn explore(
    seeds: Range<u64>,
    faults: &FaultSet,
    mut progress: impl FnMut(&ExploreProgress),
) -> ExploreSummary {
    explore_on(seeds, faults, 10, default_threads(), &mut progress)
}

/// One thread per core the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Like [`explore`], with the length of the fault phase in simulated minutes, on this thread.
pub fn explore_with(
    seeds: Range<u64>,
    faults: &FaultSet,
    fault_minutes: i64,
    progress: &mut dyn FnMut(&ExploreProgress),
) -> ExploreSummary {
    explore_on(seeds, faults, fault_minutes, 1, progress)
}

/// What one seed adds to the summary.
struct SeedOutcome {
    invariant_checks: u64,
    exercised: BTreeMap<String, u64>,
    sometimes: Sometimes,
    simulated: Millis,
    acked_writes: u64,
    failure: Option<ExploreFailure>,
}

/// Runs one seed (and shrinks its schedule if it fails). Each seed has its own world, RNG and
/// clock, so seeds may run on any thread in any order.
fn run_seed(seed: u64, faults: &FaultSet, fault_minutes: i64, list: &str) -> SeedOutcome {
    let s = scenario_for(seed, faults, fault_minutes);
    // scenario_for always writes a valid workload interval, the one thing world_for checks.
    let mut world = crate::script::world_for(&s, seed).expect("explore's workload interval parses");
    let out = crate::script::run_in(&mut world, &s, seed);
    let failures = match out {
        Ok(o) => o.failures,
        Err(e) => vec![e],
    };
    let failure = (!failures.is_empty()).then(|| {
        let small = shrink(s, seed);
        ExploreFailure {
            seed,
            failures,
            replay: format!("tusk sim explore --seeds 1 --start {seed} --faults {list}"),
            scenario_yaml: to_yaml(&small),
        }
    });
    SeedOutcome {
        invariant_checks: world.checker.checks,
        exercised: std::mem::take(&mut world.exercised),
        sometimes: world.checker.sometimes.clone(),
        simulated: world.now(),
        acked_writes: world
            .workloads
            .iter()
            .map(|w| w.acked.len() as u64)
            .sum::<u64>(),
        failure,
    }
}

/// Like [`explore_with`], running up to `threads` seeds at once. Outcomes are added to the
/// summary, and `progress` is called, in seed order whatever order the seeds finish in, so
/// the summary is the same for any number of threads.
pub fn explore_on(
    seeds: Range<u64>,
    faults: &FaultSet,
    fault_minutes: i64,
    threads: usize,
    progress: &mut dyn FnMut(&ExploreProgress),
) -> ExploreSummary {
    let total = seeds.end.saturating_sub(seeds.start);
    let mut sum = ExploreSummary::default();
    let list = faults.0.iter().cloned().collect::<Vec<_>>().join(",");
    let start = seeds.start;
    let mut add = |sum: &mut ExploreSummary, seed: u64, o: SeedOutcome| {
        sum.seeds += 1;
        sum.invariant_checks += o.invariant_checks;
        for (k, v) in o.exercised {
            *sum.faults_exercised.entry(k).or_default() += v;
        }
        let so = &o.sometimes;
        let t = &mut sum.sometimes;
        t.failovers += so.failovers;
        t.switchovers += so.switchovers;
        t.rewinds += so.rewinds;
        t.operator_crashes += so.operator_crashes;
        t.stale_reads += so.stale_reads;
        t.backups_interrupted += so.backups_interrupted;
        t.rollout_crossed_crash += so.rollout_crossed_crash;
        t.async_writes_lost += so.async_writes_lost;
        sum.lost_writes_async += so.async_writes_lost;
        sum.simulated += o.simulated;
        sum.acked_writes += o.acked_writes;
        sum.failures.extend(o.failure);
        progress(&ExploreProgress {
            done: seed - start + 1,
            total,
            failures: sum.failures.len(),
            seed,
        });
    };
    let threads = threads.clamp(1, total.max(1) as usize);
    if threads == 1 {
        for seed in seeds {
            add(&mut sum, seed, run_seed(seed, faults, fault_minutes, &list));
        }
        return sum;
    }
    let next = std::sync::atomic::AtomicU64::new(seeds.start);
    let (tx, rx) = std::sync::mpsc::channel::<(u64, SeedOutcome)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, list) = (&next, &list);
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let o = run_seed(seed, faults, fault_minutes, list);
                    if tx.send((seed, o)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Outcomes arrive in any order; they are added in seed order.
        let mut waiting = BTreeMap::new();
        let mut due = seeds.start;
        for (seed, o) in rx {
            waiting.insert(seed, o);
            while let Some(o) = waiting.remove(&due) {
                add(&mut sum, due, o);
                due += 1;
            }
        }
    });
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_a_function_of_the_seed() {
        let f = FaultSet::all();
        assert_eq!(
            to_yaml(&scenario_for(3, &f, 5)),
            to_yaml(&scenario_for(3, &f, 5))
        );
        assert_ne!(
            to_yaml(&scenario_for(3, &f, 5)),
            to_yaml(&scenario_for(4, &f, 5))
        );
    }

    fn loses_a_kubelet(s: &Scenario) -> bool {
        s.steps
            .iter()
            .any(|st| matches!(st, Step::Fault(f) if matches!(f.fault, Fault::NodeNotReady { .. })))
    }

    /// The seeds regression tests name keep the schedules that found their bugs, and a sixth
    /// or so of the others lose a kubelet for a while.
    #[test]
    fn kubelet_loss_leaves_the_regression_seeds_alone_and_reaches_others() {
        let all = FaultSet::all();
        for seed in [
            200, 459, 579, 831, 1100, 235_453, 235_476, 300_643, 500_262, 600_039, 600_353, 700_053,
        ] {
            assert!(
                !loses_a_kubelet(&scenario_for(seed, &all, 10)),
                "seed {seed}"
            );
        }
        let hit = (0..600)
            .filter(|s| loses_a_kubelet(&scenario_for(*s, &all, 10)))
            .count();
        assert!((60..=140).contains(&hit), "{hit} of 600 seeds");
        // Alone, the class is in every seed.
        let only = FaultSet::parse("node-not-ready").unwrap();
        assert!((0..20).all(|s| loses_a_kubelet(&scenario_for(s, &only, 10))));
    }

    #[test]
    fn threads_do_not_change_the_summary() {
        let f = FaultSet::all();
        let mut order = vec![];
        let one = explore_on(0..4, &f, 2, 1, &mut |_| {});
        let two = explore_on(0..4, &f, 2, 2, &mut |p| order.push((p.done, p.seed)));
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        assert_eq!(two.seeds, 4);
        assert!(two.simulated > 0);
        // Progress is reported in seed order.
        assert_eq!(order, vec![(1, 0), (2, 1), (3, 2), (4, 3)]);
    }

    #[test]
    fn printed_schedules_parse_back() {
        let s = scenario_for(11, &FaultSet::all(), 5);
        let text = to_yaml(&s);
        let back: Scenario = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back.steps, s.steps);
    }
}
