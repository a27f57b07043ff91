//! `brisk completions SHELL`: a completion script for the shell, generated from the same
//! definition the command line is parsed with.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(a: CompletionsArgs) -> Result<Exit> {
    // Generated into memory first: clap_complete panics on a failed write, and stdout may
    // be a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut crate::Cli::command(), "brisk", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(Exit::Success)
}
