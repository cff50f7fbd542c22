#!/bin/sh
# `llm` with a system prompt: the review on stdin, one line on stdout. Called as
#   agents/summarize-with-llm.sh {input} {out}
# so $1 is the review's workspace path and $2 the staging tree ($BATON_OUT).
set -eu
input=$1
out=$2
mkdir -p "$out/summaries"
llm -s "$(cat prompts/summarize.md)" < "$input" > "$out/summaries/$(basename "$input")"
