"""Outbound delivery against the session stack and the fake chat APIs: outbound records in,
one Telegram or Slack message each (counted at the fake), one delivery report each.

One ingress runner serves the module, its outbound job talking to the fake through
``httpx.ASGITransport``. The runner provisions the shared schema ``ingress`` and the
shared group ``awooop.ingress.outbound``, so the module keeps to its own projects and
every test to its own chats.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import RecordMetadata, TopicPartition

from awooop.contracts.events.payloads.channel import Button, DeliveryReported, OutboundRequested
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.dead_letter import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ERROR_CODE,
    DLQ_HEADER_ORIGIN_OFFSET,
)
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer, partition_for
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import asyncpg_dsn
from awooop.ingress.app import spec
from awooop.ingress.fake_chat_api import create_app
from awooop.ingress.fake_chat_state import FakeChatState
from awooop.ingress.outbound.job import OutboundJob
from awooop.ingress.outbound.rendering import TELEGRAM_TEXT_LIMIT, utf16_units
from awooop.ingress.outbound.settings import OutboundSettings
from awooop.ingress.outbound.subscriber import OUTBOUND_GROUP
from awooop.ingress.outbound.worker import OUTBOUND_OUTAGE
from awooop.security.tenant_credentials import env_variable_name
from support.contracts import bot_of, publish_contracts, slack_binding_body, telegram_binding_body
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

OUTBOUND = Topics.CHANNEL_OUTBOUND.name
DELIVERY = Topics.CHANNEL_DELIVERY.name
CODEC = EnvelopeCodec()
FAKE = "http://fake-chat"
APPROVE = (Button(label="Approve", value="approve:7"), Button(label="Deny", value="deny:7"))


@dataclass
class Outbound:
    """The module's running ingress, its fake chat APIs and its project."""

    urls: StackUrls
    runner: ServiceRunner
    fake: FakeChatState
    transport: httpx.AsyncBaseTransport
    project: str
    miswired: str
    """A project whose Telegram token is another bot's, and whose Slack token is unset."""

    @property
    def pool(self) -> Any:
        assert self.runner.pool is not None
        return self.runner.pool


@pytest.fixture(scope="module")
async def outbound(kafka_ready: StackUrls) -> AsyncIterator[Outbound]:
    project = unique("p")
    telegram_token = f"{bot_of(project)}:{secrets.token_urlsafe(24)}"
    slack_token = f"xoxb-{secrets.token_hex(12)}"
    app, fake = create_app({telegram_token: "outbound-bot"}, {slack_token: "outbound-app"})
    transport = httpx.ASGITransport(app=app)
    await publish_contracts(
        kafka_ready.settings(),
        project,
        {
            "telegram": telegram_binding_body(bot_of(project)),
            "slack": slack_binding_body(f"T{project[1:].upper()}", "A0OUTBOUND"),
        },
    )
    miswired = unique("p")
    await publish_contracts(
        kafka_ready.settings(),
        miswired,
        {
            "telegram": telegram_binding_body(bot_of(miswired)),
            "slack": slack_binding_body(f"T{miswired[1:].upper()}", "A0OUTBOUND"),
        },
    )
    job = OutboundJob(
        settings=OutboundSettings(FAKE, f"{FAKE}/api", timeout_seconds=5.0),
        transport=transport,
        env={
            env_variable_name(project, "TELEGRAM_BOT_TOKEN"): telegram_token,
            env_variable_name(project, "SLACK_BOT_TOKEN"): slack_token,
            env_variable_name(miswired, "TELEGRAM_BOT_TOKEN"): telegram_token,
        },
    )
    runner = ServiceRunner(spec(outbound=job), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        yield Outbound(kafka_ready, runner, fake, transport, project, miswired)
    finally:
        await runner.stop()


def telegram_chat() -> str:
    return f"-100{secrets.randbelow(10**9) + 10**9}"


def slack_chat() -> str:
    return f"C{secrets.token_hex(5).upper()}"


def request(
    project: str,
    chat: str,
    *,
    channel: str = "telegram",
    text: str = "All green.",
    kind: str = "final",
    seconds_left: float = 60,
    **fields: Any,
) -> Envelope[OutboundRequested]:
    run_id = uuid.uuid4()
    payload = OutboundRequested(
        run_id=run_id,
        kind=kind,  # type: ignore[arg-type]
        channel_type=channel,  # type: ignore[arg-type]
        chat_id=chat,
        thread_id=fields.get("thread_id"),
        reply_to=fields.get("reply_to"),
        text=text,
        buttons=fields.get("buttons", ()),
        edit_of=fields.get("edit_of"),
        deliver_before=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_left),
    )
    return new_envelope(
        payload,
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=project,
        stream_type="outbound",
        stream_id=f"outbound:{run_id}:1",
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id=str(run_id),
        actor="service:runtime",
        producer="runtime",
    )


def record_of(envelope: Envelope[Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key = f"{envelope.project_id}:{envelope.payload.chat_id}".encode()
    headers = record_headers(envelope, make_traceparent(envelope.trace_id))
    return CODEC.encode(envelope), key, headers


async def produce(
    urls: StackUrls, *records: tuple[bytes, bytes, list[tuple[str, bytes]]]
) -> list[RecordMetadata]:
    producer = create_producer(urls.settings().kafka)
    await producer.start()
    try:
        return [
            await producer.send_and_wait(OUTBOUND, value, key=key, headers=headers)
            for value, key, headers in records
        ]
    finally:
        await producer.stop()


async def finished(ctx: Outbound, envelope: Envelope[Any]) -> dict[str, Any]:
    """The delivery's row once it left ``sending``."""
    query = "SELECT * FROM deliveries WHERE outbound_event_id = $1 AND state <> 'sending'"
    found: list[Any] = []

    async def done() -> bool:
        found[:] = [await ctx.pool.fetchrow(query, envelope.event_id)]
        return found[0] is not None

    await wait_for(done, within=20, message=f"the delivery of {envelope.event_id}")
    return dict(found[0])


async def reports_of(ctx: Outbound, envelope: Envelope[Any]) -> list[Envelope[DeliveryReported]]:
    rows = await ctx.pool.fetch(
        "SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_seq",
        f"delivery:{envelope.event_id}",
    )
    return [CODEC.decode(row["data"]) for row in rows]


async def deliver(ctx: Outbound, envelope: Envelope[Any]) -> DeliveryReported:
    """Produce `envelope`, wait for its outcome; its one report's payload."""
    await produce(ctx.urls, record_of(envelope))
    await finished(ctx, envelope)
    (report,) = await reports_of(ctx, envelope)
    return report.payload


def calls_at(ctx: Outbound, chat: str, method: str | None = None) -> list[dict[str, Any]]:
    return ctx.fake.received_json(chat=chat, method=method)


async def fault(ctx: Outbound, **fields: Any) -> None:
    async with httpx.AsyncClient(transport=ctx.transport, base_url=FAKE) as client:
        answer = await client.post("/_fake/faults", json=fields)
        assert answer.status_code == 200, answer.text


async def test_a_final_message_is_delivered_once_and_reported_sent_with_its_id(
    outbound: Outbound,
) -> None:
    chat = telegram_chat()
    envelope = request(outbound.project, chat, text="Checkout is healthy.")
    report = await deliver(outbound, envelope)

    (call,) = calls_at(outbound, chat)
    assert (call["method"], call["text"], call["ok"]) == (
        "sendMessage",
        "Checkout is healthy.",
        True,
    )
    assert (report.status, report.attempts, report.code) == ("sent", 1, None)
    assert report.provider_message_ids == (str(call["message_id"]),)
    assert (report.outbound_event_id, report.run_id) == (
        envelope.event_id,
        envelope.payload.run_id,
    )
    row = await finished(outbound, envelope)
    assert (row["state"], row["provider_message_ids"], row["attempts"]) == (
        "sent",
        [str(call["message_id"])],
        1,
    )
    assert row["finished_at"] is not None

    (stored,) = await reports_of(outbound, envelope)
    assert (stored.stream_id, stored.stream_seq) == (f"delivery:{envelope.event_id}", 1)
    assert stored.causation_id == str(envelope.event_id)
    assert (stored.trace_id, stored.correlation_id) == (envelope.trace_id, envelope.correlation_id)
    assert (stored.actor, stored.producer) == ("service:ingress", "ingress")

    # The relay publishes it on the delivery topic, keyed by the chat.
    await wait_for(
        lambda: outbound.pool.fetchval(
            "SELECT count(*) = 0 FROM outbox JOIN events USING (position) WHERE stream_id = $1",
            stored.stream_id,
        ),
        message="the relay to publish the report",
    )
    key = f"{outbound.project}:{chat}".encode()
    published = await read_partition(outbound.urls, DELIVERY, key)
    ours = [r for r in published if CODEC.decode(r.value).event_id == stored.event_id]
    assert len(ours) == 1
    assert dict(ours[0].headers)["event_type"] == b"channel.delivery_reported"


async def test_a_429_is_retried_after_its_retry_after(outbound: Outbound) -> None:
    chat = telegram_chat()
    await fault(outbound, provider="telegram", chat=chat, status=429, retry_after=1, times=1)
    report = await deliver(outbound, request(outbound.project, chat))
    assert [c["status"] for c in calls_at(outbound, chat)] == [429, 200]
    assert (report.status, report.attempts) == ("sent", 2)


async def test_a_slack_5xx_is_retried_after_a_backoff(outbound: Outbound) -> None:
    chat = slack_chat()
    await fault(outbound, provider="slack", chat=chat, status=500, times=1)
    report = await deliver(outbound, request(outbound.project, chat, channel="slack"))
    assert [c["status"] for c in calls_at(outbound, chat)] == [500, 200]
    assert (report.status, report.attempts) == ("sent", 2)
    assert report.provider_message_ids == (calls_at(outbound, chat)[-1]["message_id"],)


async def test_a_403_is_failed_refused_without_a_retry(outbound: Outbound) -> None:
    chat = telegram_chat()
    await fault(outbound, provider="telegram", chat=chat, status=403, times=1)
    report = await deliver(outbound, request(outbound.project, chat))
    assert len(calls_at(outbound, chat)) == 1
    assert (report.status, report.code, report.attempts) == ("failed", "E-DELIVERY-REFUSED", 1)
    assert report.reason == "HTTP 403: Forbidden: bot was blocked by the user"


async def test_a_stale_record_is_reported_expired_without_a_call(outbound: Outbound) -> None:
    chat = telegram_chat()
    report = await deliver(outbound, request(outbound.project, chat, seconds_left=-1))
    assert calls_at(outbound, chat) == []
    assert (report.status, report.code, report.attempts) == ("expired", "E-DELIVERY-EXPIRED", 0)


async def test_every_record_produced_twice_posts_one_message(outbound: Outbound) -> None:
    telegram, slack = telegram_chat(), slack_chat()
    first = request(outbound.project, telegram, text="once on telegram")
    second = request(outbound.project, slack, channel="slack", text="once on slack")
    last = request(outbound.project, telegram, text="the last one")
    last_slack = request(outbound.project, slack, channel="slack", text="the last on slack")
    copies = [record_of(first), record_of(second), record_of(first), record_of(second)]
    await produce(outbound.urls, *copies, record_of(last), record_of(last_slack))
    for envelope in (first, second, last, last_slack):
        await finished(outbound, envelope)
    # A chat's records share a partition: once each chat's last one is done, so are the
    # copies before it, on both chats.
    assert [c["text"] for c in calls_at(outbound, telegram)] == ["once on telegram", "the last one"]
    assert [c["text"] for c in calls_at(outbound, slack)] == ["once on slack", "the last on slack"]
    for envelope in (first, second):
        assert [r.payload.status for r in await reports_of(outbound, envelope)] == ["sent"]


async def test_an_interrupted_delivery_is_failed_unknown_and_never_sent_again(
    outbound: Outbound,
) -> None:
    chat = telegram_chat()
    envelope = request(outbound.project, chat)
    await outbound.pool.execute(
        "INSERT INTO deliveries (outbound_event_id, project_id, run_id, channel_type, chat_id, "
        "state) VALUES ($1, $2, $3, 'telegram', $4, 'sending')",
        envelope.event_id,
        outbound.project,
        envelope.payload.run_id,
        chat,
    )
    report = await deliver(outbound, envelope)
    assert calls_at(outbound, chat) == []
    assert (report.status, report.code, report.attempts) == ("failed", "E-DELIVERY-UNKNOWN", 0)


async def test_a_5000_character_telegram_text_arrives_in_parts_within_the_limit(
    outbound: Outbound,
) -> None:
    chat = telegram_chat()
    text = " ".join(f"line{n}" for n in range(900))[:5000]
    report = await deliver(outbound, request(outbound.project, chat, text=text))
    parts = [c["text"] for c in calls_at(outbound, chat, "sendMessage")]
    assert len(parts) == 2
    assert all(utf16_units(part) <= TELEGRAM_TEXT_LIMIT for part in parts)
    assert " ".join(parts) == text
    assert report.status == "sent"
    assert len(report.provider_message_ids) == 2


async def test_a_threaded_reply_stays_in_its_thread_on_both_channels(outbound: Outbound) -> None:
    telegram, slack = telegram_chat(), slack_chat()
    await deliver(outbound, request(outbound.project, telegram, thread_id="77", reply_to="501"))
    await deliver(
        outbound,
        request(outbound.project, slack, channel="slack", reply_to="1712345678.000100"),
    )
    (tg_call,) = calls_at(outbound, telegram)
    assert (tg_call["thread"], tg_call["reply_to"]) == (77, 501)
    (slack_call,) = calls_at(outbound, slack)
    assert slack_call["thread"] == "1712345678.000100"


async def test_an_approval_request_renders_its_buttons(outbound: Outbound) -> None:
    telegram, slack = telegram_chat(), slack_chat()
    for chat, channel in ((telegram, "telegram"), (slack, "slack")):
        await deliver(
            outbound,
            request(
                outbound.project,
                chat,
                channel=channel,
                kind="approval_request",
                text="Restart checkout?",
                buttons=APPROVE,
            ),
        )
        (call,) = calls_at(outbound, chat)
        assert call["buttons"] == [
            [{"text": "Approve", "data": "approve:7"}, {"text": "Deny", "data": "deny:7"}]
        ], channel


async def test_edit_of_edits_the_delivered_message_in_place(outbound: Outbound) -> None:
    for chat, channel in ((telegram_chat(), "telegram"), (slack_chat(), "slack")):
        first = request(outbound.project, chat, channel=channel, text="Approve?", buttons=APPROVE)
        sent = await deliver(outbound, first)
        edit = request(
            outbound.project, chat, channel=channel, text="Approved.", edit_of=first.event_id
        )
        edited = await deliver(outbound, edit)
        assert edited.status == "sent", edited
        assert edited.provider_message_ids == sent.provider_message_ids
        posted, rewritten = calls_at(outbound, chat)
        methods = (posted["method"], rewritten["method"])
        if channel == "telegram":
            assert methods == ("sendMessage", "editMessageText")
        else:
            assert methods == ("chat.postMessage", "chat.update")
        assert str(rewritten["message_id"]) == sent.provider_message_ids[0]
        assert rewritten["buttons"] is None  # the edit took the buttons away
        (message,) = outbound.fake.messages[(channel, chat)].values()
        assert message.text == "Approved."


async def test_an_edit_of_a_message_never_delivered_posts_a_new_one(outbound: Outbound) -> None:
    chat = telegram_chat()
    report = await deliver(outbound, request(outbound.project, chat, edit_of=uuid.uuid4()))
    assert [c["method"] for c in calls_at(outbound, chat)] == ["sendMessage"]
    assert report.status == "sent"


async def test_a_chat_no_binding_covers_fails_on_credentials_without_a_call(
    outbound: Outbound,
) -> None:
    chat = telegram_chat()
    stranger = unique("p")  # a project with no contracts at all
    report = await deliver(outbound, request(stranger, chat))
    assert calls_at(outbound, chat) == []
    assert (report.status, report.code, report.attempts) == ("failed", "E-DELIVERY-CREDENTIAL", 0)
    assert report.reason == (
        f"no active channel_binding covers telegram chat {chat!r} of project {stranger!r}"
    )


async def test_a_token_that_is_not_the_bindings_or_is_unset_fails_without_a_call(
    outbound: Outbound,
) -> None:
    telegram, slack = telegram_chat(), slack_chat()
    wrong_bot = await deliver(outbound, request(outbound.miswired, telegram))
    unset = await deliver(outbound, request(outbound.miswired, slack, channel="slack"))
    assert calls_at(outbound, telegram) == calls_at(outbound, slack) == []
    for report in (wrong_bot, unset):
        assert (report.status, report.code) == ("failed", "E-DELIVERY-CREDENTIAL")
    assert wrong_bot.reason is not None
    assert f"is not a token of bot {bot_of(outbound.miswired)}" in wrong_bot.reason
    assert unset.reason is not None
    assert "SLACK_BOT_TOKEN is unset or empty" in unset.reason


async def test_an_older_version_is_upcast_and_delivered(outbound: Outbound) -> None:
    chat = telegram_chat()
    envelope = request(outbound.project, chat, text="from version 1")
    document = json.loads(CODEC.encode(envelope))
    document["schema_version"] = 1
    for field in ("thread_id", "reply_to", "buttons", "edit_of"):
        del document["payload"][field]
    _value, key, headers = record_of(envelope)
    headers = [(k, b"1" if k == "schema_version" else v) for k, v in headers]
    await produce(outbound.urls, (json.dumps(document).encode(), key, headers))
    await finished(outbound, envelope)
    assert [c["text"] for c in calls_at(outbound, chat)] == ["from version 1"]


async def test_an_undecodable_record_goes_to_the_dlq_and_the_next_one_flows(
    outbound: Outbound,
) -> None:
    chat = telegram_chat()
    envelope = request(outbound.project, chat, text="still flowing")
    value, key, headers = record_of(envelope)
    garbage = (b"{not json", key, [])
    sent = await produce(outbound.urls, garbage, (value, key, headers))
    assert sent[0].partition == sent[1].partition
    await finished(outbound, envelope)
    assert [c["text"] for c in calls_at(outbound, chat)] == ["still flowing"]

    entries = await read_partition(outbound.urls, Topics.DLQ.name, key)
    ours = [
        dict(r.headers)
        for r in entries
        if dict(r.headers).get(DLQ_HEADER_CONSUMER_GROUP) == OUTBOUND_GROUP.encode()
        and dict(r.headers).get(DLQ_HEADER_ORIGIN_OFFSET) == str(sent[0].offset).encode()
    ]
    assert len(ours) == 1
    assert ours[0][DLQ_HEADER_ERROR_CODE] == b"E-DLQ-DECODE"


async def test_a_database_outage_is_waited_out_never_dead_lettered_nor_sent_twice(
    outbound: Outbound,
) -> None:
    chat = telegram_chat()
    envelope = request(outbound.project, chat, text="after the outage")
    readiness = outbound.runner.readiness
    admin = await asyncpg.connect(asyncpg_dsn(outbound.urls.database))
    try:
        await admin.execute("REVOKE INSERT ON ingress.deliveries FROM awooop_ingress")
        await produce(outbound.urls, record_of(envelope))
        await wait_for(lambda: OUTBOUND_OUTAGE in readiness.reasons, message="the outage seen")
        assert calls_at(outbound, chat) == []  # no call before its row is claimed
    finally:
        await admin.execute("GRANT INSERT ON ingress.deliveries TO awooop_ingress")
        await admin.close()
    row = await finished(outbound, envelope)
    assert row["state"] == "sent"
    assert [c["text"] for c in calls_at(outbound, chat)] == ["after the outage"]
    await wait_for(lambda: OUTBOUND_OUTAGE not in readiness.reasons, message="ready again")


async def read_partition(urls: StackUrls, topic: str, key: bytes) -> list[Any]:
    """Every record of `key` on its partition of `topic`, read up to the high watermark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=urls.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition_for(key, 12))
        consumer.assign([tp])
        consumer.seek(tp, 0)
        found: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            batch = await consumer.getmany(tp, timeout_ms=200)
            found.extend(r for r in batch.get(tp, []) if r.key == key)
            end = consumer.highwater(tp)
            if end is not None and await consumer.position(tp) >= end:
                return found
            assert loop.time() < deadline, f"{topic} not read to its end"
    finally:
        await consumer.stop()
