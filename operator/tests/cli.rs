//! The built `tusk` binary on the upstream examples and on broken input: exit codes and the
//! exact shape of error lines (one per error, no panics, no backtraces).

use rstest::rstest;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

fn tusk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run tusk")
}

fn deploy(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tusk-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    path
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_clean_failure(out: &Output) -> Vec<String> {
    assert_clean_exit(out, 1)
}

/// Input that cannot run at all (`tusk sim` with an invalid scenario or fault list) exits 2.
fn assert_clean_exit(out: &Output, code: i32) -> Vec<String> {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stderr_lines(out);
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            !l.contains("panicked") && !l.contains("RUST_BACKTRACE"),
            "{l}"
        );
    }
    lines
}

#[test]
fn crds_prints_the_three_crds_and_matches_deploy() {
    let out = tusk(&["crds"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in ["perconapgclusters", "perconapgbackups", "perconapgrestores"] {
        assert!(
            text.contains(&format!("name: {name}.pgv2.percona.com")),
            "{name} missing"
        );
    }
    assert_eq!(text.matches("kind: CustomResourceDefinition").count(), 3);
    let checked_in = std::fs::read_to_string(deploy("crd.yaml")).unwrap();
    assert!(text == checked_in, "tusk crds differs from deploy/crd.yaml");
}

#[test]
fn upstream_examples_are_valid() {
    for f in ["cr.yaml", "backup.yaml", "restore.yaml"] {
        let out = tusk(&["validate", "-f", &deploy(f)]);
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    }
    let shared = "/work/shared/percona/cr.yaml";
    if std::path::Path::new(shared).exists() {
        assert!(tusk(&["validate", "-f", shared]).status.success());
    }
}

#[test]
fn wrong_kind_is_one_line() {
    let f = temp_file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n",
    );
    let lines = assert_clean_failure(&tusk(&["validate", "-f", f.to_str().unwrap()]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("expected kind PerconaPGCluster"),
        "{lines:?}"
    );
}

#[test]
fn yaml_syntax_error_is_one_line() {
    let f = temp_file(
        "broken.yaml",
        "apiVersion: pgv2.percona.com/v2\nkind: [PerconaPGCluster\n",
    );
    for cmd in ["validate", "render"] {
        let lines = assert_clean_failure(&tusk(&[cmd, "-f", f.to_str().unwrap()]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("not valid YAML"), "{lines:?}");
    }
}

#[test]
fn missing_file_is_one_line() {
    let lines = assert_clean_failure(&tusk(&["validate", "-f", "/nonexistent/cr.yaml"]));
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("cannot read /nonexistent/cr.yaml"),
        "{lines:?}"
    );
}

#[test]
fn type_error_names_the_field() {
    let cr = std::fs::read_to_string(deploy("cr.yaml")).unwrap();
    let broken = cr.replacen("replicas: 3", "replicas: three", 1);
    assert_ne!(cr, broken, "fixture changed: replicas: 3 not found");
    let f = temp_file("typed.yaml", &broken);
    let lines = assert_clean_failure(&tusk(&["validate", "-f", f.to_str().unwrap()]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("spec.instances[0].replicas: "),
        "{lines:?}"
    );
}

/// The file is read as `kubectl apply -f` reads it (YAML 1.1): unquoted `yes`/`on`/`Y`/`off`
/// are booleans, quoted ones strings; the API server then takes or rejects each for its field.
#[rstest]
#[case::yes_turns_pmm_on("enabled: false", "enabled: yes", Ok(true))]
#[case::on_title_case("enabled: false", "enabled: On", Ok(true))]
#[case::y("enabled: false", "enabled: Y", Ok(true))]
#[case::off("enabled: false", "enabled: off", Ok(false))]
#[case::quoted_yes_is_a_string(
    "enabled: false",
    "enabled: \"yes\"",
    Err("spec.pmm.enabled: invalid type: string \"yes\", expected a boolean")
)]
#[case::unquoted_yes_in_a_string_field(
    "image: docker.io/percona/percona-distribution-postgresql:18.3-1",
    "image: yes",
    Err(
        "spec.image: invalid type: boolean `true`, expected a string (the unquoted `yes` is a boolean in YAML 1.1, as kubectl reads it; write \"yes\" to keep it a string)"
    )
)]
fn yaml11_booleans_as_kubectl_reads_them(
    #[case] from: &str,
    #[case] to: &str,
    #[case] expected: Result<bool, &str>,
) {
    let cr = std::fs::read_to_string(deploy("cr.yaml")).unwrap();
    let edited = cr.replacen(from, to, 1);
    assert_ne!(cr, edited, "fixture changed: {from} not found");
    let f = temp_file(
        &format!("yaml11-{}.yaml", to.replace(['"', ' ', ':'], "_")),
        &edited,
    );
    let f = f.to_str().unwrap();
    match expected {
        Ok(pmm) => {
            let out = tusk(&["validate", "-f", f]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = tusk(&["render", "-f", f]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rendered = String::from_utf8(out.stdout).unwrap();
            assert_eq!(rendered.contains("name: pmm-client"), pmm, "pmm sidecar");
        }
        Err(line) => {
            for cmd in ["validate", "render"] {
                let lines = assert_clean_failure(&tusk(&[cmd, "-f", f]));
                assert_eq!(lines, vec![line.to_string()], "{cmd}");
            }
        }
    }
}

#[test]
fn help_everywhere() {
    for args in [
        vec!["--help"],
        vec!["crds", "--help"],
        vec!["validate", "--help"],
        vec!["render", "--help"],
        vec!["run", "--help"],
        vec!["up", "--help"],
        vec!["sim", "--help"],
        vec!["sim", "run", "--help"],
        vec!["sim", "explore", "--help"],
    ] {
        let out = tusk(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn invalid_cluster_gives_one_line_per_error() {
    let cr = std::fs::read_to_string(deploy("cr.yaml")).unwrap();
    let broken = cr
        .replacen("postgresVersion: 18", "postgresVersion: 99", 1)
        .replacen("  - name: instance1", "  - name: Instance_1", 1);
    assert_ne!(cr, broken);
    let f = temp_file("invalid.yaml", &broken);
    for cmd in ["validate", "render"] {
        let lines = assert_clean_failure(&tusk(&[cmd, "-f", f.to_str().unwrap()]));
        assert!(lines.len() >= 2, "{cmd}: {lines:?}");
        assert!(
            lines.iter().all(|l| l.starts_with("spec.")),
            "{cmd}: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("spec.postgresVersion: ")),
            "{cmd}: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("spec.instances[0].name: ")),
            "{cmd}: {lines:?}"
        );
    }
}

#[test]
fn sim_explore_reports_faults_and_is_deterministic() {
    let args = [
        "sim", "explore", "--seeds", "2", "--start", "5", "--faults", "pod-kill",
    ];
    let first = tusk(&args);
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.code().is_some(),
        "explore must exit, not be killed: {first:?}"
    );
    assert!(stdout.starts_with("2 seeds,"), "summary line: {stdout}");
    assert!(stdout.contains("faults exercised:"), "{stdout}");
    assert!(
        !stdout.contains("node-down"),
        "only the chosen class runs: {stdout}"
    );
    let second = tusk(&args);
    assert_eq!(
        stdout,
        String::from_utf8_lossy(&second.stdout),
        "same seeds, same output"
    );
    assert_eq!(first.status.code(), second.status.code());
}

#[test]
fn sim_explore_rejects_an_unknown_fault_class_in_one_line() {
    let out = tusk(&["sim", "explore", "--seeds", "1", "--faults", "meteor"]);
    let lines = assert_clean_exit(&out, 2);
    assert!(
        lines[0].contains("unknown fault class `meteor`"),
        "{lines:?}"
    );
}

#[test]
fn unknown_fields_warn_and_bad_quantities_fail() {
    let cr = std::fs::read_to_string(deploy("cr.yaml")).unwrap();
    let extra = cr.replacen("spec:\n", "spec:\n  instanceCount: 3\n", 1);
    assert_ne!(cr, extra);
    let f = temp_file("unknown.yaml", &extra);
    let out = tusk(&["validate", "-f", f.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "still valid: the API server prunes it"
    );
    assert_eq!(
        stderr_lines(&out),
        vec![
            "warning: PerconaPGCluster cluster1: spec.instanceCount: unknown field; it is ignored"
        ]
    );
    let out = tusk(&["render", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr_lines(&out).len(), 1, "render warns too");

    let bad = cr.replacen("\n          storage: 1Gi", "\n          storage: 1GB", 1);
    assert_ne!(cr, bad);
    let f = temp_file("quantity.yaml", &bad);
    let lines = assert_clean_failure(&tusk(&["validate", "-f", f.to_str().unwrap()]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(".resources.requests.storage: \"1GB\" is not a quantity"),
        "{lines:?}"
    );
}

/// `tusk sim run`: an invalid scenario file is one error line naming the step and its line,
/// exit 2, nothing run; a valid scenario whose expectation fails exits 1 with the replay line.
#[test]
fn sim_run_separates_an_invalid_file_from_a_failing_run() {
    let dir = std::env::temp_dir().join(format!("tusk-sim-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/scenarios/cluster.yaml")
        .canonicalize()
        .unwrap();
    let head = format!(
        "name: t\nworkload: off\ncluster: {{file: {}}}\nsteps:\n  - wait: ready\n",
        cluster.display()
    );
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, format!("{head}  - heal: everything\n")).unwrap();
    let out = tusk(&["sim", "run", bad.to_str().unwrap()]);
    let lines = assert_clean_exit(&out, 2);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("step 2 (line 6): heal: unknown fault class `everything`"),
        "{lines:?}"
    );
    assert!(out.stdout.is_empty(), "nothing runs");
    let failing = dir.join("failing.yaml");
    std::fs::write(&failing, format!("{head}expect: {{instances: 7}}\n")).unwrap();
    let out = tusk(&["sim", "run", failing.to_str().unwrap(), "--seed", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL: expected 7 database pod(s), got 3"),
        "{stdout}"
    );
    assert!(stdout.contains("replay: tusk sim run"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
