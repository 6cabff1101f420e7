"""Calls held for a run the approval service does not know yet, within one batch."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from awooop.approval.processor import _Batch
from awooop.contracts.families.registry import contract_family
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.registries.errors import E_APPROVAL_EXPIRED
from support.approval_inputs import held_call, run_cancelled
from support.contracts import view_of

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()


def _policy() -> dict[str, Any]:
    fixture = next(f for f in contract_family("policy").fixtures("valid") if f.name == "full.json")
    body: dict[str, Any] = json.loads(fixture.read_text(encoding="utf-8"))
    return body


def test_a_hold_and_its_runs_end_in_one_batch_end_denied_with_nothing_left_held() -> None:
    """Read from offset 0, the held call often comes before its run's events: when the
    run ended without waiting, the call is decided at the end, not parked for good."""
    view = view_of(("acme", {"policy": _policy()}))
    run_id = str(uuid.uuid4())
    call = held_call("acme", run_id, "call-1", view.refs()[("acme", "policy")])
    batch = _Batch(view, lambda *_: "", {}, {})  # type: ignore[arg-type]
    batch.approval_required(call, CODEC.encode(call))
    assert list(batch.held) != []
    batch.ended(run_cancelled("acme", run_id))
    assert batch.held == {}
    said = [CODEC.decode(event.data) for event in batch.events]
    assert [e.event_type for e in said] == ["approval.requested", "approval.denied"]
    assert said[-1].payload.code == E_APPROVAL_EXPIRED.code
