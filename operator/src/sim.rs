//! `tusk sim run` and `tusk sim explore`, delegating to tusk-scenarios.
//! INTEGRATION POINT: `tusk_scenarios::run_file(path, seed)` and `tusk_scenarios::explore(...)`.

use crate::cli::SimCommand;
use crate::error::CliError;
use std::process::ExitCode;

pub fn sim(_cmd: SimCommand) -> Result<ExitCode, CliError> {
    Err(CliError::Unavailable(
        "tusk sim needs the simulated world (tusk-scenarios), which this build does not have yet"
            .into(),
    ))
}
