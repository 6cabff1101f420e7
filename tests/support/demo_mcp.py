"""The demo MCP server as the tests use it: over streamable HTTP in a process of its own,
the journal of what it served, a tool description replaced while it runs, and the next
calls of a tool failed on purpose.

The journal's lines and the control file are described in
`awooop.mcp_gateway.demo_sessions` and `awooop.mcp_gateway.demo_control`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from mcp.client.stdio import StdioServerParameters

from awooop.infra.embedded.processes import free_port
from awooop.mcp_gateway.demo_control import control_lock, write_control
from awooop.mcp_gateway.demo_sessions import JOURNAL_ENV

DEMO_SERVER_MODULE = "awooop.mcp_gateway.demo_server"
SERVER_COMMAND = (sys.executable, "-m", DEMO_SERVER_MODULE)

Event = dict[str, Any]


def read_journal(path: Path | str) -> list[Event]:
    """Every complete line of the journal, oldest first; [] before the first line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    # The part after the last newline is a line still being written, or nothing.
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def calls(journal: list[Event], tool: str | None = None) -> list[Event]:
    """The `call` events, of `tool` only when given."""
    return [
        event
        for event in journal
        if event["event"] == "call" and (tool is None or event["tool"] == tool)
    ]


def sessions(journal: list[Event]) -> list[Event]:
    """The `session_opened` events."""
    return [event for event in journal if event["event"] == "session_opened"]


def list_changes(journal: list[Event]) -> list[Event]:
    """The `tools_list_changed` events: when a server announced changed descriptions."""
    return [event for event in journal if event["event"] == "tools_list_changed"]


def poison_description(control_path: Path | str, tool: str, text: str) -> None:
    """Make the servers reading `control_path` list `tool` with the description `text`
    (the other overrides in the file stay)."""
    with _control(Path(control_path)) as document:
        document.setdefault("descriptions", {})[tool] = text


def restore_description(control_path: Path | str, tool: str) -> None:
    """Let `tool` be listed with its own description again."""
    with _control(Path(control_path)) as document:
        document.setdefault("descriptions", {}).pop(tool, None)


def fail_next_calls(
    control_path: Path | str,
    tool: str,
    message: str,
    *,
    count: int = 1,
    arguments: Mapping[str, Any] | None = None,
) -> None:
    """Make the next `count` calls of `tool` (whose arguments hold `arguments`, when
    given) at any server reading `control_path` answer an error result saying `message`,
    without running the tool. The journal still records each of those calls."""
    rule = {
        "tool": tool,
        "message": message,
        "remaining": count,
        "arguments": dict(arguments or {}),
    }
    with _control(Path(control_path)) as document:
        document.setdefault("failures", []).append(rule)


def failures_left(control_path: Path | str) -> list[dict[str, Any]]:
    """The failure rules of the control file, each with the calls it still fails."""
    try:
        document = json.loads(Path(control_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return list(document.get("failures", []))


@contextmanager
def _control(path: Path) -> Iterator[dict[str, Any]]:
    """The control file's document to change in place, written back whole under the lock
    the servers take to spend failures (a server never reads half a file: it is
    written beside it, then renamed over it)."""
    with control_lock(str(path)):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            document = {}
        yield document
        write_control(str(path), document)


def demo_stdio_parameters(
    journal_path: Path | str, env: Mapping[str, str] | None = None
) -> StdioServerParameters:
    """How to start the demo server over stdio, journaling to `journal_path`; `env` is
    added to what the SDK passes on (PATH, HOME and the like, not this environment)."""
    return StdioServerParameters(
        command=SERVER_COMMAND[0],
        args=list(SERVER_COMMAND[1:]),
        env={**(env or {}), JOURNAL_ENV: str(journal_path)},
    )


@contextmanager
def demo_http_server(
    journal_path: Path | str, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start `python -m awooop.mcp_gateway.demo_server --http` on a free port with this
    environment plus `env`, journaling to `journal_path`; yield its URL
    (`http://127.0.0.1:<port>/mcp`) once it answers, and stop it on leaving.

    Raises `RuntimeError` (with the server's output) when it does not start.
    """
    environment = {**os.environ, **(env or {}), JOURNAL_ENV: str(journal_path)}
    with tempfile.TemporaryFile() as output:
        process, url = _start_answering(environment, output)
        try:
            yield url
        finally:
            _stop(process)


def _start_answering(
    environment: dict[str, str], output: Any, attempts: int = 3
) -> tuple[subprocess.Popen[bytes], str]:
    for _ in range(attempts):
        port = free_port()
        process = subprocess.Popen(
            [*SERVER_COMMAND, "--http", "--port", str(port)],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            if _answers(process, url):
                return process, url
        except BaseException:
            _stop(process)
            raise
        # It exited: most likely another process took the port in between.
    output.seek(0)
    said = output.read().decode(errors="replace")
    raise RuntimeError(f"the demo MCP server did not start over HTTP:\n{said}")


def _answers(process: subprocess.Popen[bytes], url: str, within: float = 30.0) -> bool:
    """True once the server answers HTTP at `url` (any status: nothing is journaled),
    False if it exits first; `RuntimeError` after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return True
    _stop(process)
    raise RuntimeError(f"the demo MCP server at {url} did not answer within {within:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
