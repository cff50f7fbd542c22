//! How an agent is started (DESIGN §3): its program resolved once, its argv with the
//! placeholders filled in, and the protocol's environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::attempt::Attempt;
use super::child::Child;
use super::sandbox::{Grants, Support};
use crate::config::{Agent, Config, Run};
use crate::journal::{Reason, Sandbox, TaskInfo};
use crate::sys::spawn::{Environment, Output, Spawn};
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
    /// The daemon's environment, which every agent's starts from.
    env: Environment,
    /// How each agent is confined.
    modes: HashMap<String, Sandbox>,
    /// What every sandbox's rules name; `None` when no agent is confined.
    grants: Option<Grants>,
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
        let support = Support::probe();
        let modes = cfg
            .agents
            .values()
            .map(|a| Ok((a.name.clone(), support.mode_of(a)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let confined = cfg.agents.values().filter(|a| modes[&a.name].confined());
        confined
            .clone()
            .for_each(super::sandbox::make_sandbox_writes);
        let grants = match confined.count() {
            0 => None,
            _ => Some(Grants::open()?),
        };
        Ok(Launcher {
            baton_bin,
            agent_path,
            programs,
            dev_null,
            env: Environment::inherited(),
            modes,
            grants,
        })
    }

    /// How `agent` runs: confined or not.
    pub(crate) fn mode(&self, agent: &Agent) -> Sandbox {
        self.modes.get(&agent.name).copied().unwrap_or_default()
    }

    /// The absolute path to start `program` by: relative to the root if it holds a
    /// `/`, else found on the agents' `PATH`. The spawner never searches a `PATH`
    /// itself, and refuses a bare name that is left (`NotFound`).
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

    /// The program `agent` runs for `task`, as it is started.
    fn program_of(&self, ws: &Workspace, agent: &Agent, task: &TaskInfo, out: &Path) -> PathBuf {
        match &agent.run {
            Run::Shell(_) => self.program(&ws.root, "sh"),
            Run::Argv(argv) => self.program(&ws.root, &substitute(&argv[0], task, out)),
        }
    }

    /// Why `agent`'s program could not be started for `task`, said as a person needs to
    /// hear it: what is wrong with which file, and what to do.
    pub(crate) fn explain(
        &self,
        ws: &Workspace,
        agent: &Agent,
        task: &TaskInfo,
        out: &Path,
        error: &std::io::Error,
    ) -> String {
        let path = self.program_of(ws, agent, task, out);
        let shown = path
            .strip_prefix(&ws.root)
            .unwrap_or(&path)
            .display()
            .to_string();
        explain_start_failure(&path, &shown, error)
    }

    /// How `agent` is started on `task` in `attempt`: in the workspace root, in a
    /// process group of its own, stdin from /dev/null, stdout and stderr to pipes (the
    /// runner copies them into the attempt's logs), `TMPDIR` its own, and confined by
    /// the sandbox when [`Launcher::mode`] says so.
    pub(crate) fn command(
        &self,
        ws: &Workspace,
        agent: &Agent,
        task: &TaskInfo,
        attempt: &Attempt,
    ) -> Result<Prepared> {
        let (program, args) = match &agent.run {
            Run::Shell(script) => (
                self.program(&ws.root, "sh"),
                vec!["-c".into(), script.into()],
            ),
            Run::Argv(argv) => (
                self.program_of(ws, agent, task, &attempt.out),
                argv[1..]
                    .iter()
                    .map(|a| substitute(a, task, &attempt.out).into())
                    .collect(),
            ),
        };
        let join = task.reason == Reason::Join;
        let mut env = self.env.clone();
        env.set("BATON_WORKSPACE", &ws.root);
        env.set("BATON_INPUT", task.input.as_str());
        env.set("BATON_OUT", &attempt.out);
        env.set("BATON_TASK", task.id.as_str());
        env.set(
            "BATON_PARENT",
            task.parent.as_ref().map_or("", |p| p.as_str()),
        );
        env.set("BATON_DEPTH", task.depth.to_string());
        env.set("BATON_AGENT", &task.agent);
        env.set("BATON_ATTEMPT", attempt.number.to_string());
        env.set("BATON_JOIN", if join { "1" } else { "0" });
        env.set("BATON_TASK_FILE", &attempt.task_file);
        env.set("BATON_FEEDBACK", feedback_of(ws, task));
        env.set(
            "BATON_DEADLINE",
            task.deadline.as_deref().unwrap_or_default(),
        );
        env.set("BATON_BIN", &self.baton_bin);
        env.set("BATON_SANDBOX", self.mode(agent).as_str());
        env.set("TMPDIR", &attempt.tmp);
        env.set("PATH", &self.agent_path);
        let confine = match (self.mode(agent).confined(), &self.grants) {
            (true, Some(grants)) => Some(grants.ruleset(agent, &attempt.dir, ws)?),
            _ => None,
        };
        Ok(Prepared {
            spawn: Spawn {
                program,
                args,
                cwd: ws.root.clone(),
                env,
                stdin: self.stdin()?,
                stdout: Output::Pipe,
                stderr: Output::Pipe,
                confine: None,
            },
            confine,
        })
    }

    fn stdin(&self) -> Result<std::os::fd::OwnedFd> {
        Ok(self
            .dev_null
            .try_clone()
            .context("duplicating /dev/null")?
            .into())
    }
}

/// An agent's or check's command, ready to start.
pub(crate) struct Prepared {
    spawn: Spawn,
    /// The sandbox it starts in, if confined.
    confine: Option<landlock::RulesetCreated>,
}

impl Prepared {
    /// Sets a variable of its environment.
    pub(crate) fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) {
        self.spawn.env.set(key, value);
    }

    /// Starts it, confining it first when it is to be confined.
    pub(crate) fn spawn(self) -> std::io::Result<Child> {
        let Prepared { mut spawn, confine } = self;
        if let Some(ruleset) = confine {
            let fd: Option<std::os::fd::OwnedFd> = ruleset.into();
            spawn.confine = Some(fd.ok_or_else(|| {
                std::io::Error::other("the kernel made no Landlock ruleset to confine it with")
            })?);
        }
        Child::start(spawn)
    }
}

/// One output check to start: its argv as configured, the staging tree it judges, its
/// private temp folder, and where its output goes.
pub(crate) struct Check<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) out: &'a Path,
    pub(crate) tmp: &'a Path,
    pub(crate) log: File,
}

impl Launcher {
    /// One of `agent`'s output checks (`checks`) for `attempt`: `argv` with the
    /// placeholders filled in, run in the workspace root with `BATON_WORKSPACE`,
    /// `BATON_INPUT`, `BATON_OUT`, `BATON_TASK`, `BATON_AGENT` and its own `TMPDIR`, its
    /// output to `log`; confined to reading (and `tmp`) when the agent is confined.
    pub(crate) fn check(
        &self,
        ws: &Workspace,
        agent: &Agent,
        task: &TaskInfo,
        check: Check,
    ) -> Result<Prepared> {
        let Check {
            argv,
            out,
            tmp,
            log,
        } = check;
        let mut env = self.env.clone();
        env.set("BATON_WORKSPACE", &ws.root);
        env.set("BATON_INPUT", task.input.as_str());
        env.set("BATON_OUT", out);
        env.set("BATON_TASK", task.id.as_str());
        env.set("BATON_AGENT", &task.agent);
        env.set("TMPDIR", tmp);
        env.set("PATH", &self.agent_path);
        let confine = match (self.mode(agent).confined(), &self.grants) {
            (true, Some(grants)) => Some(grants.check_ruleset(agent, tmp)?),
            _ => None,
        };
        let stdout = log.try_clone().context("duplicating the check's log")?;
        Ok(Prepared {
            spawn: Spawn {
                program: self.program(&ws.root, &substitute(&argv[0], task, out)),
                args: argv[1..]
                    .iter()
                    .map(|a| substitute(a, task, out).into())
                    .collect(),
                cwd: ws.root.clone(),
                env,
                stdin: self.stdin()?,
                stdout: Output::To(stdout.into()),
                stderr: Output::To(log.into()),
                confine: None,
            },
            confine,
        })
    }
}

/// An argv element with the placeholders filled in (DESIGN §2). Never a shell string.
fn substitute(arg: &str, task: &TaskInfo, out: &Path) -> String {
    arg.replace("{input}", task.input.as_str())
        .replace("{out}", &out.to_string_lossy())
        .replace("{task}", task.id.as_str())
}

/// What keeps the program at `path` (shown as `shown`) from starting, given the error
/// starting it gave: a missing file, a missing execute bit, a `#!` line naming an
/// interpreter that is not there or ending in a carriage return.
fn explain_start_failure(path: &Path, shown: &str, error: &std::io::Error) -> String {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) if path.is_absolute() => return format!("{shown}: no such file"),
        Err(_) => return format!("`{shown}` is not on the agents' PATH"),
    };
    if !meta.is_file() {
        return format!("{shown} is not a file");
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return format!("{shown} is not executable (run `chmod +x {shown}`)");
    }
    let mut head = [0u8; 256];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    if let Some(line) = first.strip_prefix(b"#!") {
        if line.ends_with(b"\r") {
            return format!(
                "{shown} has Windows line endings (\\r\\n), so its `#!` line names an interpreter \
                 ending in a carriage return; convert it with `sed -i 's/\\r$//' {shown}`"
            );
        }
        let line = String::from_utf8_lossy(line);
        if let Some(interpreter) = line.split_whitespace().next() {
            if !Path::new(interpreter).exists() {
                return format!("{shown}: interpreter {interpreter} not found");
            }
        }
    }
    format!("{shown}: {error}")
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

/// `BATON_FEEDBACK`: the file saying why the task's earlier attempts failed, or empty
/// for a first attempt (or one whose predecessors left no reason).
fn feedback_of(ws: &Workspace, task: &TaskInfo) -> std::ffi::OsString {
    let file = ws.feedback_file(task.id.as_str());
    if file.is_file() {
        file.into_os_string()
    } else {
        std::ffi::OsString::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain_script(body: &[u8], mode: u32) -> String {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.sh");
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = std::io::Error::from(std::io::ErrorKind::NotFound);
        explain_start_failure(&path, "agents/x.sh", &error)
    }

    #[test]
    fn a_start_failure_says_what_is_wrong_with_the_program() {
        assert_eq!(
            explain_script(b"#!/usr/bin/no-such-python\nprint(1)\n", 0o755),
            "agents/x.sh: interpreter /usr/bin/no-such-python not found"
        );
        assert!(
            explain_script(b"#!/bin/sh\r\necho hi\r\n", 0o755)
                .starts_with("agents/x.sh has Windows line endings (\\r\\n)")
        );
        assert_eq!(
            explain_script(b"#!/bin/sh\n", 0o644),
            "agents/x.sh is not executable (run `chmod +x agents/x.sh`)"
        );
        let error = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            explain_start_failure(Path::new("/nowhere/x.sh"), "agents/x.sh", &error),
            "agents/x.sh: no such file"
        );
    }
}
