//! Errors of the FAT engine. "The device failed" (`Io`) is kept apart from "the bytes on
//! the card are wrong" (`Corrupt`) because the user's next step differs: replace the card,
//! or run a file-system check.

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Disk contents are inconsistent: `what` names the structure, field and value found.
    #[error("corrupt file system: {what}")]
    Corrupt { what: String },
    #[error("not found: {path}")]
    NotFound { path: String },
    #[error("already exists: {path}")]
    AlreadyExists { path: String },
    #[error("not a directory: {path}")]
    NotADirectory { path: String },
    #[error("is a directory: {path}")]
    IsADirectory { path: String },
    #[error("directory not empty: {path}")]
    DirectoryNotEmpty { path: String },
    #[error("FAT cannot hold the name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("not enough space: {needed} bytes needed, {available} bytes free")]
    NoSpace { needed: u64, available: u64 },
    #[error("file too large for FAT: a file must be smaller than 4 GiB")]
    FileTooLarge,
    #[error("the directory {path} is full (FAT limit)")]
    DirectoryFull { path: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
            Error::AlreadyExists { .. } => io::Error::new(io::ErrorKind::AlreadyExists, e),
            Error::Corrupt { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            Error::InvalidName { .. } => io::Error::new(io::ErrorKind::InvalidInput, e),
            Error::NoSpace { .. } => io::Error::new(io::ErrorKind::StorageFull, e),
            Error::FileTooLarge => io::Error::new(io::ErrorKind::FileTooLarge, e),
            other => io::Error::other(other),
        }
    }
}
