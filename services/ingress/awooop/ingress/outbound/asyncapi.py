"""The AsyncAPI document of outbound delivery, generated from its faststream broker.

``docs/asyncapi/outbound.json`` is this module's output, checked by a test; regenerate it
from the repository root with :data:`REGENERATE_COMMAND`.

faststream describes every message's correlation id as a ``correlation_id`` header;
envelope records carry theirs in the value, and the five envelope headers instead, so
each message is told so here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import (
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_PROJECT_ID,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
)
from awooop.ingress.outbound.subscriber import outbound_broker

DOCUMENT = Path("docs/asyncapi/outbound.json")
REGENERATE_COMMAND = ".venv/bin/python -m awooop.ingress.outbound.asyncapi --write"
TITLE = "AwoooP outbound delivery"
VERSION = "1.0.0"
DESCRIPTION = (
    "Ingress's outbound delivery worker: it reads every channel.outbound_requested, "
    "calls the Telegram Bot API or the Slack Web API at most once per event id, and "
    "reports each one as channel.delivery_reported (docs/outbound-delivery.md)."
)

ENVELOPE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Every envelope record's headers: route or skip without decoding.",
    "properties": {
        HEADER_EVENT_TYPE: {"type": "string"},
        HEADER_SCHEMA_VERSION: {"type": "string", "pattern": "^[1-9][0-9]*$"},
        HEADER_EVENT_ID: {"type": "string", "format": "uuid"},
        HEADER_PROJECT_ID: {"type": "string"},
        HEADER_TRACEPARENT: {"type": "string"},
    },
    "required": [
        HEADER_EVENT_TYPE,
        HEADER_SCHEMA_VERSION,
        HEADER_EVENT_ID,
        HEADER_PROJECT_ID,
        HEADER_TRACEPARENT,
    ],
}


async def _documented_only(_request: Envelope[OutboundRequested]) -> None:
    raise RuntimeError("this broker describes outbound delivery; it is never started")


def outbound_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as JSON-ready data."""
    broker = outbound_broker(None, _documented_only)
    spec = AsyncAPI(
        broker, title=TITLE, version=VERSION, description=DESCRIPTION, schema_version="3.0.0"
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    for message in document["components"]["messages"].values():
        message["correlationId"] = {
            "description": "the run the message speaks for",
            "location": "$message.payload#/correlation_id",
        }
        message["headers"] = ENVELOPE_HEADERS
    return document


def outbound_document_text() -> str:
    """The document as the committed file holds it: sorted keys, two-space indent."""
    return json.dumps(outbound_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m awooop.ingress.outbound.asyncapi",
        description="Print (or --write) the AsyncAPI document of outbound delivery.",
    )
    parser.add_argument(
        "--write", action="store_true", help=f"write {DOCUMENT} under the working directory"
    )
    args = parser.parse_args(argv)
    text = outbound_document_text()
    if args.write:
        DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
