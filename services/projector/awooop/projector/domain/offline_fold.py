"""The read models a set of records folds into, computed offline from the records alone.

An audit export and its verification both call this, so a file's checksums mean
"what the live projector holds for these events". It keeps what the live
projector keeps and drops what it drops, the same way:

* a record whose `event_type` header is not projected is skipped unread
  (`not_projected`), as the processor's `handles` skips it;
* a projected record that cannot be decoded by its headers (`undecodable`),
  or a run event whose `correlation_id` is not a run id (`no_run`), is what
  the live projector dead-letters: counted and left out.

Contract publications are verified with `ring`, which must be the live
projector's verifying key ring for the `contract_revisions` digests to match;
without one their `signature_check` stays null.

`fold_batch` is commutative and idempotent (read_models.py), so one fold over
the whole set equals the live projector's many batches, duplicates included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION
from awooop.projector.domain.checksums import Checksums, checksums_of_rows
from awooop.projector.domain.read_models import (
    PROJECTED_EVENT_TYPES,
    NotARunId,
    fold_batch,
    require_fold_key,
)
from awooop.security.signing_keys import KeyRing

OUTCOMES = ("folded", "not_projected", "undecodable", "no_run")
"""Where each record went; every record counts once."""


class FoldableRecord(Protocol):
    """What the fold reads of a record: its headers and its value."""

    @property
    def value(self) -> bytes | None: ...

    def header(self, name: str) -> str | None: ...


@dataclass
class OfflineFold:
    """The checksums of the folded rows, and how many records went which way."""

    checksums: Checksums
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))


def _decoded(codec: EnvelopeCodec, record: FoldableRecord) -> Envelope[Any] | None:
    version = record.header(HEADER_SCHEMA_VERSION)
    if record.value is None:
        return None
    try:
        return codec.decode(
            record.value, int(version) if version else None, record.header(HEADER_EVENT_TYPE)
        )
    except ValueError:  # every EnvelopeDecodeError is a ValueError, as a bad version header is
        return None


def fold_records(
    records: Iterable[FoldableRecord],
    codec: EnvelopeCodec | None = None,
    ring: KeyRing | None = None,
) -> OfflineFold:
    """Fold `records` as the live projector would and digest the rows."""
    codec = codec or EnvelopeCodec()
    counts = OfflineFold(Checksums()).counts
    kept: list[Envelope[Any]] = []
    for record in records:
        if record.header(HEADER_EVENT_TYPE) not in PROJECTED_EVENT_TYPES:
            counts["not_projected"] += 1
            continue
        envelope = _decoded(codec, record)
        if envelope is None:
            counts["undecodable"] += 1
            continue
        try:
            require_fold_key(envelope)
        except NotARunId:
            counts["no_run"] += 1
            continue
        kept.append(envelope)
    counts["folded"] = len(kept)
    return OfflineFold(checksums_of_rows(fold_batch(kept, ring)), counts)
