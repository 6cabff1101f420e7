"""The generated reference pages: the event catalog and the error-code table.

Rendering is pure: each page is a function of the registries (event types, topics, error
codes), so ``docs/`` can be checked against it and never drifts. Run
``python -m awooop.contracts.reference_pages docs`` to rewrite the pages in a docs folder.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import awooop.contracts.events.payloads  # noqa: F401  (importing it registers every payload)
from awooop.contracts.events.registry import EVENT_REGISTRY, EventTypeRegistry
from awooop.contracts.registries.errors import error_table_markdown
from awooop.contracts.registries.topics import ALL_TOPICS, Topic, Topics

_TOPIC_BY_PREFIX: dict[str, Topic] = {
    "ingress": Topics.INGRESS_EVENTS,
    "run": Topics.RUN_EVENTS,
    "gateway": Topics.GATEWAY_EVENTS,
    "approval": Topics.APPROVAL_EVENTS,
    "contract": Topics.CONTRACT_EVENTS,
    "budget": Topics.BUDGET_EVENTS,
    "channel": Topics.CHANNEL_OUTBOUND,
}
_TOPIC_BY_TYPE: dict[str, Topic] = {
    # The channel's two directions share the prefix: reports go back on their own topic.
    "channel.delivery_reported": Topics.CHANNEL_DELIVERY,
}

REGENERATE_COMMAND = "python -m awooop.contracts.reference_pages docs"
"""The command, run from the repository root, that rewrites the generated pages."""


class UnknownEventPrefixError(ValueError):
    """An event type whose prefix names no producing topic."""


def producing_topic(event_type: str) -> Topic:
    """The topic an event type is published on, chosen by its prefix (``run.`` → run events)
    unless the type has a topic of its own.

    Raises :class:`UnknownEventPrefixError` for a prefix outside the map.
    """
    if event_type in _TOPIC_BY_TYPE:
        return _TOPIC_BY_TYPE[event_type]
    prefix = event_type.split(".", 1)[0]
    try:
        return _TOPIC_BY_PREFIX[prefix]
    except KeyError:
        msg = f"event type {event_type!r}: prefix {prefix!r} names no producing topic"
        raise UnknownEventPrefixError(msg) from None


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _summary(cls: type) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    if not doc:
        msg = f"{cls.__name__} has no docstring: the event catalog prints its first line"
        raise ValueError(msg)
    return doc.splitlines()[0]


def event_table_markdown(registry: EventTypeRegistry = EVENT_REGISTRY) -> str:
    """One row per registered event type, sorted by type: version, topic, fields, meaning.

    Raises :class:`UnknownEventPrefixError` for an event type with no producing topic and
    ``ValueError`` for a payload class without a docstring.
    """
    rows = [
        "| event type | schema version | topic | payload fields | meaning |",
        "|---|---|---|---|---|",
    ]
    for cls in sorted(registry.payload_classes(), key=lambda c: c.event_type):
        fields = ", ".join(f"`{name}`" for name in cls.model_fields) or "—"
        rows.append(
            f"| `{cls.event_type}` | {cls.schema_version} "
            f"| `{producing_topic(cls.event_type).name}` | {fields} "
            f"| {_cell(_summary(cls))} |"
        )
    return "\n".join(rows) + "\n"


def topic_table_markdown(topics: tuple[Topic, ...] = ALL_TOPICS) -> str:
    """One row per topic, in registry order: name, key, partitions, producer, consumers."""
    rows = [
        "| topic | key | partitions | producer | consumers |",
        "|---|---|---|---|---|",
    ]
    for entry in topics:
        key = f"`{entry.key}`" if entry.key else "—"
        consumers = ", ".join(entry.consumers)
        rows.append(
            f"| `{entry.name}` | {_cell(key)} | {entry.partitions} "
            f"| {entry.producer} | {consumers} |"
        )
    return "\n".join(rows) + "\n"


def event_catalog_markdown() -> str:
    """The topics table, then the event-type table, from the production registries."""
    return (
        "## Topics\n\n" + topic_table_markdown() + "\n## Event types\n\n" + event_table_markdown()
    )


def docs_pages() -> dict[str, str]:
    """Every generated page: file name under ``docs/`` → its full content."""
    note = f"Generated from the registries in `awooop.contracts`; run `{REGENERATE_COMMAND}`."
    return {
        "error-codes.md": (
            "# Error codes\n\n"
            "Every code AwoooP emits in events, DLQ headers, logs and HTTP answers, with "
            "its meaning.\n"
            f"{note}\n\n" + error_table_markdown()
        ),
        "event-catalog.md": (
            "# Event catalog\n\n"
            "Every topic and every event type AwoooP publishes; a payload's fields are "
            "those of its current schema version.\n"
            f"{note}\n\n" + event_catalog_markdown()
        ),
    }


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    for name, text in docs_pages().items():
        (folder / name).write_text(text, encoding="utf-8")
        print(f"wrote {folder / name}")
