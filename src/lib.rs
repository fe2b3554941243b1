//! sdexport: move a phone's photos and contacts onto an SD card without losing anything,
//! and prove later, on any laptop, that the card holds them.
//!
//! The library never prints; the binary (`src/main.rs`) decides how to show results.

pub mod contacts;
pub mod error;
pub mod format;
pub mod manifest;
pub mod media;
pub mod probe;
pub mod storage;
pub mod transfer;
pub mod verify;
