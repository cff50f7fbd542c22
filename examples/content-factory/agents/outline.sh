#!/bin/sh
# brief → outline: the title, then one section per bullet of the brief.
set -eu
name=$(basename "$BATON_INPUT")
title=$(sed -n 's/^# *//p' "$BATON_INPUT" | head -n 1)
mkdir -p "$BATON_OUT/outlines"
{
    printf '+++\ntitle = "%s"\nrefs = ["%s"]\n+++\n' "$title" "$BATON_INPUT"
    printf '# %s\n\n' "$title"
    grep '^[-*] ' "$BATON_INPUT" | sed 's/^[-*] */## /'
} > "$BATON_OUT/outlines/$name"
printf 'summary = "outlined %s sections"\n' "$(grep -c '^[-*] ' "$BATON_INPUT")" > "$BATON_OUT/result.toml"
