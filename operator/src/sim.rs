//! `tusk sim run` and `tusk sim explore`, delegating to tusk-scenarios.
//!
//! Output is a pure function of the scenario file and the seed (no wall-clock figures), so two
//! runs with the same seed print the same bytes.

use crate::cli::SimCommand;
use crate::error::CliError;
use std::io::Write;
use std::process::ExitCode;

pub fn sim(cmd: SimCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SimCommand::Run { file, seed } => run(&file, seed),
        SimCommand::Explore {
            seeds,
            start,
            faults,
            threads,
        } => explore(seeds, start, &faults, threads),
    }
}

/// Runs `seeds` random fault schedules from `start`, with a progress line on stderr, and prints a
/// summary: faults exercised, invariant checks, and for each failure the command that replays it.
fn explore(
    seeds: u64,
    start: u64,
    faults: &[String],
    threads: Option<usize>,
) -> Result<ExitCode, CliError> {
    let faults = match tusk_scenarios::FaultSet::parse(&faults.join(",")) {
        Ok(f) => f,
        Err(e) => return invalid(&format!("--faults: {e}")),
    };
    let Some(end) = start.checked_add(seeds) else {
        return invalid("--start + --seeds overflows u64");
    };
    let mut err = std::io::stderr().lock();
    let threads = threads.unwrap_or_else(tusk_scenarios::explore::default_threads);
    let summary = tusk_scenarios::explore::explore_on(start..end, &faults, 10, threads, &mut |p| {
        let _ = write!(
            err,
            "\rexplore: {}/{} seeds, {} failing (seed {})   ",
            p.done, p.total, p.failures, p.seed
        );
        let _ = err.flush();
    });
    let _ = writeln!(err);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} seeds, {:.0}s simulated, {} invariant checks, {} acknowledged writes ({} lost in async mode)",
        summary.seeds,
        summary.simulated as f64 / 1000.0,
        summary.invariant_checks,
        summary.acked_writes,
        summary.lost_writes_async
    );
    let _ = writeln!(out, "faults exercised:");
    for (fault, count) in &summary.faults_exercised {
        let _ = writeln!(out, "  {fault}: {count}");
    }
    let _ = writeln!(out, "sometimes: {:?}", summary.sometimes);
    let unreached = summary.unreached();
    if !unreached.is_empty() {
        // Reported, not failed on: a narrow --faults list may never cause a failover.
        let _ = writeln!(out, "never reached: {}", unreached.join(", "));
    }
    for f in &summary.failures {
        let _ = write!(out, "{}", failure_report(f));
    }
    if summary.failures.is_empty() {
        let _ = writeln!(out, "PASS");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// One failing seed: what failed, the command that replays it, and the shrunk schedule as a
/// scenario file (indented; save it and `tusk sim run FILE --seed N`).
fn failure_report(f: &tusk_scenarios::explore::ExploreFailure) -> String {
    let mut text = format!("FAIL seed {}:\n", f.seed);
    for line in &f.failures {
        text.push_str(&format!("  {}\n", crate::error::one_line(line)));
    }
    text.push_str(&format!("  replay: {}\n", f.replay));
    text.push_str(&format!(
        "  shrunk scenario (tusk sim run FILE --seed {}):\n",
        f.seed
    ));
    for line in f.scenario_yaml.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// Exit code for input that cannot run at all (an unreadable or invalid scenario file, an
/// unknown fault class), as for command-line usage errors; 1 is kept for runs that fail.
pub const EXIT_INVALID: u8 = 2;

fn invalid(message: &str) -> Result<ExitCode, CliError> {
    eprintln!("error: {}", crate::error::one_line(message));
    Ok(ExitCode::from(EXIT_INVALID))
}

fn run(file: &std::path::Path, seed: u64) -> Result<ExitCode, CliError> {
    let outcome = match tusk_scenarios::run_file(file, seed) {
        Ok(outcome) => outcome,
        Err(e) => return invalid(&e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "scenario {} (seed {})", outcome.name, outcome.seed);
    for line in &outcome.timeline {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "-- {} steps, {:.1}s simulated, {} acknowledged writes, {} lost, digest {:016x}",
        outcome.steps,
        outcome.simulated as f64 / 1000.0,
        outcome.acked_writes,
        outcome.lost_writes,
        outcome.digest
    );
    if outcome.failures.is_empty() {
        let _ = writeln!(out, "PASS");
        return Ok(ExitCode::SUCCESS);
    }
    for f in &outcome.failures {
        let _ = writeln!(out, "FAIL: {}", crate::error::one_line(f));
    }
    if let Some(reason) = &outcome.pending {
        let _ = writeln!(out, "PENDING (failures expected): {reason}");
        return Ok(ExitCode::SUCCESS);
    }
    let _ = writeln!(
        out,
        "replay: tusk sim run {} --seed {}",
        file.display(),
        seed
    );
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_report_carries_the_replay_and_a_scenario_that_parses() {
        let f = tusk_scenarios::explore::ExploreFailure {
            seed: 42,
            failures: vec!["[+01:00.000] invariant violated: two primaries".into()],
            replay: "tusk sim explore --seeds 1 --start 42 --faults pod-kill".into(),
            scenario_yaml: "name: explore-seed-42\nsteps:\n- advance: 30s\n".into(),
        };
        let text = failure_report(&f);
        assert!(text.starts_with("FAIL seed 42:\n  [+01:00.000] invariant violated"));
        assert!(text.contains("  replay: tusk sim explore --seeds 1 --start 42"));
        // Stripping the indentation gives back the scenario file.
        let yaml: String = text
            .lines()
            .skip_while(|l| !l.contains("shrunk scenario"))
            .skip(1)
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
            .collect();
        assert_eq!(yaml, f.scenario_yaml);
    }
}
