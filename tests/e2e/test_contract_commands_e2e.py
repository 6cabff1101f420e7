"""`awooop up`'s platform serves the approval command API at the `approval_url` it records
in `platform.json`; a contract drafted, published, signed and activated there reaches
`awooop.contract.events.v1` through the approval relay, signed with the key the embedded
stack generated, which only the approval process holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.contracts.registries.topics import Topics
from awooop.security.api_tokens import mint_api_token
from awooop.security.signing_keys import SigningKey
from support.platform_procs import own_platform
from support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e

PROJECT = "e2e-contracts"


def _agent_body() -> dict[str, Any]:
    fixture = next(f for f in CONTRACT_FAMILIES["agent"].fixtures("valid") if f.name == "full.json")
    body: dict[str, Any] = json.loads(fixture.read_text(encoding="utf-8"))
    return body


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {name.decode(): value.decode(errors="replace") for name, value in pairs}


async def test_an_agent_contract_activated_over_http_reaches_the_contract_topic(
    tmp_path: Path,
) -> None:
    with own_platform(tmp_path / "home") as running:
        recorded = json.loads((running.home / "platform.json").read_text())
        assert recorded["approval_url"] == running.platform.approval_url
        key_spec = (running.home / "contract-signing.key").read_text().strip()
        held = {
            name: _environ(p.pid).get("AWOOOP_CONTRACT_SIGNING_KEY")
            for name, p in running.platform.processes.items()
        }
        assert held.pop("approval") == key_spec
        assert set(held.values()) == {None}
        secret = (running.home / "api-jwt.secret").read_text().strip()

        async def post(path: str, subject: str, **body: Any) -> httpx.Response:
            token = mint_api_token(
                secret, subject=subject, projects=[PROJECT], roles=["contract_admin"]
            )
            return await client.post(
                f"/v1/contracts/{PROJECT}/support-bot/{path}",
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
            ours = lambda seen: [e for e in seen if e.project_id == PROJECT]  # noqa: E731
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
