"""The audit file format alone: canonical lines, per-line hashes, order, count, chain and
the errors of a file that is not an audit file."""

from __future__ import annotations

import hashlib
import json

import pytest

from awooop.security.audit_file import (
    FORMAT,
    AuditEvent,
    AuditFileUnreadable,
    canonical,
    chain_of,
    event_line,
    line_hash,
    read_audit_file,
    summary_line,
    write_lines,
)

pytestmark = pytest.mark.unit


def event(offset: int, topic: str = "awooop.run.events.v1", partition: int = 0) -> AuditEvent:
    value = json.dumps({"event_id": f"e{offset}", "trace_id": "ab" * 16}).encode()
    return AuditEvent(
        topic, partition, offset, 1_700_000_000_000 + offset, b"run-1",
        (("project_id", b"acme"), ("event_type", b"run.completed")), value,
    )  # fmt: skip


def file_of(events: list[AuditEvent]) -> bytes:
    lines, hashes = write_lines(events)
    summary = summary_line(
        project_id="acme", run_id=None, event_hashes=hashes, fold={}, checksums={}
    )
    return "".join(f"{line}\n" for line in [*lines, summary]).encode()


def lines_of(data: bytes) -> list[bytes]:
    return data.rstrip(b"\n").split(b"\n")


def checks(data: bytes) -> list[tuple[int, str]]:
    return [(f.line, f.check) for f in read_audit_file(data).failures]


def test_a_line_is_its_canonical_form_and_its_hash_covers_everything_else() -> None:
    line = event_line(event(3))
    parsed = json.loads(line)
    assert line.encode() == canonical(parsed)
    body = {k: v for k, v in parsed.items() if k != "sha256"}
    assert parsed["sha256"] == hashlib.sha256(canonical(body)).hexdigest() == line_hash(parsed)
    assert parsed["value"] == event(3).value.decode()  # the exact text, not a re-encoding


def test_bytes_that_are_not_utf8_round_trip_as_base64() -> None:
    odd = AuditEvent("awooop.run.events.v1", 1, 0, 0, b"\xff\x00", (("h", b"\xfe"),), b"\x80")
    data = file_of([odd])
    assert read_audit_file(data).events == [odd]
    assert checks(data) == []


def test_a_written_file_reads_back_whole_and_sorted() -> None:
    events = [event(2), event(0, partition=1), event(1), event(0, topic="awooop.gateway.events.v1")]
    parsed = read_audit_file(file_of(events))
    assert parsed.failures == []
    assert [e.position for e in parsed.events] == sorted(e.position for e in events)
    assert parsed.summary["events"] == 4
    assert parsed.summary["format"] == FORMAT


def test_the_chain_depends_on_every_hash_and_their_order() -> None:
    a, b = "0" * 64, "f" * 64
    assert chain_of([a, b]) != chain_of([b, a])
    assert chain_of([a]) != chain_of([a, a])
    assert chain_of([]) == hashlib.sha256(FORMAT.encode()).hexdigest()


def test_one_altered_byte_fails_that_lines_hash() -> None:
    data = file_of([event(0), event(1), event(2)])
    altered = data.replace(b"abababab", b"abababac", 1)  # inside line 1's trace_id
    assert altered != data
    assert checks(altered) == [(1, "hash")]  # the stored hashes still chain


def test_a_reformatted_line_with_the_same_content_fails_its_canonical_form() -> None:
    lines = lines_of(file_of([event(0)]))
    lines[0] = json.dumps(json.loads(lines[0]), indent=None).encode()  # ", " and ": "
    assert checks(b"\n".join(lines) + b"\n") == [(1, "canonical form")]


def test_a_removed_event_fails_the_count_and_the_chain() -> None:
    lines = lines_of(file_of([event(0), event(1), event(2)]))
    del lines[1]
    assert checks(b"\n".join(lines)) == [(3, "count"), (3, "chain")]


def test_two_swapped_events_fail_the_order_and_the_chain() -> None:
    lines = lines_of(file_of([event(0), event(1), event(2)]))
    lines[0], lines[1] = lines[1], lines[0]
    assert checks(b"\n".join(lines)) == [(2, "order"), (4, "chain")]


def test_an_altered_summary_fails_its_own_hash() -> None:
    lines = lines_of(file_of([event(0)]))
    lines[-1] = lines[-1].replace(b'"project_id":"acme"', b'"project_id":"acmf"')
    assert checks(b"\n".join(lines)) == [(2, "hash")]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"not json\n", "line 1 is not a JSON object"),
        (b"[1, 2]\n", "line 1 is not a JSON object"),
        (b'{"kind": "event"}\n', "line 1, the last, is not a summary line"),
    ],
)
def test_what_is_not_an_audit_file_is_unreadable(data: bytes, says: str) -> None:
    with pytest.raises(AuditFileUnreadable, match=says):
        read_audit_file(data)


def test_an_event_line_of_the_wrong_shape_is_unreadable() -> None:
    lines = lines_of(file_of([event(0)]))
    broken = json.loads(lines[0])
    broken["offset"] = "zero"
    lines[0] = canonical(broken)
    with pytest.raises(AuditFileUnreadable, match="line 1 is not an event line"):
        read_audit_file(b"\n".join(lines))
    del broken["offset"]
    lines[0] = canonical(broken)
    with pytest.raises(AuditFileUnreadable, match="line 1 is not an event line"):
        read_audit_file(b"\n".join(lines))


def test_another_format_is_unreadable() -> None:
    lines = lines_of(file_of([]))
    summary = json.loads(lines[0])
    summary["format"] = "awooop.audit.v0"
    with pytest.raises(AuditFileUnreadable, match=r"awooop\.audit\.v0"):
        read_audit_file(canonical(summary))
