"""The bridges' AsyncAPI document, generated from the broker and publisher they produce
with. ``python -m awooop.ingress.bridges.asyncapi docs/asyncapi`` writes
``docs/asyncapi/bridges.json``; a test fails when the committed file differs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from faststream.specification import AsyncAPI

from awooop.infra.settings import KafkaSettings
from awooop.ingress.bridges.kafka_publisher import create_broker, inbound_publisher

FILE_NAME = "bridges.json"
REGENERATE_COMMAND = "python -m awooop.ingress.bridges.asyncapi docs/asyncapi"
_BOOTSTRAP_PLACEHOLDER = "$AWOOOP_KAFKA_BOOTSTRAP"

DESCRIPTION = (
    "The webhook bridges (`awooop bridge telegram|slack`) verify a provider's request "
    "(Telegram's secret token, Slack's v0 signature) and produce one inbound record per "
    "update, event callback or block_actions interaction, answering 200 only after the "
    "broker acknowledged it. HTTP side: POST /telegram/{bot_id}, POST /slack/events, "
    "POST /slack/interactivity (docs/bridges.md)."
)


def bridges_document() -> str:
    """The AsyncAPI 3 document as the JSON text committed in ``docs/asyncapi``."""
    broker = create_broker(KafkaSettings(bootstrap=_BOOTSTRAP_PLACEHOLDER))
    inbound_publisher(broker)
    specification = AsyncAPI(
        broker, title="AwoooP webhook bridges", version="1.0.0", description=DESCRIPTION
    )
    document = specification.to_specification().to_jsonable()
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document into the folder named by the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: {REGENERATE_COMMAND.replace('docs/asyncapi', 'FOLDER')}", file=sys.stderr)
        return 2
    folder = Path(args[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FILE_NAME).write_text(bridges_document(), encoding="utf-8")
    print(f"wrote {folder / FILE_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
