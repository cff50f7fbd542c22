#!/bin/sh
# Claude Code with baton's tools over MCP. The server is `baton mcp`, started by Claude
# Code from a config made here: inside this task it acts as agent `writer`, its writes
# staged in $BATON_OUT. Only baton's tools are allowed, so the model works the
# workspace through baton's guarantees rather than through the shell.
set -eu
if [ "${BATON_JOIN:-0}" = 1 ]; then
    # Run again once the review it delegated is settled: nothing more to do here.
    exit 0
fi
config="$TMPDIR/baton-mcp.json"
printf '{"mcpServers":{"baton":{"command":"%s","args":["mcp"]}}}\n' "$BATON_BIN" > "$config"
claude -p --max-turns 8 --mcp-config "$config" \
    --allowedTools "mcp__baton__read_file,mcp__baton__write_file,mcp__baton__delegate" \
    "$(cat prompts/write.md) The brief is $BATON_INPUT."
