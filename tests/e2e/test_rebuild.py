"""`awooop projector rebuild` on a populated platform: the rebuilt read models equal the live
ones in every table and tenant (contracts included: each tenant is onboarded with signed
contracts, which the rebuild verifies with the live projector's key ring), whether
loaded in-process (the dry run) or by forked workers (the swap), the API answers
throughout the swap, the live projector goes on writing into the new schema, and a
broken row is named by table and tenant."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from awooop.cli.send import telegram_record
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.adapters.checksums import row_level_secured_tables, schema_checksums
from awooop.projector.app import spec
from awooop.projector.domain.checksums import READ_MODEL_TABLES, Checksums, differences
from support.pipeline import wait_for
from support.platform_procs import RunningPlatform, own_platform

pytestmark = pytest.mark.e2e

TENANTS = ("rb-alpha", "rb-beta", "rb-gamma")
RUNS_PER_TENANT = 30
BOTS = {tenant: f"71{n:02d}" for n, tenant in enumerate(TENANTS)}
"""Each tenant's Telegram bot: a channel binding names one bot's chats for one project."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with own_platform(tmp_path_factory.mktemp("rebuild") / "home") as platform:
        yield platform


async def _populate(bootstrap: str) -> None:
    """Runs of three tenants, a redelivered inbound record and a record the projector
    cannot decode (it dead-letters it; the rebuild refuses it the same way)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        records = [
            telegram_record(
                project=tenant,
                bot=BOTS[tenant],
                update_id=10_000 * t + n,
                user=str(900_000 + 1000 * t + n),
                text=f"status {tenant} {n}",
            )
            for t, tenant in enumerate(TENANTS)
            for n in range(RUNS_PER_TENANT)
        ]
        for key, value in [*records, records[0], records[1]]:
            await producer.send(Topics.CHANNEL_INBOUND.name, value, key=key)
        await producer.send_and_wait(
            Topics.RUN_EVENTS.name,
            b"{not an envelope",
            key=b"poison",
            headers=[("event_type", b"run.completed"), ("schema_version", b"1")],
        )
    finally:
        await producer.stop()


async def _projector_caught_up(bootstrap: str, admin: asyncpg.Connection) -> None:
    """Wait until the live projector stored offsets at every partition's high watermark."""
    async with LogReader(KafkaSettings(bootstrap), partitions_of(spec().topics)) as reader:
        await reader.read_all(within=60)
        ends = dict(reader.highwaters)

    async def stored_at_end() -> bool:
        rows = await admin.fetch(
            "SELECT topic, partition, next_offset FROM projector.projector_offsets "
            "WHERE consumer_group = $1",
            spec().consumer_group,
        )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(stored.get((tp.topic, tp.partition), 0) >= n for tp, n in ends.items())

    await wait_for(stored_at_end, within=60, message="the live projector to reach the end")


async def _checksums(admin_url: str, schema: str = "projector") -> Checksums:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        return await schema_checksums(conn, schema)
    finally:
        await conn.close()


class _Poller(threading.Thread):
    """Reads one tenant's runs from the API over and over, recording every answer."""

    def __init__(self, running: RunningPlatform, tenant: str) -> None:
        super().__init__(daemon=True)
        self._running, self._tenant = running, tenant
        self.answers: list[tuple[int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self._running.api(self._tenant) as client:
            while not self.stop.is_set():
                response = client.get("/v1/runs", params={"limit": 200})
                runs = response.json().get("runs", []) if response.status_code == 200 else []
                self.answers.append((response.status_code, len(runs)))


def test_a_rebuild_equals_the_live_models_and_the_api_answers_throughout(
    running: RunningPlatform,
) -> None:
    bootstrap, admin_url = running.env["AWOOOP_KAFKA_BOOTSTRAP"], running.env["AWOOOP_DATABASE_URL"]
    for tenant in TENANTS:
        running.onboard_like_demo(tenant, BOTS[tenant])
    asyncio.run(_populate(bootstrap))
    for tenant in TENANTS:
        running.wait_for_runs(tenant, RUNS_PER_TENANT, within=120)

    async def settled() -> Checksums:
        admin = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await _projector_caught_up(bootstrap, admin)
        finally:
            await admin.close()
        return await _checksums(admin_url)

    live = asyncio.run(settled())
    assert set(live.projects()) >= set(TENANTS)
    assert all(live.tables["runs"][t].rows == RUNS_PER_TENANT for t in TENANTS)
    assert all(live.tables["contracts"][t].rows == 3 for t in TENANTS)
    assert all(live.tables["contract_revisions"][t].rows == 3 for t in TENANTS)
    # Every run's reply came from a scripted LLM step, whose report is a `run_steps` row
    # (budget and outbound rows, which shadow runs of unbudgeted tenants do not make, are
    # compared with a rebuild in tests/integration/test_budget_read_models.py).
    assert all(live.tables["run_steps"][t].rows >= RUNS_PER_TENANT for t in TENANTS)
    assert asyncio.run(_signature_checks(admin_url)) == {"valid"}

    dry = running.cli("projector", "rebuild", "--dry-run")
    assert "equal the live ones" in dry.stdout, dry.stdout

    poller = _Poller(running, TENANTS[0])
    poller.start()
    try:
        # Three forked loaders (the log is too short to fork by default): partitions
        # shared out, a run's row fed by several of them, the refused record counted.
        swap = running.cli("projector", "rebuild", "--workers", "3")
    finally:
        poller.stop.set()
        poller.join(30)
    assert "swapped in" in swap.stdout, swap.stdout
    assert "1 refused" in swap.stdout, swap.stdout  # the undecodable record, as live
    assert len(poller.answers) >= 3
    assert set(poller.answers) == {(200, RUNS_PER_TENANT)}

    rebuilt = asyncio.run(_checksums(admin_url))
    assert differences(live, rebuilt) == []
    old = next(line.split()[-1] for line in swap.stdout.splitlines() if "kept as" in line)
    assert running.cli("projector", "checksum", "--against", old).returncode == 0

    # One broken row of one tenant: the comparison names that table and that tenant only.
    async def break_one_row() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await conn.execute(
                "UPDATE projector.runs SET reply = 'tampered' WHERE run_id = "
                "(SELECT run_id FROM projector.runs WHERE project_id = $1 LIMIT 1)",
                TENANTS[1],
            )
        finally:
            await conn.close()

    asyncio.run(break_one_row())
    compared = running.cli("projector", "checksum", "--against", old, check=False)
    assert compared.returncode == 1
    differing = [line for line in compared.stdout.splitlines() if line.startswith("differs")]
    assert len(differing) == 1, compared.stdout
    assert f"runs of project {TENANTS[1]}" in differing[0]

    # The live projector writes into the swapped-in schema from its next batch on.
    asyncio.run(_one_more(bootstrap))
    running.wait_for_runs(TENANTS[2], RUNS_PER_TENANT + 1, within=60)

    # --drop-old: the read models this rebuild replaces go, and so does the kept schema.
    dropped = running.cli("projector", "rebuild", "--drop-old", "--quiet")
    assert "the previous read models were dropped" in dropped.stdout, dropped.stdout
    assert f"dropped {old}" in dropped.stdout, dropped.stdout
    assert asyncio.run(_old_schemas(admin_url)) == []


async def _signature_checks(admin_url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT signature_check FROM projector.contract_revisions "
            "WHERE project_id = ANY($1::text[])",
            list(TENANTS),
        )
        return {row["signature_check"] for row in rows}
    finally:
        await conn.close()


async def _old_schemas(admin_url: str) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'projector_')"
        )
        return [row["nspname"] for row in rows]
    finally:
        await conn.close()


async def _one_more(bootstrap: str) -> None:
    key, value = telegram_record(
        project=TENANTS[2],
        bot=BOTS[TENANTS[2]],
        update_id=99_999,
        user="999999",
        text="after the swap",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
    finally:
        await producer.stop()


def test_every_row_level_secured_table_of_the_projector_is_checksummed(
    running: RunningPlatform,
) -> None:
    """A read model added later is digested (and so held to rebuild-equals-live) from its
    first migration on: the schema's tenant tables are exactly the checksummed ones."""

    async def secured() -> set[str]:
        conn = await asyncpg.connect(asyncpg_dsn(running.env["AWOOOP_DATABASE_URL"]))
        try:
            return await row_level_secured_tables(conn, "projector")
        finally:
            await conn.close()

    assert asyncio.run(secured()) == set(READ_MODEL_TABLES)
