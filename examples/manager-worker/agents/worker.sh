#!/bin/sh
# A delegated brief points at its part by path (refs); the worker writes the section.
set -eu
part=$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT" | head -n 1)
name=$(basename "$part" .md)
topic=$(sed -n '3p' "$part")
mkdir -p "$BATON_OUT/sections"
{
    printf '## %s\n\n' "$topic"
    printf 'This section covers %s, written by worker task %s.\n' "$topic" "$BATON_TASK"
} > "$BATON_OUT/sections/$name.md"
printf 'summary = "wrote sections/%s.md"\n' "$name" > "$BATON_OUT/result.toml"
