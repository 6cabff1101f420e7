"""`awooop audit export | verify`: a tenant's events from the log, hashed and checked offline.

`export` reads every envelope topic of the registry from offset 0 to the high
watermarks the fetches report (group-less: nothing is committed and no group
rebalances), keeps the records whose `project_id` header names the tenant
(and, with `--run`, whose envelope's `correlation_id` is the run), and writes
them in the format of `awooop.security.audit_file`, with the read-model
checksums they fold into. It never reads the read models: the file is what the
log says.

`verify` needs neither broker nor Postgres: it checks each line's hash, the
order, the count and the chain, re-folds the events and compares the
checksums. Exit 0 when all agree, 1 with one line per failed check, 2 (one
`awooop: error:` line) when the file is not an audit file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awooop.contracts.events.payloads.contract import ContractPublished
from awooop.contracts.records.envelope import PROJECT_ID_PATTERN
from awooop.contracts.records.headers import HEADER_EVENT_TYPE, HEADER_PROJECT_ID
from awooop.contracts.registries.topics import ALL_TOPICS
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.settings import KafkaSettings, Settings, SettingsError
from awooop.projector.domain.checksums import Checksums, differences
from awooop.projector.domain.offline_fold import OfflineFold, fold_records
from awooop.security.audit_file import (
    AuditEvent,
    AuditFile,
    AuditFileUnreadable,
    Failure,
    read_audit_file,
    summary_line,
    write_lines,
)
from awooop.security.signing_keys import KeyRing

__all__ = ["AuditCommandError", "AuditFileUnreadable", "register"]

ENVELOPE_TOPICS = tuple(t.name for t in ALL_TOPICS if t.value == "envelope")
"""Every topic whose values are envelopes: not the inbound records, the DLQ or the epoch."""

READ_WITHIN_SECONDS = 300.0
"""How long an export may take to read the log to its high watermarks."""

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_PROJECT_HEADER = HEADER_PROJECT_ID


class AuditCommandError(RuntimeError):
    """A refusal of `audit export` with a one-line reason."""


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add the `audit` verb: `export` and `verify`."""
    audit = verbs.add_parser("audit", help="export a tenant's events from the log; verify a file")
    which = audit.add_subparsers(dest="what", required=True, metavar="export|verify")
    export = which.add_parser("export", help="a tenant's events as hashed JSON Lines")
    export.add_argument("--project", required=True, help="the tenant (project id)")
    export.add_argument("--run", help="only the events of this run (its correlation id)")
    export.add_argument("--out", type=Path, help="the file to write (default: stdout)")
    export.set_defaults(handler=run_export)
    verify = which.add_parser("verify", help="check an exported file offline")
    verify.add_argument("file", type=Path, help="a file written by `awooop audit export`")
    verify.set_defaults(handler=run_verify)


def _header(record: Any, name: str) -> bytes | None:
    """The first header `name` of an aiokafka record."""
    for key, value in record.headers:
        if key == name:
            return bytes(value)
    return None


def _correlation_id(value: bytes | None) -> object:
    try:
        body = json.loads(value or b"")
    except ValueError:
        return None
    return body.get("correlation_id") if isinstance(body, dict) else None


def _audit_event(record: Any) -> AuditEvent:
    return AuditEvent(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        tuple((name, value) for name, value in record.headers),
        record.value,
    )


async def collect_events(
    settings: KafkaSettings,
    project_id: str,
    run_id: str | None = None,
    *,
    within: float = READ_WITHIN_SECONDS,
) -> list[AuditEvent]:
    """The tenant's records of every envelope topic, from offset 0 to the high watermarks."""
    wanted = project_id.encode()
    found: list[AuditEvent] = []
    async with LogReader(
        settings, partitions_of(ENVELOPE_TOPICS), client_id="awooop-audit-export"
    ) as reader:
        async for batch in reader.batches(within=within):
            for record in batch:
                # The header first: most records are another tenant's, skipped undecoded.
                if _header(record, _PROJECT_HEADER) != wanted:
                    continue
                event = _audit_event(record)
                if run_id is not None and _correlation_id(event.value) != run_id:
                    continue
                found.append(event)
    return found


def _ring(settings: Settings) -> KeyRing | None:
    """The configured contract key ring, or None when there is none."""
    try:
        return settings.contract_key_ring()
    except SettingsError:
        return None


def _needs_ring(events: Sequence[AuditEvent], ring: KeyRing | None) -> None:
    """Refuse to fold contract publications without the ring that checks their signatures
    (the checks are part of the read models, so the checksums would not hold)."""
    published = ContractPublished.event_type
    if ring is None and any(e.header(HEADER_EVENT_TYPE) == published for e in events):
        raise AuditCommandError(
            "the events hold contract publications: set AWOOOP_CONTRACT_VERIFYING_KEYS "
            "to the key ring that verifies them"
        )


def export_text(
    events: Sequence[AuditEvent],
    project_id: str,
    run_id: str | None,
    ring: KeyRing | None = None,
) -> str:
    """The whole file for `events`: the event lines in order, then the summary (whose
    checksums hold the contract signature checks made with `ring`)."""
    lines, hashes = write_lines(events)
    fold = fold_records(events, ring=ring)
    lines.append(
        summary_line(
            project_id=project_id,
            run_id=run_id,
            event_hashes=hashes,
            fold=fold.counts,
            checksums=fold.checksums.as_json(),
        )
    )
    return "".join(line + "\n" for line in lines)


async def export(
    settings: KafkaSettings,
    project_id: str,
    run_id: str | None = None,
    ring: KeyRing | None = None,
) -> tuple[str, int]:
    """The file's text and its number of events."""
    if not _PROJECT_ID.fullmatch(project_id):
        raise AuditCommandError(f"{project_id!r} is not a project id ({PROJECT_ID_PATTERN})")
    events = await collect_events(settings, project_id, run_id)
    _needs_ring(events, ring)
    return export_text(events, project_id, run_id, ring), len(events)


def run_export(args: argparse.Namespace) -> int:
    """`awooop audit export --project P [--run R] [--out FILE]`."""
    settings = Settings.from_env()
    text, count = asyncio.run(export(settings.kafka, args.project, args.run, _ring(settings)))
    if args.out is None:
        sys.stdout.write(text)
    else:
        partial = args.out.with_name(args.out.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(args.out)  # never a half-written file under the final name
    scope = f"run {args.run} of project {args.project}" if args.run else f"project {args.project}"
    print(f"exported {count} events of {scope}", file=sys.stderr)
    return 0


@dataclass
class Verification:
    """A parsed file, its re-fold, and every check that failed (none: the file holds)."""

    file: AuditFile
    fold: OfflineFold
    failures: list[Failure]


def _claimed_checksums(parsed: AuditFile) -> Checksums:
    try:
        return Checksums.from_json(parsed.summary["checksums"])
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise AuditFileUnreadable(
            f"line {parsed.summary_line}: the checksums are malformed: {error!r}"
        ) from None


def verify_bytes(data: bytes, ring: KeyRing | None = None) -> Verification:
    """Every check of a file's content, contract signatures checked with `ring` (the
    public keys the exporter used); `AuditFileUnreadable` when it is not an audit file."""
    parsed = read_audit_file(data)
    claimed = _claimed_checksums(parsed)
    _needs_ring(parsed.events, ring)
    fold = fold_records(parsed.events, ring=ring)
    failures = list(parsed.failures)
    at = parsed.summary_line
    for difference in differences(claimed, fold.checksums):
        failures.append(Failure(at, "checksums", difference.describe("file", "re-fold")))
    if parsed.summary["fold"] != fold.counts:
        detail = f"the summary says {parsed.summary['fold']}, the re-fold gives {fold.counts}"
        failures.append(Failure(at, "fold counts", detail))
    return Verification(parsed, fold, failures)


def _ok_line(result: Verification) -> str:
    summary, counts = result.file.summary, result.fold.counts
    scope = f"project {summary['project_id']}"
    if summary["run_id"] is not None:
        scope = f"run {summary['run_id']} of {scope}"
    rows = ", ".join(
        f"{table} {result.fold.checksums.table_total(table).rows} rows"
        for table in sorted(result.fold.checksums.tables)
    )
    return (
        f"OK: {len(result.file.events)} events of {scope}; {counts['folded']} folded "
        f"({counts['not_projected']} not projected, {counts['undecodable']} undecodable, "
        f"{counts['no_run']} of no run) into {rows}; hashes, order, count, chain and "
        "checksums agree"
    )


def run_verify(args: argparse.Namespace) -> int:
    """`awooop audit verify FILE`: 0 when every check holds, 1 otherwise."""
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AuditFileUnreadable(f"cannot read {path}: {error.strerror or error}") from None
    result = verify_bytes(data, _ring(Settings.from_env()))
    if not result.failures:
        print(_ok_line(result))
        return 0
    for failure in result.failures:
        print(f"{path}: {failure.describe()}")
    print(f"FAILED: {len(result.failures)} checks of {path} did not hold")
    return 1
