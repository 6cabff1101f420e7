"""The topic registry matches ARCHITECTURE §3 and refuses names outside it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from awooop.contracts import ALL_TOPICS, MAX_RECORD_BYTES, Topics, topic
from awooop.contracts.records.dead_letter import DLQ_HEADERS, dead_letter_headers
from awooop.contracts.registries import service_names as svc
from awooop.contracts.registries.topics import UnknownTopicError, consumer_group, rebuild_group

pytestmark = pytest.mark.unit

EXPECTED = {
    "awooop.channel.inbound.v1": ("project_id:provider_event_id", svc.BRIDGES),
    "awooop.ingress.events.v1": ("project_id:platform_subject_id", svc.INGRESS),
    "awooop.run.events.v1": ("run_id", svc.RUNTIME),
    "awooop.gateway.events.v1": ("run_id", svc.MCP_GATEWAY),
    "awooop.approval.events.v1": ("run_id", svc.APPROVAL),
    "awooop.channel.outbound.v1": ("project_id:chat_id", svc.RUNTIME),
    "awooop.channel.delivery.v1": ("project_id:chat_id", svc.BRIDGES),
    "awooop.contract.events.v1": ("project_id:contract_id", svc.APPROVAL),
    "awooop.budget.events.v1": ("project_id", svc.RUNTIME),
    "awooop.broker.epoch.v1": ("", svc.FIRST_SERVICE),
    "awooop.dlq.v1": ("original key", svc.ANY_CONSUMER),
}


def test_registry_holds_exactly_the_architecture_table_in_order() -> None:
    assert [t.name for t in ALL_TOPICS] == list(EXPECTED)
    for entry in ALL_TOPICS:
        assert (entry.key, entry.producer) == EXPECTED[entry.name]


def test_every_topic_has_12_partitions_but_the_epoch_topic() -> None:
    partitions = {t.name: t.partitions for t in ALL_TOPICS}
    assert partitions.pop("awooop.broker.epoch.v1") == 1
    assert set(partitions.values()) == {12}


def test_names_are_unique_dotted_and_versioned() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"awooop(\.[a-z]+)+\.v1", name) for name in names)


def test_consumers_follow_the_flow() -> None:
    assert Topics.RUN_EVENTS.consumers == (svc.MCP_GATEWAY, svc.APPROVAL, svc.PROJECTOR)
    assert svc.INGRESS in Topics.CONTRACT_EVENTS.consumers
    assert Topics.CHANNEL_INBOUND.consumers == (svc.INGRESS,)
    # Every event topic but the inbound one is read by the projector.
    envelopes = [t for t in ALL_TOPICS if t.value == "envelope"]
    assert all(svc.PROJECTOR in t.consumers for t in envelopes)
    assert {t.value for t in ALL_TOPICS if t.value != "envelope"} == {
        "inbound_record",
        "broker_epoch",
        "dead_letter",
    }


def test_lookup_by_name() -> None:
    assert topic("awooop.run.events.v1") is Topics.RUN_EVENTS
    assert topic(Topics.DLQ.name) is Topics.DLQ


@pytest.mark.parametrize("name", ["awooop.run.events.v2", "awooop.run.events", "", "run.events"])
def test_lookup_of_unknown_name_raises(name: str) -> None:
    with pytest.raises(UnknownTopicError, match="not in the topic registry"):
        topic(name)


def test_topics_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Topics.RUN_EVENTS.partitions = 24  # type: ignore[misc]


def test_max_record_size_is_one_mebibyte() -> None:
    assert MAX_RECORD_BYTES == 1024 * 1024


def test_consumer_groups() -> None:
    assert [consumer_group(s) for s in svc.SERVICES] == [
        "awooop.ingress",
        "awooop.runtime",
        "awooop.mcp_gateway",
        "awooop.approval",
        "awooop.projector",
    ]
    with pytest.raises(ValueError, match="malformed"):
        consumer_group("Run Time")


def test_rebuild_group_is_stamped_in_utc() -> None:
    at = datetime(2025, 3, 1, 14, 5, 9, tzinfo=timezone(timedelta(hours=2)))
    assert rebuild_group(at) == "awooop.projector.rebuild.20250301T120509Z"
    assert rebuild_group(at.astimezone(UTC)) == rebuild_group(at)
    with pytest.raises(ValueError, match="timezone"):
        rebuild_group(datetime(2025, 3, 1))


def test_dead_letter_headers() -> None:
    headers = dead_letter_headers(
        origin_topic=Topics.RUN_EVENTS.name,
        partition=3,
        offset=1042,
        consumer_group="awooop.mcp_gateway",
        error_code="E-DLQ-INVALID",
        error="payload.call_id: Field required",
    )
    assert [name for name, _ in headers] == list(DLQ_HEADERS)
    assert dict(headers) == {
        "dlq.origin.topic": b"awooop.run.events.v1",
        "dlq.origin.partition": b"3",
        "dlq.origin.offset": b"1042",
        "dlq.consumer.group": b"awooop.mcp_gateway",
        "dlq.error.code": b"E-DLQ-INVALID",
        "dlq.error": b"payload.call_id: Field required",
    }


def test_dead_letter_headers_refuse_unregistered_codes_and_cut_long_errors() -> None:
    with pytest.raises(KeyError, match="unregistered"):
        dead_letter_headers(
            origin_topic="t",
            partition=0,
            offset=0,
            consumer_group="g",
            error_code="E-X-1",
            error="",
        )
    headers = dict(
        dead_letter_headers(
            origin_topic="t",
            partition=0,
            offset=0,
            consumer_group="g",
            error_code="E-DLQ-HANDLER",
            error="é" * 5000,
        )
    )
    text = headers["dlq.error"].decode("utf-8")
    assert len(headers["dlq.error"]) <= 4096
    assert set(text) == {"é"}
