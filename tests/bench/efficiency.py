"""The pipeline's efficiency: the platform's runs/s against the floor of the same runs' I/O.

The irreducible I/O of a run is every record it moves through the broker, produced
and consumed once, and the read-model rows it writes, copied once. The records are
the inbound one the bench produces and every event the services append to their
event stores over the measured span (the outbox relay publishes each row of
`<service>.events` once); they move at the raw produce + consume records/s of the
same run's Kafka baseline, the rows at its raw `COPY` rows/s. The floor's seconds
per run are the sum of the two, the floor runs/s their inverse, and the efficiency
is the measured runs/s over the floor runs/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import asyncpg

from awooop.contracts.registries.service_names import APPROVAL, INGRESS, MCP_GATEWAY, RUNTIME

STORES = (INGRESS, RUNTIME, MCP_GATEWAY, APPROVAL)
"""The schemas whose `events` table is a service's append-only event store."""
APPLICATION = "awooop-bench-events"
"""A bench backend (`awooop-bench-…`): kept out of Postgres's CPU in the meter."""


class AppendedEvents:
    """Events appended to each service's event store between `start()` and `stop()`.

    The connection stays open across the span, so the meter sees its backend as the
    bench's own; a schema without an `events` table is skipped."""

    def __init__(self, database_url: str, stores: Sequence[str] = STORES) -> None:
        self._database_url = database_url
        self._stores = stores
        self._conn: asyncpg.Connection | None = None
        self._before: dict[str, int] = {}
        self.appended: dict[str, int] = {}
        """Schema → events appended over the span, once stopped."""

    async def __aenter__(self) -> AppendedEvents:
        self._conn = await asyncpg.connect(
            self._database_url, server_settings={"application_name": APPLICATION}
        )
        rows = await self._conn.fetch(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'events' AND table_schema = ANY($1::text[])",
            list(self._stores),
        )
        present = {row["table_schema"] for row in rows}
        self._stores = [store for store in self._stores if store in present]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def _counts(self) -> dict[str, int]:
        assert self._conn is not None, "AppendedEvents is used as `async with`"
        return {
            store: int(await self._conn.fetchval(f'SELECT count(*) FROM "{store}".events'))
            for store in self._stores
        }

    async def start(self) -> None:
        """Just before the first produce."""
        self._before = await self._counts()

    async def stop(self) -> None:
        """Just after the last completion."""
        after = await self._counts()
        self.appended = {store: after[store] - self._before[store] for store in self._stores}


@dataclass(frozen=True, slots=True)
class PipelineFloor:
    """The least I/O of `runs` runs, moved at the raw baselines' rates."""

    runs: int
    rows: int
    """Read-model rows the runs wrote (`runs` + `timeline`)."""
    records_per_s: float
    """Raw produce + consume records/s (the Kafka baseline's round trip)."""
    copy_rows_per_s: float
    """Raw `COPY` rows/s of the same read-model rows."""
    appended: dict[str, int] = field(default_factory=dict)
    """Schema → events appended over the measured span."""

    @property
    def records_per_run(self) -> float:
        """The inbound record and every event appended, each through the broker once."""
        return 1 + sum(self.appended.values()) / self.runs

    @property
    def rows_per_run(self) -> float:
        return self.rows / self.runs

    @property
    def seconds_per_run(self) -> float:
        return self.records_per_run / self.records_per_s + self.rows_per_run / self.copy_rows_per_s

    @property
    def runs_per_s(self) -> float:
        return 1 / self.seconds_per_run

    def efficiency(self, runs_per_s: float) -> float:
        """Measured runs/s ÷ the floor's runs/s."""
        return runs_per_s / self.runs_per_s
