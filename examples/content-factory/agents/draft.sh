#!/bin/sh
# outline → draft: a paragraph under each section heading.
set -eu
name=$(basename "$BATON_INPUT")
mkdir -p "$BATON_OUT/drafts"
awk -v src="$BATON_INPUT" '
    /^\+\+\+$/ { fence++; print; next }
    fence == 1 && /^refs/ { print "refs = [\"" src "\"]"; next }
    /^## / { print; print ""; topic = substr($0, 4)
             print "This section covers " tolower(topic) ". It explains what changes, who it is for and what to do next."
             print ""; next }
    { print }
' "$BATON_INPUT" > "$BATON_OUT/drafts/$name"
