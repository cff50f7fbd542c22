//! Configs and agent scripts several tests share, and copies of the examples.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::harness::*;

/// A one-agent config: `copier` copies each brief into drafts/.
pub(crate) const COPIER: &str = r#"
[agents.copier]
on = ["briefs/**/*.md"]
run = ["agents/copier.sh"]
writes = ["drafts"]
concurrency = 2
retries = 0
"#;

pub(crate) const COPY_SCRIPT: &str = r#"set -eu
rel=${BATON_INPUT#briefs/}
mkdir -p "$(dirname "$BATON_OUT/drafts/$rel")"
cp "$BATON_INPUT" "$BATON_OUT/drafts/$rel""#;

pub(crate) fn copier() -> TestWorkspace {
    TestWorkspace::new(COPIER).agent("copier", COPY_SCRIPT)
}

/// `gate` fails until the file `open` exists in the workspace root, then writes
/// drafts/a.md; no retries.
pub(crate) fn gate() -> TestWorkspace {
    TestWorkspace::new(
        r#"
[agents.gate]
on = ["briefs/*.md"]
run = ["agents/gate.sh"]
writes = ["drafts"]
retries = 0
"#,
    )
    .agent(
        "gate",
        r#"test -f "$BATON_WORKSPACE/open" || exit 1; mkdir -p "$BATON_OUT/drafts"; echo ok > "$BATON_OUT/drafts/a.md""#,
    )
}

/// A copy of `examples/NAME` in a temporary folder.
pub(crate) fn example(name: &str) -> TestWorkspace {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    TestWorkspace::copy_of(&src)
}

/// Drops every file of `folder` (a folder of the workspace) with `baton drop`.
pub(crate) fn drop_all(ws: &TestWorkspace, folder: &str) {
    let mut files = walk(&ws.path(folder));
    files.sort();
    for f in files {
        let out = ws.baton(&["drop", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

pub(crate) fn queued_with_reason(ws: &TestWorkspace, reason: &str) -> Vec<Value> {
    ws.records("task.queued")
        .into_iter()
        .filter(|r| r["reason"] == reason)
        .collect()
}

pub(crate) fn rejections(ws: &TestWorkspace) -> Vec<String> {
    ws.records("rejected")
        .iter()
        .map(|r| {
            format!(
                "{}: {}",
                r["path"].as_str().unwrap(),
                r["error"].as_str().unwrap()
            )
        })
        .collect()
}

/// A manager that delegates `parts` parts to `worker` (each `parts/pN.md`) and, in its
/// join run, keeps task.json as `join-N.json` in `$MARKS`.
pub(crate) fn manager_config(workers: &str, extra: &str) -> String {
    format!(
        r#"
[workspace]
stages = ["briefs", "parts", "sections"]
{extra}

[agents.manager]
on = ["briefs/*.md"]
run = ["agents/manager.sh"]
writes = ["parts"]
retries = 0

[agents.worker]
on = []
run = ["agents/worker.sh"]
writes = ["sections"]
retries = 0
{workers}
"#
    )
}

pub(crate) fn manager_script(parts: u32, to: &str) -> String {
    format!(
        r#"set -eu
if [ "$BATON_JOIN" = 1 ]; then
    n=$(ls "$MARKS" | grep -c '^join-' || true)
    # Copied, then renamed: the test reads these files while joins may still run.
    cp "$BATON_TASK_FILE" "$MARKS/.join.$BATON_TASK"
    mv "$MARKS/.join.$BATON_TASK" "$MARKS/join-$((n + 1)).json"
    exit 0
fi
mkdir -p "$BATON_OUT/parts"
for i in $(seq 1 {parts}); do
    echo "part $i" > "$BATON_OUT/parts/p$i.md"
    baton delegate --to {to} "parts/p$i.md" --note "Do part $i."
done"#
    )
}

/// Writes sections/<part>.md from the part its brief points at.
pub(crate) const WORKER_SCRIPT: &str = r#"set -eu
part=$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT")
mkdir -p "$BATON_OUT/sections"
cp "$part" "$BATON_OUT/sections/$(basename "$part")"
printf 'summary = "did %s"\n' "$part" > "$BATON_OUT/result.toml""#;

pub(crate) fn join_files(ws: &TestWorkspace) -> Vec<Value> {
    let mut names: Vec<String> = fs::read_dir(&ws.marks)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("join-"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| serde_json::from_str(&ws.mark(n)).unwrap())
        .collect()
}
