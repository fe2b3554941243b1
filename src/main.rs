//! The sdexport binary: parse arguments, run one command, map the outcome to an exit code.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let out = output::Output::new(&cli.global);
    match commands::run(cli, &out) {
        Ok(code) => code.into(),
        Err(err) => {
            // A closed pipe (`sdexport ls card.img | head`) is not an error.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            out.error(&format!("{err:#}"));
            output::Status::Failed.into()
        }
    }
}
