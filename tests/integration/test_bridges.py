"""The webhook bridges against the session broker: a verified request becomes exactly one
inbound record (its payload the provider's bytes), an unverified or malformed one becomes
nothing, and the answer is 200 only after the broker acknowledged.

The app is driven in-process through ``httpx.ASGITransport``. The inbound topic is
shared with other tests, so each test keeps to its own project id and reads back only
the records keyed with it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from awooop.contracts.records.headers import make_traceparent, trace_id_of
from awooop.contracts.records.inbound import parse_inbound
from awooop.contracts.registries.topics import Topics
from awooop.infra.embedded.processes import free_port
from awooop.infra.kafka.producer import partition_for
from awooop.ingress.bridges.app import create_bridge_app
from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.framing import MAX_BODY_BYTES
from awooop.ingress.bridges.kafka_publisher import Publish, kafka_publish
from awooop.ingress.bridges.load import measure
from awooop.ingress.bridges.produced_cache import RedisProducedIds
from awooop.ingress.bridges.signatures import slack_signature
from support.infra import StackUrls, unique
from support.topic_reader import records_to_end

pytestmark = pytest.mark.integration

INBOUND = Topics.CHANNEL_INBOUND
PARTITIONS = [TopicPartition(INBOUND.name, p) for p in range(INBOUND.partitions)]
BOT = "7000123"
TOKEN = "tg-webhook-secret_123"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture(scope="module")
async def publish(kafka_ready: StackUrls) -> AsyncIterator[Publish]:
    """The bridges' real producer, on the shared broker."""
    async with kafka_publish(kafka_ready.settings().kafka) as real:
        yield real


def _config(project: str, **changes: Any) -> BridgeConfig:
    return BridgeConfig(
        project_id=project,
        telegram_secrets={BOT: TOKEN},
        slack_signing_secret=SIGNING,
        **changes,
    )


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge")


async def _records(urls: StackUrls, project: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every inbound record keyed with ``project``, read to the high watermarks."""
    found, _ = await records_to_end(urls.kafka, PARTITIONS, within=30.0)
    return [r for r in found if r.key is not None and r.key.startswith(f"{project}:".encode())]


def _update(update_id: int, text: str = "status of prod?") -> bytes:
    update = {
        "update_id": update_id,
        "message": {
            "message_id": 1365,
            "date": 1441645532,
            "chat": {"id": -1001234567, "type": "supergroup", "title": "ops"},
            "from": {"id": 1111111, "is_bot": False, "first_name": "Ada"},
            "text": text,
        },
    }
    # Spacing and key order a re-serialiser would not keep: the payload must stay these bytes.
    return json.dumps(update, indent=1).encode()


def _event(event_id: str) -> bytes:
    event = {
        "token": "unused",
        "team_id": "T0AAA0001",
        "api_app_id": "A0AAA0001",
        "event": {"type": "message", "channel": "C0AAA0001", "user": "U0AAA0001", "text": "hé"},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1740830400,
    }
    return json.dumps(event, ensure_ascii=False).encode()


def _slack_headers(
    body: bytes, *, at: float | None = None, secret: str = SIGNING
) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": slack_signature(secret, stamp, body),
    }


def _telegram_headers(token: str = TOKEN) -> dict[str, str]:
    return {"x-telegram-bot-api-secret-token": token, "content-type": "application/json"}


async def test_a_telegram_update_becomes_exactly_one_record(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """Breaks caught: a wrong key or id (ingress could not de-duplicate), a re-serialised
    payload, a trace not carried over, a 200 before the record exists."""
    project = unique("br")
    body = _update(10001)
    incoming = make_traceparent("4bf92f3577b34da6a3ce929d0e0e4736")
    async with _client(create_bridge_app(_config(project), publish)) as client:
        response = await client.post(
            f"/telegram/{BOT}",
            content=body,
            headers={**_telegram_headers(), "traceparent": incoming},
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-awooop-outcome"] == "produced"
    (record,) = await _records(kafka_ready, project)
    assert record.key == f"{project}:{BOT}:10001".encode()
    assert record.partition == partition_for(record.key, INBOUND.partitions)
    assert record.value.endswith(b'"payload":' + body + b"}")
    inbound = parse_inbound(record.value)
    assert (inbound.project_id, inbound.channel_type) == (project, "telegram")
    assert inbound.provider_event_id == f"{BOT}:10001"
    assert inbound.traceparent is not None
    assert trace_id_of(inbound.traceparent) == trace_id_of(incoming)
    assert inbound.traceparent != incoming  # the bridge is a hop: a span of its own


async def test_a_slack_event_callback_becomes_exactly_one_record(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    project = unique("br")
    body = _event("Ev0PV52K21")
    async with _client(create_bridge_app(_config(project), publish)) as client:
        response = await client.post("/slack/events", content=body, headers=_slack_headers(body))
    assert response.status_code == 200, response.text
    (record,) = await _records(kafka_ready, project)
    assert record.key == f"{project}:Ev0PV52K21".encode()
    assert record.value.endswith(b'"payload":' + body + b"}")
    inbound = parse_inbound(record.value)
    assert (inbound.channel_type, inbound.provider_event_id) == ("slack", "Ev0PV52K21")
    assert inbound.traceparent is not None  # a new trace when none came in


async def test_unverified_requests_are_refused_and_produce_nothing(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """Breaks caught: any path that produces before (or without) verifying."""
    project = unique("br")
    update, event = _update(10002), _event("Ev0FORGED1")
    now = time.time()
    signed = _slack_headers(event)
    attempts: list[tuple[str, bytes, Mapping[str, str]]] = [
        (f"/telegram/{BOT}", update, _telegram_headers("wrong-secret")),
        (f"/telegram/{BOT}", update, {"content-type": "application/json"}),
        ("/slack/events", event, _slack_headers(event, secret="forged-secret")),
        ("/slack/events", event, _slack_headers(event, at=now - 301)),
        ("/slack/events", event, _slack_headers(event, at=now + 301)),
        ("/slack/events", event, {"x-slack-signature": signed["x-slack-signature"]}),
        (
            "/slack/events",
            event,
            {"x-slack-request-timestamp": signed["x-slack-request-timestamp"]},
        ),
        ("/slack/events", event.replace(b"h\xc3\xa9", b"hi"), signed),
        ("/slack/interactivity", b"payload=%7B%7D", _slack_headers(b"payload=%7B%7D", secret="x")),
    ]
    async with _client(create_bridge_app(_config(project), publish)) as client:
        for path, body, headers in attempts:
            response = await client.post(path, content=body, headers=dict(headers))
            assert response.status_code == 401, (path, headers, response.text)
            assert response.json()["error"]
            assert TOKEN not in response.text
            assert SIGNING not in response.text
    assert await _records(kafka_ready, project) == []


async def test_url_verification_is_answered_with_its_challenge_and_not_produced(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    project = unique("br")
    body = json.dumps(
        {
            "token": "unused",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    async with _client(create_bridge_app(_config(project), publish)) as client:
        answered = await client.post("/slack/events", content=body, headers=_slack_headers(body))
        unsigned = await client.post("/slack/events", content=body)
    assert answered.status_code == 200
    assert answered.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert unsigned.status_code == 401  # a challenge is signed like any request
    assert await _records(kafka_ready, project) == []


def _block_actions(action_ts: str) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0AAA0001", "domain": "acme"},
        "user": {"id": "U0AAA0001", "team_id": "T0AAA0001"},
        "api_app_id": "A0AAA0001",
        "channel": {"id": "C0AAA0001"},
        "actions": [
            {"action_id": "approve", "block_id": "b1", "value": "yes", "action_ts": action_ts}
        ],
    }
    return json.dumps(payload).encode()


async def test_a_block_actions_interaction_becomes_one_record_with_the_documented_id(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """Breaks caught: the form-encoded body produced as is (ingress expects the JSON
    object), or an id other than ``block_actions:<team>:<user>:<action_ts>``."""
    project = unique("br")
    payload = _block_actions("1740830400.123456")
    form = urlencode({"payload": payload.decode()}).encode()
    view = urlencode({"payload": json.dumps({"type": "view_submission", "team": {}})}).encode()
    async with _client(create_bridge_app(_config(project), publish)) as client:
        headers = {**_slack_headers(form), "content-type": "application/x-www-form-urlencoded"}
        pressed = await client.post("/slack/interactivity", content=form, headers=headers)
        other = await client.post(
            "/slack/interactivity", content=view, headers=_slack_headers(view)
        )
    assert pressed.status_code == 200, pressed.text
    assert (other.status_code, other.headers["x-awooop-outcome"]) == (200, "ignored")
    (record,) = await _records(kafka_ready, project)
    expected_id = "block_actions:T0AAA0001:U0AAA0001:1740830400.123456"
    assert record.key == f"{project}:{expected_id}".encode()
    assert record.value.endswith(b'"payload":' + payload + b"}")
    assert parse_inbound(record.value).provider_event_id == expected_id


async def test_a_slack_retry_is_produced_again_under_the_same_id(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """Without the cache a retry is a second record with the same provider_event_id
    (ingress records it as a duplicate); the retry number is in neither record."""
    project = unique("br")
    body = _event("Ev0AGAIN01")
    async with _client(create_bridge_app(_config(project), publish)) as client:
        first = await client.post("/slack/events", content=body, headers=_slack_headers(body))
        retry_headers = {
            **_slack_headers(body),
            "x-slack-retry-num": "1",
            "x-slack-retry-reason": "http_timeout",
        }
        retried = await client.post("/slack/events", content=body, headers=retry_headers)
    assert (first.status_code, retried.status_code) == (200, 200)
    records = await _records(kafka_ready, project)
    assert [parse_inbound(r.value).provider_event_id for r in records] == ["Ev0AGAIN01"] * 2
    first_record, retried_record = (parse_inbound(r.value) for r in records)
    assert first_record.payload == retried_record.payload  # nothing of the retry added
    assert all("retry" not in name.lower() for r in records for name, _ in r.headers)


async def test_the_produced_cache_answers_a_retry_without_producing(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """Breaks caught: remembering an id before its acknowledgement (a retry of a record
    that never landed would be dropped), or consulting the cache for a delivery Slack did
    not mark as a retry."""
    project = unique("br")
    body = _event("Ev0CACHED1")

    async def refuses(_key: bytes, _value: bytes) -> None:
        raise ConnectionError("broker gone")

    def retry(number: str) -> dict[str, str]:
        return {**_slack_headers(body), "x-slack-retry-num": number}

    cache = RedisProducedIds.from_url(kafka_ready.redis)
    try:
        async with _client(create_bridge_app(_config(project), refuses, produced=cache)) as down:
            lost = await down.post("/slack/events", content=body, headers=_slack_headers(body))
        async with _client(create_bridge_app(_config(project), publish, produced=cache)) as up:
            first = await up.post("/slack/events", content=body, headers=retry("1"))
            again = await up.post("/slack/events", content=body, headers=_slack_headers(body))
            retried = await up.post("/slack/events", content=body, headers=retry("2"))
    finally:
        await cache.close()
    assert lost.status_code == 503
    outcomes = [r.headers["x-awooop-outcome"] for r in (first, again, retried)]
    assert outcomes == ["produced", "produced", "already-produced"]
    assert retried.status_code == 200
    assert len(await _records(kafka_ready, project)) == 2


async def test_with_redis_down_a_retry_is_simply_produced(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    project = unique("br")
    body = _event("Ev0NOREDIS")
    cache = RedisProducedIds.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        app = create_bridge_app(_config(project), publish, produced=cache)
        async with _client(app) as client:
            first = await client.post("/slack/events", content=body, headers=_slack_headers(body))
            retry = {**_slack_headers(body), "x-slack-retry-num": "1"}
            retried = await client.post("/slack/events", content=body, headers=retry)
    finally:
        await cache.close()
    assert [first.status_code, retried.status_code] == [200, 200]
    assert retried.headers["x-awooop-outcome"] == "produced"
    assert len(await _records(kafka_ready, project)) == 2


async def test_over_size_bodies_are_refused_with_413_and_produce_nothing(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """Breaks caught: trusting Content-Length alone (a chunked body has none), or reading
    the whole body before counting. A body at the limit still fits a record."""
    project = unique("br")
    big = b"x" * (MAX_BODY_BYTES + 1)

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    at_limit = _update(10003, text="")
    at_limit = _update(10003, text="y" * (MAX_BODY_BYTES - len(at_limit)))
    assert len(at_limit) == MAX_BODY_BYTES
    async with _client(create_bridge_app(_config(project), publish)) as client:
        declared = await client.post(f"/telegram/{BOT}", content=big, headers=_telegram_headers())
        streamed = await client.post(
            f"/telegram/{BOT}", content=chunked(), headers=_telegram_headers()
        )
        slack = await client.post("/slack/events", content=chunked(), headers=_slack_headers(big))
        fits = await client.post(f"/telegram/{BOT}", content=at_limit, headers=_telegram_headers())
    assert "content-length" not in streamed.request.headers
    assert [declared.status_code, streamed.status_code, slack.status_code] == [413, 413, 413]
    assert fits.status_code == 200, fits.text
    (record,) = await _records(kafka_ready, project)
    assert parse_inbound(record.value).provider_event_id == f"{BOT}:10003"


async def test_malformed_bodies_and_unknown_bots_are_refused(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    project = unique("br")
    no_id = json.dumps({"message": {"text": "hi"}}).encode()
    bool_id = json.dumps({"update_id": True}).encode()
    bad_json = b'{"update_id": 1,'
    no_event_id = json.dumps({"type": "event_callback", "event": {}}).encode()
    bad_form = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    async with _client(create_bridge_app(_config(project), publish)) as client:
        answers = {
            "no update_id": await client.post(
                f"/telegram/{BOT}", content=no_id, headers=_telegram_headers()
            ),
            "bool update_id": await client.post(
                f"/telegram/{BOT}", content=bool_id, headers=_telegram_headers()
            ),
            "not JSON": await client.post(
                f"/telegram/{BOT}", content=bad_json, headers=_telegram_headers()
            ),
            "no event_id": await client.post(
                "/slack/events", content=no_event_id, headers=_slack_headers(no_event_id)
            ),
            "no action parts": await client.post(
                "/slack/interactivity", content=bad_form, headers=_slack_headers(bad_form)
            ),
        }
        unknown = await client.post(
            "/telegram/999", content=_update(1), headers=_telegram_headers()
        )
    for case, answer in answers.items():
        assert answer.status_code == 400, (case, answer.text)
        assert answer.json()["error"], case
    assert "not JSON" in answers["not JSON"].json()["error"]
    assert unknown.status_code == 404
    assert await _records(kafka_ready, project) == []


async def test_past_the_deadline_the_answer_is_503_never_200(kafka_ready: StackUrls) -> None:
    """A producer that never acknowledges: the app built with a 0.2 s deadline answers
    503 (Slack then retries). Breaks caught: answering 200 before the acknowledgement,
    or waiting on the producer for ever. Wall time is not asserted."""
    project = unique("br")
    published: list[bytes] = []
    cancelled = asyncio.Event()

    async def never_acknowledges(key: bytes, _value: bytes) -> None:
        published.append(key)
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def refuses(_key: bytes, _value: bytes) -> None:
        raise ConnectionError("broker gone")

    body = _event("Ev0SLOW001")
    slow = create_bridge_app(_config(project, ack_deadline=0.2), never_acknowledges)
    async with _client(slow) as client:
        late = await client.post("/slack/events", content=body, headers=_slack_headers(body))
    async with _client(create_bridge_app(_config(project), refuses)) as client:
        failed = await client.post("/slack/events", content=body, headers=_slack_headers(body))
    assert late.status_code == 503
    assert late.json() == {"error": "the broker did not acknowledge within 0.2 s"}
    assert published == [f"{project}:Ev0SLOW001".encode()]
    assert cancelled.is_set()
    assert failed.status_code == 503
    assert "ConnectionError" in failed.json()["error"]


async def test_healthz_names_the_project(publish: Publish) -> None:
    project = unique("br")
    async with _client(create_bridge_app(_config(project), publish)) as client:
        answer = await client.get("/healthz")
    assert answer.json() == {"status": "ok", "service": "bridges", "project_id": project}


async def test_the_load_measure_counts_acknowledged_requests(
    kafka_ready: StackUrls, publish: Publish
) -> None:
    """The bench's entry point: every request acknowledged is one record on the topic.
    Only counts are asserted, never rates or latencies."""
    project = unique("br")
    # A deadline no slow machine reaches: this counts records, it times nothing.
    relaxed = {"ack_deadline": 120.0}
    telegram = create_bridge_app(
        BridgeConfig(project, telegram_secrets={BOT: TOKEN}, **relaxed), publish
    )
    slack = create_bridge_app(
        BridgeConfig(project, slack_signing_secret=SIGNING, **relaxed), publish
    )
    by_telegram = await measure(telegram, 40, concurrency=8)
    by_slack = await measure(slack, 10)
    assert (by_telegram.acknowledged, by_slack.acknowledged) == (40, 10)
    assert len(by_telegram.ack_latencies) == 40
    assert by_telegram.ack_p99_ms > 0
    records = await _records(kafka_ready, project)
    assert len(records) == 50
    assert len({r.key for r in records}) == 50
