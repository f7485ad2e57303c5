//! `tickfeed completions SHELL` and `tickfeed man`: shell completion
//! scripts (clap_complete) and the man page (clap_mangen, roff), both
//! generated from the command line the binary parses, so they list every
//! option and its environment variable (installing them:
//! docs/configuration.md).

use super::layers::command;
use clap::Args;
use std::io::Write;

/// Which shell to complete for.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut command(), "tickfeed", out);
}

/// Writes `tickfeed(1)` as roff: the top level, whose options are
/// `serve`'s, with its subcommands listed.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command()).render(out)
}
