"""A reply longer than one outbound message carries is cut and marked, never refused:
a tool result near its 16 KiB bound, quoted in a reply, must not fail the run."""

from __future__ import annotations

import pytest

from awooop.contracts.events.payloads.channel import MAX_OUTBOUND_TEXT
from awooop.runtime.domain.outbound import fitted

pytestmark = pytest.mark.unit


def test_a_text_that_fits_is_kept_whole() -> None:
    text = "x" * MAX_OUTBOUND_TEXT
    assert fitted(text) == text


def test_a_longer_text_is_cut_to_the_limit_with_a_mark() -> None:
    cut = fitted("Done: " + "y" * MAX_OUTBOUND_TEXT)
    assert len(cut) == MAX_OUTBOUND_TEXT
    assert cut.startswith("Done: y")
    assert cut.endswith("…")
