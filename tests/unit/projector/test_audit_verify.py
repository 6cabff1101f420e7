"""`awooop audit verify` without infrastructure: the offline fold counts and skips what the
live projector dead-letters, and a file whose hashes were recomputed after an edit still
fails on the checksums, naming the table and the project."""

from __future__ import annotations

import json
from typing import Any

import pytest
from projector_events import RunEvents

from awooop.cli.audit import export_text, verify_bytes
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.projector.domain.checksums import checksums_of_rows, differences
from awooop.projector.domain.read_models import fold_batch
from awooop.security.audit_file import AuditEvent, canonical, chain_of, line_hash

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()


def record(env: Envelope[Any], offset: int, value: bytes | None = None) -> AuditEvent:
    headers = tuple(record_headers(env, make_traceparent(env.trace_id)))
    body = CODEC.encode(env) if value is None else value
    return AuditEvent("awooop.run.events.v1", 0, offset, 0, b"k", headers, body)


def reseal(text: str, edit: Any) -> bytes:
    """Apply `edit` to the event lines, then recompute every hash and the chain: a forger's
    file that is consistent with itself."""
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines[:-1]:
        edit(line)
        line["sha256"] = line_hash(line)
    summary = lines[-1]
    summary["chain"] = chain_of(line["sha256"] for line in lines[:-1])
    summary["sha256"] = line_hash(summary)
    return b"".join(canonical(line) + b"\n" for line in lines)


def test_the_offline_fold_equals_the_fold_of_the_runs_and_counts_what_it_skips(
    run_events: RunEvents,
) -> None:
    first, second = run_events("acme"), run_events("acme")
    stray = first[-1].model_copy(update={"correlation_id": "no-run"})
    records = [record(e, n) for n, e in enumerate([*first, *second, first[2]])]  # a duplicate
    records.append(record(stray, 100))
    records.append(record(first[1], 101, value=b"{not json"))
    unprojected = AuditEvent("awooop.contract.events.v1", 0, 0, 0, None, (), b"{}")
    result = verify_bytes(export_text([*records, unprojected], "acme", None).encode())
    assert result.failures == []
    assert result.fold.counts == {"folded": 13, "not_projected": 1, "undecodable": 1, "no_run": 1}
    expected = checksums_of_rows(fold_batch([*first, *second]))
    assert differences(result.fold.checksums, expected) == []
    assert result.fold.checksums.table_total("runs").rows == 2
    assert result.fold.checksums.table_total("timeline").rows == 12


def test_an_edited_reply_with_recomputed_hashes_fails_the_checksums(
    run_events: RunEvents,
) -> None:
    text = export_text([record(e, n) for n, e in enumerate(run_events("acme"))], "acme", None)

    def edit(line: dict[str, Any]) -> None:
        line["value"] = line["value"].replace('"reply":"all green"', '"reply":"all red"')

    assert '"reply":"all green"' in text.replace('\\"', '"')
    failures = verify_bytes(reseal(text, edit)).failures
    # The reply is in the run row and in the timeline line of run.completed.
    assert [(f.line, f.check, f.detail.split(":")[0]) for f in failures] == [
        (7, "checksums", "runs of project acme"),
        (7, "checksums", "timeline of project acme"),
    ]


def test_checksums_edited_in_the_summary_fail_even_when_it_is_resealed(
    run_events: RunEvents,
) -> None:
    text = export_text([record(e, n) for n, e in enumerate(run_events("acme"))], "acme", None)
    lines = [json.loads(line) for line in text.splitlines()]
    lines[-1]["checksums"]["timeline"]["projects"]["acme"]["rows"] = 5
    lines[-1]["sha256"] = line_hash(lines[-1])
    data = b"".join(canonical(line) + b"\n" for line in lines)
    failures = verify_bytes(data).failures
    assert [(f.check, f.detail.split(":")[0]) for f in failures] == [
        ("checksums", "timeline of project acme")
    ]
