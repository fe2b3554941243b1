//! How results reach the user: stdout for data, stderr for messages (prefixed `sdexport:`),
//! colours only when allowed, progress bars only on a terminal.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{ColorChoice, GlobalArgs};

/// The documented exit codes (see `sdexport --help` and docs/EXIT_CODES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything was done.
    Done = 0,
    /// Finished, but some files were not done or problems were found; nothing was lost.
    Incomplete = 1,
    /// Could not run.
    Failed = 2,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

pub struct Output {
    pub quiet: bool,
    pub verbose: bool,
    color: bool,
    progress: bool,
}

impl Output {
    pub fn new(g: &GlobalArgs) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stderr().is_terminal() && !no_color_env && !dumb,
        };
        Output {
            quiet: g.quiet,
            verbose: g.verbose,
            color,
            progress: !g.no_progress && !g.quiet && std::io::stderr().is_terminal(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn error(&self, msg: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            self.paint("1;31", "sdexport: error:"),
            escape(msg)
        );
    }

    pub fn warn(&self, msg: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            self.paint("1;33", "sdexport: warning:"),
            escape(msg)
        );
    }

    /// A line of the human summary (stderr would hide it from pipes; the summary is the
    /// command's result, so it goes to stdout unless `--json` takes stdout).
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            // Not println!: a closed pipe (`sdexport … | head`) must not panic; the exit
            // code still tells what happened.
            let _ = writeln!(std::io::stdout().lock(), "{msg}");
        }
    }

    pub fn heading(&self, msg: &str) -> String {
        self.paint("1", msg)
    }

    pub fn good(&self, msg: &str) -> String {
        self.paint("32", msg)
    }

    pub fn bad(&self, msg: &str) -> String {
        self.paint("31", msg)
    }

    /// A progress bar in bytes, drawn on stderr only when it is a terminal.
    pub fn bytes_bar(&self, total: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    }
}

/// Names come from phones and possibly corrupt cards: never let them drive the terminal.
pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                c.escape_unicode().to_string()
            }
            c => c.to_string(),
        })
        .collect()
}

/// Print one JSON document on stdout (a closed pipe becomes an `io::Error`, which `main`
/// treats as a clean exit, never a panic).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut w = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut w, value)?;
    writeln!(w)?;
    Ok(())
}

pub use sdexport::format::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape("é😀"), "é😀");
    }
    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
