//! How an agent is started (DESIGN §3): its program resolved once, its argv with the
//! placeholders filled in, and the protocol's environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tokio::process::Command;

use super::attempt::Attempt;
use crate::config::{Agent, Config, Run};
use crate::journal::{Reason, TaskInfo};
use crate::workspace::Workspace;

/// What every agent's start shares, built once at the daemon's start.
pub(crate) struct Launcher {
    /// The running `baton` binary, for agents that call `baton delegate` and friends.
    baton_bin: PathBuf,
    /// `PATH` for agents: the baton binary's folder first.
    agent_path: OsString,
    /// Bare program names found on `agent_path`.
    programs: HashMap<String, PathBuf>,
    /// Every agent's stdin, opened once.
    dev_null: File,
}

impl Launcher {
    pub(crate) fn new(cfg: &Config) -> Result<Launcher> {
        let baton_bin = std::env::current_exe().context("locating the baton binary")?;
        let mut agent_path = OsString::new();
        if let Some(dir) = baton_bin.parent() {
            agent_path.push(dir);
            agent_path.push(":");
        }
        agent_path.push(
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        );
        let bare = cfg.agents.values().map(|a| match &a.run {
            Run::Argv(argv) => argv[0].as_str(),
            Run::Shell(_) => "sh",
        });
        let programs = bare
            .filter(|p| !p.contains('/') && !p.contains('{'))
            .filter_map(|p| Some((p.to_string(), find_on_path(p, &agent_path)?)))
            .collect();
        let dev_null = File::open("/dev/null").context("opening /dev/null")?;
        Ok(Launcher {
            baton_bin,
            agent_path,
            programs,
            dev_null,
        })
    }

    /// The absolute path to start `program` by: relative to the root if it holds a
    /// `/`, else found on the agents' `PATH`. Resolving it here, not in the child, lets
    /// std start the agent with posix_spawn (vfork) instead of forking the daemon,
    /// which it must do when the child's `PATH` differs from ours.
    fn program(&self, root: &Path, program: &str) -> PathBuf {
        if program.contains('/') {
            return root.join(program);
        }
        self.programs
            .get(program)
            .cloned()
            .or_else(|| find_on_path(program, &self.agent_path))
            .unwrap_or_else(|| PathBuf::from(program))
    }

    /// The command that runs `agent` on `task` in `attempt`: in the workspace root, in a
    /// process group of its own, stdin from /dev/null, output to the attempt's logs.
    pub(crate) fn command(
        &self,
        ws: &Workspace,
        agent: &Agent,
        task: &TaskInfo,
        attempt: Attempt,
    ) -> Result<Command> {
        let mut command = match &agent.run {
            Run::Shell(script) => {
                let mut c = Command::new(self.program(&ws.root, "sh"));
                c.arg("-c").arg(script);
                c
            }
            Run::Argv(argv) => {
                let subst = |arg: &str| {
                    arg.replace("{input}", task.input.as_str())
                        .replace("{out}", &attempt.out.to_string_lossy())
                        .replace("{task}", task.id.as_str())
                };
                let mut c = Command::new(self.program(&ws.root, &subst(&argv[0])));
                c.args(argv[1..].iter().map(|a| subst(a)));
                c
            }
        };
        let join = task.reason == Reason::Join;
        command
            .current_dir(&ws.root)
            .process_group(0)
            .stdin(self.dev_null.try_clone().context("duplicating /dev/null")?)
            .stdout(attempt.stdout)
            .stderr(attempt.stderr)
            .env("BATON_WORKSPACE", &ws.root)
            .env("BATON_INPUT", task.input.as_str())
            .env("BATON_OUT", &attempt.out)
            .env("BATON_TASK", task.id.as_str())
            .env(
                "BATON_PARENT",
                task.parent.as_ref().map_or("", |p| p.as_str()),
            )
            .env("BATON_DEPTH", task.depth.to_string())
            .env("BATON_AGENT", &task.agent)
            .env("BATON_ATTEMPT", attempt.number.to_string())
            .env("BATON_JOIN", if join { "1" } else { "0" })
            .env("BATON_TASK_FILE", &attempt.task_file)
            .env("BATON_BIN", &self.baton_bin)
            .env("PATH", &self.agent_path);
        Ok(command)
    }
}

/// The first executable file named `program` in the folders of `path`.
fn find_on_path(program: &str, path: &OsString) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
