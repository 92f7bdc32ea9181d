use tusk_scenarios::clock::MINUTE;
use tusk_scenarios::{World, WorldConfig};

fn cr() -> serde_json::Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cr.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn smoke_core() {
    let mut w = World::new(WorldConfig::new(1));
    w.apply_user(cr()).unwrap();
    let ok = w.run_until(5 * MINUTE, |w| w.cluster_ready("cluster1"));
    for l in w.rendered_timeline() {
        println!("{l}");
    }
    println!("violations: {:?}", w.checker.violations);
    println!(
        "ops: {:?}",
        &w.operator
            .events
            .iter()
            .filter(|e| !matches!(e.1, tusk_scenarios::operator::OpEvent::Wrote { .. }))
            .take(20)
            .collect::<Vec<_>>()
    );
    println!(
        "steps {} reconciles {} writes {}",
        w.steps, w.operator.reconciles, w.operator.writes
    );
    assert!(ok);
}
