use anyhow::Result;

use crate::output::{Output, Status};

pub fn run(_a: crate::cli::BackupArgs, _out: &Output) -> Result<Status> {
    anyhow::bail!("the backup command is being built")
}
