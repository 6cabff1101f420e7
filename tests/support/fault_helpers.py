"""Pieces shared by the process-kill fault tests: freezing a process to look at what it
holds before killing it, mapping Postgres backends to client processes, and reading
topics back to their high watermarks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka.structs import TopicPartition

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import topic
from awooop.infra.embedded.processes import free_port
from awooop.infra.settings import asyncpg_dsn
from support.platform_procs import RunningPlatform
from support.topic_reader import records_to_end

T = TypeVar("T")
_CODEC = EnvelopeCodec()


def own_api_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the platform's API a free port of its own. Left to the default (8700 when
    free), two platforms started at once both take it: one API dies on the bind, and
    the readiness check is answered by the other platform's API."""
    monkeypatch.setenv("AWOOOP_API_PORT", str(free_port()))


async def admin_connection(running: RunningPlatform) -> asyncpg.Connection:
    """A superuser connection to the platform's Postgres (superusers bypass RLS)."""
    return await asyncpg.connect(asyncpg_dsn(running.env["AWOOOP_DATABASE_URL"]))


def pid_of(running: RunningPlatform, name: str) -> int:
    return running.platform.processes[name].pid


def local_tcp_ports(pid: int) -> set[int]:
    """The local ports of the TCP sockets process `pid` holds open (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def frozen_then_killed(
    running: RunningPlatform, name: str, inspect: Callable[[], Awaitable[T | None]]
) -> T | None:
    """SIGSTOP process `name`, then `inspect()` what it holds while it cannot change it.

    When `inspect` returns something, the process is SIGKILLed while still stopped
    (so what was seen is exactly what it held when it died), forgotten by the
    platform, and the result returned. Otherwise it is resumed (SIGCONT) and None
    is returned, for the caller to try again.
    """
    process = running.platform.processes[name]
    os.kill(process.pid, signal.SIGSTOP)
    try:
        seen = await inspect()
    except BaseException:
        os.kill(process.pid, signal.SIGCONT)
        raise
    if seen is None:
        os.kill(process.pid, signal.SIGCONT)
        return None
    assert running.signal(name, signal.SIGKILL) == -signal.SIGKILL
    running.forget(name)
    return seen


async def poll(
    condition: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    every: float = 0.1,
    message: Callable[[], str],
) -> T:
    """Await `condition()` until it returns something other than None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await condition()
        if result is not None:
            return result
        if loop.time() > deadline:
            raise AssertionError(message())
        await asyncio.sleep(every)


@dataclass(frozen=True)
class TopicRecord:
    tp: TopicPartition
    offset: int
    envelope: Envelope[Any]


async def read_to_end(
    bootstrap: str, topic_names: Iterable[str], *, within: float = 30.0
) -> tuple[list[TopicRecord], dict[TopicPartition, int]]:
    """Every record of every partition of `topic_names`, group-less, up to the high
    watermarks seen by the fetches (the embedded broker's `end_offsets()` is wrong);
    call it once producing is over. Returns the records and the high watermarks."""
    tps = [
        TopicPartition(t.name, p)
        for t in (topic(name) for name in topic_names)
        for p in range(t.partitions)
    ]
    raw, highwaters = await records_to_end(bootstrap, tps, within=within)
    records = [
        TopicRecord(TopicPartition(r.topic, r.partition), r.offset, _CODEC.decode(r.value))
        for r in raw
    ]
    return records, highwaters


def ids_checksum(event_ids: Iterable[object]) -> str:
    """md5 of the sorted event ids (their text forms) concatenated; the SQL twin is
    `md5(string_agg(event_id::text, '' ORDER BY event_id::text COLLATE "C"))`."""
    joined = "".join(sorted(str(e) for e in event_ids)).encode()
    return hashlib.md5(joined, usedforsecurity=False).hexdigest()


SQL_IDS_CHECKSUM = "md5(string_agg(event_id::text, '' ORDER BY event_id::text COLLATE \"C\"))"
