#!/bin/sh
# draft → review: a verdict, handing the draft on by path (refs), never by content.
set -eu
name=$(basename "$BATON_INPUT")
words=$(wc -w < "$BATON_INPUT")
sections=$(grep -c '^## ' "$BATON_INPUT" || true)
if [ "$sections" -ge 1 ] && [ "$words" -ge 20 ]; then verdict=approve; else verdict=revise; fi
mkdir -p "$BATON_OUT/reviews"
{
    printf '+++\nrefs = ["%s"]\nverdict = "%s"\n+++\n' "$BATON_INPUT" "$verdict"
    printf '# Review of %s\n\n%s words, %s sections: %s.\n' "$BATON_INPUT" "$words" "$sections" "$verdict"
} > "$BATON_OUT/reviews/$name"
printf 'summary = "%s (%s words)"\n' "$verdict" "$words" > "$BATON_OUT/result.toml"
