#!/bin/sh
# An example agent. baton runs it in the workspace root with:
#   BATON_INPUT  the artifact that started it (workspace-relative), e.g. briefs/launch.md
#   BATON_OUT    its staging tree: write outputs there, mirroring workspace paths
#   BATON_TASK   this task's id (see `baton logs $BATON_TASK`)
# Outputs are committed into the workspace only if this script exits 0.
set -eu

name=$(basename "$BATON_INPUT")
mkdir -p "$BATON_OUT/drafts"
{
    printf '# Draft: %s\n\n' "$(sed -n 's/^# *//p' "$BATON_INPUT" | head -n 1)"
    printf 'Written by %s in task %s from %s.\n\n' "$BATON_AGENT" "$BATON_TASK" "$BATON_INPUT"
    sed -e '/^# /d' "$BATON_INPUT"
} > "$BATON_OUT/drafts/$name"

printf 'summary = "drafted %s"\n' "$name" > "$BATON_OUT/result.toml"
