"""Seeing one Postgres backend wait on another's lock, so tests interleave two writers by
what the server reports rather than by sleeping."""

from __future__ import annotations

import asyncpg

from support.pipeline import wait_for


async def backend_pid(conn: asyncpg.Connection) -> int:
    """The server process id of `conn`'s backend (what `pg_blocking_pids` names)."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    return int(pid)


async def wait_until_blocked(
    observer: asyncpg.Connection, waiter: int, *, by: int, within: float = 10.0
) -> None:
    """Return once backend `waiter` is waiting on a lock held by backend `by`; fail (with
    what `waiter` is doing instead) when that is not seen `within` seconds. `observer`
    is a connection of its own: from a shared pool it could be the waiter's, once that
    finished."""

    async def blocked() -> bool:
        holders = await observer.fetchval("SELECT pg_blocking_pids($1)", waiter)
        return by in (holders or [])

    try:
        await wait_for(blocked, within=within, message=f"backend {waiter} to wait on {by}")
    except AssertionError as error:
        activity = await observer.fetchrow(
            "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE pid = $1",
            waiter,
        )
        raise AssertionError(
            f"backend {waiter} never waited on backend {by}'s lock; it is "
            f"{dict(activity) if activity else 'gone'}"
        ) from error
