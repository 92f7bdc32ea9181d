//! `tusk`: see `tusk --help`.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use tusk_operator::cli::{Cli, Command};
use tusk_operator::error::CliError;
use tusk_operator::{commands, logging, run, sim, up};

fn main() -> ExitCode {
    // No backtraces for users: a panic is reported as one line and exit code 2.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error{at}: {}; please report this as a tusk bug",
            tusk_operator::error::one_line(&msg)
        );
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::from(2),
    }
}

fn print(out: &str) -> Result<ExitCode, CliError> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`tusk render | head`) is not an error worth reporting.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start the async runtime: {e}")))
}

fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Crds => print(&commands::crds()?),
        Command::Validate(a) => {
            let summary = commands::validate(&a.file)?;
            print(&format!("{summary}\n"))
        }
        Command::Render(a) => print(&commands::render(&a.file.file, a.seed)?),
        Command::Run(a) => {
            logging::init(cli.log_format, &cli.log_level);
            runtime()?.block_on(run::run(a))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Up(a) => {
            logging::init(cli.log_format, &cli.log_level);
            runtime()?.block_on(up::up(a))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(c) => sim::sim(c),
    }
}
