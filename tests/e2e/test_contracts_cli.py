"""`awooop contracts` against a running platform: a policy contract applied from a file
(twice: the second answers the same revision and appends nothing), published, signed
by two people, activated; every refusal is one line `awooop: error: …`, exit 2. The
read verbs (`list`, `show`, `diff`) show the contracts the projector folded; the demo
tenants of `deploy/contracts` onboard once, and onboarding them again changes nothing.

The same platform serves the approval command API at the `approval_url` it records in
`platform.json`: a contract drafted, published, signed and activated there reaches
`awooop.contract.events.v1` through the approval relay, signed with the key the embedded
stack generated, which only the approval process holds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from awooop.cli.demo import onboard_tenants
from awooop.cli.onboarding import read_tenant_files, tenant_folders
from awooop.contracts.events.payloads.contract import ContractActivated, ContractDraftCreated
from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.registries.topics import Topics
from awooop.infra.settings import asyncpg_dsn
from awooop.security.api_tokens import mint_api_token
from awooop.security.signing_keys import SigningKey
from support.platform_procs import RunningPlatform, own_platform, process_environ
from support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e

PROJECT = "e2e-contracts-cli"
CONTRACT = "payments-policy"
LISTED = "e2e-contracts-list"
"""The project of the listing test: its policy is a project's second otherwise, which the
approval service refuses while `payments-policy` is active (decision 0072)."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with own_platform(tmp_path_factory.mktemp("contracts-cli") / "home") as platform:
        yield platform


def _policy_file(
    folder: Path, contract: str = CONTRACT, project: str = PROJECT, **changes: object
) -> Path:
    fixture = next(
        f for f in CONTRACT_FAMILIES["policy"].fixtures("valid") if f.name == "full.json"
    )
    body = json.loads(fixture.read_text(encoding="utf-8")) | changes
    path = folder / f"{contract}-{len(changes)}.json"
    path.write_text(json.dumps({"project": project, "contract": contract, "body": body}))
    return path


async def _approval_events(running: RunningPlatform) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(running.env["AWOOOP_DATABASE_URL"]))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM approval.events")
        return count
    finally:
        await conn.close()


def _refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refusal, after checking it is one line with exit 2."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("awooop: error: "), lines[0]
    return lines[0]


async def test_a_policy_contract_is_applied_signed_by_two_and_activated(
    running: RunningPlatform, tmp_path: Path
) -> None:
    path = _policy_file(tmp_path)
    who = ("--as", "carol")
    head = f"{PROJECT}/{CONTRACT}: revision 1"

    applied = running.cli("contracts", "apply", str(path), *who)
    assert applied.stdout.strip() == f"{head} drafted (policy)"
    before = await _approval_events(running)
    again = running.cli("contracts", "apply", str(tmp_path), *who)
    assert again.stdout.strip() == f"{head} drafted (policy)"
    assert await _approval_events(running) == before

    ids = (CONTRACT, "1", "--project", PROJECT)
    published = running.cli("contracts", "publish", *ids, *who)
    assert published.stdout.startswith(f"{head} published (body sha256 ")
    signed = running.cli("contracts", "sign", *ids, "--as", "alice")
    assert signed.stdout.strip() == f"{head} signed (1 of 2 signatures: alice)"

    early = _refused(running.cli("contracts", "activate", *ids, *who, check=False))
    assert "E-CONTRACT-STATE" in early
    assert "1 of the 2 signatures" in early

    by_author = _refused(running.cli("contracts", "sign", *ids, *who, check=False))
    assert "E-CONTRACT-SIGNER-AUTHOR" in by_author
    assert "'carol' wrote revision 1" in by_author

    running.cli("contracts", "sign", *ids, "--as", "bob")
    activated = running.cli("contracts", "activate", *ids, *who)
    assert activated.stdout.strip() == f"{head} active (signed by alice, bob)"
    assert "Traceback" not in activated.stderr + signed.stderr + applied.stderr


def test_refusals_before_and_at_the_api_are_one_line(
    running: RunningPlatform, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"project: {PROJECT}\nbody: {{family: policy}}\n")
    line = _refused(running.cli("contracts", "apply", str(broken), check=False))
    assert f"{broken}: no contract" in line

    unknown = ("contracts", "publish", "no-such-contract", "1", "--project", PROJECT)
    assert "E-CONTRACT-UNKNOWN" in _refused(running.cli(*unknown, check=False))

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(f"project: {PROJECT}\ncontract: bad\nbody: {{family: policy}}\n")
    running.cli("contracts", "apply", str(invalid))
    refused = _refused(
        running.cli("contracts", "publish", "bad", "1", "--project", PROJECT, check=False)
    )
    assert "E-CONTRACT-BODY-INVALID" in refused

    wrong = running.cli(
        "contracts", "publish", "bad", "1", "--project", PROJECT, "--token", "x", check=False
    )
    assert "E-API-UNAUTHORIZED" in _refused(wrong)


def _listed(running: RunningPlatform, contract: str, latest: int) -> list[str]:
    """`contracts list` once the projector has folded `latest` revisions of `contract`."""
    deadline = time.monotonic() + 60
    while True:
        listed = running.cli("contracts", "list", "--project", LISTED).stdout.splitlines()
        rows = [line.split() for line in listed if line.split()[:1] == [contract]]
        if rows and rows[0][6] == str(latest):
            return rows[0]
        assert time.monotonic() < deadline, f"{contract} never listed at {latest}: {listed}"
        time.sleep(0.5)


def test_list_show_and_diff_read_the_projected_contract(
    running: RunningPlatform, tmp_path: Path
) -> None:
    contract, who = "limits-policy", ("--as", "carol")
    first = _policy_file(tmp_path, contract, LISTED)
    running.cli("contracts", "apply", str(first), *who)
    ids = (contract, "1", "--project", LISTED)
    running.cli("contracts", "publish", *ids, *who)
    for signer in ("alice", "bob"):
        running.cli("contracts", "sign", *ids, "--as", signer)
    running.cli("contracts", "activate", *ids, *who)
    second = _policy_file(tmp_path, contract, LISTED, approvals_required=3)
    running.cli("contracts", "apply", str(second), *who)

    row = _listed(running, contract, latest=2)
    assert row[1:6] == ["policy", "active", "active", "1", "latest"]
    drafts = running.cli("contracts", "list", "--project", LISTED, "--lifecycle", "draft")
    assert contract not in drafts.stdout  # listed by its active revision's state

    shown = running.cli("contracts", "show", contract, "--project", LISTED).stdout
    lines = shown.splitlines()
    assert lines[0].startswith(f"contract {LISTED}/{contract}  policy  active  active 1")
    assert any(
        "revision 1  active" in line and "signed by alice, bob  signature valid" in line
        for line in lines
    ), shown
    assert any("revision 2  draft" in line and "not published" in line for line in lines)
    detail = json.loads(
        running.cli("contracts", "show", contract, "--project", LISTED, "--json").stdout
    )
    assert detail["revisions"][1]["body"]["approvals_required"] == 3

    diff = running.cli("contracts", "diff", contract, "1", "2", "--project", LISTED, check=False)
    assert diff.returncode == 1, diff.stderr
    assert diff.stdout.splitlines()[:2] == [f"--- {contract}@1", f"+++ {contract}@2"]
    assert '-  "approvals_required": 2,' in diff.stdout
    assert '+  "approvals_required": 3,' in diff.stdout
    same = running.cli("contracts", "diff", contract, "--file", str(first), check=False)
    assert (same.returncode, same.stdout) == (0, "")
    changed = running.cli("contracts", "diff", contract, "--file", str(second), check=False)
    assert changed.returncode == 1
    assert changed.stdout.startswith(f"--- {contract}@1 (active)\n+++ {second}\n")

    unknown = running.cli("contracts", "show", "no-such", "--project", LISTED, check=False)
    assert "HTTP 404: contract 'no-such' not found" in _refused(unknown)
    missing = running.cli("contracts", "diff", contract, "1", "7", "--project", LISTED, check=False)
    assert "has no revision 7 (it has 1, 2)" in _refused(missing)


# -- onboarding the tenants of deploy/contracts, as `make run` does --------------------

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "contracts"
AUTHOR = "operator:onboarding-e2e"
TWO_SIGNATURES = {"policy", "budget"}


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
def test_onboarding_the_demo_tenants_activates_every_contract_once(
    running: RunningPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [read for folder in tenant_folders(ROOT) for read in read_tenant_files([folder])]
    onboard_tenants(ROOT)
    first = capsys.readouterr().out
    tenants = {read.project for read in files}
    events = [e for e in asyncio.run(_contract_events(running)) if e.project_id in tenants]

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
    again = [e for e in asyncio.run(_contract_events(running)) if e.project_id in tenants]
    assert len(again) == len(events)
    for read in files:
        line = f"{read.project}/{read.contract}: revision 1 already active ({read.family})"
        assert line in second
    assert "Traceback" not in first + second


# -- the approval command API over HTTP, as `awooop up` records it -----------------------

HTTP_PROJECT = "e2e-contracts"


def _agent_body() -> dict[str, Any]:
    fixture = next(f for f in CONTRACT_FAMILIES["agent"].fixtures("valid") if f.name == "full.json")
    body: dict[str, Any] = json.loads(fixture.read_text(encoding="utf-8"))
    return body


async def test_an_agent_contract_activated_over_http_reaches_the_contract_topic(
    running: RunningPlatform,
) -> None:
    recorded = json.loads((running.home / "platform.json").read_text())
    assert recorded["approval_url"] == running.platform.approval_url
    key_spec = (running.home / "contract-signing.key").read_text().strip()
    held = {
        name: process_environ(p.pid).get("AWOOOP_CONTRACT_SIGNING_KEY")
        for name, p in running.platform.processes.items()
    }
    assert held.pop("approval") == key_spec
    assert set(held.values()) == {None}
    secret = (running.home / "api-jwt.secret").read_text().strip()

    async def post(path: str, subject: str, **body: Any) -> httpx.Response:
        token = mint_api_token(
            secret, subject=subject, projects=[HTTP_PROJECT], roles=["contract_admin"]
        )
        return await client.post(
            f"/v1/contracts/{HTTP_PROJECT}/support-bot/{path}",
            json={"request_id": f"{path}-{subject}", **body},
            headers={"Authorization": f"Bearer {token}"},
        )

    async with httpx.AsyncClient(base_url=recorded["approval_url"], timeout=10.0) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/v1/contracts/{project_id}/{contract_id}/drafts" in paths
        drafted = await post("drafts", "user:alice", family="agent", body=_agent_body())
        assert drafted.status_code == 201, drafted.text
        assert (await post("revisions/1/publish", "user:alice")).status_code == 200
        assert (await post("revisions/1/signatures", "user:bob")).status_code == 200
        activated = await post("revisions/1/activate", "user:bob")
        assert activated.status_code == 200, activated.text

    async with TopicReader(
        running.env["AWOOOP_KAFKA_BOOTSTRAP"], Topics.CONTRACT_EVENTS.name
    ) as reader:
        ours = lambda seen: [e for e in seen if e.project_id == HTTP_PROJECT]  # noqa: E731
        seen = await reader.until(lambda seen: len(ours(seen)) >= 4, within=30)
    events = ours(seen)
    assert [e.event_type for e in events] == [
        "contract.draft_created",
        "contract.published",
        "contract.signed",
        "contract.activated",
    ]
    assert [e.stream_seq for e in events] == [1, 2, 3, 4]
    signature = events[1].payload.signature
    assert signature.kid == SigningKey.from_spec(key_spec).kid
