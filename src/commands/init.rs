//! `baton init [DIR]`: a new workspace from `workspace-template/`, embedded in the
//! binary.

use std::path::Path;

use anyhow::Result;

use super::common::{Embedded, write_workspace};

const TEMPLATE: &[Embedded] = &[
    (
        "baton.toml",
        include_bytes!("../../workspace-template/baton.toml"),
        false,
    ),
    (
        "agents/writer.sh",
        include_bytes!("../../workspace-template/agents/writer.sh"),
        true,
    ),
    (
        ".gitignore",
        include_bytes!("../../workspace-template/.gitignore"),
        false,
    ),
];

pub(crate) fn run(dir: Option<&Path>) -> Result<u8> {
    let dir = dir.unwrap_or(Path::new("."));
    write_workspace(dir, TEMPLATE)?;
    let shown = dir.display();
    println!("created a baton workspace in {shown}");
    println!("  next: `baton -w {shown} run` in one terminal, then");
    println!("        `echo '# Hello' > hello.md && baton -w {shown} drop hello.md` in another");
    Ok(0)
}
