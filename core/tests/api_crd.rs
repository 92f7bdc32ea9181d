//! The generated CRDs: structural schemas, upstream names/columns, and the checked-in
//! deploy/crd.yaml kept in sync.

use serde_json::Value;
use tusk_core::api::{crds, crds_yaml, schema::structural_violations};

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crd.yaml");

fn schema_of(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

#[test]
fn crd_schemas_are_structural() {
    for crd in crds() {
        let value = serde_json::to_value(&crd).expect("serialize crd");
        let problems = structural_violations(schema_of(&value));
        assert!(
            problems.is_empty(),
            "{} is not structural:\n{}",
            crd.metadata.name.unwrap_or_default(),
            problems.join("\n")
        );
    }
}

#[test]
fn structural_checker_rejects_bad_schemas() {
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"description": "no type"},
            "b": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "c": {"type": "string", "default": null},
            "d": {"type": "array"},
        }
    });
    let problems = structural_violations(&bad);
    for needle in [
        ".a: missing type",
        ".b: contains `anyOf`",
        ".c: null default",
        ".d: array without items",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle} not in {problems:?}"
        );
    }
}

#[test]
fn crd_names_scope_and_columns_match_upstream() {
    let crds: Vec<Value> = crds()
        .iter()
        .map(|c| serde_json::to_value(c).expect("json"))
        .collect();
    let expect = [
        (
            "perconapgclusters.pgv2.percona.com",
            "PerconaPGCluster",
            "pg",
            vec![
                ("Endpoint", ".status.host"),
                ("Status", ".status.state"),
                ("Postgres", ".status.postgres.ready"),
                ("PGBouncer", ".status.pgbouncer.ready"),
                ("Age", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "perconapgbackups.pgv2.percona.com",
            "PerconaPGBackup",
            "pg-backup",
            vec![
                ("Cluster", ".spec.pgCluster"),
                ("Repo", ".spec.repoName"),
                ("Destination", ".status.destination"),
                ("Status", ".status.state"),
                ("Type", ".status.backupType"),
                ("Completed", ".status.completed"),
                ("Age", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "perconapgrestores.pgv2.percona.com",
            "PerconaPGRestore",
            "pg-restore",
            vec![
                ("Cluster", ".spec.pgCluster"),
                ("Status", ".status.state"),
                ("Completed", ".status.completed"),
                ("Age", ".metadata.creationTimestamp"),
            ],
        ),
    ];
    assert_eq!(crds.len(), 3);
    for (crd, (name, kind, short, columns)) in crds.iter().zip(expect) {
        assert_eq!(crd["metadata"]["name"], name);
        assert_eq!(crd["spec"]["group"], "pgv2.percona.com");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["kind"], kind);
        assert_eq!(
            crd["spec"]["names"]["shortNames"],
            serde_json::json!([short])
        );
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v2");
        assert_eq!(version["served"], true);
        assert_eq!(version["storage"], true);
        assert!(
            version["subresources"]["status"].is_object(),
            "{name}: no status subresource"
        );
        let got: Vec<(String, String)> = version["additionalPrinterColumns"]
            .as_array()
            .expect("printer columns")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_owned(),
                    c["jsonPath"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = columns
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(got, want, "{name}: printer columns");
    }
}

/// Spot checks of the parts of the schema that upstream marks specially.
#[test]
fn crd_schema_details_match_upstream() {
    let crd = serde_json::to_value(&crds()[0]).expect("json");
    let spec = &schema_of(&crd)["properties"]["spec"];
    let dc = &spec["properties"]["patroni"]["properties"]["dynamicConfiguration"];
    assert_eq!(dc["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(dc["type"], "object");
    let min_available = &spec["properties"]["instances"]["items"]["properties"]["minAvailable"];
    assert_eq!(min_available["x-kubernetes-int-or-string"], true);
    let lag = &spec["properties"]["standby"]["properties"]["maxAcceptableLag"];
    assert_eq!(lag["x-kubernetes-int-or-string"], true);
    let pv = &spec["properties"]["postgresVersion"];
    assert_eq!(pv["minimum"].as_f64(), Some(12.0));
    assert_eq!(pv["maximum"].as_f64(), Some(18.0));
    let required = spec["required"].as_array().expect("spec.required");
    for field in ["backups", "instances", "postgresVersion"] {
        assert!(
            required.iter().any(|r| r == field),
            "spec.{field} not required"
        );
    }
    let repo_name = &spec["properties"]["backups"]["properties"]["pgbackrest"]["properties"]["repos"]
        ["items"]["properties"]["name"];
    assert_eq!(repo_name["pattern"], "^repo[1-4]");
    // preserve-unknown-fields appears exactly where upstream has it.
    let text = serde_json::to_string(&crd).expect("json");
    assert_eq!(
        text.matches("x-kubernetes-preserve-unknown-fields").count(),
        1
    );
}

#[test]
fn crds_yaml_is_deterministic_and_parses_back() {
    let a = crds_yaml();
    assert_eq!(a, crds_yaml());
    let docs: Vec<Value> = a
        .split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .map(|d| serde_yaml::from_str(d).expect("each document parses"))
        .collect();
    assert_eq!(docs.len(), 3);
    for d in &docs {
        assert_eq!(d["kind"], "CustomResourceDefinition");
    }
}

/// deploy/crd.yaml is generated; regenerate it with
/// `UPDATE_CRDS=1 cargo test -p tusk-core --test api_crd`.
#[test]
fn checked_in_crd_yaml_is_fresh() {
    let generated = crds_yaml();
    if std::env::var_os("UPDATE_CRDS").is_some() {
        std::fs::write(CHECKED_IN, &generated).expect("write deploy/crd.yaml");
        return;
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated,
        "deploy/crd.yaml is stale: the API types changed. Regenerate it with \
         `UPDATE_CRDS=1 cargo test -p tusk-core --test api_crd` and commit the result."
    );
}

fn field_paths(node: &Value, path: String, out: &mut std::collections::BTreeSet<String>) {
    let Value::Object(map) = node else { return };
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, v) in props {
            let p = format!("{path}.{k}");
            out.insert(p.clone());
            field_paths(v, p, out);
        }
    }
    if let Some(items) = map.get("items") {
        field_paths(items, format!("{path}[]"), out);
    }
    if let Some(ap @ Value::Object(_)) = map.get("additionalProperties") {
        field_paths(ap, format!("{path}{{}}"), out);
    }
}

/// Every field of upstream's v2.9.0 CRDs exists in ours. Allowed gaps: fields that Kubernetes
/// added to embedded core types after 1.33 (tusk builds against the 1.33 API), and the root
/// apiVersion/kind/metadata, which the API server handles for every custom resource.
#[test]
fn every_upstream_field_exists() {
    const NEWER_THAN_1_33: &[&str] = &["podCertificate", "fileKeyRef", "restartPolicyRules"];
    let ours = crds();
    for (i, plural) in ["perconapgclusters", "perconapgbackups", "perconapgrestores"]
        .iter()
        .enumerate()
    {
        let path = format!(
            "{}/../../shared/percona/crd/pgv2.percona.com_{plural}.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let upstream: Value =
            serde_yaml::from_str(text.trim_start_matches("---\n")).expect("upstream CRD parses");
        let mine = serde_json::to_value(&ours[i]).expect("json");
        let (mut want, mut have) = (Default::default(), Default::default());
        field_paths(schema_of(&upstream), String::new(), &mut want);
        field_paths(schema_of(&mine), String::new(), &mut have);
        let missing: Vec<&String> = want
            .difference(&have)
            .filter(|p| !matches!(p.as_str(), ".apiVersion" | ".kind" | ".metadata"))
            .filter(|p| !NEWER_THAN_1_33.iter().any(|n| p.contains(n)))
            .collect();
        assert!(
            missing.is_empty(),
            "{plural}: fields of upstream v2.9.0 missing from tusk's CRD:\n{missing:#?}"
        );
    }
}

fn cel_rules(node: &Value, path: String, out: &mut std::collections::BTreeSet<(String, String)>) {
    let Value::Object(map) = node else { return };
    if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
        for r in rules {
            out.insert((path.clone(), r["rule"].as_str().unwrap_or("").to_owned()));
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, v) in props {
            cel_rules(v, format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = map.get("items") {
        cel_rules(items, format!("{path}[]"), out);
    }
    if let Some(ap @ Value::Object(_)) = map.get("additionalProperties") {
        cel_rules(ap, format!("{path}{{}}"), out);
    }
}

/// Upstream's CEL rules (x-kubernetes-validations) are carried over verbatim, at the same paths.
#[test]
fn upstream_cel_rules_are_present() {
    let ours = crds();
    for (i, plural) in ["perconapgclusters", "perconapgbackups", "perconapgrestores"]
        .iter()
        .enumerate()
    {
        let path = format!(
            "{}/../../shared/percona/crd/pgv2.percona.com_{plural}.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let upstream: Value =
            serde_yaml::from_str(text.trim_start_matches("---\n")).expect("upstream CRD parses");
        let mine = serde_json::to_value(&ours[i]).expect("json");
        let (mut want, mut have) = (Default::default(), Default::default());
        cel_rules(schema_of(&upstream), String::new(), &mut want);
        cel_rules(schema_of(&mine), String::new(), &mut have);
        let missing: Vec<_> = want.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "{plural}: CEL rules missing: {missing:#?}"
        );
        assert!(!want.is_empty() || *plural != "perconapgclusters");
    }
}

/// `kubectl apply` (client-side) stores the object as compact JSON in an annotation limited to
/// 256 KiB; each CRD must stay below that so the plain `kubectl apply -f deploy/crd.yaml` works.
#[test]
fn each_crd_fits_the_last_applied_annotation() {
    for crd in crds() {
        let size = serde_json::to_vec(&crd).expect("json").len();
        assert!(
            size < 256 * 1024,
            "{} is {size} bytes as JSON",
            crd.metadata.name.unwrap_or_default()
        );
    }
}

fn map_list_keys_ok(node: &Value, path: String, out: &mut Vec<String>) {
    let Value::Object(map) = node else { return };
    if map.get("x-kubernetes-list-type") == Some(&Value::String("map".into())) {
        let items = &map["items"];
        let required = items["required"].as_array().cloned().unwrap_or_default();
        for key in map["x-kubernetes-list-map-keys"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let k = key.as_str().unwrap_or("");
            let defaulted = items["properties"][k].get("default").is_some();
            if !required.contains(&key) && !defaulted {
                out.push(format!(
                    "{path}: map key {k} is neither required nor defaulted"
                ));
            }
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, v) in props {
            map_list_keys_ok(v, format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = map.get("items") {
        map_list_keys_ok(items, format!("{path}[]"), out);
    }
    if let Some(ap @ Value::Object(_)) = map.get("additionalProperties") {
        map_list_keys_ok(ap, format!("{path}{{}}"), out);
    }
}

/// The API server rejects a CRD whose `x-kubernetes-list-type: map` keys may be absent.
#[test]
fn list_map_keys_are_required_or_defaulted() {
    for crd in crds() {
        let value = serde_json::to_value(&crd).expect("json");
        let mut problems = Vec::new();
        map_list_keys_ok(schema_of(&value), String::new(), &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
