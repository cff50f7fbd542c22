"""`baton mcp` driven by the official Python SDK (mcp 2.3), in both protocol eras: a
second client implementation beside rmcp's. Run by tests/integration/mcp.rs when
BATON_TEST_PYTHON names a Python with `mcp` installed (.ci/run makes one).

    python_client.py BATON WORKSPACE
"""

import sys
import warnings

import anyio
from mcp import Client, StdioServerParameters

BATON, WS = sys.argv[1], sys.argv[2]
# The 2025 era's resources/subscribe is what this run tests, deprecated or not.
warnings.filterwarnings("ignore", message="resources/subscribe is removed")
TOOLS = [
    "delegate",
    "list_agents",
    "list_files", "read_file", "search_files", "task_status", "trace", "who_wrote", "write_file"]


def check(cond, what):
    if not cond:
        raise SystemExit(f"python client: {what}")


async def session(mode):
    updates = []

    async def on_message(message):
        note = getattr(message, "root", message)
        if getattr(note, "method", "") == "notifications/resources/updated":
            updates.append(note.params.uri)

    server = StdioServerParameters(command=BATON, args=["mcp", "-w", WS])
    async with Client(server, read_timeout_seconds=30, mode=mode, message_handler=on_message) as c:
        want = "2025-11-25" if mode == "legacy" else "2026-07-28"
        check(c.protocol_version == want, f"{mode}: protocol {c.protocol_version}")
        tools = (await c.list_tools()).tools
        check(sorted(t.name for t in tools) == TOOLS, f"{mode}: tools {[t.name for t in tools]}")
        for t in tools:
            a = t.annotations
            check(None not in (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint), f"{t.name}: {a}")
            check(t.output_schema is not None, f"{t.name}: no output schema")

        path = f"drafts/py-{mode}.md"
        w = await c.call_tool("write_file", {"path": path, "content": "otters, from python\n", "expected_hash": ""})
        check(not w.is_error and w.structured_content["status"] == "published", f"write: {w}")
        r = await c.call_tool("read_file", {"path": path})
        check(r.structured_content["hash"] == w.structured_content["hash"], f"read: {r}")
        stale = await c.call_tool("write_file", {"path": path, "content": "x", "expected_hash": "0"})
        check(stale.is_error and stale.structured_content["error"]["code"] == "stale_write", f"stale: {stale}")
        bad = await c.call_tool("read_file", {"path": "../../etc/passwd"})
        check(bad.is_error and bad.structured_content["error"]["code"] == "outside_workspace", f"outside: {bad}")
        s = await c.call_tool("search_files", {"query": "otters"})
        check(not s.is_error and any(h["path"] == path for h in s.structured_content["hits"]), f"search: {s}")
        res = await c.read_resource(f"baton://{path}")
        check(res.contents[0].text == "otters, from python\n", f"resource: {res}")

        uri = f"baton://{path}"
        if mode == "legacy":
            await c.subscribe_resource(uri)
            await c.call_tool("write_file", {"path": path, "content": "v2\n"})
            with anyio.fail_after(10):
                while uri not in updates:
                    await anyio.sleep(0.01)
        else:
            async with c.listen(resource_subscriptions=[uri]) as sub:
                check(sub.honored.resource_subscriptions == [uri], f"honored: {sub.honored}")
                await c.call_tool("write_file", {"path": path, "content": "v2\n"})
                with anyio.fail_after(10):
                    async for event in sub:
                        check(getattr(event, "uri", None) == uri, f"event: {event}")
                        break


async def main():
    for mode in ["legacy", "2026-07-28"]:
        await session(mode)
    print("python client: both eras ok")


anyio.run(main)
