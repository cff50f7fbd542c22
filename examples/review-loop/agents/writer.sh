#!/bin/sh
# First run: write drafts/<brief>.md (revision 1) and hand it to the editor.
# Join run (BATON_JOIN=1): read the editor's verdict from task.json; stop when it
# approves or the review could not happen (refused), else revise and hand it on again.
set -eu
name=$(basename "$BATON_INPUT" .md)
draft="drafts/$name.md"
mkdir -p "$BATON_OUT/drafts"

if [ "$BATON_JOIN" = 1 ]; then
    verdict=$(grep -o '"summary": *"[^"]*"' "$BATON_TASK_FILE" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
    if grep -q '"status": "rejected"' "$BATON_TASK_FILE"; then
        printf 'summary = "stopped: the review was refused (max_depth)"\n' > "$BATON_OUT/result.toml"
        exit 0
    fi
    case "$verdict" in
    approve*)
        printf 'summary = "approved at revision %s"\n' "$(sed -n 's/^revision = //p' "$draft")" > "$BATON_OUT/result.toml"
        exit 0
        ;;
    esac
    revision=$(( $(sed -n 's/^revision = //p' "$draft") + 1 ))
else
    revision=1
fi

{
    printf '+++\nrevision = %s\n+++\n' "$revision"
    printf '# %s\n\n' "$(sed -n 's/^# //p' "$BATON_INPUT" | head -n 1)"
    # Each revision adds a paragraph; the editor wants three.
    i=1
    while [ "$i" -le "$revision" ]; do
        printf 'Paragraph %s of the draft, answering the brief.\n\n' "$i"
        i=$((i + 1))
    done
} > "$BATON_OUT/$draft"
baton delegate --to editor "$draft" --note "Review revision $revision." > /dev/null
printf 'summary = "revision %s sent to the editor"\n' "$revision" > "$BATON_OUT/result.toml"
