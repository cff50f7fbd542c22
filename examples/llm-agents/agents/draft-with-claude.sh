#!/bin/sh
# Claude Code in print mode: the brief on stdin, the prompt as the argument, the draft
# on stdout. `--max-turns` bounds the run; `--output-format json` would add the cost.
set -eu
name=$(basename "$BATON_INPUT")
mkdir -p "$BATON_OUT/drafts"
claude -p --max-turns 3 "$(cat prompts/draft.md)" < "$BATON_INPUT" > "$BATON_OUT/drafts/$name"
printf 'summary = "drafted %s with claude"\n' "$name" > "$BATON_OUT/result.toml"
