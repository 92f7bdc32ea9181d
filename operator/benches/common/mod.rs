//! What the operator's benches share.

use serde::Deserialize;
use serde_json::{Value, json};

pub const NAMESPACE: &str = "default";

/// `deploy/cr.yaml` as cluster `name`: three instances, one pgBouncer, no scheduled backups
/// (schedules would add Jobs that have nothing to do with the operator's footprint).
pub fn scale_cluster(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cr.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/cr.yaml");
    let de = serde_yaml::Deserializer::from_str(&text)
        .next()
        .expect("one document");
    let mut cr = Value::deserialize(de).expect("cr.yaml parses");
    cr["metadata"] = json!({"name": name, "namespace": NAMESPACE});
    cr["spec"]["instances"][0]["replicas"] = json!(3);
    cr["spec"]["proxy"]["pgBouncer"]["replicas"] = json!(1);
    if let Some(repos) = cr["spec"]["backups"]["pgbackrest"]["repos"].as_array_mut() {
        for repo in repos {
            if let Some(r) = repo.as_object_mut() {
                r.remove("schedules");
            }
        }
    }
    cr
}
