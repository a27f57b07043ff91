//! `brisk man`: the manual pages (roff), generated from the same definition the command line
//! is parsed with.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write one page per command into this directory (brisk.1, brisk-put.1, ...) instead
    /// of printing brisk(1) to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(a: ManArgs) -> Result<Exit> {
    let cmd = crate::Cli::command();
    match a.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing the pages into {}", dir.display()))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)?;
            out.flush()?;
        }
    }
    Ok(Exit::Success)
}
