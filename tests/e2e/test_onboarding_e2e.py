"""Onboarding the tenants of `deploy/contracts` against a running platform, as `make run`
does: every contract's first revision ends active in the approval event store, signed by
as many people as its family needs and never by its author; onboarding again appends
nothing and reports every contract as already active."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from awooop.cli.demo import onboard_tenants
from awooop.cli.onboarding import read_tenant_files, tenant_folders
from awooop.contracts.events.payloads.contract import ContractActivated, ContractDraftCreated
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.infra.settings import asyncpg_dsn
from support.platform_procs import RunningPlatform, own_platform

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "contracts"
AUTHOR = "operator:onboarding-e2e"
TWO_SIGNATURES = {"policy", "budget"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with own_platform(tmp_path_factory.mktemp("onboarding") / "home") as platform:
        yield platform


@pytest.fixture
def as_operator(running: RunningPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process talks to the platform as the CLI would: its home, its URLs."""
    for name, value in running.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWOOOP_TOKEN", "AWOOOP_APPROVAL_URL", "AWOOOP_API_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("awooop.cli.onboarding.default_subject", lambda: AUTHOR)


async def _contract_events(running: RunningPlatform) -> list[Any]:
    conn = await asyncpg.connect(asyncpg_dsn(running.env["AWOOOP_DATABASE_URL"]))
    try:
        rows = await conn.fetch("SELECT data FROM approval.events ORDER BY position")
    finally:
        await conn.close()
    codec = EnvelopeCodec()
    return [codec.decode(row["data"]) for row in rows]


@pytest.mark.usefixtures("as_operator")
def test_onboarding_activates_every_contract_once(
    running: RunningPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [read for folder in tenant_folders(ROOT) for read in read_tenant_files([folder])]
    onboard_tenants(ROOT)
    first = capsys.readouterr().out
    events = asyncio.run(_contract_events(running))

    drafts = {
        (e.project_id, e.payload.contract_id): e.payload
        for e in events
        if isinstance(e.payload, ContractDraftCreated)
    }
    activated = {
        (e.project_id, e.payload.contract_id): e.payload
        for e in events
        if isinstance(e.payload, ContractActivated)
    }
    assert set(activated) == {(read.project, read.contract) for read in files}
    for read in files:
        key = (read.project, read.contract)
        assert drafts[key].body == read.body
        assert drafts[key].author == AUTHOR
        active = activated[key]
        assert active.revision == 1
        assert active.superseded_revision is None
        needed = 2 if read.family in TWO_SIGNATURES else 1
        assert len(active.signers) == needed
        assert AUTHOR not in active.signers
        line = f"{read.project}/{read.contract}: revision 1 active ({read.family}, signed by "
        assert line in first

    onboard_tenants(ROOT)
    second = capsys.readouterr().out
    assert len(asyncio.run(_contract_events(running))) == len(events)
    for read in files:
        line = f"{read.project}/{read.contract}: revision 1 already active ({read.family})"
        assert line in second
    assert "Traceback" not in first + second
