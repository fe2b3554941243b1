//! The library's top-level error.
//!
//! Rules (kept short on purpose):
//! * Each module that touches the outside world has its own typed error (`StorageError`,
//!   the FAT engine's `Error`, `LayoutError`); this enum gathers them for the commands.
//! * Every message says what went wrong, where (path, partition, offset) and, where there
//!   is one, what to do. Context is attached where the step starts, not re-wrapped.
//! * "The user asked for something impossible" (`Refused`) is kept apart from "something
//!   failed" so the binary can pick the exit code and the wording.

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The request cannot be carried out as asked; nothing was changed.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
