#!/bin/sh
# Reviews the draft the delegated brief points at (refs): approves three paragraphs,
# or asks for more. A brief that says "never satisfied" is never approved, to show
# max_depth ending the loop.
set -eu
draft=$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT" | head -n 1)
name=$(basename "$draft")
paragraphs=$(grep -c '^Paragraph ' "$draft" || true)
if [ "$paragraphs" -ge 3 ] && ! grep -qi 'never satisfied' "$draft"; then
    verdict=approve
else
    verdict=revise
fi
mkdir -p "$BATON_OUT/reviews"
{
    printf '+++\nrefs = ["%s"]\nverdict = "%s"\n+++\n' "$draft" "$verdict"
    printf '# Review of %s\n\n%s paragraphs: %s.\n' "$draft" "$paragraphs" "$verdict"
} > "$BATON_OUT/reviews/$name"
printf 'summary = "%s (%s paragraphs)"\n' "$verdict" "$paragraphs" > "$BATON_OUT/result.toml"
