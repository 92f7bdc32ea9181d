//! Snapshots of the full object set `tusk render` produces for the upstream example CR and for
//! every fixture in `core/tests/fixtures/`, into the top-level `snapshots/`.

use std::path::{Path, PathBuf};
use tusk_core::api::PerconaPGCluster;

fn load(path: &Path) -> Option<PerconaPGCluster> {
    let text = std::fs::read_to_string(path).ok()?;
    // Fixtures may hold several documents; the cluster is the PerconaPGCluster one.
    for doc in text.split("\n---") {
        let v: serde_yaml::Value = serde_yaml::from_str(doc).ok()?;
        if v.get("kind").and_then(|k| k.as_str()) == Some("PerconaPGCluster") {
            return serde_yaml::from_value(v).ok();
        }
    }
    None
}

fn render_yaml(cr: &PerconaPGCluster) -> String {
    match tusk_core::render(cr, 0) {
        Ok(objs) => {
            let mut out = String::new();
            for o in objs {
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(&o).expect("JSON renders as YAML"));
            }
            out
        }
        Err(errs) => errs.iter().map(|e| format!("{e}\n")).collect(),
    }
}

fn snapshot(name: &str, body: &str) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, body);
    });
}

#[test]
fn upstream_cr_yaml() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/percona/cr.yaml"
    ));
    let Some(cr) = load(&path) else {
        panic!("cannot read {}", path.display());
    };
    snapshot("render__cr_yaml", &render_yaml(&cr));
}

#[test]
fn fixtures() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if !matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            continue;
        }
        let Some(cr) = load(&p) else { continue };
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("fixture");
        snapshot(&format!("render__fixture_{stem}"), &render_yaml(&cr));
    }
}
