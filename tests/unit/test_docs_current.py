"""The generated pages in docs/ equal what the registries render, so they cannot drift."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from awooop.contracts.events.payloads.fields import CallId
from awooop.contracts.events.registry import EVENT_REGISTRY, EventTypeRegistry
from awooop.contracts.records.envelope import EventPayload
from awooop.contracts.reference_pages import (
    REGENERATE_COMMAND,
    UnknownEventPrefixError,
    docs_pages,
    event_catalog_markdown,
    event_table_markdown,
    producing_topic,
)
from awooop.contracts.registries.errors import ERROR_CODES, error_table_markdown
from awooop.contracts.registries.topics import ALL_TOPICS, Topics

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(docs_pages()))
def test_generated_page_is_current(name: str) -> None:
    path = DOCS / name
    expected = docs_pages()[name]
    actual = path.read_text(encoding="utf-8") if path.exists() else "<missing>"
    assert actual == expected, (
        f"docs/{name} is out of date with the registries in awooop.contracts; "
        f"regenerate it from the repository root with `{REGENERATE_COMMAND}`"
    )


def test_pages_embed_the_rendered_tables() -> None:
    pages = docs_pages()
    assert pages["error-codes.md"].endswith(error_table_markdown())
    assert pages["event-catalog.md"].endswith(event_catalog_markdown())


def test_every_error_code_is_listed() -> None:
    table = error_table_markdown()
    for code in ERROR_CODES:
        assert f"| `{code}` |" in table


def test_every_event_type_and_topic_is_listed() -> None:
    catalog = event_catalog_markdown()
    assert EVENT_REGISTRY.payload_classes(), "no payload registered: payloads not imported?"
    for cls in EVENT_REGISTRY.payload_classes():
        row = next(line for line in catalog.splitlines() if f"| `{cls.event_type}` |" in line)
        assert f"| {cls.schema_version} |" in row
        assert f"`{producing_topic(cls.event_type).name}`" in row
        for field in cls.model_fields:
            assert f"`{field}`" in row
    for entry in ALL_TOPICS:
        assert f"| `{entry.name}` |" in catalog


def test_event_rows_are_sorted_by_type() -> None:
    rows = event_table_markdown().splitlines()[2:]
    types = [row.split("`")[1] for row in rows]
    assert types == sorted(types)
    assert len(types) == len(EVENT_REGISTRY.payload_classes())


@pytest.mark.parametrize(
    ("event_type", "topic_name"),
    [
        ("ingress.message_received", Topics.INGRESS_EVENTS.name),
        ("run.started", Topics.RUN_EVENTS.name),
        ("gateway.tool_call_blocked", Topics.GATEWAY_EVENTS.name),
        ("approval.granted", Topics.APPROVAL_EVENTS.name),
        ("contract.activated", Topics.CONTRACT_EVENTS.name),
    ],
)
def test_producing_topic_by_prefix(event_type: str, topic_name: str) -> None:
    assert producing_topic(event_type).name == topic_name


def test_unknown_prefix_is_refused() -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("billing.invoice_sent", 1)
    class InvoiceSent(EventPayload):
        """An invoice went out."""

        call_id: CallId

    with pytest.raises(UnknownEventPrefixError, match="billing"):
        event_table_markdown(registry)


def test_payload_without_docstring_is_refused() -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("run.paused", 1)
    class RunPaused(EventPayload):
        call_id: CallId

    with pytest.raises(ValueError, match="RunPaused has no docstring"):
        event_table_markdown(registry)


def test_pipe_in_a_summary_is_escaped() -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("run.resumed", 2)
    class RunResumed(EventPayload):
        """Resumed after a | pause."""

    row = event_table_markdown(registry).splitlines()[2]
    assert row == "| `run.resumed` | 2 | `awooop.run.events.v1` | — | Resumed after a \\| pause. |"


def test_entry_point_writes_every_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["catalog", str(tmp_path)])
    # A fresh execution as __main__, as `python -m` does, not the already imported module.
    monkeypatch.delitem(sys.modules, "awooop.contracts.reference_pages")
    runpy.run_module("awooop.contracts.reference_pages", run_name="__main__")
    for name, text in docs_pages().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text
