"""The executor's own database connection, which proves the executor process is alive.

For as long as it runs, an executor holds a session-level advisory lock named
after its instance id on one dedicated connection, and does all its table work
on that connection. When the process dies, its connection closes and the lock
is free: another executor that can take it knows the calls left `executing`
under that id will never be answered. A live executor's lock cannot be taken,
so its calls in flight are never declared unknown by its peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from awooop.infra.postgres.errors import is_database_outage

LOCK_CLASS = 0x6D637067
"""The first key of every executor liveness lock (advisory locks take two int4 keys)."""


def liveness_key(executor_id: str) -> int:
    """The second, per-executor key: the CRC-32 of the id as a signed int4."""
    crc = zlib.crc32(executor_id.encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


class ExecutorConnection:
    """One pooled connection holding `executor_id`'s liveness lock; re-taken after a loss."""

    def __init__(self, pool: asyncpg.Pool, executor_id: str) -> None:
        self._pool = pool
        self.executor_id = executor_id
        self._key = liveness_key(executor_id)
        self._conn: asyncpg.Connection | None = None
        self._mutex = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection, alone: the lock is (re)taken first; an outage drops it."""
        async with self._mutex:
            conn = await self._held()
            try:
                yield conn
            except BaseException as error:
                if not _usable(conn) or is_database_outage(error):
                    await self._drop()
                raise

    async def gone(self, conn: asyncpg.Connection, claimer: str) -> bool:
        """Inside a transaction: True when executor `claimer` is gone (its lock is now ours
        until commit, so it cannot come back meanwhile)."""
        key = liveness_key(claimer)
        if key == self._key:
            return False  # a key shared with this live process says nothing about the other
        taken = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", LOCK_CLASS, key)
        return bool(taken)

    async def _held(self) -> asyncpg.Connection:
        if self._conn is not None and _usable(self._conn):
            return self._conn
        await self._drop()
        conn = await self._pool.acquire()
        try:
            await conn.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, self._key)
        except BaseException:
            # The server may have granted the lock before the failure (a cancellation):
            # the pool resets no session state, so this connection never goes back.
            conn.terminate()
            await self._pool.release(conn)
            raise
        self._conn = conn
        return conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # The pool resets no session state (`create_pool`): the lock is released here,
        # and a connection that may still hold it never goes back to the pool.
        try:
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, self._key)
        except Exception:
            with contextlib.suppress(Exception):
                conn.terminate()
        with contextlib.suppress(Exception):
            await self._pool.release(conn, timeout=5)

    async def close(self) -> None:
        """Release the lock and give the connection back to the pool."""
        async with self._mutex:
            await self._drop()


def _usable(conn: asyncpg.Connection) -> bool:
    """False once the connection closed, or once the pool took it back (a lost
    connection's proxy is detached, and then every call on it raises)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False
