#!/bin/sh
# review → published: reads the draft the review points at, publishes it if approved.
set -eu
name=$(basename "$BATON_INPUT")
draft=$(sed -n 's/^refs = \["\(.*\)"\]$/\1/p' "$BATON_INPUT" | head -n 1)
verdict=$(sed -n 's/^verdict = "\(.*\)"$/\1/p' "$BATON_INPUT" | head -n 1)
if [ "$verdict" != approve ]; then
    printf 'summary = "not published: review says %s"\n' "$verdict" > "$BATON_OUT/result.toml"
    exit 0
fi
mkdir -p "$BATON_OUT/published"
# Drop the front matter: the published article is plain Markdown.
awk '/^\+\+\+$/ { fence++; next } fence != 1' "$draft" > "$BATON_OUT/published/$name"
printf 'summary = "published %s"\n' "$name" > "$BATON_OUT/result.toml"
