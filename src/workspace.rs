//! The workspace root and its well-known paths, and [`RelPath`]: a workspace-relative
//! path that is normalised and provably inside the workspace.
//!
//! Every path that crosses a boundary (the journal, the CLI, an agent's outputs) is a
//! `RelPath`, so "is this inside the workspace?" is answered once, here.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The name of the config file that marks a workspace root.
pub(crate) const CONFIG_FILE: &str = "baton.toml";

/// A workspace on disk: the root folder and the paths of its state under `.baton/`.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// Absolute, canonical root, so every derived path is absolute too.
    pub(crate) root: PathBuf,
}

impl Workspace {
    /// Uses `dir` as the root (it must hold `baton.toml`), or, without one, the nearest
    /// folder upward from the current directory that holds it.
    pub(crate) fn locate(dir: Option<&Path>) -> Result<Workspace> {
        match dir {
            Some(dir) => {
                let root = dir
                    .canonicalize()
                    .with_context(|| format!("workspace {}: no such folder", dir.display()))?;
                if !root.join(CONFIG_FILE).is_file() {
                    bail!(
                        "{} holds no {CONFIG_FILE}: not a baton workspace (create one with `baton init {}`)",
                        dir.display(),
                        dir.display()
                    );
                }
                Ok(Workspace { root })
            }
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                let mut at = cwd.as_path();
                loop {
                    if at.join(CONFIG_FILE).is_file() {
                        return Ok(Workspace {
                            root: at.to_path_buf(),
                        });
                    }
                    match at.parent() {
                        Some(parent) => at = parent,
                        None => bail!(
                            "no {CONFIG_FILE} in {} or any folder above it: pass -w DIR or create a workspace with `baton init`",
                            cwd.display()
                        ),
                    }
                }
            }
        }
    }

    /// A workspace rooted at `root` without checking for `baton.toml` (for `init`).
    pub(crate) fn at(root: PathBuf) -> Workspace {
        Workspace { root }
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.root.join(".baton")
    }
    pub(crate) fn journal_dir(&self) -> PathBuf {
        self.state_dir().join("journal")
    }
    pub(crate) fn runs_dir(&self) -> PathBuf {
        self.state_dir().join("runs")
    }
    pub(crate) fn objects_dir(&self) -> PathBuf {
        self.state_dir().join("objects")
    }
    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.state_dir().join("locks")
    }
    /// Scratch space on the workspace's file system, so a rename out of it is atomic.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.state_dir().join("tmp")
    }
    /// Touched by other processes after they append to the journal (`drop`, `retry`),
    /// so a running daemon reads it at once. The daemon watches only this folder, so its
    /// own appends never wake it.
    pub(crate) fn doorbell_dir(&self) -> PathBuf {
        self.state_dir().join("doorbell")
    }
    pub(crate) fn daemon_lock_path(&self) -> PathBuf {
        self.state_dir().join("daemon.lock")
    }
    /// The folder of one attempt of one task: task.json, out/, stdout.log, stderr.log.
    pub(crate) fn attempt_dir(&self, task: &str, attempt: u32) -> PathBuf {
        self.runs_dir().join(task).join(attempt.to_string())
    }

    /// Why the task's earlier attempts failed, for the next one (`BATON_FEEDBACK`).
    pub(crate) fn feedback_file(&self, task: &str) -> PathBuf {
        self.runs_dir().join(task).join("feedback.md")
    }

    /// The absolute path of a workspace-relative one.
    pub(crate) fn abs(&self, rel: &RelPath) -> PathBuf {
        self.root.join(rel.as_str())
    }

    /// Creates the `.baton/` folders that every command may write into.
    pub(crate) fn ensure_state_dirs(&self) -> Result<()> {
        for dir in [
            self.journal_dir(),
            self.runs_dir(),
            self.objects_dir(),
            self.locks_dir(),
            self.tmp_dir(),
            self.doorbell_dir(),
        ] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    /// Turns a path given on the command line (absolute, or relative to the current
    /// directory) into a workspace-relative path, refusing anything outside.
    pub(crate) fn rel_from_user(&self, path: &Path) -> Result<RelPath> {
        // Relative paths are taken from the current folder when it is inside the
        // workspace, else from the workspace root (`-w DIR who drafts/a.md`).
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            let cwd = std::env::current_dir()?;
            let cwd = cwd.canonicalize().unwrap_or(cwd);
            if cwd.starts_with(&self.root) {
                cwd.join(path)
            } else {
                self.root.join(path)
            }
        };
        let abs = lexical_normalise(&abs);
        // The root is canonical; the user's path may reach it through a symlinked
        // prefix (e.g. /tmp -> /private/tmp), so canonicalise its existing parent.
        let abs = match (abs.parent(), abs.file_name()) {
            (Some(parent), Some(name)) if parent.exists() => parent
                .canonicalize()
                .map(|p| p.join(name))
                .unwrap_or(abs.clone()),
            _ => abs,
        };
        let rel = abs.strip_prefix(&self.root).map_err(|_| {
            anyhow::anyhow!(
                "{} is outside the workspace {}",
                path.display(),
                self.root.display()
            )
        })?;
        RelPath::from_path(rel)
    }
}

/// Walks `dir` without following links or entering hidden folders (`.git`, `.baton`):
/// the one way every part of baton lists a stage.
pub(crate) fn walk_visible(
    dir: &Path,
) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> + use<> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
}

/// The regular files beneath the folder `rel` (a stage) as workspace paths, in no
/// particular order: what [`walk_visible`] finds, without a stat per file, and built
/// from the names as read (no path parsing), for listings over many files. Names that
/// are no workspace path are left out.
pub(crate) fn visible_files(root: &Path, rel: &str) -> Vec<RelPath> {
    let mut found = Vec::new();
    let mut folders = vec![rel.to_string()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&folder)) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = format!("{folder}/{name}");
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file() {
                if let Ok(rel) = RelPath::new(&path) {
                    found.push(rel);
                }
            }
        }
    }
    found
}

/// Resolves `.` and `..` without touching the file system.
pub(crate) fn lexical_normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A normalised workspace-relative path: `/`-separated, no empty, `.` or `..`
/// components, not absolute, valid UTF-8. Constructing one is the proof that the path
/// stays inside the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub(crate) struct RelPath(String);

impl RelPath {
    pub(crate) fn new(s: &str) -> Result<RelPath> {
        let s = s.strip_prefix("./").unwrap_or(s);
        if s.is_empty() {
            bail!("empty path");
        }
        if s.starts_with('/') {
            bail!("{s:?} is absolute; a workspace-relative path was expected");
        }
        if s.contains('\\') || s.contains('\0') {
            bail!("{s:?} contains a backslash or NUL");
        }
        if s.chars().any(char::is_control) {
            // A newline in a name would split one log line or record into two.
            bail!("{s:?} contains a control character (a newline, tab, escape, …); rename it");
        }
        let mut parts = Vec::new();
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => bail!("{s:?} climbs out with `..`; paths must stay inside the workspace"),
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            bail!("{s:?} names the workspace root, not a file");
        }
        Ok(RelPath(parts.join("/")))
    }

    pub(crate) fn from_path(path: &Path) -> Result<RelPath> {
        let s = path
            .to_str()
            .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
        RelPath::new(s)
    }

    /// A path standing in for `rel`, a name that is no workspace path: invalid UTF-8,
    /// control characters, NUL and backslashes each become U+FFFD. It names the file in
    /// a `rejected` record; [`RelPath::is_on_disk`] finds the file again.
    pub(crate) fn stand_in(rel: &Path) -> Option<RelPath> {
        use std::os::unix::ffi::OsStrExt;
        let lossy = String::from_utf8_lossy(rel.as_os_str().as_bytes());
        let clean: String = lossy
            .chars()
            .map(|c| match c {
                '\\' | '\0' => char::REPLACEMENT_CHARACTER,
                c if c.is_control() => char::REPLACEMENT_CHARACTER,
                c => c,
            })
            .collect();
        RelPath::new(&clean).ok()
    }

    /// Whether a file under `root` is what this path names: itself, or, for a stand-in,
    /// a file in the same folder whose name it stands in for.
    pub(crate) fn is_on_disk(&self, root: &Path) -> bool {
        let abs = root.join(&self.0);
        if std::fs::symlink_metadata(&abs).is_ok() {
            return true;
        }
        if !self.0.contains(char::REPLACEMENT_CHARACTER) {
            return false;
        }
        let Some(dir) = abs.parent() else {
            return false;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let folder = Path::new(self.parent());
        entries
            .flatten()
            .any(|e| RelPath::stand_in(&folder.join(e.file_name())).as_ref() == Some(self))
    }

    /// The path of `name` in this folder, if `name` may be a part of a workspace path:
    /// what [`RelPath::new`] checks, for one name, without parsing the whole path again.
    pub(crate) fn child(&self, name: &std::ffi::OsStr) -> Result<RelPath> {
        match name.to_str() {
            Some(n)
                if !n.is_empty()
                    && n != "."
                    && n != ".."
                    && !n.contains(['/', '\\', '\0'])
                    && !n.chars().any(char::is_control) =>
            {
                Ok(RelPath(format!("{}/{n}", self.0)))
            }
            // The whole path, for the message the full check gives.
            _ => RelPath::from_path(&Path::new(&self.0).join(name)),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The first component: for an artifact, its stage.
    pub(crate) fn first(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    pub(crate) fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The folder holding it, workspace-relative (`drafts/sub/a.md` → `drafts/sub`;
    /// empty for a name at the root).
    pub(crate) fn parent(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(dir, _)| dir)
    }

    /// Whether any component is hidden or the name marks an editor's scratch file:
    /// such files are never artifacts (DESIGN §1).
    /// Whether this path is `scope` or beneath it (`drafts/ch1` holds
    /// `drafts/ch1/a.md`, not `drafts/ch10.md`).
    pub(crate) fn is_within(&self, scope: &str) -> bool {
        self.0 == scope
            || self
                .0
                .strip_prefix(scope)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    pub(crate) fn is_ignored(&self) -> bool {
        let name = self.file_name();
        self.0.split('/').any(|c| c.starts_with('.'))
            || name.ends_with(".tmp")
            || name.ends_with('~')
            || name.ends_with(".swp")
    }
}

impl<'de> serde::Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelPath::new(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(
            RelPath::new("./briefs//a.md").unwrap().as_str(),
            "briefs/a.md"
        );
        assert_eq!(
            RelPath::new("briefs/./a.md").unwrap().as_str(),
            "briefs/a.md"
        );
        assert!(RelPath::new("../etc/passwd").is_err());
        assert!(RelPath::new("briefs/../../x").is_err());
        assert!(RelPath::new("/etc/passwd").is_err());
        assert!(RelPath::new("").is_err());
        assert!(RelPath::new(".").is_err());
        assert!(RelPath::new("briefs/a\nb.md").is_err());
        assert!(RelPath::new("briefs/\x1b[31mred.md").is_err());
    }

    #[test]
    fn a_child_is_what_the_whole_path_would_be() {
        use std::os::unix::ffi::OsStrExt;
        let dir = RelPath::new("briefs/sub").unwrap();
        let names: [&[u8]; 9] = [
            b"a.md",
            b".hidden",
            b"x y",
            b"a\\b",
            b"new\nline",
            b"tab\t",
            b"\xff\xfe",
            b"..a",
            b"\xc3\xa9t\xc3\xa9",
        ];
        for name in names {
            let name = std::ffi::OsStr::from_bytes(name);
            let whole = RelPath::from_path(&Path::new("briefs/sub").join(name));
            let child = dir.child(name);
            assert_eq!(child.is_ok(), whole.is_ok(), "{name:?}");
            if let (Ok(c), Ok(w)) = (child, whole) {
                assert_eq!(c, w);
            }
        }
    }

    proptest::proptest! {
        /// Whatever it is given, a RelPath stays inside: no `..`, no empty or `.`
        /// part, not absolute, no NUL, backslash or control character; and it is its
        /// own normal form.
        #[test]
        fn a_normalised_path_never_leaves_the_workspace(s in "[a-z./\\\\\n\t\x00-\x1f\u{7f}é]{0,24}") {
            if let Ok(p) = RelPath::new(&s) {
                let text = p.as_str();
                proptest::prop_assert!(!text.starts_with('/'));
                proptest::prop_assert!(text.split('/').all(|part| !matches!(part, "" | "." | "..")));
                proptest::prop_assert!(!text.chars().any(|c| c.is_control() || c == '\\'));
                let again = RelPath::new(text).unwrap();
                proptest::prop_assert_eq!(again.as_str(), text);
            }
        }
    }

    #[test]
    fn ignored_names() {
        for p in [
            "briefs/.hidden.md",
            "briefs/.git/x",
            "briefs/a.tmp",
            "briefs/a.md~",
            "briefs/.a.md.swp",
        ] {
            assert!(RelPath::new(p).unwrap().is_ignored(), "{p}");
        }
        assert!(!RelPath::new("briefs/sub/a.md").unwrap().is_ignored());
    }

    #[test]
    fn stage_and_name() {
        let p = RelPath::new("drafts/sub/launch.md").unwrap();
        assert_eq!(p.first(), "drafts");
        assert_eq!(p.file_name(), "launch.md");
        assert_eq!(p.parent(), "drafts/sub");
        assert_eq!(RelPath::new("top.md").unwrap().parent(), "");
    }
}
