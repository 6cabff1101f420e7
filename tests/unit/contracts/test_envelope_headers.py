"""Envelope records carry their routing facts in headers, and traceparents are W3C."""

from __future__ import annotations

import re

import pytest

from awooop.contracts import Envelope, make_traceparent, read_headers, record_headers
from awooop.contracts.events.payloads import RunStarted
from awooop.contracts.records.headers import TRACEPARENT_PATTERN, new_span_id, trace_id_of

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # the trace id of the run_started fixture


def test_record_headers_carry_the_routing_facts(run_started: Envelope[RunStarted]) -> None:
    traceparent = make_traceparent(TRACE_ID, "00f067aa0ba902b7")
    headers = record_headers(run_started, traceparent)
    assert headers == [
        ("event_type", b"run.started"),
        ("schema_version", b"3"),
        ("event_id", str(run_started.event_id).encode()),
        ("project_id", b"acme"),
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]
    assert all(isinstance(name, str) and isinstance(value, bytes) for name, value in headers)


def test_record_headers_refuse_a_traceparent_of_another_trace(
    run_started: Envelope[RunStarted],
) -> None:
    other = make_traceparent("a" * 32)
    with pytest.raises(ValueError, match="trace_id"):
        record_headers(run_started, other)


def test_read_headers_round_trips(run_started: Envelope[RunStarted]) -> None:
    traceparent = make_traceparent(TRACE_ID)
    read = read_headers(record_headers(run_started, traceparent))
    assert read.event_type == "run.started"
    assert read.schema_version == 3
    assert read.event_id == str(run_started.event_id)
    assert read.project_id == "acme"
    assert read.traceparent == traceparent


@pytest.mark.parametrize("raw", [b"", b"one", b"-1", b"0", b"\xff", b"1.0", "\u0661".encode()])
def test_read_headers_tolerates_odd_schema_versions(raw: bytes) -> None:
    assert read_headers([("schema_version", raw)]).schema_version is None


def test_read_headers_of_nothing_is_all_none() -> None:
    read = read_headers(None)
    assert (read.event_type, read.schema_version, read.traceparent) == (None, None, None)


def test_make_traceparent_draws_a_fresh_span_each_hop() -> None:
    first, second = make_traceparent(TRACE_ID), make_traceparent(TRACE_ID)
    assert re.fullmatch(TRACEPARENT_PATTERN, first)
    assert first != second
    assert trace_id_of(first) == trace_id_of(second) == TRACE_ID


@pytest.mark.parametrize(
    ("trace_id", "span_id"),
    [
        ("0" * 32, None),
        ("ABC", None),
        (TRACE_ID, "0" * 16),
        (TRACE_ID, "xyz"),
        (TRACE_ID, "A" * 16),
    ],
)
def test_make_traceparent_refuses_bad_ids(trace_id: str, span_id: str | None) -> None:
    with pytest.raises(ValueError, match="not a W3C"):
        make_traceparent(trace_id, span_id)


@pytest.mark.parametrize(
    "traceparent",
    [
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
    ],
)
def test_trace_id_of_refuses_bad_traceparents(traceparent: str) -> None:
    with pytest.raises(ValueError, match="traceparent"):
        trace_id_of(traceparent)


def test_span_ids_are_16_hex() -> None:
    assert all(re.fullmatch(r"[0-9a-f]{16}", new_span_id()) for _ in range(20))
