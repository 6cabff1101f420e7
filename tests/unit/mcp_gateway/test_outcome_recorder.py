"""The outcome recorder claims the next calls in the transaction that records a group, but
never lets claiming keep answers from their runs: a record that failed is retried
without claiming, and claiming resumes once a record went through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from awooop.mcp_gateway import outcome_recorder
from awooop.mcp_gateway.adapters.call_transactions import NOTHING, Claimed
from awooop.mcp_gateway.outcome_recorder import OutcomeRecorder

pytestmark = pytest.mark.unit


class _Records:
    """Stands in for `call_transactions.record`: fails the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rooms: list[int] = []

    async def __call__(self, _db: Any, finished: Any, room: Any) -> tuple[int, Claimed]:
        self.rooms.append(room())
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database went away")
        return len(finished), NOTHING


async def test_a_failed_record_is_retried_without_claiming_then_claiming_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = _Records(failures=2)
    monkeypatch.setattr(outcome_recorder.call_transactions, "record", records)
    started: list[Claimed] = []
    recorder = OutcomeRecorder(db=None, room=lambda: 8, start=started.append)  # type: ignore[arg-type]

    async def back_off(_stage: str, _error: Exception, delay: float) -> float:
        return delay * 2

    recorded = asyncio.Event()
    task = asyncio.create_task(recorder.run(back_off, recorded.set))
    try:
        for answer in ("first answer", "second answer"):
            recorded.clear()
            recorder.add(answer)  # type: ignore[arg-type]
            await asyncio.wait_for(recorded.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # Claimed with the first try; after it failed, recorded alone until one went through;
    # then claiming again.
    assert records.rooms == [8, 0, 0, 8]
    assert len(started) == 2
