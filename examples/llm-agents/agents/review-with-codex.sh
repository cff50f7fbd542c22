#!/bin/sh
# Codex non-interactively: the draft on stdin (appended to the prompt), the review
# written by `-o` (--output-last-message) straight into the staging tree. A read-only
# sandbox: the review is its only output.
set -eu
name=$(basename "$BATON_INPUT")
mkdir -p "$BATON_OUT/reviews"
codex exec --ephemeral --skip-git-repo-check --sandbox read-only \
    -o "$BATON_OUT/reviews/$name" "$(cat prompts/review.md)" < "$BATON_INPUT"
printf 'summary = "reviewed %s with codex"\n' "$name" > "$BATON_OUT/result.toml"
