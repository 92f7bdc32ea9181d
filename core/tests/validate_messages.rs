//! The exact error lines `validate` produces for a cluster that breaks many rules, as a
//! reviewer reads them (snapshot in the top-level snapshots/ folder).

use tusk_core::validate::{parse_cluster, validate};

#[test]
fn many_errors_snapshot() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invalid/cluster-many-errors.yaml"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    let doc: serde_json::Value = serde_yaml::from_str(&text).expect("yaml");
    let cr = parse_cluster(doc).expect("parses");
    let errs = validate(&cr).expect_err("invalid");
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => true}, {
        insta::assert_snapshot!("validate_many_errors", lines.join("\n"));
    });
}
