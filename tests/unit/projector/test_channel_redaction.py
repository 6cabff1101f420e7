"""What people and agents write reaches the read models redacted or not at all: a card
number, an e-mail address and an API key in a message, a reply, a button, a reason or a
record's key leave no trace in any row of any table, and no timeline summary carries
text at all."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

import pytest

from awooop.contracts.events.payloads.ingress import WITHHELD_DISPLAY_TEXT
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.domain.rows import ReadModelRows
from support.channel_envelopes import ChannelTraffic

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
CARD, EMAIL, API_KEY = "4111 1111 1111 1111", "jane.doe@example.com", "sk-" + "a1B2c3D4e5" * 4
SECRETS = (CARD, EMAIL, API_KEY, "4111111111111111")
LEAKY = f"pay with {CARD}, mail {EMAIL}, key {API_KEY}"


def _every_value(rows: ReadModelRows) -> str:
    tables: list[Any] = [
        *rows.channel_events,
        *rows.outbound,
        *rows.runs,
        *(asdict(t) for t in rows.timeline),
    ]
    return json.dumps([t if isinstance(t, dict) else t.values() for t in tables], default=str)


def _leaky_traffic() -> ChannelTraffic:
    t = ChannelTraffic("acme", AT)
    message = t.message(LEAKY)
    t.started(message)
    said = t.outbound(message, f"I noted {LEAKY}", buttons=(f"mail {EMAIL}"[:64], "No"))
    t.delivery(said, "failed", code="E-DELIVERY-REFUSED", reason=f"bad chat for {EMAIL}")
    t.button(f"pay:{CARD}")
    t.ignored(f"an edit by {EMAIL}", LEAKY)
    t.rejected("E-INBOUND-INVALID", f"not an object: {LEAKY}"[:1024], 3, key=f"acme:{EMAIL}")
    return t


def test_no_secret_reaches_any_row_of_any_table() -> None:
    rows = fold_batch(_leaky_traffic().events)
    dumped = _every_value(rows)
    for secret in SECRETS:
        assert secret not in dumped
    assert len(rows.channel_events) == 4
    assert len(rows.outbound) == 1


def test_what_was_written_stays_readable_around_the_markers() -> None:
    rows = fold_batch(_leaky_traffic().events)
    message = next(r for r in rows.channel_events if r.kind == "message")
    assert message.display_text is not None
    assert message.display_text.startswith("pay with [REDACTED:")
    [said] = rows.outbound
    assert said.text is not None
    assert said.text.startswith("I noted pay with [REDACTED:")
    assert said.button_labels is not None
    assert said.button_labels[1] == "No"
    assert "[REDACTED:" in said.button_labels[0]
    [run] = rows.runs
    assert run.trigger_text == message.display_text


def test_no_summary_carries_text() -> None:
    rows = fold_batch(_leaky_traffic().events)
    summaries = json.dumps([t.summary for t in rows.timeline])
    assert "REDACTED" not in summaries  # not even the redacted text
    assert "I noted" not in summaries
    assert "pay with" not in summaries
    by_type = {t.event_type: t.summary for t in rows.timeline}
    assert set(by_type) == {
        "ingress.message_received",
        "run.started",
        "channel.outbound_requested",
        "channel.delivery_reported",
    }
    assert by_type["channel.outbound_requested"]["buttons"] == 2


def test_a_message_of_an_older_version_shows_its_text_withheld() -> None:
    t = ChannelTraffic("acme", AT)
    message = t.message(LEAKY)
    codec = EnvelopeCodec()
    document = json.loads(codec.encode(message))
    document["schema_version"] = 2
    for new in ("thread_id", "message_id", "display_text", "attachments", "entities"):
        document["payload"].pop(new)
    for new in ("command", "edited"):
        document["payload"].pop(new)
    old = codec.decode(json.dumps(document).encode(), 2, "ingress.message_received")
    rows = fold_batch([old])
    [row] = rows.channel_events
    assert row.display_text == WITHHELD_DISPLAY_TEXT
    assert rows.runs[0].trigger_text == WITHHELD_DISPLAY_TEXT
    for secret in SECRETS:
        assert secret not in _every_value(rows)
