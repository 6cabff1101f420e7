"""The approval service's contract command API on real Postgres (the approval schema,
migrated), served in-process: every effect is counted in the event store and its outbox,
never behind the idempotency table."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from awooop.approval.adapters.contract_commands import load_contract
from awooop.approval.api.app import create_api
from awooop.approval.app import spec
from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.registries.topics import Topics
from awooop.infra.postgres.pools import create_pool
from awooop.security.api_tokens import mint_api_token
from awooop.security.signing_keys import SigningKey, generate_ed25519_keys
from support.contracts import telegram_binding_body
from support.infra import StackUrls, migrated, unique

pytestmark = pytest.mark.integration

SECRET = "contract-commands-test-secret-0123456789"
KEY = SigningKey.from_spec(generate_ed25519_keys("approval-test").signing_spec)
AUTHOR, BOB, CAROL = "user:alice", "user:bob", "user:carol"


def valid_body(family: str, name: str = "full.json") -> dict[str, Any]:
    fixture = next(f for f in CONTRACT_FAMILIES[family].fixtures("valid") if f.name == name)
    body: dict[str, Any] = json.loads(fixture.read_text(encoding="utf-8"))
    return body


@dataclass
class Api:
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    project: str

    async def send(
        self,
        path: str,
        subject: str = AUTHOR,
        *,
        roles: tuple[str, ...] = ("contract_admin",),
        project: str | None = None,
        **body: Any,
    ) -> httpx.Response:
        token = mint_api_token(
            SECRET, subject=subject, projects=[project or self.project], roles=roles
        )
        body.setdefault("request_id", unique("r"))
        return await self.http.post(
            f"/v1/contracts/{self.project}/{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def stored(self, contract: str) -> list[tuple[str, int, str]]:
        """(event type, stream seq, topic) of the contract's stored events, in order."""
        rows = await self.pool.fetch(
            "SELECT stream_seq, topic, data FROM events WHERE stream_id = $1 ORDER BY stream_seq",
            f"{self.project}:{contract}",
        )
        codec = EnvelopeCodec()
        return [(codec.decode(r["data"]).event_type, r["stream_seq"], r["topic"]) for r in rows]

    async def count(self, contract: str) -> int:
        return len(await self.stored(contract))

    async def published_policy(self, contract: str) -> int:
        drafted = await self.send(f"{contract}/drafts", family="policy", body=valid_body("policy"))
        assert drafted.status_code == 201, drafted.text
        revision: int = drafted.json()["revision"]
        published = await self.send(f"{contract}/revisions/{revision}/publish")
        assert published.status_code == 200, published.text
        return revision


@pytest.fixture
async def api(stack_urls: StackUrls) -> AsyncIterator[Api]:
    await migrated(stack_urls.database, spec())
    settings = stack_urls.settings()
    pool = await create_pool(settings.service_database_url("approval"), "approval")
    app = create_api(lambda: pool, jwt_secret=SECRET, signing_key=KEY)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://approval") as http:
            yield Api(http, pool, unique("ct"))
    finally:
        await pool.close()


async def test_a_policy_is_drafted_published_signed_twice_and_activated(api: Api) -> None:
    revision = await api.published_policy("main-policy")
    assert (await api.send(f"main-policy/revisions/{revision}/signatures", BOB)).status_code == 200
    early = await api.send(f"main-policy/revisions/{revision}/activate", BOB)
    assert early.status_code == 409
    assert early.json()["code"] == "E-CONTRACT-STATE"
    assert "1 of the 2 signatures" in early.json()["reason"]
    signed = await api.send(f"main-policy/revisions/{revision}/signatures", CAROL)
    assert signed.status_code == 200
    assert signed.json()["signers"] == [BOB, CAROL]
    active = await api.send(f"main-policy/revisions/{revision}/activate", CAROL)
    assert active.status_code == 200, active.text
    assert active.json()["state"] == "active"
    assert active.json()["superseded_revision"] is None
    topic = Topics.CONTRACT_EVENTS.name
    assert await api.stored("main-policy") == [
        ("contract.draft_created", 1, topic),
        ("contract.published", 2, topic),
        ("contract.signed", 3, topic),
        ("contract.signed", 4, topic),
        ("contract.activated", 5, topic),
    ]
    queued = await api.pool.fetchval(
        "SELECT count(*) FROM outbox o JOIN events e USING (position) WHERE e.stream_id = $1",
        f"{api.project}:main-policy",
    )
    assert queued == 5
    envelope = EnvelopeCodec().decode(
        await api.pool.fetchval(
            "SELECT data FROM events WHERE stream_id = $1 AND stream_seq = 1",
            f"{api.project}:main-policy",
        )
    )
    assert (envelope.actor, envelope.producer) == (AUTHOR, "approval")
    assert envelope.correlation_id == f"{api.project}:main-policy"
    key = await api.pool.fetchval(
        "SELECT key FROM events WHERE stream_id = $1 LIMIT 1", f"{api.project}:main-policy"
    )
    assert key == f"{api.project}:main-policy".encode()


async def test_signers_are_refused_as_author_repeated_or_without_the_role(api: Api) -> None:
    revision = await api.published_policy("p")
    path = f"p/revisions/{revision}/signatures"
    by_author = await api.send(path, AUTHOR)
    assert (by_author.status_code, by_author.json()["code"]) == (409, "E-CONTRACT-SIGNER-AUTHOR")
    assert (await api.send(path, BOB)).status_code == 200
    again = await api.send(path, BOB)
    assert (again.status_code, again.json()["code"]) == (409, "E-CONTRACT-SIGNER-REPEATED")
    no_role = await api.send(path, CAROL, roles=("viewer",))
    assert (no_role.status_code, no_role.json()["code"]) == (403, "E-API-FORBIDDEN")
    assert "contract_admin" in no_role.json()["reason"]
    elsewhere = await api.send(path, CAROL, project=unique("other"))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "E-API-FORBIDDEN")
    unsigned = await api.http.post(f"/v1/contracts/{api.project}/{path}", json={"request_id": "x"})
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "E-API-UNAUTHORIZED")
    assert await api.count("p") == 3  # draft, published, Bob's signature


async def test_an_invalid_body_is_refused_with_its_json_pointers(api: Api) -> None:
    body = valid_body("policy")
    body["approvals_required"] = "two"
    del body["mode"]
    drafted = await api.send("bad/drafts", family="policy", body=body)
    assert drafted.status_code == 201
    refused = await api.send("bad/revisions/1/publish")
    assert (refused.status_code, refused.json()["code"]) == (422, "E-CONTRACT-BODY-INVALID")
    pointers = {error.split(":", 1)[0] for error in refused.json()["errors"]}
    assert {"/approvals_required", "(root)"} <= pointers, refused.json()
    unknown = await api.send("bad/revisions/7/publish")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "E-CONTRACT-UNKNOWN")
    too_long = await api.send("bad/revisions/1/publish", request_id="r" * 129)
    assert (too_long.status_code, too_long.json()["code"]) == (422, "E-API-REQUEST-INVALID")
    assert any(e.startswith("/body/request_id:") for e in too_long.json()["errors"])
    assert await api.count("bad") == 1


async def test_a_repeated_request_id_answers_again_and_appends_nothing(api: Api) -> None:
    body = valid_body("agent")
    first = await api.send("bot/drafts", request_id="draft-1", family="agent", body=body)
    again = await api.send("bot/drafts", request_id="draft-1", family="agent", body=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert await api.count("bot") == 1
    other = {**body, "note": "another body"}
    reused = await api.send("bot/drafts", request_id="draft-1", family="agent", body=other)
    assert (reused.status_code, reused.json()["code"]) == (409, "E-CONTRACT-REQUEST-REUSED")
    on_publish = await api.send("bot/revisions/1/publish", request_id="draft-1")
    assert on_publish.status_code == 409
    twins = await asyncio.gather(
        *(api.send("bot/revisions/1/publish", request_id="pub-1") for _ in range(3))
    )
    assert [t.status_code for t in twins] == [200, 200, 200]
    assert await api.count("bot") == 2


async def test_racing_activations_leave_exactly_one_active_revision(api: Api) -> None:
    for _ in range(2):
        revision = await api.published_policy("raced")
        for signer in (BOB, CAROL):
            path = f"raced/revisions/{revision}/signatures"
            assert (await api.send(path, signer)).status_code == 200
    answers = await asyncio.gather(
        api.send("raced/revisions/1/activate", BOB),
        api.send("raced/revisions/2/activate", CAROL),
        api.send("raced/revisions/2/activate", BOB),
    )
    assert sorted(a.status_code for a in answers).count(200) >= 1
    async with api.pool.acquire() as conn:
        contract = await load_contract(conn, api.project, "raced")
    actives = [r.number for r in contract.revisions.values() if r.state == "active"]
    assert len(actives) == 1
    activations = [e for e in await api.stored("raced") if e[0] == "contract.activated"]
    assert len(activations) == sum(a.status_code == 200 for a in answers)


async def test_an_unreachable_database_is_a_503_with_a_code(stack_urls: StackUrls) -> None:
    settings = stack_urls.settings()
    pool = await create_pool(settings.service_database_url("approval"), "approval")
    await pool.close()
    app = create_api(lambda: pool, jwt_secret=SECRET, signing_key=KEY)
    project = unique("down")
    token = mint_api_token(SECRET, subject=AUTHOR, projects=[project], roles=["contract_admin"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://approval"
    ) as http:
        answer = await http.post(
            f"/v1/contracts/{project}/c/drafts",
            json={"request_id": "r1", "family": "agent", "body": {}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (answer.status_code, answer.json()["code"]) == (503, "E-API-UNAVAILABLE")


# A bot belongs to one project: the approval service refuses to activate another
# project's binding of a bot whose binding is active (`E-CONTRACT-CHANNEL-HELD`, the
# holder never named), lets it go when the holder's binding is retired or moves to
# another bot, and lets one of racing tenants win. A refused activation appends nothing.


def _bot() -> str:
    return str(secrets.randbelow(10**18) + 10**18)


def _other(api: Api) -> Api:
    return Api(api.http, api.pool, unique("cb"))


async def _signed(api: Api, contract: str, body: dict[str, Any]) -> int:
    drafted = await api.send(f"{contract}/drafts", family="channel_binding", body=body)
    assert drafted.status_code == 201, drafted.text
    revision: int = drafted.json()["revision"]
    assert (await api.send(f"{contract}/revisions/{revision}/publish")).status_code == 200
    signed = await api.send(f"{contract}/revisions/{revision}/signatures", BOB)
    assert signed.status_code == 200, signed.text
    return revision


async def _activate(api: Api, contract: str, body: dict[str, Any]) -> httpx.Response:
    revision = await _signed(api, contract, body)
    return await api.send(f"{contract}/revisions/{revision}/activate", BOB)


async def test_another_projects_binding_of_a_held_bot_is_refused_and_appends_nothing(
    api: Api,
) -> None:
    bot = _bot()
    assert (await _activate(api, "telegram", telegram_binding_body(bot))).status_code == 200
    rival = _other(api)
    one_chat = telegram_binding_body(bot)
    one_chat["channel"]["chat_ids"] = ["-5"]
    refused = await _activate(rival, "telegram", one_chat)
    assert refused.status_code == 409
    assert refused.json()["code"] == "E-CONTRACT-CHANNEL-HELD"
    assert bot in refused.json()["reason"]
    assert api.project not in refused.json()["reason"]
    assert [e[0] for e in await rival.stored("telegram")][-1] == "contract.signed"

    # The holder's own second binding of the bot, and the rival's of another bot, pass.
    mine = telegram_binding_body(bot, agent_id="vip")
    mine["channel"]["chat_ids"] = ["-5"]
    assert (await _activate(api, "vip-chat", mine)).status_code == 200
    assert (await _activate(rival, "own", telegram_binding_body(_bot()))).status_code == 200


async def test_a_retired_or_moved_binding_lets_its_bot_go(api: Api) -> None:
    first, second = _bot(), _bot()
    assert (await _activate(api, "telegram", telegram_binding_body(first))).status_code == 200
    assert (await _activate(api, "second", telegram_binding_body(second))).status_code == 200
    rival = _other(api)
    pending = await _signed(rival, "telegram", telegram_binding_body(first))
    refused = await rival.send(f"telegram/revisions/{pending}/activate", BOB)
    assert refused.json()["code"] == "E-CONTRACT-CHANNEL-HELD"

    # The holder's next revision binds a third bot: the first is free.
    moved = await _activate(api, "telegram", telegram_binding_body(_bot()))
    assert moved.status_code == 200, moved.text
    assert moved.json()["superseded_revision"] == 1
    taken = await rival.send(f"telegram/revisions/{pending}/activate", BOB)
    assert taken.status_code == 200, taken.text

    # Retiring the active binding of the second bot frees it; retiring a revision that
    # is not active (a draft) frees nothing.
    body = telegram_binding_body(_bot())
    draft = await api.send("second/drafts", family="channel_binding", body=body)
    retire_draft = f"second/revisions/{draft.json()['revision']}/retire"
    assert (await api.send(retire_draft)).status_code == 200
    again = await _signed(rival, "second", telegram_binding_body(second))
    still = await rival.send(f"second/revisions/{again}/activate", BOB)
    assert still.json()["code"] == "E-CONTRACT-CHANNEL-HELD"
    assert (await api.send("second/revisions/1/retire")).status_code == 200
    freed = await rival.send(f"second/revisions/{again}/activate", BOB)
    assert freed.status_code == 200, freed.text


async def test_two_projects_racing_for_one_bot_leave_one_holder(api: Api) -> None:
    bot = _bot()
    rivals = [_other(api) for _ in range(4)]
    revisions = [await _signed(r, "telegram", telegram_binding_body(bot)) for r in rivals]
    answers = await asyncio.gather(
        *(
            r.send(f"telegram/revisions/{n}/activate", BOB)
            for r, n in zip(rivals, revisions, strict=True)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    holders = await api.pool.fetch(
        "SELECT project_id FROM channel_bots WHERE bot = $1", f"telegram|{bot}"
    )
    winner = next(r for r, a in zip(rivals, answers, strict=True) if a.status_code == 200)
    assert [row["project_id"] for row in holders] == [winner.project]


# What a contract defines for its project (an agent, a tool, the policy, a chat) is held
# by one active contract: a second contract defining the same is refused at activation
# (`E-CONTRACT-CLAIM-HELD`, naming the holder) until the holder is retired.


async def _activated(api: Api, contract: str, family: str, body: dict[str, Any]) -> httpx.Response:
    drafted = await api.send(f"{contract}/drafts", family=family, body=body)
    assert drafted.status_code == 201, drafted.text
    revision = drafted.json()["revision"]
    assert (await api.send(f"{contract}/revisions/{revision}/publish")).status_code == 200
    for signer in (BOB, CAROL)[: 2 if family in ("policy", "budget") else 1]:
        signed = await api.send(f"{contract}/revisions/{revision}/signatures", signer)
        assert signed.status_code == 200, signed.text
    return await api.send(f"{contract}/revisions/{revision}/activate", BOB)


async def test_a_second_contract_defining_what_an_active_one_defines_is_refused(
    api: Api,
) -> None:
    agent = valid_body("agent")
    assert (await _activated(api, "ops-agent", "agent", agent)).status_code == 200
    copy = await _activated(api, "ops-agent-copy", "agent", agent)
    assert copy.status_code == 409
    assert copy.json()["code"] == "E-CONTRACT-CLAIM-HELD"
    assert "agent 'ops-bot_2'" in copy.json()["reason"]
    assert "'ops-agent'" in copy.json()["reason"]
    assert [e[0] for e in await api.stored("ops-agent-copy")][-1] == "contract.signed"

    # The holder's own next revision passes; a project's second policy does not.
    again = await _activated(api, "ops-agent", "agent", {**agent, "max_attempts": 2})
    assert again.status_code == 200, again.text
    assert (await _activated(api, "policy", "policy", valid_body("policy"))).status_code == 200
    second = await _activated(api, "policy-2", "policy", valid_body("policy"))
    assert (second.status_code, second.json()["code"]) == (409, "E-CONTRACT-CLAIM-HELD")
    assert "the project's policy" in second.json()["reason"]

    # Retired, the holder lets the agent go.
    assert (await api.send("ops-agent/revisions/2/retire")).status_code == 200
    assert (await api.send("ops-agent-copy/revisions/1/activate", BOB)).status_code == 200


async def test_racing_contracts_for_one_claim_leave_one_holder(api: Api) -> None:
    tool = valid_body("tool")
    contracts = [f"tool-{n}" for n in range(4)]
    for contract in contracts:
        drafted = await api.send(f"{contract}/drafts", family="tool", body=tool)
        assert (await api.send(f"{contract}/revisions/1/publish")).status_code == 200
        assert drafted.status_code == 201
        assert (await api.send(f"{contract}/revisions/1/signatures", BOB)).status_code == 200
    answers = await asyncio.gather(
        *(api.send(f"{contract}/revisions/1/activate", BOB) for contract in contracts)
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    holders = await api.pool.fetch(
        "SELECT contract_id FROM contract_claims WHERE project_id = $1", api.project
    )
    winner = next(c for c, a in zip(contracts, answers, strict=True) if a.status_code == 200)
    assert [row["contract_id"] for row in holders] == [winner]


async def test_retiring_a_holder_passes_its_claim_to_a_contract_that_lost_it_before(
    api: Api,
) -> None:
    """Two contracts defining one agent from before the table existed: the readers keep
    the first. Retired, the first hands the agent to the second, as the readers do, so a
    third is still refused."""
    agent = valid_body("agent")
    assert (await _activated(api, "first", "agent", agent)).status_code == 200
    forget = "DELETE FROM contract_claims WHERE project_id = $1"
    await api.pool.execute(forget, api.project)  # as before the table
    assert (await _activated(api, "second", "agent", agent)).status_code == 200
    await api.pool.execute(forget, api.project)
    await api.pool.execute(
        "INSERT INTO contract_claims VALUES ($1, 'agent|ops-bot_2', 'first')", api.project
    )  # what the table's migration makes of the two: the first activated holds it
    assert (await api.send("first/revisions/1/retire")).status_code == 200
    held = await api.pool.fetch(
        "SELECT claim, contract_id FROM contract_claims WHERE project_id = $1", api.project
    )
    assert [tuple(row) for row in held] == [("agent|ops-bot_2", "second")]
    third = await _activated(api, "third", "agent", agent)
    assert (third.status_code, third.json()["code"]) == (409, "E-CONTRACT-CLAIM-HELD")
    assert "'second'" in third.json()["reason"]
