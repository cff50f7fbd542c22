#!/bin/sh
# One script for every specialist: BATON_AGENT says which one is answering. The routing
# note points at the request (refs); the answer points back at it too.
set -eu
request=$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT" | head -n 1)
name=$(basename "$request")
title=$(sed -n 's/^# //p' "$request" | head -n 1)
mkdir -p "$BATON_OUT/answers"
{
    printf '+++\nrefs = ["%s"]\nanswered_by = "%s"\n+++\n' "$request" "$BATON_AGENT"
    printf '# Re: %s\n\nThe %s team has your request and will reply within a day.\n' "$title" "$BATON_AGENT"
} > "$BATON_OUT/answers/$name"
