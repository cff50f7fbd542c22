#!/bin/sh
# Picks the specialist by keywords and writes routed/<request>.md with `to` set.
set -eu
name=$(basename "$BATON_INPUT")
if grep -qiE 'invoice|refund|price|billing|payment' "$BATON_INPUT"; then
    to=finance; why="money"
elif grep -qiE 'contract|gdpr|licen[cs]e|liabilit|terms' "$BATON_INPUT"; then
    to=legal; why="a legal matter"
else
    to=support; why="a product question"
fi
mkdir -p "$BATON_OUT/routed"
{
    printf '+++\nto = "%s"\nrefs = ["%s"]\n+++\n' "$to" "$BATON_INPUT"
    printf 'Routed to %s: the request is about %s.\n' "$to" "$why"
} > "$BATON_OUT/routed/$name"
printf 'summary = "%s -> %s"\n' "$BATON_INPUT" "$to" > "$BATON_OUT/result.toml"
