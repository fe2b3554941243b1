//! The sdexport binary: parse arguments, run one command, map the outcome to an exit code.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fixed_mmap_threshold();
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

/// Keep glibc's mmap threshold at its default (128 KiB) instead of letting it rise after the
/// first large buffer is freed. Otherwise the large tables of a run (the scan, the plan, the
/// manifest: megabytes each for 100,000 photos) are carved from the heap once the card's
/// check has freed its own, and the holes they leave are never given back: about 10 MB of
/// the peak of such a run. With a fixed threshold each lives in its own mapping, grows
/// without a copy and is returned when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}
