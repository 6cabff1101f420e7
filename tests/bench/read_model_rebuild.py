"""The read-model rebuild on the bench's platform, after the runs and the baselines:
`awooop projector rebuild`'s engine (`Rebuild.run(drop_old=True)`) in this process, folding
every record of the projector's topics again into a fresh schema and swapping it in; then a
raw `COPY` of the very rows it wrote.

Rebuild rows/s and `COPY` rows/s count the same rows (every row of every read-model table
after the swap), so their ratio is the `COPY` time over the rebuild time. The one thing
checked is correctness: the rebuilt read models digest exactly as the live ones did before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
from copy_baseline import CopyBaseline, raw_copy

from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.app import spec
from awooop.projector.domain.checksums import READ_MODEL_TABLES, differences
from awooop.projector.rebuild import LIVE_SCHEMA, Rebuild, live_offsets
from awooop.security.signing_keys import KeyRing
from support.pipeline import wait_for

COPY_ROUNDS = 3
CAUGHT_UP_WITHIN = 60.0


@dataclass(frozen=True, slots=True)
class RebuildFigures:
    records: int
    """Records the rebuild read (every type, poison included)."""
    events: int
    """Events it folded into the read models."""
    poison: int
    seconds: float
    """The rebuild's own clock (`RebuildReport.seconds`): from the log reader's start
    through the load, the index builds, the catch-up, the swap and the old schema's drop."""
    call_seconds: float
    """The whole `run()` call: the above plus creating and migrating the fresh schema."""
    table_rows: dict[str, int]
    """Rows of each read-model table after the swap."""
    copy: CopyBaseline
    """The raw `COPY` of those rows (median round)."""
    differences: tuple[str, ...]
    """Every table and project whose digest differs between before and after."""

    @property
    def rows(self) -> int:
        return sum(self.table_rows.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def ratio(self) -> float:
        """Rebuild rows/s ÷ raw `COPY` rows/s of the same rows."""
        return self.rows_per_s / self.copy.rate


async def _live_projector_caught_up(kafka: KafkaSettings, admin: asyncpg.Connection) -> None:
    """Wait until the live projector stored offsets at every partition's high watermark, so
    the digests taken before the rebuild are of everything it will fold."""
    async with LogReader(kafka, partitions_of(spec().topics), client_id="awooop-bench") as reader:
        await reader.read_all(within=CAUGHT_UP_WITHIN)
        ends = {tp: n for tp, n in reader.highwaters.items() if n}

    async def stored_at_end() -> bool:
        stored = await live_offsets(admin)
        return all(stored.get(tp, 0) >= n for tp, n in ends.items())

    await wait_for(
        stored_at_end, within=CAUGHT_UP_WITHIN, message="the live projector to reach the end"
    )


async def measure_rebuild(kafka: KafkaSettings, database_url: str, ring: KeyRing) -> RebuildFigures:
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await _live_projector_caught_up(kafka, admin)
        live = await schema_checksums(admin, LIVE_SCHEMA)
        started = time.perf_counter()
        report = await Rebuild(kafka, database_url, ring=ring).run(drop_old=True)
        call_seconds = time.perf_counter() - started
        rebuilt = await schema_checksums(admin, LIVE_SCHEMA)
    finally:
        await admin.close()
    copy = await raw_copy(database_url, project=None, rounds=COPY_ROUNDS)
    return RebuildFigures(
        records=report.records,
        events=report.events,
        poison=report.poison,
        seconds=report.seconds,
        call_seconds=call_seconds,
        table_rows={table: rebuilt.table_total(table).rows for table in READ_MODEL_TABLES},
        copy=copy,
        differences=tuple(d.describe("live", "rebuilt") for d in differences(live, rebuilt)),
    )
