//! Scenario files: a cluster, then steps (apply/patch/delete objects, inject or heal faults,
//! advance time, wait for a condition) and expectations. The runner prints a timeline. See
//! `scenarios/README.md` for the format.

use crate::clock::{
    DURATION_FORMS, MINUTE, Millis, SECOND, duration_text, fmt_offset, parse_duration,
};
use crate::faults::{ALL_CLASSES, Fault, FaultStep};
use crate::invariants::Sometimes;
use crate::labels;
use crate::models::patroni::Patroni;
use crate::models::workload::outage_text;
use crate::store::SimApi;
use crate::world::{World, WorldConfig};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tusk_fake_apiserver::Objects;

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read scenario {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("scenario {path} is not valid: {error}")]
    Parse { path: PathBuf, error: String },
    #[error("scenario {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a scenario: a map with name, cluster, steps and expect"
)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Marks a scenario whose feature is not there yet: it runs, but failures are reported as
    /// pending rather than failing.
    #[serde(default)]
    pub pending: Option<String>,
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    #[serde(default = "default_ns")]
    pub namespace: String,
    /// Client writes through `<cluster>-primary` every this often; `off` for none.
    #[serde(default = "default_workload", deserialize_with = "workload_text")]
    pub workload: String,
    /// Also print every operator write in the timeline.
    #[serde(default)]
    pub verbose: bool,
    /// The PerconaPGCluster: an inline object, or `{file: path, patch: {...}}`.
    pub cluster: Value,
    #[serde(default, deserialize_with = "steps_de")]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub expect: Expect,
}

/// Steps are one-key maps; YAML's own enum encoding uses tags, so go through JSON values.
/// Errors start with `step N:` (1-based), which [`load`] turns into `step N (line L):`.
fn steps_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Step>, D::Error> {
    let raw: Vec<Value> = Vec::deserialize(d)?;
    raw.into_iter()
        .enumerate()
        .map(|(i, v)| {
            parse_step(&v).map_err(|e| serde::de::Error::custom(format!("step {}: {e}", i + 1)))
        })
        .collect()
}

/// Names of the steps, for error messages.
pub const STEP_NAMES: &str =
    "wait, advance, fault, heal, patch, apply, delete, switchover, allow-password-change, note";

fn parse_step(v: &Value) -> Result<Step, String> {
    let Some(map) = v.as_object().filter(|m| m.len() == 1) else {
        return Err(format!(
            "a step is a map with one key, one of {STEP_NAMES} (got {v})"
        ));
    };
    let (key, _) = map.iter().next().expect("one key");
    if !STEP_NAMES.split(", ").any(|n| n == key) {
        return Err(format!("unknown step `{key}`; use one of {STEP_NAMES}"));
    }
    serde_json::from_value(v.clone()).map_err(|e| format!("{key}: {e} (in {v})"))
}

/// `workload:` as a duration (string or number of seconds), `off`, or `false`.
fn workload_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum W {
        Off(bool),
        Text(#[serde(deserialize_with = "duration_text")] String),
    }
    match W::deserialize(d).map_err(|_| {
        serde::de::Error::custom(format!("expected `off` or a duration; {DURATION_FORMS}"))
    })? {
        W::Off(false) => Ok("off".into()),
        W::Off(true) => Err(serde::de::Error::custom(
            "expected `off` or a duration such as 1s (true is not a duration)",
        )),
        W::Text(t) => Ok(t),
    }
}

fn default_nodes() -> usize {
    3
}
fn default_ns() -> String {
    "default".into()
}
fn default_workload() -> String {
    "1s".into()
}

/// One step. Written as a single-key map: `- wait: ready`, `- advance: 30s`, ...
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Wait until a condition holds (see [`Condition`]); `ready` or `{for: ready, timeout: 5m}`.
    Wait(Wait),
    /// Let simulated time pass.
    Advance(#[serde(deserialize_with = "duration_text")] String),
    /// Inject a fault (`for:` heals a lasting one after that long).
    Fault(FaultStep),
    /// Heal lasting faults: `all` or a class name.
    Heal(String),
    /// Merge-patch the cluster CR.
    Patch(Value),
    /// Apply (create or update) any object, as `kubectl apply` would.
    Apply(Value),
    /// Delete an object: `{kind, name, apiVersion?}`; `name: primary`/`replica` for pods.
    Delete(DeleteStep),
    /// Ask Patroni for a switchover, as `patronictl switchover` does.
    Switchover(SwitchoverStep),
    /// Declare that a user Secret's password may change (a rotation is requested).
    AllowPasswordChange(String),
    /// A line in the timeline.
    Note(String),
}

#[derive(Debug, Clone, serde::Serialize, PartialEq)]
#[serde(untagged)]
pub enum Wait {
    Short(String),
    Full {
        #[serde(rename = "for")]
        condition: String,
        #[serde(default)]
        timeout: Option<String>,
    },
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            #[serde(rename = "for")]
            condition: String,
            #[serde(default, deserialize_with = "crate::clock::duration_text_opt")]
            timeout: Option<String>,
        }
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(c) => Ok(Wait::Short(c)),
            v @ Value::Object(_) => {
                let f: Full = serde_json::from_value(v).map_err(D::Error::custom)?;
                Ok(Wait::Full {
                    condition: f.condition,
                    timeout: f.timeout,
                })
            }
            other => Err(D::Error::custom(format!(
                "expected a condition (`wait: ready`) or {{for: CONDITION, timeout: DURATION}}, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteStep {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub api_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverStep {
    /// Candidate pod (`replica` picks the first replica); empty lets Patroni choose.
    #[serde(default)]
    pub to: Option<String>,
}

/// What must hold at the end.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_primary_changes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_primary_changes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_writes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_failovers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_timeline: Option<u32>,
    /// Number of database pods at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_deleted: Option<bool>,
    /// PVCs of the cluster still present at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvcs: Option<usize>,
    /// The longest run of failed client writes allowed (e.g. `30s`): how long the database
    /// may look down to an application.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::clock::duration_text_opt"
    )]
    pub max_write_outage: Option<String>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub name: String,
    pub seed: u64,
    pub timeline: Vec<String>,
    /// Failed expectations and violated invariants; empty when the run passed.
    pub failures: Vec<String>,
    /// Set when the scenario is marked pending (failures are then expected).
    pub pending: Option<String>,
    pub sometimes: Sometimes,
    pub acked_writes: usize,
    pub lost_writes: usize,
    pub simulated: Millis,
    pub steps: u64,
    pub digest: u64,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

pub const DEFAULT_WAIT: Millis = 5 * MINUTE;

/// Parses a scenario file and checks every field and step before anything runs, so a
/// mistake is one error naming the step (and its line) and what is allowed, not a run that
/// stops halfway.
pub fn load(path: &Path) -> Result<Scenario, ScriptError> {
    let text = std::fs::read_to_string(path).map_err(|error| ScriptError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, path)
}

/// [`load`] on the text of a file (`path` locates `cluster: {file: ...}` and names the file in
/// errors).
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScriptError> {
    let lines = step_lines(text);
    let mut s: Scenario = serde_yaml::from_str(text).map_err(|e| ScriptError::Parse {
        path: path.to_path_buf(),
        error: with_line(&e.to_string(), &lines),
    })?;
    // The text parsed, so it parses again; the objects in it are what a user would
    // `kubectl apply`, so they are read as kubectl reads them.
    if let Ok(kube) = tusk_core::yaml::from_str(text) {
        read_objects_as_kubectl(&mut s, &kube);
    }
    s.cluster = resolve_cluster(path, &s.cluster)?;
    let problems = check(&s);
    if let Some(first) = problems.first() {
        let more = match problems.len() - 1 {
            0 => String::new(),
            n => format!(" ({n} more problem(s) after this one)"),
        };
        return Err(ScriptError::Invalid {
            path: path.to_path_buf(),
            message: format!("{}{more}", with_line(first, &lines)),
        });
    }
    Ok(s)
}

/// The inline cluster and the objects of `patch` and `apply` steps as `kubectl apply` reads
/// them (YAML 1.1: an unquoted `yes` or `off` is a boolean; see `tusk_core::yaml`), taken from
/// `kube`, the whole file read that way. The rest of the file is the scenario format's own
/// (YAML 1.2: `workload: off` is a word).
fn read_objects_as_kubectl(s: &mut Scenario, kube: &Value) {
    if let Some(cluster) = kube.get("cluster") {
        s.cluster = cluster.clone();
    }
    for (i, step) in s.steps.iter_mut().enumerate() {
        let (key, object) = match step {
            Step::Patch(v) => ("patch", v),
            Step::Apply(v) => ("apply", v),
            _ => continue,
        };
        if let Some(v) = kube.pointer(&format!("/steps/{i}/{key}")) {
            *object = v.clone();
        }
    }
}

/// The 1-based line of each item of the top-level block list `steps:`, in order (empty when
/// the steps are written in flow style).
fn step_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_steps = false;
    let mut item_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        if !in_steps {
            in_steps = indent == 0 && trimmed.starts_with("steps:");
            continue;
        }
        match item_indent {
            None if is_item => {
                item_indent = Some(indent);
                out.push(i + 1);
            }
            None => break,
            Some(k) if indent == k && is_item => out.push(i + 1),
            Some(k) if indent < k || (indent == 0 && !is_item) => break,
            Some(_) => {}
        }
    }
    out
}

/// `step N: ...` becomes `step N (line L): ...` when the step's line is known.
fn with_line(message: &str, lines: &[usize]) -> String {
    let rest = message.strip_prefix("steps: ").unwrap_or(message);
    let Some((n, tail)) = rest
        .strip_prefix("step ")
        .and_then(|after| after.split_once(':'))
    else {
        return message.to_string();
    };
    match n
        .parse::<usize>()
        .ok()
        .and_then(|n| lines.get(n.wrapping_sub(1)))
    {
        Some(line) => format!("step {n} (line {line}):{tail}"),
        None => message.to_string(),
    }
}

/// `workload: off` (or `none`, `false`): no client writes.
fn workload_off(w: &str) -> bool {
    matches!(w, "off" | "none" | "false")
}

/// Every problem of a parsed scenario that would otherwise surface only when its step runs:
/// durations, conditions, fault parameters, heal classes, objects to apply, and the cluster
/// itself (as the API server's schema would reject it). Empty when the scenario is runnable.
pub fn check(s: &Scenario) -> Vec<String> {
    let mut p = Vec::new();
    if !(1..=MAX_NODES).contains(&s.nodes) {
        p.push(format!(
            "nodes: {} is not between 1 and {MAX_NODES}",
            s.nodes
        ));
    }
    if !workload_off(&s.workload) && parse_duration(&s.workload).is_none() {
        p.push(format!(
            "workload: `{}` is not a duration; {DURATION_FORMS}, or off",
            s.workload
        ));
    }
    if s.cluster["metadata"]["name"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        p.push("cluster: metadata.name is required".to_string());
    }
    if let Err(errors) = tusk_core::validate::parse_cluster(s.cluster.clone()) {
        p.extend(errors.iter().map(|e| format!("cluster: {e}")));
    }
    for (i, step) in s.steps.iter().enumerate() {
        if let Err(e) = check_step(step) {
            p.push(format!("step {}: {e}", i + 1));
        }
    }
    if let Some(d) = &s.expect.max_write_outage {
        if let Err(e) = duration("expect: max-write-outage", d) {
            p.push(e);
        } else if workload_off(&s.workload) {
            p.push(
                "expect: max-write-outage needs the client workload; remove `workload: off` or the expectation"
                    .to_string(),
            );
        }
    }
    p
}

/// The most simulated nodes a scenario may ask for.
pub const MAX_NODES: usize = 100;

fn duration(field: &str, d: &str) -> Result<Millis, String> {
    parse_duration(d).ok_or_else(|| format!("{field}: `{d}` is not a duration; {DURATION_FORMS}"))
}

fn check_step(step: &Step) -> Result<(), String> {
    let nonempty = |field: &str, v: &str| {
        if v.trim().is_empty() {
            Err(format!("{field} must not be empty"))
        } else {
            Ok(())
        }
    };
    match step {
        Step::Wait(Wait::Short(c)) => Condition::parse(c).map(|_| ()),
        Step::Wait(Wait::Full { condition, timeout }) => {
            Condition::parse(condition)?;
            if let Some(t) = timeout {
                duration("wait timeout", t)?;
            }
            Ok(())
        }
        Step::Advance(d) => duration("advance", d).map(|_| ()),
        Step::Fault(FaultStep { fault, lasts }) => {
            check_fault(fault)?;
            match lasts {
                Some(d) if !fault.lasting() => Err(format!(
                    "fault {}: `for: {d}` applies only to faults that last until healed; {} happens once{}",
                    fault.class(),
                    fault.class(),
                    if fault.class() == "pod-kill" {
                        " (`down:` holds its replacement back)"
                    } else {
                        ""
                    }
                )),
                Some(d) => duration("fault: for", d).map(|_| ()),
                None => Ok(()),
            }
        }
        Step::Heal(class) => {
            if class == "all" || ALL_CLASSES.contains(&class.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "heal: unknown fault class `{class}`; use all or one of {}",
                    ALL_CLASSES.join(", ")
                ))
            }
        }
        Step::Patch(v) => {
            if v.is_object() {
                Ok(())
            } else {
                Err(format!(
                    "patch: expected a merge patch of the cluster (a map such as {{spec: {{pause: true}}}}), got {v}"
                ))
            }
        }
        Step::Apply(o) => check_object(o),
        Step::Delete(d) => {
            nonempty("delete: kind", &d.kind)?;
            nonempty("delete: name", &d.name)
        }
        Step::Switchover(sw) => match &sw.to {
            Some(t) => nonempty("switchover: to", t),
            None => Ok(()),
        },
        Step::AllowPasswordChange(secret) => nonempty("allow-password-change", secret),
        Step::Note(_) => Ok(()),
    }
}

fn check_fault(f: &Fault) -> Result<(), String> {
    let target = |t: &str| {
        if t.trim().is_empty() {
            Err(format!(
                "fault {}: target must name a pod (primary, replica, replica-N, any or a pod name)",
                f.class()
            ))
        } else {
            Ok(())
        }
    };
    match f {
        Fault::PodDelete { target: t }
        | Fault::ContainerCrash { target: t }
        | Fault::NodeDown { target: t }
        | Fault::NodeNotReady { target: t }
        | Fault::Partition { target: t }
        | Fault::DiskFull { target: t }
        | Fault::PvcLost { target: t } => target(t),
        Fault::ClockSkew { target: t, seconds } => {
            target(t)?;
            if seconds.unsigned_abs() > 86_400 {
                return Err(format!(
                    "fault clock-skew: seconds {seconds} is more than a day off; use -86400 to 86400"
                ));
            }
            Ok(())
        }
        Fault::PodKill { target: t, down } => {
            target(t)?;
            if let Some(d) = down {
                duration("fault pod-kill: down", d)?;
            }
            Ok(())
        }
        Fault::ApiErrors { rate } => {
            if rate.is_finite() && (0.0..=1.0).contains(rate) {
                Ok(())
            } else {
                Err(format!(
                    "fault api-errors: rate {rate} is not a fraction between 0 and 1"
                ))
            }
        }
        Fault::StaleReads { lag } if *lag > crate::store::STALE_READ_WINDOW => Err(format!(
            "fault stale-reads: lag {lag} is more than the {} revisions the world keeps; use a lag up to {}",
            crate::store::STALE_READ_WINDOW,
            crate::store::STALE_READ_WINDOW
        )),
        Fault::ReplicationLag { millis, .. } if !(0..=3_600_000).contains(millis) => Err(format!(
            "fault replication-lag: millis {millis} is not between 0 and 3600000 (one hour)"
        )),
        Fault::ReplicationLag {
            target: Some(t), ..
        } => target(t),
        _ => Ok(()),
    }
}

/// An object for `apply`: apiVersion, kind and metadata.name, and for tusk's own kinds what
/// the CRD schema would accept.
fn check_object(o: &Value) -> Result<(), String> {
    for field in ["apiVersion", "kind"] {
        if o[field].as_str().is_none_or(str::is_empty) {
            return Err(format!("apply: the object needs `{field}`"));
        }
    }
    if o["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        return Err("apply: the object needs metadata.name".to_string());
    }
    crate::world::schema_check(o).map_err(|e| format!("apply: {e}"))
}

fn resolve_cluster(path: &Path, c: &Value) -> Result<Value, ScriptError> {
    if let Some(file) = c.get("file").and_then(Value::as_str) {
        let base = path.parent().unwrap_or(Path::new("."));
        let p = base.join(file);
        let text = std::fs::read_to_string(&p).map_err(|error| ScriptError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "cluster: cannot read {} (`file:` is relative to the scenario's folder): {error}",
                p.display()
            ),
        })?;
        let mut v: Value = tusk_core::yaml::from_str(&text).map_err(|e| ScriptError::Parse {
            path: p.clone(),
            error: e.to_string(),
        })?;
        if let Some(patch) = c.get("patch") {
            merge(&mut v, patch);
        }
        return Ok(v);
    }
    if c.get("kind").and_then(Value::as_str) != Some(labels::CR_KIND) {
        return Err(ScriptError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "`cluster` must be a {} object or {{file: PATH}}",
                labels::CR_KIND
            ),
        });
    }
    Ok(c.clone())
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Runs a scenario file with a seed.
pub fn run_file(path: &Path, seed: u64) -> Result<RunOutcome, ScriptError> {
    let s = load(path)?;
    run_scenario(&s, seed).map_err(|message| ScriptError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

impl Scenario {
    /// How far back a stale read of this scenario can look: its largest `stale-reads` lag
    /// (0 without one). The world's store keeps only that much history.
    pub fn stale_read_window(&self) -> u64 {
        self.steps
            .iter()
            .filter_map(|st| match st {
                Step::Fault(f) => match f.fault {
                    Fault::StaleReads { lag } => Some(lag),
                    _ => None,
                },
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Runs a parsed scenario (checked first: see [`check`]).
pub fn run_scenario(s: &Scenario, seed: u64) -> Result<RunOutcome, String> {
    if let Some(problem) = check(s).into_iter().next() {
        return Err(problem);
    }
    let mut world = world_for(s, seed)?;
    run_in(&mut world, s, seed)
}

/// The world a scenario runs in: its nodes, namespace, client workload and the history its
/// stale reads need, seeded with `seed`.
pub fn world_for(s: &Scenario, seed: u64) -> Result<World, String> {
    let mut config = WorldConfig::new(seed);
    config.nodes = s.nodes.max(1);
    config.namespace = s.namespace.clone();
    config.workload_interval = match s.workload.as_str() {
        w if workload_off(w) => None,
        w => Some(parse_duration(w).ok_or_else(|| format!("workload: `{w}` is not a duration"))?),
    };
    config.stale_read_window = s.stale_read_window();
    let mut world = World::new(config);
    world.verbose = s.verbose;
    Ok(world)
}

/// Runs the scenario's steps in an existing world.
pub fn run_in(world: &mut World, s: &Scenario, seed: u64) -> Result<RunOutcome, String> {
    let cluster = s.cluster["metadata"]["name"]
        .as_str()
        .ok_or("the cluster has no metadata.name")?
        .to_string();
    let mut failures = Vec::new();
    world.log(format!("scenario {} (seed {seed})", s.name));
    world
        .apply_user(s.cluster.clone())
        .map_err(|e| format!("applying the cluster: {e}"))?;
    let changes_before = |w: &World| w.primary_changes.get(&cluster).copied().unwrap_or(0);
    for (i, step) in s.steps.iter().enumerate() {
        let n = i + 1;
        match step {
            Step::Wait(w) => {
                let (cond, timeout) = match w {
                    Wait::Short(c) => (c.clone(), DEFAULT_WAIT),
                    Wait::Full { condition, timeout } => (
                        condition.clone(),
                        match timeout {
                            Some(t) => parse_duration(t).ok_or_else(|| {
                                format!("step {n}: timeout `{t}` is not a duration")
                            })?,
                            None => DEFAULT_WAIT,
                        },
                    ),
                };
                let condition = Condition::parse(&cond).map_err(|e| format!("step {n}: {e}"))?;
                let start_changes = changes_before(world);
                let start_primary = world.last_primary.get(&cluster).cloned();
                let deadline = world.now() + timeout;
                let met = world.run_until(deadline, |w| {
                    condition.holds(w, &cluster, start_changes, start_primary.as_deref())
                });
                if !met {
                    let msg = format!(
                        "step {n}: `{cond}` not reached within {}",
                        fmt_offset(timeout).trim_start_matches('+')
                    );
                    world.log(format!("TIMEOUT {msg}"));
                    failures.push(msg);
                    break;
                }
            }
            Step::Advance(d) => {
                let d = parse_duration(d)
                    .ok_or_else(|| format!("step {n}: `{d}` is not a duration"))?;
                world.advance(d);
            }
            Step::Fault(FaultStep { fault: f, lasts }) => {
                world.step();
                let lasts = lasts.as_deref().and_then(parse_duration);
                if let Err(e) = world.inject_for(f.clone(), lasts) {
                    // A target that does not exist right now (no replica left) is not a
                    // failure of the system under test: the fault simply does not happen.
                    world.log(format!("fault {f} skipped: {e}"));
                }
            }
            Step::Heal(class) => {
                world.step();
                world.heal(Some(class));
            }
            Step::Patch(p) => {
                world.step();
                world.log(format!("user: patch cluster {cluster} {}", p));
                if let Err(e) = world.patch_user(labels::CR_API, labels::CR_KIND, &cluster, p) {
                    failures.push(format!("step {n}: patch: {e}"));
                }
            }
            Step::Apply(o) => {
                world.step();
                let what = format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                );
                world.log(format!("user: apply {what}"));
                if let Err(e) = world.apply_user(o.clone()) {
                    failures.push(format!("step {n}: apply {what}: {e}"));
                }
            }
            Step::Delete(d) => {
                world.step();
                let name = if d.kind == "Pod" {
                    match world.resolve_pod(&d.name) {
                        Some(name) => name,
                        None => {
                            // A role word (primary, replica-1, ...) that no pod carries right
                            // now, e.g. while the pod restarts: like a fault without a target,
                            // the deletion does not happen.
                            world.log(format!(
                                "user: delete pod {} skipped: no pod is {} right now",
                                d.name, d.name
                            ));
                            continue;
                        }
                    }
                } else {
                    d.name.clone()
                };
                let av = d
                    .api_version
                    .clone()
                    .unwrap_or_else(|| default_api_version(&d.kind).to_string());
                world.log(format!("user: delete {} {name}", d.kind.to_lowercase()));
                if let Err(e) = world.delete_user(&av, &d.kind, &name) {
                    let hint = if d.kind == "Pod" {
                        format!(
                            " (database pods: {}; or name one by role: primary, replica, replica-N, any)",
                            db_pod_names(world, &cluster).join(", ")
                        )
                    } else {
                        String::new()
                    };
                    failures.push(format!("step {n}: delete {} {name}: {e}{hint}", d.kind));
                }
            }
            Step::Switchover(sw) => {
                world.step();
                let to = sw.to.as_deref().and_then(|t| world.resolve_pod(t));
                let leader = world.resolve_pod("primary");
                world.log(format!(
                    "user: patronictl switchover {} -> {}",
                    leader.as_deref().unwrap_or("?"),
                    to.as_deref().or(sw.to.as_deref()).unwrap_or("best replica")
                ));
                // patronictl refuses a candidate that is not a member, or is the leader.
                if let Some(word) = &sw.to {
                    let members = db_pod_names(world, &cluster);
                    let refusal = match &to {
                        None => Some(format!("no pod is {word} right now")),
                        Some(c) if !members.contains(c) => Some(format!(
                            "{c} is not a member of {cluster} (members: {}; or name one by role: replica, replica-N)",
                            members.join(", ")
                        )),
                        Some(c) if leader.as_deref() == Some(c.as_str()) => {
                            Some(format!("{c} is already the leader"))
                        }
                        Some(_) => None,
                    };
                    if let Some(why) = refusal {
                        world.log(format!("patronictl: switchover refused: {why}"));
                        failures.push(format!("step {n}: switchover: {why}"));
                        continue;
                    }
                }
                let ns = world.namespace.clone();
                if let Err(e) = Patroni::request_switchover(
                    &mut world.store,
                    &ns,
                    &cluster,
                    leader.as_deref(),
                    to.as_deref(),
                ) {
                    failures.push(format!("step {n}: switchover: {e}"));
                }
            }
            Step::AllowPasswordChange(secret) => {
                world.checker.rotation_allowed.insert(secret.clone());
            }
            Step::Note(t) => world.log(format!("note: {t}")),
        }
    }
    // Let the last step's consequences show, then check expectations.
    world.advance(SECOND);
    failures.extend(check_expect(world, &s.expect, &cluster));
    failures.extend(world.checker.failures());
    let lost = world.workloads.iter().map(|w| w.lost.len()).sum();
    let acked = world.workloads.iter().map(|w| w.acked.len()).sum();
    let discarded: usize = world.workloads.iter().map(|w| w.discarded.len()).sum();
    let lost_text = match discarded {
        0 => format!("{lost} lost"),
        d => format!("{lost} lost, {d} rolled back by a restore"),
    };
    let longest_outage = world.longest_write_outage();
    world.log(format!(
        "end: {} acknowledged write(s), {}, longest write outage {}, {} primary change(s), {} invariant check(s)",
        acked,
        lost_text,
        outage_text(longest_outage),
        world.primary_changes.get(&cluster).copied().unwrap_or(0),
        world.checker.checks
    ));
    Ok(RunOutcome {
        name: s.name.clone(),
        seed,
        timeline: world.rendered_timeline(),
        failures,
        pending: s.pending.clone(),
        sometimes: world.checker.sometimes.clone(),
        acked_writes: acked,
        lost_writes: lost,
        simulated: world.now(),
        steps: world.steps,
        digest: world.trace_digest(),
    })
}

fn default_api_version(kind: &str) -> &'static str {
    match kind {
        "StatefulSet" | "Deployment" => "apps/v1",
        "Job" => "batch/v1",
        "PerconaPGCluster" | "PerconaPGBackup" | "PerconaPGRestore" => labels::CR_API,
        "PodDisruptionBudget" => "policy/v1",
        _ => "v1",
    }
}

/// Conditions `wait` understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// CR ready, one primary, every database pod ready.
    Ready,
    /// The primary is a different pod than when the wait began.
    PrimaryChanged,
    /// No pod has the primary role.
    NoPrimary,
    /// `state=paused` etc.
    State(String),
    /// `instances=N`: N database pods exist (not terminating).
    Instances(usize),
    /// The cluster CR is gone.
    Deleted,
    /// `backup=Succeeded`: some PerconaPGBackup of the cluster reached that state.
    Backup(String),
    /// `restore=Succeeded`.
    Restore(String),
    /// The replica-create backup after bootstrap completed (cluster status
    /// `pgbackrest.repos[].replicaCreateBackupComplete`).
    ReplicaCreateBackup,
}

impl Condition {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Ok(match s {
            "ready" => Self::Ready,
            "primary-changed" => Self::PrimaryChanged,
            "no-primary" => Self::NoPrimary,
            "deleted" => Self::Deleted,
            "replica-create-backup" => Self::ReplicaCreateBackup,
            _ => match s.split_once('=') {
                Some(("state", v)) => Self::State(v.trim().to_string()),
                Some(("instances", v)) => Self::Instances(
                    v.trim()
                        .parse()
                        .map_err(|_| format!("`{v}` is not a number"))?,
                ),
                Some(("backup", v)) => Self::Backup(v.trim().to_string()),
                Some(("restore", v)) => Self::Restore(v.trim().to_string()),
                _ => {
                    return Err(format!(
                        "unknown condition `{s}`; use ready, primary-changed, no-primary, deleted, replica-create-backup, state=S, instances=N, backup=S, restore=S"
                    ));
                }
            },
        })
    }

    pub fn holds(
        &self,
        w: &World,
        cluster: &str,
        changes_at_start: u64,
        primary_at_start: Option<&str>,
    ) -> bool {
        let ns = Some(w.namespace.as_str());
        match self {
            Self::Ready => w.cluster_ready(cluster),
            Self::PrimaryChanged => {
                w.primary_changes.get(cluster).copied().unwrap_or(0) > changes_at_start
                    && w.last_primary.get(cluster).map(String::as_str) != primary_at_start
            }
            Self::NoPrimary => !db_pods(w, cluster).iter().any(|p| {
                labels::is_primary_role(
                    p["metadata"]["labels"][labels::ROLE].as_str().unwrap_or(""),
                )
            }),
            Self::State(s) => w
                .store
                .get_ref(labels::CR_API, labels::CR_KIND, ns, cluster)
                .is_some_and(|c| c["status"]["state"] == s.as_str()),
            Self::Instances(n) => db_pods(w, cluster).len() == *n,
            Self::Deleted => w
                .store
                .get_ref(labels::CR_API, labels::CR_KIND, ns, cluster)
                .is_none(),
            Self::Backup(s) => w
                .store
                .list_ref(labels::CR_API, "PerconaPGBackup", ns)
                .iter()
                .any(|b| b["spec"]["pgCluster"] == cluster && b["status"]["state"] == s.as_str()),
            Self::Restore(s) => w
                .store
                .list_ref(labels::CR_API, "PerconaPGRestore", ns)
                .iter()
                .any(|b| b["spec"]["pgCluster"] == cluster && b["status"]["state"] == s.as_str()),
            Self::ReplicaCreateBackup => w
                .store
                .get_ref(labels::CR_API, labels::CR_KIND, ns, cluster)
                .and_then(|c| c["status"]["pgbackrest"]["repos"].as_array())
                .is_some_and(|repos| {
                    repos
                        .iter()
                        .any(|r| r["replicaCreateBackupComplete"] == true)
                }),
        }
    }
}

fn db_pod_names(w: &World, cluster: &str) -> Vec<String> {
    db_pods(w, cluster)
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn db_pods<'a>(w: &'a World, cluster: &str) -> Vec<&'a Value> {
    w.store
        .list_ref("v1", "Pod", Some(&w.namespace))
        .into_iter()
        .filter(|p| {
            p["metadata"]["labels"][labels::CLUSTER] == cluster
                && p["metadata"]["labels"][labels::DATA] == "postgres"
                && p["metadata"].get("deletionTimestamp").is_none()
        })
        .collect()
}

fn check_expect(w: &mut World, e: &Expect, cluster: &str) -> Vec<String> {
    let mut f = Vec::new();
    let ns = Some(w.namespace.clone());
    let cr = w
        .store
        .get(labels::CR_API, labels::CR_KIND, ns.as_deref(), cluster);
    if let Some(s) = &e.state {
        let got = cr
            .as_ref()
            .and_then(|c| c["status"]["state"].as_str())
            .unwrap_or("<none>");
        if got != s {
            f.push(format!("expected state {s}, got {got}"));
        }
    }
    if let Some(r) = e.ready
        && w.cluster_ready(cluster) != r
    {
        f.push(format!(
            "expected the cluster {}ready",
            if r { "" } else { "not " }
        ));
    }
    let changes = w.primary_changes.get(cluster).copied().unwrap_or(0);
    if let Some(m) = e.min_primary_changes
        && changes < m
    {
        f.push(format!(
            "expected at least {m} primary change(s), saw {changes}"
        ));
    }
    if let Some(m) = e.max_primary_changes
        && changes > m
    {
        f.push(format!(
            "expected at most {m} primary change(s), saw {changes}"
        ));
    }
    let lost: u64 = w.workloads.iter().map(|w| w.lost.len() as u64).sum();
    if let Some(m) = e.lost_writes
        && lost != m
    {
        f.push(format!("expected {m} lost write(s), measured {lost}"));
    }
    if let Some(m) = e.min_failovers
        && w.checker.sometimes.failovers < m
    {
        f.push(format!(
            "expected at least {m} failover(s), saw {}",
            w.checker.sometimes.failovers
        ));
    }
    if let Some(tl) = e.primary_timeline {
        let got = w
            .patroni
            .primary_of(cluster)
            .and_then(|m| w.patroni.data.get(&m.pvc))
            .map(|d| d.timeline);
        if got != Some(tl) {
            f.push(format!(
                "expected the primary on timeline {tl}, got {got:?}"
            ));
        }
    }
    if let Some(n) = e.instances {
        let got = db_pods(w, cluster).len();
        if got != n {
            f.push(format!("expected {n} database pod(s), got {got}"));
        }
    }
    if let Some(d) = e.cluster_deleted {
        if d != cr.is_none() {
            f.push(format!(
                "expected the cluster {}",
                if d { "deleted" } else { "present" }
            ));
        }
        if d && cr.is_none() {
            let now = w.now();
            w.checker.check_orphans(now, &w.store, cluster);
        }
    }
    if let Some(n) = e.pvcs {
        let got = w
            .store
            .list("v1", "PersistentVolumeClaim", ns.as_deref())
            .iter()
            .filter(|p| p["metadata"]["labels"][labels::CLUSTER] == cluster)
            .count();
        if got != n {
            f.push(format!("expected {n} PVC(s) of the cluster, got {got}"));
        }
    }
    if let Some(limit) = e.max_write_outage.as_deref().and_then(parse_duration) {
        let got = w.longest_write_outage();
        if got > limit {
            f.push(format!(
                "expected no write outage longer than {}, saw one of {}",
                outage_text(limit),
                outage_text(got)
            ));
        }
    }
    f
}
