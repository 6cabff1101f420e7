"""`awooop outbox parked | retry`: the outbox rows a relay set aside, listed and re-queued.

Operator commands spanning service schemas: they log in with the admin URL
(`Settings.admin_url`), never a service role. `retry` moves parked rows
back into `outbox` in one transaction; the service's relay publishes them on
its next poll, in position order, so rows parked behind an earlier one of
their key keep their order when both are re-queued (a row re-queued while the
one before it stays parked is parked behind it again).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.infra.settings import Settings, SettingsError, asyncpg_dsn

_SCHEMA = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class OutboxCommandError(RuntimeError):
    """A refusal with a one-line reason for the operator."""


@dataclass(frozen=True)
class ParkedEntry:
    """One row of a schema's `outbox_parked`."""

    schema: str
    position: int
    topic: str
    error_code: str
    error: str
    parked_at: str


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    outbox = verbs.add_parser("outbox", help="outbox rows the relay parked: list, re-queue")
    which = outbox.add_subparsers(dest="what", required=True, metavar="parked|retry")
    parked = which.add_parser("parked", help="list parked outbox rows")
    parked.add_argument("--service", help="one service's schema (default: every schema)")
    parked.set_defaults(handler=print_parked)
    retry = which.add_parser("retry", help="move parked rows back into the outbox")
    retry.add_argument("--service", required=True, help="the service whose rows to re-queue")
    chosen = retry.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--position", type=int, nargs="+", help="positions to re-queue")
    chosen.add_argument("--all", action="store_true", help="every parked row of the service")
    retry.set_defaults(handler=retry_rows)


async def _connect() -> asyncpg.Connection:
    url = Settings.from_env(admin=True).admin_url
    try:
        return await asyncpg.connect(asyncpg_dsn(url))
    except (OSError, asyncpg.PostgresError) as error:
        raise OutboxCommandError(f"cannot reach Postgres at the admin URL: {error}") from error


async def _parked_schemas(conn: asyncpg.Connection, service: str | None) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables "
        "WHERE table_name = 'outbox_parked' ORDER BY table_schema"
    )
    schemas = [row["table_schema"] for row in rows]
    if service is None:
        return schemas
    if not _SCHEMA.fullmatch(service) or service not in schemas:
        raise OutboxCommandError(
            f"schema {service!r} has no outbox_parked table: is it a migrated service?"
        )
    return [service]


async def list_parked(conn: asyncpg.Connection, service: str | None = None) -> list[ParkedEntry]:
    """Every parked row of `service` (or of every schema), in schema and position order."""
    entries: list[ParkedEntry] = []
    for schema in await _parked_schemas(conn, service):
        rows = await conn.fetch(
            f"SELECT position, topic, error_code, error, parked_at "
            f'FROM "{schema}".outbox_parked ORDER BY position'
        )
        entries.extend(
            ParkedEntry(
                schema,
                r["position"],
                r["topic"],
                r["error_code"],
                r["error"],
                r["parked_at"].isoformat(),
            )
            for r in rows
        )
    return entries


async def retry_parked(
    conn: asyncpg.Connection, service: str, positions: Sequence[int] | None
) -> list[int]:
    """Move `positions` (None: all) of `service` back into its outbox; return them.

    All or nothing: a position that is not parked refuses the whole retry.
    """
    (schema,) = await _parked_schemas(conn, service)
    async with conn.transaction():
        if positions is None:
            moved = await conn.fetch(f'DELETE FROM "{schema}".outbox_parked RETURNING position')
        else:
            wanted = sorted(set(positions))
            moved = await conn.fetch(
                f'DELETE FROM "{schema}".outbox_parked WHERE position = ANY($1::bigint[]) '
                "RETURNING position",
                wanted,
            )
            missing = sorted(set(wanted) - {row["position"] for row in moved})
            if missing:
                raise OutboxCommandError(
                    f"not parked in {schema}: {', '.join(map(str, missing))} (nothing re-queued)"
                )
        requeued = sorted(row["position"] for row in moved)
        await conn.execute(
            f'INSERT INTO "{schema}".outbox (position) SELECT unnest($1::bigint[]) '
            "ON CONFLICT DO NOTHING",
            requeued,
        )
    return requeued


def _fail(error: Exception) -> int:
    print(f"awooop: error: {error}", file=sys.stderr)
    return 2


def print_parked(args: argparse.Namespace) -> int:
    async def listing() -> list[ParkedEntry]:
        conn = await _connect()
        try:
            return await list_parked(conn, args.service)
        finally:
            await conn.close()

    try:
        entries = asyncio.run(listing())
    except (OutboxCommandError, SettingsError, asyncpg.PostgresError) as error:
        return _fail(error)
    if not entries:
        print("no parked outbox rows")
        return 0
    print("service\tposition\ttopic\tcode\tparked_at\terror")
    for e in entries:
        print(f"{e.schema}\t{e.position}\t{e.topic}\t{e.error_code}\t{e.parked_at}\t{e.error}")
    return 0


def retry_rows(args: argparse.Namespace) -> int:
    async def retrying() -> list[int]:
        conn = await _connect()
        try:
            return await retry_parked(conn, args.service, None if args.all else args.position)
        finally:
            await conn.close()

    try:
        requeued = asyncio.run(retrying())
    except (OutboxCommandError, SettingsError, asyncpg.PostgresError) as error:
        return _fail(error)
    print(f"re-queued {len(requeued)} row(s) of {args.service}")
    return 0
