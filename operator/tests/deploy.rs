//! The manifests in deploy/: they parse, the RBAC grants exactly what the operator's own table
//! of kinds and verbs (operator/src/kinds.rs, which the code uses to build its API handles)
//! needs, and bundle.yaml is its parts.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tusk_operator::kinds::KINDS;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name))
        .unwrap_or_else(|e| panic!("deploy/{name}: {e}"))
}

fn docs(name: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(&read(name))
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("deploy/{name}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// (group, resource[/sub], verb) triples the operator needs, from its table.
fn needed() -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for k in KINDS {
        for v in k.verbs {
            out.insert((k.group.to_string(), k.plural.to_string(), v.to_string()));
        }
        for (sub, verbs) in k.subresources {
            for v in *verbs {
                out.insert((
                    k.group.to_string(),
                    format!("{}/{sub}", k.plural),
                    v.to_string(),
                ));
            }
        }
    }
    out
}

fn granted(rules: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for rule in rules.as_array().expect("rules is a list") {
        for g in strs(&rule["apiGroups"]) {
            for r in strs(&rule["resources"]) {
                for v in strs(&rule["verbs"]) {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

fn check_rules(file: &str, role_kind: &str) {
    let docs = docs(file);
    let role = docs
        .iter()
        .find(|d| d["kind"] == role_kind)
        .unwrap_or_else(|| panic!("deploy/{file} has no {role_kind}"));
    let granted = granted(&role["rules"]);
    let needed = needed();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "deploy/{file} lacks (group, resource, verb) the operator uses (operator/src/kinds.rs): {missing:?}"
    );
    let extra: Vec<_> = granted.difference(&needed).collect();
    assert!(
        extra.is_empty(),
        "deploy/{file} grants more than the operator uses (least privilege): {extra:?}"
    );
    assert!(
        !granted
            .iter()
            .any(|(g, r, v)| g == "*" || r == "*" || v == "*"),
        "deploy/{file} uses wildcards"
    );
}

#[test]
fn every_manifest_parses_and_names_itself() {
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let docs = docs(&name);
        assert!(!docs.is_empty(), "deploy/{name} is empty");
        for d in &docs {
            assert!(
                d["kind"].is_string(),
                "deploy/{name}: a document without kind"
            );
            assert!(
                d["apiVersion"].is_string(),
                "deploy/{name}: a document without apiVersion"
            );
            if d["kind"] != "Kustomization" {
                assert!(
                    d["metadata"]["name"].is_string(),
                    "deploy/{name}: a {} without a name",
                    d["kind"]
                );
            }
        }
    }
}

#[test]
fn namespaced_role_covers_exactly_what_the_operator_uses() {
    check_rules("rbac.yaml", "Role");
}

#[test]
fn cluster_role_covers_exactly_what_the_operator_uses() {
    check_rules("cw-rbac.yaml", "ClusterRole");
}

#[test]
fn bundle_is_crds_rbac_and_operator() {
    let expected = format!(
        "{}{}{}",
        read("crd.yaml"),
        read("rbac.yaml"),
        read("operator.yaml")
    );
    assert!(
        read("bundle.yaml") == expected,
        "deploy/bundle.yaml is stale; regenerate it with: (cd deploy && cat crd.yaml rbac.yaml operator.yaml > bundle.yaml)"
    );
}

#[test]
fn kustomization_lists_existing_files() {
    let k = &docs("kustomization.yaml")[0];
    for r in k["resources"].as_array().unwrap() {
        let f = r.as_str().unwrap();
        assert!(
            deploy_dir().join(f).exists(),
            "kustomization.yaml lists missing {f}"
        );
    }
}

#[test]
fn operator_deployment_is_restricted_and_probed() {
    let docs = docs("operator.yaml");
    let dep = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "tusk-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for c in pod["containers"].as_array().unwrap() {
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"][0], "ALL");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(c["resources"]["limits"]["memory"].is_string());
        assert!(c["resources"]["requests"]["cpu"].is_string());
    }
    // The service account the Deployment uses is the one the RBAC binds.
    let rbac = docs_rbac();
    assert!(
        rbac.iter()
            .any(|d| d["kind"] == "ServiceAccount" && d["metadata"]["name"] == "tusk-operator")
    );
}

fn docs_rbac() -> Vec<Value> {
    docs("rbac.yaml")
}
