"""`awooop dlq`'s pure parts: reading an entry's headers, choosing entries, rebuilding
the original record, and the verdicts that make the exit code."""

from __future__ import annotations

import pytest

from awooop.cli.dlq_entries import (
    MalformedDeadLetter,
    original_record,
    parse_entry,
    select,
)
from awooop.cli.dlq_replay import (
    APPLIED,
    FAILED,
    SKIPPED,
    UNREPLAYABLE,
    WOULD_APPLY,
    WOULD_FAIL,
    DlqCommandError,
    EntryResult,
    exit_code,
    failure_text,
    service_of,
)
from awooop.contracts.records.dead_letter import dead_letter_headers, dropped_value_headers
from awooop.infra.kafka.records import PoisonRecord, RawRecord

pytestmark = pytest.mark.unit

ORIGINAL_HEADERS = (("event_type", b"run.completed"), ("event_id", b"0190-abc"), ("empty", b""))


def dead_letter(
    *,
    group: str = "awooop.projector",
    code: str = "E-DLQ-HANDLER",
    value: bytes | None = b'{"x": 1}',
    dlq_offset: int = 7,
    extra: tuple[tuple[str, bytes], ...] = (),
) -> RawRecord:
    origin = dead_letter_headers(
        origin_topic="awooop.run.events.v1",
        partition=4,
        offset=120,
        consumer_group=group,
        error_code=code,
        error="ValueError('boom')",
    )
    return RawRecord(
        topic="awooop.dlq.v1",
        partition=3,
        offset=dlq_offset,
        key=b"run-1",
        value=value,
        headers=(*ORIGINAL_HEADERS, *extra, *origin),
        timestamp=1_700_000_000_000,
    )


def test_an_entry_names_its_origin_group_and_error() -> None:
    entry = parse_entry(dead_letter())
    assert (entry.dlq_partition, entry.dlq_offset, entry.group) == (3, 7, "awooop.projector")
    assert entry.origin == "awooop.run.events.v1[4]@120"
    assert (entry.code, entry.error) == ("E-DLQ-HANDLER", "ValueError('boom')")
    assert not entry.value_dropped


def test_a_record_without_origin_headers_is_malformed() -> None:
    bare = RawRecord("awooop.dlq.v1", 0, 1, None, b"v", ORIGINAL_HEADERS, 0)
    with pytest.raises(MalformedDeadLetter, match=r"dlq\.consumer\.group"):
        parse_entry(bare)
    broken = dead_letter(extra=())
    headers = tuple((k, b"x" if k == "dlq.origin.offset" else v) for k, v in broken.headers)
    with pytest.raises(MalformedDeadLetter, match="not an offset"):
        parse_entry(RawRecord("awooop.dlq.v1", 0, 2, None, b"v", headers, 0))


def test_the_rebuilt_record_is_the_original_without_dlq_headers() -> None:
    entry = parse_entry(dead_letter())
    record = original_record(entry)
    assert (record.topic, record.partition, record.offset) == ("awooop.run.events.v1", 4, 120)
    assert (record.key, record.value) == (b"run-1", b'{"x": 1}')
    assert record.headers == ORIGINAL_HEADERS  # order, duplicates and empty values kept


def test_a_dropped_value_is_recognised() -> None:
    dropped = dead_letter(value=None, extra=tuple(dropped_value_headers(b"y" * 2_000_000)))
    assert parse_entry(dropped).value_dropped
    # A record whose value was null to begin with is not a dropped one.
    assert not parse_entry(dead_letter(value=None)).value_dropped


def test_entries_are_chosen_by_group_and_code() -> None:
    entries = [
        parse_entry(dead_letter(group="awooop.projector", code="E-DLQ-HANDLER", dlq_offset=1)),
        parse_entry(dead_letter(group="awooop.runtime", code="E-DLQ-HANDLER", dlq_offset=2)),
        parse_entry(dead_letter(group="awooop.projector", code="E-DLQ-INVALID", dlq_offset=3)),
    ]
    assert [e.dlq_offset for e in select(entries)] == [1, 2, 3]
    assert [e.dlq_offset for e in select(entries, "awooop.projector")] == [1, 3]
    assert [e.dlq_offset for e in select(entries, code="E-DLQ-HANDLER")] == [1, 2]
    assert [e.dlq_offset for e in select(entries, "awooop.projector", "E-DLQ-INVALID")] == [3]
    assert select(entries, "awooop.projector.rebuild.1") == []  # no prefix matching


def test_a_group_names_its_service() -> None:
    assert service_of("awooop.projector") == "projector"
    assert service_of("awooop.projector.rebuild.20260301") == "projector"
    assert service_of("awooop.mcp_gateway") == "mcp_gateway"
    for wrong in ("projector", "awooop.api", "awooop.nobody", "other.runtime"):
        with pytest.raises(DlqCommandError, match="no service's consumer group"):
            service_of(wrong)


def test_the_exit_code_is_zero_only_when_every_entry_is_replayed() -> None:
    entry = parse_entry(dead_letter())

    def code(*outcomes: str) -> int:
        return exit_code([EntryResult(entry, o) for o in outcomes])

    assert code(APPLIED, SKIPPED) == 0
    assert code(WOULD_APPLY) == 0
    assert code(APPLIED, FAILED) == 1
    assert code(UNREPLAYABLE) == 1
    assert code(WOULD_APPLY, WOULD_FAIL) == 1


def test_a_failure_keeps_its_code() -> None:
    assert failure_text(PoisonRecord("E-DLQ-INVALID", "no run")) == "E-DLQ-INVALID: no run"
    assert failure_text(ValueError("bad")) == "E-DLQ-HANDLER: ValueError('bad')"
