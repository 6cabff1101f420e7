"""The projector's processor before any database: which records it takes, how it decodes
them, what goes to the DLQ, and the service spec it runs under."""

from __future__ import annotations

from typing import Any

import pytest
from projector_events import build_run

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.records import PoisonRecord, RawRecord
from awooop.projector.adapters.read_model_writer import UPSERT_RUNS
from awooop.projector.app import spec
from awooop.projector.domain.rows import RUN_WRITE_ONCE
from awooop.projector.handlers import ReadModelProjector

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()


def _record(env: Envelope[Any], value: bytes | None = None) -> RawRecord:
    headers = record_headers(env, make_traceparent(env.trace_id))
    return RawRecord(
        topic=Topics.RUN_EVENTS.name,
        partition=0,
        offset=0,
        key=env.correlation_id.encode(),
        value=CODEC.encode(env) if value is None else value,
        headers=tuple(headers),
        timestamp=0,
    )


def test_takes_projected_types_by_header_without_decoding() -> None:
    processor = ReadModelProjector()
    for env in build_run():
        assert processor.handles(_record(env, b"not even json"))
    no_header = RawRecord(Topics.RUN_EVENTS.name, 0, 0, None, b"{}", (), 0)
    assert not processor.handles(no_header)
    other = RawRecord(
        Topics.RUN_EVENTS.name, 0, 0, None, b"{}", (("event_type", b"run.unknown"),), 0
    )
    assert not processor.handles(other)


def test_decodes_an_envelope_once() -> None:
    env = build_run()[1]
    decoded = ReadModelProjector().decode(_record(env))
    assert decoded.body == env


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"\xff\xfe", "E-DLQ-DECODE"),
        (b"[1, 2]", "E-DLQ-DECODE"),
        (b'{"event_id": 1}', "E-DLQ-INVALID"),
    ],
)
def test_undecodable_records_are_poison_with_their_code(value: bytes, code: str) -> None:
    with pytest.raises(PoisonRecord) as poison:
        ReadModelProjector().decode(_record(build_run()[1], value))
    assert poison.value.code == code


def test_a_record_without_a_value_is_poison() -> None:
    record = _record(build_run()[1])
    empty = RawRecord(record.topic, 0, 0, record.key, None, record.headers, 0)
    with pytest.raises(PoisonRecord):
        ReadModelProjector().decode(empty)


def test_an_event_of_no_run_is_poison() -> None:
    env = build_run()[5].model_copy(update={"correlation_id": "run-7"})
    with pytest.raises(PoisonRecord) as poison:
        ReadModelProjector().decode(_record(env))
    assert poison.value.code == "E-DLQ-INVALID"
    assert "run-7" in poison.value.reason


def test_the_service_spec() -> None:
    service = spec()
    assert service.service == "projector"
    assert set(service.topics) == {
        Topics.INGRESS_EVENTS.name,
        Topics.RUN_EVENTS.name,
        Topics.GATEWAY_EVENTS.name,
        Topics.APPROVAL_EVENTS.name,
        Topics.CONTRACT_EVENTS.name,
        Topics.BUDGET_EVENTS.name,
        Topics.CHANNEL_OUTBOUND.name,
        Topics.CHANNEL_DELIVERY.name,
    }
    assert (service.offsets, service.relay) == ("postgres", False)
    assert tuple(service.branches) == ("offsets", "projector")
    assert tuple(service.extra_roles) == ("awooop_api",)
    [migrations] = service.migrations
    assert (migrations / "projector_0001_read_models.py").exists()


def test_the_run_merge_coalesces_every_column_one_event_owns() -> None:
    for column in RUN_WRITE_ONCE:
        assert f"{column} = coalesce(r.{column}, excluded.{column})" in UPSERT_RUNS
    assert "now()" not in UPSERT_RUNS
