//! One file per command; each `run` resolves its arguments, calls the library, and renders
//! the result. Nothing here decides what is safe: that lives in the library.

mod backup;
mod cards;
mod contacts;
mod format;
mod photos;
mod probe;
mod verify;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::output::{Output, Status};

/// Open a card, phone or source (`role` names it in the error), printing the warnings opening
/// found (a mounted device read raw, a repaired card, …).
pub fn open(
    path: &std::path::Path,
    partition: Option<u32>,
    write: bool,
    role: &str,
    out: &Output,
) -> Result<sdexport::storage::open::Card> {
    use anyhow::Context;
    let card = sdexport::storage::open::open_card(
        path,
        sdexport::storage::open::CardOptions { partition, write },
    )
    .with_context(|| format!("cannot open the {role} {}", path.display()))?;
    for w in &card.warnings {
        out.warn(w);
    }
    Ok(card)
}

pub fn run(cli: Cli, out: &Output) -> Result<Status> {
    match cli.command {
        Command::Format(a) => format::run(a, out),
        Command::Info(a) => cards::info(a, out),
        Command::Ls(a) => cards::ls(a, out),
        Command::Get(a) => cards::get(a, out),
        Command::Photos(a) => photos::run(a, out),
        Command::Contacts(a) => contacts::run(a, out),
        Command::Backup(a) => backup::run(a, out),
        Command::Verify(a) => verify::run(a, out),
        Command::Probe(a) => probe::run(a, out),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "sdexport",
                &mut std::io::stdout(),
            );
            Ok(Status::Done)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(Status::Done)
        }
    }
}
