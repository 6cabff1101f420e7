"""`awooop bridge telegram|slack`: serve one project's webhook bridge in this process.

    awooop bridge telegram --project demo --bot 123=env:TELEGRAM_WEBHOOK_SECRET
    awooop bridge slack --project demo --signing-secret env:SLACK_SIGNING_SECRET

Each secret is a credential reference of the project (`env:NAME`, `file:NAME`,
`k8s:SECRET/KEY`), the same the project's channel_binding names, resolved once at start
(`AWOOOP_SECRETS_ROOT` holds the mounted files). Anything that keeps the bridge from
starting is one line, `BridgeCommandError`; a stop signal ends it with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from typing import Any

from aiokafka.errors import KafkaError

from awooop.contracts.families.channel_binding import TELEGRAM_BOT_ID_PATTERN
from awooop.infra.kafka.admin import TopicConfigMismatch, TopicPartitionMismatch
from awooop.infra.logging import configure_logging
from awooop.infra.settings import Settings
from awooop.ingress.bridges.config import BridgeConfig, BridgeSettings
from awooop.ingress.bridges.serve import BridgeNotListening, serve_bridge
from awooop.security.tenant_credentials import CredentialMissing, resolve_credential

__all__ = ["BridgeCommandError", "register"]

_BOT_ID = re.compile(TELEGRAM_BOT_ID_PATTERN)


class BridgeCommandError(RuntimeError):
    """The bridge cannot start: the message is the whole story, one line."""


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    bridge = verbs.add_parser(
        "bridge", help="serve a project's Telegram or Slack webhooks onto the inbound topic"
    )
    channels = bridge.add_subparsers(dest="channel", required=True, metavar="telegram|slack")
    telegram = channels.add_parser("telegram", help="POST /telegram/{bot_id}: Telegram updates")
    telegram.add_argument(
        "--bot",
        dest="bots",
        action="append",
        required=True,
        type=_bot_option,
        metavar="BOT_ID=REFERENCE",
        help="a bot and the reference of its webhook secret token (repeatable)",
    )
    slack = channels.add_parser(
        "slack", help="POST /slack/events and /slack/interactivity: Slack requests"
    )
    slack.add_argument(
        "--signing-secret",
        required=True,
        metavar="REFERENCE",
        help="the reference of the Slack app's signing secret",
    )
    for parser in (telegram, slack):
        parser.add_argument("--project", required=True, help="the project this bridge serves")
        parser.add_argument(
            "--host", help="address to bind (default AWOOOP_BRIDGE_HOST, else 127.0.0.1)"
        )
        parser.add_argument(
            "--port", type=int, help="port to listen on (default AWOOOP_BRIDGE_PORT, else 8088)"
        )
        parser.add_argument(
            "--ack-deadline",
            type=float,
            metavar="SECONDS",
            help="answer 503 when the broker has not acknowledged by then "
            "(default AWOOOP_BRIDGE_ACK_DEADLINE, else 2.5)",
        )
        parser.add_argument(
            "--no-cache",
            action="store_true",
            help="do not use Redis to answer Slack retries early",
        )
        parser.set_defaults(handler=run_bridge)


def _bot_option(text: str) -> tuple[str, str]:
    bot_id, separator, reference = text.partition("=")
    if not separator or not _BOT_ID.fullmatch(bot_id) or not reference:
        raise argparse.ArgumentTypeError(
            "expected BOT_ID=REFERENCE, with the bot's numeric id "
            "(e.g. 123=env:TELEGRAM_WEBHOOK_SECRET)"
        )
    return bot_id, reference


def bridge_config(args: argparse.Namespace, bridge: BridgeSettings) -> BridgeConfig:
    """The configuration the arguments describe, every secret resolved;
    `BridgeCommandError` for a reference that resolves to nothing."""

    def resolve(reference: str) -> str:
        try:
            return resolve_credential(
                args.project, reference, env=os.environ, secrets_root=bridge.secrets_root
            )
        except CredentialMissing as missing:
            raise BridgeCommandError(missing.reason) from None

    secrets: dict[str, str] = {}
    for bot_id, reference in getattr(args, "bots", None) or ():
        if bot_id in secrets:
            raise BridgeCommandError(f"bot {bot_id} is given twice")
        secrets[bot_id] = resolve(reference)
    signing = getattr(args, "signing_secret", None)
    try:
        return BridgeConfig(
            project_id=args.project,
            telegram_secrets=secrets,
            slack_signing_secret=resolve(signing) if signing else None,
            ack_deadline=bridge.ack_deadline if args.ack_deadline is None else args.ack_deadline,
        )
    except ValueError as invalid:
        raise BridgeCommandError(str(invalid)) from None


def run_bridge(args: argparse.Namespace) -> int:
    bridge = BridgeSettings.from_env(os.environ)
    config = bridge_config(args, bridge)
    settings = Settings.from_env()
    host, port = args.host or bridge.host, args.port if args.port is not None else bridge.port
    configure_logging(settings.log_level, settings.log_format)
    served = ", ".join(f"bot {bot_id}" for bot_id in config.telegram_secrets) or "Slack"
    print(f"bridge {args.channel} of project {config.project_id} ({served})")
    try:
        asyncio.run(
            serve_bridge(config, settings, host=host, port=port, use_cache=not args.no_cache)
        )
    except BridgeNotListening as refused:
        raise BridgeCommandError(str(refused)) from None
    except (TopicPartitionMismatch, TopicConfigMismatch) as mismatch:
        raise BridgeCommandError(f"the inbound topic is not as registered: {mismatch}") from None
    except KafkaError as error:
        raise BridgeCommandError(
            f"cannot reach the Kafka broker at {settings.kafka.bootstrap}: {error}"
        ) from None
    print("bridge stopped")
    return 0
