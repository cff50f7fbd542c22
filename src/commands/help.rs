//! `baton completions SHELL` and `baton man DIR`: the command line described for shells
//! and for `man`, from the same definition clap parses.

use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::{Cli, Shell};

pub(crate) fn completions(shell: Shell) -> Result<u8> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    clap_complete::generate(shell, &mut Cli::command(), "baton", &mut std::io::stdout());
    Ok(0)
}

/// Writes `baton.1` and a page per subcommand (`baton-run.1`, …) into `dir`.
pub(crate) fn man(dir: &Path) -> Result<u8> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = Cli::command();
    let mut written = Vec::new();
    let mut page = |command: clap::Command, name: String| -> Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(command.name(name.clone())).render(&mut bytes)?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for sub in root.get_subcommands() {
        page(sub.clone(), format!("baton-{}", sub.get_name()))?;
    }
    page(root, "baton".to_string())?;
    println!("wrote {} man pages into {}", written.len(), dir.display());
    Ok(0)
}
