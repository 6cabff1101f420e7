"""Channel events and outbound deliveries on the real broker and Postgres: every kind of
inbound record, the runtime's word on messages and the bridges' delivery reports,
produced to their own topics out of order (a stretch redelivered), become exactly the rows
the pure fold gives; a rebuild equals them; the query API shows every outcome with its
fields, filters and caps the listing, and shows one tenant nothing of another; no secret
a person or an agent wrote is left in any row."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.app import spec
from awooop.projector.domain.channel_events import CHANNEL_OUTCOMES
from awooop.projector.domain.checksums import checksums_of_rows, differences
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.rebuild import Rebuild
from support.channel_envelopes import ChannelTraffic, Event
from support.contract_envelopes import RING
from support.infra import StackUrls, migrated, unique
from support.projector_checks import projector_past, send_in_order, stored_checksums
from support.query_api import api_client, viewer

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
SECRET = "channel-read-model-test-secret-of-32-bytes"
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
TABLES = ("channel_events", "outbound_messages")
CARD, EMAIL, API_KEY = "4111 1111 1111 1111", "jane.doe@example.com", "sk-" + "Zx9Yw8Vu7T" * 4
SECRETS = (CARD, "4111111111111111", EMAIL, API_KEY)
LEAKY = f"pay with {CARD}, mail {EMAIL}, key {API_KEY}"


@dataclass(frozen=True)
class Projected:
    tenant_a: str
    tenant_b: str
    named: dict[str, Event]
    events: list[Event]
    """Every event sent, redelivered ones included."""


def _traffic(a: str) -> tuple[list[Event], dict[str, Event]]:
    t = ChannelTraffic(a, AT)
    n: dict[str, Event] = {}
    n["first"] = t.message("is the database healthy?")
    n["first_started"] = t.started(n["first"])
    n["second"] = t.message("and the cache?")
    n["second_queued"] = t.queued(n["second"], on=n["first"])
    n["second_started"] = t.started(n["second"])
    n["third"] = t.message("hello??", user="43")
    n["third_busy"] = t.busy(n["third"], by=n["first"])
    n["waiting"] = t.message("still there?", user="44")
    n["waiting_queued"] = t.queued(n["waiting"], on=n["first"], seq=7)
    n["fresh"] = t.message("new here", provider="x_1")
    n["percent"] = t.message("odd id", provider="x%2")
    n["plain"] = t.message("plain id", provider="xa1")
    n["button"] = t.button("approve:call-1")
    n["ignored"] = t.ignored("a bot's message", "beep")
    n["duplicate"] = t.duplicate(n["first"], offset=17)
    n["rejected"] = t.rejected("E-INBOUND-INVALID", "payload is not an object", 18, f"{a}:x")
    n["leaky"] = t.message(LEAKY, user="45")
    n["leaky_started"] = t.started(n["leaky"])
    n["reply"] = t.outbound(n["first"], "All healthy.")
    n["reply_sent"] = t.delivery(n["reply"], "sent", ids=("555", "556"), attempts=2)
    n["ask"] = t.outbound(n["first"], "Approve?", kind="approval_request", buttons=("Yes", "No"))
    n["ask_failed"] = t.delivery(
        n["ask"], "failed", code="E-DELIVERY-REFUSED", reason=f"chat gone ({EMAIL})"
    )
    n["leaky_reply"] = t.outbound(n["leaky"], f"Noted: {LEAKY}", buttons=(f"to {EMAIL}",))
    slack = ChannelTraffic(a, AT + dt.timedelta(minutes=5), channel="slack")
    n["slack"] = slack.message("from slack", user="U1", provider="Ev01")
    return [*t.events, *slack.events], n


@pytest.fixture(scope="module")
async def projected(kafka_ready: StackUrls) -> Projected:
    a, b = unique("ca"), unique("cb")
    events, named = _traffic(a)
    theirs = ChannelTraffic(b, AT)
    theirs.started(theirs.message("tenant b's own"))
    # The runtime's word and the reports first, their messages after: each row is fed
    # across batches and topics in the order a slow topic would give.
    late = [e for e in events if e.event_type.startswith(("run.", "channel.delivery"))]
    first = [e for e in events if e not in late]
    redelivered = [named["third_busy"], named["reply_sent"], named["first"], named["second"]]
    sent_order = [*late, *first, *theirs.events, *redelivered]
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(kafka_ready.settings().kafka, client_id="channel-read-model-test")
    await producer.start()
    try:
        sent = await send_in_order(producer, late)
        assert runner.pool is not None
        await projector_past(runner.pool, sent)
        sent = await send_in_order(producer, sent_order[len(late) :])
        await projector_past(runner.pool, sent)
    finally:
        await producer.stop()
        await runner.stop()
    return Projected(a, b, named, [*events, *theirs.events])


async def test_the_live_rows_are_the_fold_of_the_events(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    live = await stored_checksums(kafka_ready.database, {projected.tenant_a, projected.tenant_b})
    expected = checksums_of_rows(fold_batch(projected.events))
    assert differences(live, expected) == []
    rows = {t: live.tables[t][projected.tenant_a].rows for t in TABLES}
    assert rows == {"channel_events": 13, "outbound_messages": 3}


async def test_a_rebuild_equals_the_live_rows(kafka_ready: StackUrls, projected: Projected) -> None:
    rebuild = Rebuild(KafkaSettings(kafka_ready.kafka), kafka_ready.database, workers=1, ring=RING)
    report = await rebuild.run(dry_run=True)
    mine = {projected.tenant_a, projected.tenant_b}
    ours = [d for d in report.differences if d.project_id in mine]
    assert ours == [], [d.describe("live", "rebuilt") for d in ours]


async def test_no_secret_is_left_in_any_channel_row(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(kafka_ready.database))
    try:
        for table in (*TABLES, "runs", "timeline"):
            mine = f"SELECT t::text AS row FROM projector.{table} t WHERE project_id = $1"
            rows = [r["row"] for r in await conn.fetch(mine, projected.tenant_a)]
            assert rows, table
            for secret in SECRETS:
                assert not [row for row in rows if secret in row], (table, secret)
            marked = [row for row in rows if "[REDACTED:" in row]
            assert marked or table == "timeline", table  # summaries carry no text at all
    finally:
        await conn.close()


@pytest.fixture
async def client(kafka_ready: StackUrls) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(kafka_ready.settings(), SECRET) as http:
        yield http


def auth(*projects: str) -> dict[str, str]:
    return viewer(SECRET, *projects)


async def _events(client: httpx.AsyncClient, project: str, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/v1/channel-events", params=params, headers=auth(project))
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["items"]
    return events


async def test_every_outcome_is_listed_with_its_fields(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    n = projected.named
    events = {e["event_id"]: e for e in await _events(client, projected.tenant_a)}
    assert len(events) == 13

    def of(name: str) -> dict[str, Any]:
        return events[str(n[name].event_id)]

    first = of("first")
    assert (first["outcome"], first["run_id"], first["kind"]) == (
        "run_started",
        str(n["first"].event_id),
        "message",
    )
    assert (first["channel_type"], first["provider_event_id"], first["chat_id"]) == (
        "telegram",
        "7:1",
        "42",
    )
    assert first["display_text"] == "is the database healthy?"
    assert first["platform_subject_id"] == f"{projected.tenant_a}:telegram:42"
    second = of("second")
    assert (second["outcome"], second["queued_on"]) == ("run_started", str(n["first"].event_id))
    assert (of("third")["outcome"], of("third")["busy_with"]) == ("busy", str(n["first"].event_id))
    waiting = of("waiting")
    assert (waiting["outcome"], waiting["queued_on"]) == ("queued", str(n["first"].event_id))
    assert (of("fresh")["outcome"], of("fresh")["run_id"]) == ("received", None)
    button = of("button")
    assert (button["outcome"], button["display_text"]) == ("button_pressed", "approve:call-1")
    ignored = of("ignored")
    assert (ignored["outcome"], ignored["reason"]) == ("ignored", "a bot's message")
    duplicate = of("duplicate")
    assert (duplicate["outcome"], duplicate["duplicate_of"]) == (
        "duplicate_of",
        str(n["first"].event_id),
    )
    assert (duplicate["record_partition"], duplicate["record_offset"]) == (2, 17)
    rejected = of("rejected")
    assert (rejected["outcome"], rejected["code"], rejected["reason"]) == (
        "rejected",
        "E-INBOUND-INVALID",
        "payload is not an object",
    )
    assert (rejected["record_key"], rejected["record_offset"]) == (f"{projected.tenant_a}:x", 18)
    leaky = of("leaky")["display_text"]
    assert "[REDACTED:" in leaky
    assert all(secret not in leaky for secret in SECRETS)


async def test_the_listing_is_newest_first_and_capped(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a = projected.tenant_a
    every = await _events(client, a)
    keys = [(e["occurred_at"], e["event_id"]) for e in every]
    assert keys == sorted(keys, reverse=True)
    assert every[0]["event_id"] == str(projected.named["slack"].event_id)
    assert [e["event_id"] for e in await _events(client, a, limit=2)] == [
        e["event_id"] for e in every[:2]
    ]
    for wrong in (
        {"limit": 501},
        {"limit": 0},
        {"limit": "many"},
        {"outcome": "lost"},
        {"channel_type": "Tele gram"},
        {"provider_event_id_prefix": "x\x00"},
        {"provider_event_id_prefix": ""},
    ):
        answer = await client.get("/v1/channel-events", params=wrong, headers=auth(a))
        assert answer.status_code == 422, wrong
        assert answer.json()["detail"][0]["loc"][-1] == next(iter(wrong)), answer.json()
    assert len(await _events(client, a, limit=500)) == 13


async def test_the_listing_filters(client: httpx.AsyncClient, projected: Projected) -> None:
    a, n = projected.tenant_a, projected.named

    async def ids(**params: Any) -> set[str]:
        return {e["event_id"] for e in await _events(client, a, **params)}

    def named(*names: str) -> set[str]:
        return {str(n[name].event_id) for name in names}

    assert await ids(outcome="busy") == named("third")
    assert await ids(outcome="queued") == named("waiting")
    assert await ids(outcome="run_started") == named("first", "second", "leaky")
    assert await ids(outcome="received") == named("fresh", "percent", "plain", "slack")
    assert await ids(channel_type="slack") == named("slack")
    assert await ids(channel_type="slack", outcome="run_started") == set()
    # LIKE's wildcards are plain characters in a prefix.
    assert await ids(provider_event_id_prefix="x_") == named("fresh")
    assert await ids(provider_event_id_prefix="x%") == named("percent")
    assert await ids(provider_event_id_prefix="x") == named("fresh", "percent", "plain")
    assert await ids(provider_event_id_prefix="7:1") == named("first", "duplicate")
    assert await ids(provider_event_id_prefix="\\") == set()


async def test_another_tenant_sees_none_of_them(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a, b = projected.tenant_a, projected.tenant_b
    theirs = await _events(client, b)
    assert len(theirs) == 1
    assert theirs[0]["platform_subject_id"] == f"{b}:telegram:42"
    mine = {str(e.event_id) for e in projected.events if e.project_id == a}
    assert not mine & {e["event_id"] for e in theirs}
    for params in ({"outcome": "busy"}, {"provider_event_id_prefix": "x"}):
        assert await _events(client, b, **params) == []
    refused = await client.get("/v1/channel-events", params={"project_id": a}, headers=auth(b))
    assert refused.status_code == 403
    missing = await client.get("/v1/channel-events")
    assert missing.status_code == 401
    first = projected.named["first"].event_id
    assert (await client.get(f"/v1/runs/{first}", headers=auth(b))).status_code == 404


async def test_a_run_shows_its_inbound_events_and_its_deliveries(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    n = projected.named
    answer = await client.get(f"/v1/runs/{n['first'].event_id}", headers=auth(projected.tenant_a))
    assert answer.status_code == 200
    body = answer.json()
    assert body["run"]["trigger_text"] == "is the database healthy?"
    inbound = [(e["event_id"], e["outcome"]) for e in body["inbound"]]
    assert inbound == [
        (str(n["first"].event_id), "run_started"),
        (str(n["second"].event_id), "run_started"),
        (str(n["third"].event_id), "busy"),
        (str(n["waiting"].event_id), "queued"),
        (str(n["duplicate"].event_id), "duplicate_of"),
    ]
    reply, ask = body["outbound"]
    assert (reply["event_id"], reply["text"], reply["status"]) == (
        str(n["reply"].event_id),
        "All healthy.",
        "sent",
    )
    assert (reply["provider_message_ids"], reply["attempts"], reply["reply_to"]) == (
        ["555", "556"],
        2,
        "101",
    )
    assert (ask["kind"], ask["button_labels"], ask["status"], ask["code"]) == (
        "approval_request",
        ["Yes", "No"],
        "failed",
        "E-DELIVERY-REFUSED",
    )
    assert "[REDACTED:email]" in ask["reason"]
    assert ask["reported_at"] is not None
    lines = {e["event_type"] for e in body["timeline"]}
    assert {"channel.outbound_requested", "channel.delivery_reported"} <= lines
    leaky = await client.get(f"/v1/runs/{n['leaky'].event_id}", headers=auth(projected.tenant_a))
    [said] = leaky.json()["outbound"]
    assert (said["status"], said["provider_message_ids"], said["attempts"]) == (None, [], None)
    assert all(secret not in str(said) for secret in SECRETS)


async def test_row_level_security_guards_channel_events(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    api = await asyncpg.connect(
        asyncpg_dsn(kafka_ready.settings().api_database_url()),
        server_settings={"search_path": "projector"},
    )
    try:
        flags = await api.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = "
            "'channel_events' AND relnamespace = 'projector'::regnamespace"
        )
        assert tuple(flags) == (True, True)
        assert await api.fetchval("SELECT count(*) FROM channel_events") == 0  # no tenant set
        async with api.transaction():
            await api.execute("SELECT set_config('app.project_id', $1, true)", projected.tenant_b)
            mine = "SELECT count(*) FROM channel_events WHERE project_id = $1"
            assert await api.fetchval(mine, projected.tenant_a) == 0
            assert await api.fetchval("SELECT count(*) FROM channel_events") == 1
    finally:
        await api.close()


def _fuzzed_queries() -> list[dict[str, Any]]:
    """Query strings drawn by hypothesis, valid and not (drawn up front: the requests are
    made on the test's own event loop)."""
    drawn: list[dict[str, Any]] = []
    choice = st.one_of(st.sampled_from(CHANNEL_OUTCOMES), st.text(max_size=16))
    parameters = st.fixed_dictionaries(
        {},
        optional={
            "channel_type": st.one_of(st.sampled_from(["telegram", "slack"]), st.text(max_size=70)),
            "provider_event_id_prefix": st.one_of(
                st.sampled_from(["7:", "x_", "x%", "\\", "'"]), st.text(max_size=300)
            ),
            "outcome": choice,
            "limit": st.one_of(st.integers(-3, 800), st.text(max_size=4)),
        },
    )

    @settings(max_examples=120, database=None, deadline=None)
    @given(parameters)
    def draw(params: dict[str, Any]) -> None:
        drawn.append(params)

    draw()
    return drawn


async def test_any_query_string_is_answered_or_refused_never_failed(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    headers = auth(projected.tenant_a)
    for params in _fuzzed_queries():
        answer = await client.get("/v1/channel-events", params=params, headers=headers)
        assert answer.status_code in (200, 422), (params, answer.text)
        if answer.status_code == 422:
            assert answer.json()["detail"], params
            continue
        events = answer.json()["items"]
        assert len(events) <= int(params.get("limit", 100))
        for event in events:
            for field, column in (("channel_type", "channel_type"), ("outcome", "outcome")):
                assert field not in params or event[column] == params[field], (params, event)
            prefix = params.get("provider_event_id_prefix")
            assert prefix is None or event["provider_event_id"].startswith(prefix)
