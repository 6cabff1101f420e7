"""The ``channel_binding`` contract family: which agent of the project a channel belongs to.

A binding names one agent and one channel: a Telegram bot (every chat of it, or the
listed chats) or a Slack app in a workspace (every channel, or the listed ones). Tokens
and webhook secrets appear only as credential references (``env:``, ``file:``,
``k8s:``), never as values. The project is not in the body: the contract envelope
carries it.

The JSON Schema ``schemas/channel_binding.schema.json`` is the source of the family;
:class:`ChannelBinding` accepts exactly the documents the schema accepts (the parity
tests hold the two together). Rules JSON Schema cannot state, because they span
documents or need the outside world, are checked by ingress when it folds the active
bindings: a chat or Slack channel is bound to one agent of one project only (a binding
that lists no chats or channels overlaps every other binding of the same bot or app),
the agent exists in the project, and every reference resolves in the project's own
namespace.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from awooop.contracts.families.fields import (
    AgentId,
    CredentialReference,
    FrozenDocument,
    SchemaVersion1,
    unique,
)

FAMILY = "channel_binding"

TELEGRAM_BOT_ID_PATTERN = r"^[1-9][0-9]{0,19}$"
"""A bot's numeric id, without leading zeros, so one bot has one spelling (its
``provider_event_id`` is ``<bot_id>:<update_id>``)."""

TELEGRAM_CHAT_ID_PATTERN = r"^-?[1-9][0-9]{0,19}$"
"""A chat's numeric id (negative for groups and channels), without leading zeros."""

SLACK_TEAM_ID_PATTERN = r"^T[A-Z0-9]{2,31}$"
SLACK_APP_ID_PATTERN = r"^A[A-Z0-9]{2,31}$"
SLACK_CHANNEL_ID_PATTERN = r"^[CDG][A-Z0-9]{2,31}$"
"""A public channel (``C``), direct message (``D``) or private group (``G``)."""


class TelegramChannel(FrozenDocument):
    """A Telegram bot; ``chat_ids`` empty means every chat of the bot."""

    kind: Literal["telegram"]
    bot_id: Annotated[str, Field(pattern=TELEGRAM_BOT_ID_PATTERN)]
    chat_ids: Annotated[
        tuple[Annotated[str, Field(pattern=TELEGRAM_CHAT_ID_PATTERN)], ...],
        AfterValidator(unique),
    ]
    bot_token: CredentialReference
    webhook_secret: CredentialReference

    @property
    def bot(self) -> tuple[str, ...]:
        """The bot the binding speaks through: one project holds a bot, every chat of it."""
        return ("telegram", self.bot_id)


class SlackChannel(FrozenDocument):
    """A Slack app in one workspace; ``channel_ids`` empty means every channel."""

    kind: Literal["slack"]
    team_id: Annotated[str, Field(pattern=SLACK_TEAM_ID_PATTERN)]
    app_id: Annotated[str, Field(pattern=SLACK_APP_ID_PATTERN)]
    channel_ids: Annotated[
        tuple[Annotated[str, Field(pattern=SLACK_CHANNEL_ID_PATTERN)], ...],
        AfterValidator(unique),
    ]
    bot_token: CredentialReference
    signing_secret: CredentialReference

    @property
    def bot(self) -> tuple[str, ...]:
        """The app installed in the workspace: one project holds it, every channel of it."""
        return ("slack", self.team_id, self.app_id)


Channel = Annotated[TelegramChannel | SlackChannel, Field(discriminator="kind")]
"""One channel, told apart by ``kind`` (the schema's ``oneOf`` with a ``kind`` const)."""


class ChannelBinding(FrozenDocument):
    """A ``channel_binding`` document (schema version 1)."""

    family: Literal["channel_binding"]
    schema_version: SchemaVersion1
    agent_id: AgentId
    channel: Channel
