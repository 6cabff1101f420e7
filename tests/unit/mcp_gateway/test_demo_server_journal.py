"""The demo MCP server journals each session it opens, with the hashes of the credentials
it was given and never their values, and each call it serves, in that session; lines
appended by many writers at once stay whole."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from mcp import Client
from starlette.datastructures import Headers

from awooop.mcp_gateway.demo_server import server
from awooop.mcp_gateway.demo_sessions import (
    CREDENTIAL_NAMES_ENV,
    JOURNAL_ENV,
    append_journal,
    header_credentials,
)
from support.demo_mcp import calls, read_journal, sessions

pytestmark = pytest.mark.unit

SECRET = "sk-demo-planted-credential"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv(JOURNAL_ENV, str(path))
    monkeypatch.setenv(CREDENTIAL_NAMES_ENV, " DEMO_TOKEN , DEMO_UNSET,")
    monkeypatch.setenv("DEMO_TOKEN", SECRET)
    monkeypatch.delenv("DEMO_UNSET", raising=False)
    return path


async def test_a_session_and_its_calls_are_journaled_with_credential_hashes(
    journal: Path,
) -> None:
    async with Client(server) as client:
        await client.call_tool("restart_service", {"service": "journal-a"})
        await client.call_tool("prune_cache", {"cache": "sessions", "older_than_minutes": 5})

    lines = read_journal(journal)
    (opened,) = sessions(lines)
    assert opened == {
        "event": "session_opened",
        "pid": os.getpid(),
        "transport": "memory",
        "session": opened["session"],
        "credentials": {"DEMO_TOKEN": _sha256(SECRET)},
    }
    assert [(call["session"], call["tool"], call["arguments"]) for call in calls(lines)] == [
        (opened["session"], "restart_service", {"service": "journal-a"}),
        (opened["session"], "prune_cache", {"cache": "sessions", "older_than_minutes": 5}),
    ]
    assert calls(lines, "prune_cache") == calls(lines)[1:]
    assert SECRET not in json.dumps(lines)


async def test_each_handshake_session_is_its_own_and_a_refused_call_is_journaled_too(
    journal: Path,
) -> None:
    async with Client(server, mode="legacy") as first, Client(server, mode="legacy") as second:
        await first.call_tool("diagnose", {"service": "checkout"})
        await second.call_tool("wipe_volume", {"volume": ""})
        await first.call_tool("no_such_tool", {})

    lines = read_journal(journal)
    one, two = (event["session"] for event in sessions(lines))
    assert one != two
    assert [(call["session"], call["tool"]) for call in calls(lines)] == [
        (one, "diagnose"),
        (two, "wipe_volume"),
        (one, "no_such_tool"),
    ]


async def test_without_a_journal_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(JOURNAL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("echo", {"payload": {"a": 1}})
    assert result.structured_content == {"payload": {"a": 1}}
    assert os.listdir(tmp_path) == []


def test_lines_appended_at_once_by_many_writers_stay_whole(journal: Path) -> None:
    def write(writer: int) -> None:
        for number in range(40):
            append_journal({"event": "call", "writer": writer, "n": number, "pad": "x" * 50_000})

    writers = [threading.Thread(target=write, args=(writer,)) for writer in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    lines = read_journal(journal)
    assert len(lines) == 8 * 40
    for writer in range(8):
        assert [line["n"] for line in lines if line["writer"] == writer] == list(range(40))


def test_http_credentials_are_the_authorization_and_x_credential_headers_hashed() -> None:
    request = SimpleNamespace(
        headers=Headers(
            raw=[
                (b"authorization", b"Bearer abc"),
                (b"x-credential-api-key", b"k1"),
                (b"x-credential-api-key", b"k2"),
                (b"x-other", b"not a credential"),
                (b"cookie", b"nor this"),
            ]
        )
    )
    assert header_credentials(request) == {
        "authorization": _sha256("Bearer abc"),
        "x-credential-api-key": _sha256("k1, k2"),
    }
    assert header_credentials(None) == {}
