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
        SimCommand::Explore { .. } => Err(CliError::Unavailable(
            "tusk sim explore is not available in this build: tusk-scenarios does not export an explorer yet; run scenarios one by one with `tusk sim run FILE --seed N`".into(),
        )),
    }
}

fn run(file: &std::path::Path, seed: u64) -> Result<ExitCode, CliError> {
    let outcome =
        tusk_scenarios::run_file(file, seed).map_err(|e| CliError::Other(e.to_string()))?;
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
