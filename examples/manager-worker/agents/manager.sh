#!/bin/sh
# First run: split the brief's first three bullets into parts/<brief>-<n>.md and
# delegate each part to a worker. Join run (BATON_JOIN=1): every worker is done;
# assemble their sections, listed in task.json, into reports/<brief>.md.
set -eu
name=$(basename "$BATON_INPUT" .md)

if [ "$BATON_JOIN" = 1 ]; then
    mkdir -p "$BATON_OUT/reports"
    report="$BATON_OUT/reports/$name.md"
    printf '# Report: %s\n\n' "$name" > "$report"
    # task.json lists each child with its status and output paths ("outputs").
    tr -d '\n' < "$BATON_TASK_FILE" | grep -o '"outputs": *\[[^]]*\]' |
        grep -o '"sections/[^"]*"' | tr -d '"' | sort | while read -r section; do
            cat "$section" >> "$report"
            printf '\n' >> "$report"
        done
    done_count=$(grep -c '"status": "done"' "$BATON_TASK_FILE" || true)
    printf 'summary = "assembled %s sections"\n' "$done_count" > "$BATON_OUT/result.toml"
    exit 0
fi

mkdir -p "$BATON_OUT/parts"
n=0
grep '^- ' "$BATON_INPUT" | head -n 3 > "$BATON_OUT/bullets.tmp"
while read -r bullet; do
    n=$((n + 1))
    part="parts/$name-$n.md"
    printf '# Part %s of %s\n\n%s\n' "$n" "$name" "${bullet#- }" > "$BATON_OUT/$part"
    baton delegate --to worker "$part" --note "Write the section for part $n." > /dev/null
done < "$BATON_OUT/bullets.tmp"
rm "$BATON_OUT/bullets.tmp"
printf 'summary = "split into %s parts"\n' "$n" > "$BATON_OUT/result.toml"
