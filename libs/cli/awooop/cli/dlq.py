"""`awooop dlq list | replay`: the dead letters, and feeding them to their own group again.

Operator commands: they read `awooop.dlq.v1` from offset 0 of every partition to
the high watermarks its fetches report (group-less, nothing committed), and
`replay` logs in with the admin URL. `replay --group G` hands G's entries to
G's own processor only (`dlq_replay`), never to the source topic. Exit codes:
0 every selected entry replayed, 1 some are not, 2 a usage or infrastructure
error (one line, `DlqCommandError`).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from awooop.cli import dlq_state
from awooop.cli.dlq_entries import DlqEntry, MalformedDeadLetter, parse_entry, select
from awooop.cli.dlq_replay import (
    APPLIED,
    FAILED,
    SKIPPED,
    UNREPLAYABLE,
    WOULD_APPLY,
    WOULD_FAIL,
    DlqCommandError,
    EntryResult,
    ReplayTarget,
    exit_code,
    replay_entry,
    replay_target,
)
from awooop.infra.kafka.admin import admin_client, partition_counts
from awooop.infra.kafka.dlq import DLQ_TOPIC
from awooop.infra.kafka.epoch import read_broker_epoch
from awooop.infra.kafka.log_reader import LogNotReadToEnd, LogReader, partitions_of
from awooop.infra.kafka.records import RawRecord
from awooop.infra.settings import KafkaSettings, Settings, asyncpg_dsn

__all__ = ["DlqCommandError", "list_entries", "read_entries", "register", "replay_group"]

READ_WITHIN = 60.0
"""Seconds to read the DLQ to its high watermarks before giving up."""

_REPLAY_LOCK = 0x646C_7172
"""With the group's hash: one `dlq replay` per group at a time."""

Out = Callable[[str], None]


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    dlq = verbs.add_parser("dlq", help="dead letters: list them, replay them into their group")
    which = dlq.add_subparsers(dest="what", required=True, metavar="list|replay")
    listing = which.add_parser("list", help="every DLQ entry, with its replay status")
    listing.add_argument("--group", help="only this consumer group's entries")
    listing.add_argument("--code", help="only entries with this error code")
    listing.set_defaults(handler=list_command)
    replay = which.add_parser("replay", help="feed a group's entries to that group's handler")
    replay.add_argument("--group", required=True, help="the consumer group, e.g. awooop.projector")
    replay.add_argument("--code", help="only entries with this error code")
    replay.add_argument(
        "--dry-run", action="store_true", help="apply each entry and roll back: write nothing"
    )
    replay.set_defaults(handler=replay_command)


async def read_entries(kafka: KafkaSettings, out: Out = print) -> list[DlqEntry]:
    """Every DLQ entry, in DLQ partition and offset order (none when the topic is absent)."""
    admin = admin_client(kafka)
    try:
        await admin.start()
        present = DLQ_TOPIC in await partition_counts(admin)
    except (KafkaError, OSError) as error:
        raise DlqCommandError(f"cannot reach the broker at {kafka.bootstrap}: {error!r}") from error
    finally:
        await admin.close()
    if not present:
        return []
    try:
        async with LogReader(kafka, partitions_of([DLQ_TOPIC]), client_id="awooop-dlq") as reader:
            records = await reader.read_all(within=READ_WITHIN)
    except (KafkaError, OSError, LogNotReadToEnd) as error:
        raise DlqCommandError(f"cannot read {DLQ_TOPIC} to its end: {error!r}") from error
    entries: list[DlqEntry] = []
    for record in records:
        try:
            entries.append(parse_entry(RawRecord.of(record)))
        except MalformedDeadLetter as error:
            out(f"skipped: {error}")
    return sorted(entries, key=lambda e: (e.dlq_partition, e.dlq_offset))


async def _epoch(kafka: KafkaSettings) -> str:
    """The broker epoch the replay states are kept under ("" before any service started)."""
    return await read_broker_epoch(kafka, create=False, wait_seconds=5.0) or ""


async def _connect(settings: Settings) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(asyncpg_dsn(settings.admin_url))
    except (OSError, asyncpg.PostgresError) as error:
        raise DlqCommandError(f"cannot reach Postgres at the admin URL: {error}") from error


def status_text(state: dlq_state.ReplayState | None) -> str:
    """`new`, `replayed`, or `failed (N attempts): latest error`."""
    if state is None:
        return "new"
    if state.status == dlq_state.REPLAYED:
        return dlq_state.REPLAYED
    return f"failed ({state.attempts} attempts): {state.last_error}"


def entry_line(entry: DlqEntry, status: str) -> str:
    """One `dlq list` line."""
    error = " ".join(entry.error.split())
    return (
        f"{entry.dlq_partition}@{entry.dlq_offset}\t{entry.group}\t{entry.origin}\t"
        f"{entry.code}\t{status}\t{error}"
    )


async def list_entries(
    settings: Settings, group: str | None, code: str | None, out: Out = print
) -> int:
    """Print every selected entry with its replay status."""
    entries = select(await read_entries(settings.kafka, out), group, code)
    if not entries:
        out(f"no DLQ entries{_filters(group, code)}")
        return 0
    states: dict[dlq_state.Key, dlq_state.ReplayState] = {}
    if settings.database_url is not None:
        conn = await _connect(settings)
        try:
            states = await dlq_state.states(conn, await _epoch(settings.kafka))
        finally:
            await conn.close()
    out("dlq\tgroup\torigin\tcode\tstatus\terror")
    for entry in entries:
        out(entry_line(entry, status_text(states.get((entry.dlq_partition, entry.dlq_offset)))))
    return 0


def _filters(group: str | None, code: str | None) -> str:
    parts = [f"group {group}" if group else "", f"code {code}" if code else ""]
    shown = " and ".join(p for p in parts if p)
    return f" of {shown}" if shown else ""


def result_line(result: EntryResult) -> str:
    """One `dlq replay` line: applied, skipped: why, failed: why."""
    entry = result.entry
    verdict = result.outcome if not result.reason else f"{result.outcome}: {result.reason}"
    if result.outcome == UNREPLAYABLE:
        verdict = f"failed: {result.reason}"
    return f"{verdict}\t{entry.dlq_partition}@{entry.dlq_offset}\t{entry.origin}"


def summary_line(results: list[EntryResult], group: str, dry_run: bool) -> str:
    """Counts per outcome, and whether anything was written."""
    counts = {o: sum(r.outcome == o for r in results) for o in _OUTCOMES}
    shown = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    tail = " (dry run: nothing written)" if dry_run else ""
    return f"{group}: {len(results)} entries: {shown}{tail}"


_OUTCOMES = (APPLIED, SKIPPED, FAILED, UNREPLAYABLE, WOULD_APPLY, WOULD_FAIL)


async def replay_group(
    settings: Settings, group: str, code: str | None, *, dry_run: bool, out: Out = print
) -> int:
    """Replay `group`'s selected entries one transaction each; the exit code."""
    target = replay_target(group)
    entries = select(await read_entries(settings.kafka, out), group, code)
    if not entries:
        out(f"no DLQ entries{_filters(group, code)}")
        return 0
    epoch = await _epoch(settings.kafka)
    conn = await _connect(settings)
    try:
        if not dry_run:
            await dlq_state.ensure_table(conn)
        if not await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", _REPLAY_LOCK, group
        ):
            raise DlqCommandError(f"another `awooop dlq replay --group {group}` is running")
        results: list[EntryResult] = []
        for entry in entries:
            result = await _replay_one(conn, target, epoch, entry, dry_run)
            out(result_line(result))
            results.append(result)
    finally:
        await conn.close()  # closing the session releases the advisory lock
    out(summary_line(results, group, dry_run))
    return exit_code(results)


async def _replay_one(
    conn: asyncpg.Connection, target: ReplayTarget, epoch: str, entry: DlqEntry, dry_run: bool
) -> EntryResult:
    try:
        return await replay_entry(conn, target, epoch, entry, dry_run=dry_run)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise DlqCommandError(
            f"outage while replaying {entry.origin} of {entry.group}, nothing marked: "
            f"{type(error).__name__}: {error}"
        ) from error


def list_command(args: argparse.Namespace) -> int:
    return asyncio.run(list_entries(Settings.from_env(admin=True), args.group, args.code))


def replay_command(args: argparse.Namespace) -> int:
    settings = Settings.from_env(admin=True)
    return asyncio.run(replay_group(settings, args.group, args.code, dry_run=args.dry_run))
