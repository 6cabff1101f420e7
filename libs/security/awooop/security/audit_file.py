"""The audit file: a tenant's records as JSON Lines, each hashed, all chained.

One line per record, then one summary line. Every line is the RFC 8785
(JCS) canonical form of its own object, and carries `sha256`, the SHA-256 of
the canonical form of that object without `sha256`. Both together mean that
an altered byte anywhere in a line fails: either the content changed (the
hash no longer matches) or the bytes are no longer canonical.

Event lines hold the record as the broker served it: topic, partition,
offset, timestamp, key, headers and the value as the exact envelope text
(never re-encoded). Byte strings that are not UTF-8 are written as
`{"base64": ...}`. Events are in (topic, partition, offset) order.

The summary holds the number of events and `chain`, a hash chain over the
ordered per-event hashes (`chain_0 = sha256(FORMAT)`, `chain_i =
sha256(chain_{i-1} || hash_i)`), so removing, adding or swapping an event
fails even when every line is intact, plus the read-model checksums the
events fold into (as JSON; the reader that re-folds them lives with the
projector's rules, not here).

What the hashes prove is that the file is consistent with itself; they are
not signatures. Comparing the checksums with the installation's read models
is what ties a file to a live platform.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785

FORMAT = "awooop.audit.v1"
"""The format name, in every summary line and the chain's seed."""

EVENT = "event"
SUMMARY = "summary"

_EVENT_FIELDS = frozenset(
    {"kind", "topic", "partition", "offset", "timestamp", "key", "headers", "value", "sha256"}
)
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_SUMMARY_FIELDS = frozenset(
    {"kind", "format", "project_id", "run_id", "events", "chain", "fold", "checksums", "sha256"}
)


class AuditFileUnreadable(ValueError):
    """The file is not an audit file at all (not JSON lines, no summary, wrong shape).

    The message names the line; nothing about the events can be checked.
    """


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One record as the broker served it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes | None

    def header(self, name: str) -> str | None:
        """The first header called `name`, as text (as consumers read headers)."""
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Failure:
    """One check that failed, at one line of the file (1-based)."""

    line: int
    check: str
    detail: str

    def describe(self) -> str:
        return f"line {self.line}: {self.check}: {self.detail}"


@dataclass
class AuditFile:
    """A parsed file: its events, its summary and the structural checks that failed."""

    events: list[AuditEvent]
    summary: dict[str, Any]
    summary_line: int
    failures: list[Failure] = field(default_factory=list)


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of `value`."""
    return bytes(rfc8785.dumps(value))


def line_hash(line: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of the canonical form of `line` without its `sha256`."""
    body = {k: v for k, v in line.items() if k != "sha256"}
    return hashlib.sha256(canonical(body)).hexdigest()


def chain_of(hashes: Iterable[str]) -> str:
    """The hash chain over the per-event hashes, in file order."""
    link = hashlib.sha256(FORMAT.encode()).digest()
    for digest in hashes:
        link = hashlib.sha256(link + bytes.fromhex(digest)).digest()
    return link.hex()


def _bytes_field(value: bytes | None) -> str | dict[str, str] | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def _bytes_of(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"], validate=True)
    raise TypeError(f"not a byte string: {value!r}")


def _sealed(body: dict[str, Any]) -> str:
    body["sha256"] = line_hash(body)
    return canonical(body).decode("utf-8")


def event_line(event: AuditEvent) -> str:
    """The canonical line of one event, its hash included."""
    return _sealed(
        {
            "kind": EVENT,
            "topic": event.topic,
            "partition": event.partition,
            "offset": event.offset,
            "timestamp": event.timestamp,
            "key": _bytes_field(event.key),
            "headers": [[name, _bytes_field(value)] for name, value in event.headers],
            "value": _bytes_field(event.value),
        }
    )


def summary_line(
    *,
    project_id: str,
    run_id: str | None,
    event_hashes: Sequence[str],
    fold: Mapping[str, int],
    checksums: Mapping[str, Any],
) -> str:
    """The last line: count, chain, fold counts and read-model checksums, its hash included."""
    return _sealed(
        {
            "kind": SUMMARY,
            "format": FORMAT,
            "project_id": project_id,
            "run_id": run_id,
            "events": len(event_hashes),
            "chain": chain_of(event_hashes),
            "fold": dict(fold),
            "checksums": dict(checksums),
        }
    )


def write_lines(events: Sequence[AuditEvent]) -> tuple[list[str], list[str]]:
    """The event lines of `events` sorted by (topic, partition, offset), and their hashes."""
    lines = [event_line(e) for e in sorted(events, key=lambda e: e.position)]
    return lines, [json.loads(line)["sha256"] for line in lines]


def _parse_line(number: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AuditFileUnreadable(f"line {number} is not a JSON object: {error}") from None
    if not isinstance(value, dict):
        raise AuditFileUnreadable(f"line {number} is not a JSON object")
    return value


def _event_of(number: int, line: dict[str, Any]) -> AuditEvent:
    if set(line) != _EVENT_FIELDS:
        raise AuditFileUnreadable(
            f"line {number} is not an event line: fields {sorted(line)} differ from "
            f"{sorted(_EVENT_FIELDS)}"
        )
    if not isinstance(line["sha256"], str) or not _HEX_DIGEST.fullmatch(line["sha256"]):
        raise AuditFileUnreadable(f"line {number}: sha256 is not a hex SHA-256")
    try:
        headers = tuple((str(name), _bytes_of(value) or b"") for name, value in line["headers"])
        value = _bytes_of(line["value"])
        if not all(isinstance(line[k], int) for k in ("partition", "offset", "timestamp")):
            raise TypeError("partition, offset and timestamp must be integers")
        return AuditEvent(
            str(line["topic"]),
            line["partition"],
            line["offset"],
            line["timestamp"],
            _bytes_of(line["key"]),
            headers,
            value,
        )
    except (TypeError, ValueError, binascii.Error) as error:
        raise AuditFileUnreadable(f"line {number} is not an event line: {error}") from None


def _check_seal(number: int, raw: bytes, line: dict[str, Any], failures: list[Failure]) -> None:
    if line.get("sha256") != line_hash(line):
        failures.append(Failure(number, "hash", "the line's sha256 does not match its content"))
    elif canonical(line) != raw:
        failures.append(Failure(number, "canonical form", "the line is not in RFC 8785 form"))


def read_audit_file(data: bytes) -> AuditFile:
    """Parse a file and run every check that needs no re-fold: each line's hash and
    canonical form, the (topic, partition, offset) order, the count and the chain.

    Raises `AuditFileUnreadable` for what is not an audit file.
    """
    raws = data.split(b"\n")
    if raws and raws[-1] == b"":
        raws.pop()
    if not raws:
        raise AuditFileUnreadable("the file is empty: no summary line")
    lines = [_parse_line(n, raw) for n, raw in enumerate(raws, start=1)]
    summary, summary_number = lines[-1], len(lines)
    if summary.get("kind") != SUMMARY or set(summary) != _SUMMARY_FIELDS:
        raise AuditFileUnreadable(f"line {summary_number}, the last, is not a summary line")
    if summary["format"] != FORMAT or not isinstance(summary["events"], int):
        raise AuditFileUnreadable(
            f"line {summary_number}: format {summary['format']!r} is not {FORMAT!r}, "
            "or the event count is not an integer"
        )
    failures: list[Failure] = []
    events: list[AuditEvent] = []
    for number, (raw, line) in enumerate(zip(raws[:-1], lines[:-1], strict=True), start=1):
        events.append(_event_of(number, line))
        _check_seal(number, raw, line, failures)
        if len(events) > 1 and events[-2].position >= events[-1].position:
            failures.append(
                Failure(
                    number, "order", f"{events[-1].position} is not after {events[-2].position}"
                )
            )
    _check_seal(summary_number, raws[-1], summary, failures)
    if summary["events"] != len(events):
        failures.append(
            Failure(
                summary_number,
                "count",
                f"the summary says {summary['events']} events, the file holds {len(events)}",
            )
        )
    if summary["chain"] != chain_of(str(line["sha256"]) for line in lines[:-1]):
        failures.append(
            Failure(summary_number, "chain", "the events' hashes do not chain to the summary's")
        )
    return AuditFile(events, summary, summary_number, failures)
