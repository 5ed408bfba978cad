"""A real MCP client for tenantops' end-to-end tests (tests/e2e/mcp.rs).

It drives the server with the official MCP Python SDK (`pip install mcp`) over streamable HTTP
or stdio, in the 2026-07-28 protocol (`--mode auto`) or the 2025-11-25 one with its sessions
(`--mode legacy`), and prints one JSON document per line on stdout for the Rust test to check.
Where the SDK has no API for a protocol feature (the tasks extension, a bare SSE stream), it
speaks raw HTTP with httpx2, the SDK's own HTTP client.

Usage: client.py SCENARIO --key KEY (--url URL | --bin BIN --db DB) [--mode auto|legacy] [...]
"""

import argparse
import asyncio
import json
import os
import sys
import time

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def emit(**fields):
    print(json.dumps(fields), flush=True)


def server_env(key):
    """The stdio server's environment: the key, a quick revocation check, and the master key
    file when the test gives one (a sandbox on PostgreSQL)."""
    env = {"TENANTOPS_API_KEY": key, "TENANTOPS_MCP_REVOCATION_CHECK": "300ms"}
    if os.environ.get("TENANTOPS_MASTER_KEY_FILE"):
        env["TENANTOPS_MASTER_KEY_FILE"] = os.environ["TENANTOPS_MASTER_KEY_FILE"]
    return env


def connect(args, key=None):
    key = key or args.key
    if args.url:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        transport = streamable_http_client(args.url, http_client=http)
    else:
        transport = StdioServerParameters(
            command=args.bin,
            args=["--db", args.db, "mcp", "--stdio"],
            env=server_env(key),
        )
    return Client(transport, mode=args.mode, read_timeout_seconds=30)


def content_types(result):
    return [c.type for c in result.content]


async def tools(args):
    async with connect(args) as c:
        listed = await c.list_tools()
        emit(
            protocol=c.protocol_version,
            tools=[t.name for t in listed.tools],
            annotations={
                t.name: (t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None)
                for t in listed.tools
            },
            has_output_schema=all(t.output_schema is not None for t in listed.tools),
        )


async def call(args):
    async with connect(args) as c:
        r = await c.call_tool(args.tool, json.loads(args.arguments))
        emit(
            protocol=c.protocol_version,
            is_error=bool(r.is_error),
            structured=r.structured_content,
            text=" ".join(getattr(x, "text", "") or "" for x in r.content),
            content_types=content_types(r),
        )


async def approval(args):
    """Calls a destructive tool, prints the pending answer, then follows it with approvals.get
    until it is final (a human approves meanwhile) and prints the final request."""
    async with connect(args) as c:
        r = await c.call_tool(args.tool, json.loads(args.arguments))
        pending = r.structured_content
        emit(step="pending", protocol=c.protocol_version, is_error=bool(r.is_error), result=pending)
        if not pending or pending.get("status") != "pending_approval":
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            v = await c.call_tool("approvals.get", {"request_id": pending["request_id"]})
            view = v.structured_content
            if view and view.get("state") in ("succeeded", "failed", "rejected", "expired", "cancelled"):
                emit(step="final", request=view)
                return
            await asyncio.sleep(0.2)
        emit(step="timeout")


MODERN = "2026-07-28"


def modern_meta(tasks):
    caps = {"extensions": {"io.modelcontextprotocol/tasks": {}}} if tasks else {}
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "tenantops-e2e", "version": "1"},
    }


def parse_body(response):
    """A JSON-RPC response from a JSON or an SSE body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                msg = json.loads(line[5:])
                if "id" in msg:
                    return msg
        return None
    return response.json()


def rpc(http, url, method, params, name=None, rid=1):
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if name:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    return parse_body(http.post(url, json=body, headers=headers))


def tasks(args):
    """The tasks extension, spoken raw (2026-07-28): a destructive call becomes a task, which
    tasks/get follows to its result; with --cancel the task is cancelled instead."""
    http = httpx2.Client(headers={"Authorization": f"Bearer {args.key}"}, timeout=30)
    created = rpc(
        http,
        args.url,
        "tools/call",
        {"name": args.tool, "arguments": json.loads(args.arguments), "_meta": modern_meta(True)},
        name=args.tool,
    )
    emit(step="created", response=created)
    task_id = created.get("result", {}).get("taskId")
    if not task_id:
        return
    if args.cancel:
        cancelled = rpc(
            http, args.url, "tasks/cancel", {"taskId": task_id, "_meta": modern_meta(True)}, name=task_id
        )
        emit(step="cancel", response=cancelled)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = rpc(
            http, args.url, "tasks/get", {"taskId": task_id, "_meta": modern_meta(True)}, name=task_id, rid=2
        )
        status = got.get("result", {}).get("status")
        if status in ("completed", "failed", "cancelled"):
            emit(step="final", response=got)
            return
        time.sleep(0.2)
    emit(step="timeout", response=got)
    # Without the capability the same call is a plain structured result, never a task.


def no_tasks(args):
    http = httpx2.Client(headers={"Authorization": f"Bearer {args.key}"}, timeout=30)
    r = rpc(
        http,
        args.url,
        "tools/call",
        {"name": args.tool, "arguments": json.loads(args.arguments), "_meta": modern_meta(False)},
        name=args.tool,
    )
    emit(response=r)


def stream(args):
    """Opens a 2025-11-25 session and its standalone SSE stream (GET), reports when the server
    ends it, then what a further request on the session and a new request get."""
    headers = {"Authorization": f"Bearer {args.key}", "Accept": "application/json, text/event-stream"}
    http = httpx2.Client(headers=headers, timeout=httpx2.Timeout(60, read=60))
    init = http.post(
        args.url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "tenantops-e2e", "version": "1"},
            },
        },
    )
    sid = init.headers.get("mcp-session-id")
    session = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
    http.post(args.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    with http.stream("GET", args.url, headers={**session, "Accept": "text/event-stream"}) as sse:
        emit(step="open", status=sse.status_code, session=bool(sid), session_id=sid)
        started = time.monotonic()
        try:
            for _ in sse.iter_bytes():
                pass
            ended = "closed"
        except Exception as e:  # a reset connection also ends the stream
            ended = f"error: {type(e).__name__}"
        emit(step="ended", how=ended, after_s=round(time.monotonic() - started, 2))
    again = http.post(
        args.url,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
        headers=session,
    )
    fresh = httpx2.post(
        args.url,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        headers=headers,
    )
    emit(
        step="after",
        session_status=again.status_code,
        new_status=fresh.status_code,
        www_authenticate=fresh.headers.get("www-authenticate"),
    )


def balanced(args):
    """Two replicas behind a round-robin balancer (`--url`, then `--also`): 2026-07-28 requests
    carry everything they need, so each lands on either replica; a 2025-11-25 session lives in
    the replica that opened it, so a request of that session reaching the other one is told the
    session is unknown (the client must re-initialize: sticky routing for such clients)."""
    http = httpx2.Client(headers={"Authorization": f"Bearer {args.key}"}, timeout=30)
    urls = [args.url, args.also]
    for i in range(10):
        r = rpc(
            http,
            urls[i % 2],
            "tools/call",
            {"name": "whoami", "arguments": {}, "_meta": modern_meta(False)},
            name="whoami",
            rid=i + 1,
        )
        emit(step="stateless", replica=i % 2, handle=(r.get("result") or {}).get("structuredContent", {}).get("handle"), error=r.get("error"))
    init = http.post(
        args.url,
        headers={"Accept": "application/json, text/event-stream"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "tenantops-e2e", "version": "1"},
            },
        },
    )
    sid = init.headers.get("mcp-session-id")
    session = {
        "Mcp-Session-Id": sid or "",
        "MCP-Protocol-Version": "2025-11-25",
        "Accept": "application/json, text/event-stream",
    }
    http.post(args.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    same = http.post(args.url, json=body, headers=session)
    other = http.post(args.also, json=body, headers=session)
    emit(step="legacy", session=bool(sid), same_status=same.status_code, other_status=other.status_code)


async def surface(args):
    """Prompts and resources as an agent sees them."""
    async with connect(args) as c:
        prompts = await c.list_prompts()
        got = await c.get_prompt("monthly-close", {"period": "2026-10"})
        resources = await c.list_resources()
        templates = await c.list_resource_templates()
        out = {
            "prompts": [p.name for p in prompts.prompts],
            "prompt_args": {p.name: [a.name for a in (p.arguments or [])] for p in prompts.prompts},
            "monthly_close_text": got.messages[0].content.text,
            "resources": [r.uri for r in resources.resources],
            "templates": [t.uri_template for t in templates.resource_templates],
            "reads": {},
        }
        for uri in json.loads(args.read or "[]"):
            rr = await c.read_resource(uri)
            first = rr.contents[0]
            out["reads"][uri] = {
                "mime": first.mime_type,
                "text": getattr(first, "text", None),
                "blob_prefix": (getattr(first, "blob", None) or "")[:12],
            }
        emit(**out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario")
    p.add_argument("--key", required=True)
    p.add_argument("--url")
    p.add_argument("--also")
    p.add_argument("--bin")
    p.add_argument("--db")
    p.add_argument("--mode", default="auto")
    p.add_argument("--tool")
    p.add_argument("--arguments", default="{}")
    p.add_argument("--read")
    p.add_argument("--cancel", action="store_true")
    args = p.parse_args()
    scenarios = {
        "tools": tools,
        "call": call,
        "approval": approval,
        "surface": surface,
        "tasks": tasks,
        "no-tasks": no_tasks,
        "stream": stream,
        "balanced": balanced,
    }
    run = scenarios[args.scenario]
    if asyncio.iscoroutinefunction(run):
        asyncio.run(run(args))
    else:
        run(args)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, so the Rust side shows what the client saw
        emit(step="exception", type=type(e).__name__, message=str(e))
        sys.exit(1)
