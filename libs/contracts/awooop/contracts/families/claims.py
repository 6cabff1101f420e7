"""What an active contract defines for its project, that no other active contract of the
project may define at the same time.

An agent contract defines its agent, a tool contract its tool; a project has one policy,
one budget and one run-state table; a channel binding defines each chat of its bot it
lists (or the bot's every chat, ``*``). Two active contracts of one project claiming the
same thing conflict: the readers keep the one activated first, and the approval service
refuses to activate the second. A bot's holding across projects is a rule of its own
(`ChannelBinding`'s channel ``bot``).
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.families.agent import Agent
from awooop.contracts.families.channel_binding import ChannelBinding, TelegramChannel
from awooop.contracts.families.registry import contract_family
from awooop.contracts.families.tool import Tool

ANY_CHAT = "*"
"""The chat of a binding that lists none: every chat of its bot."""


def claims_of(family_name: str, body: dict[str, Any]) -> tuple[str, ...]:
    """The claims of a valid body of `family_name` (``ValueError`` for an invalid one)."""
    document = contract_family(family_name).model.model_validate(body)
    if isinstance(document, Agent):
        return (f"agent|{document.agent_id}",)
    if isinstance(document, ChannelBinding):
        channel = document.channel
        bot = "|".join(channel.bot)
        chats = channel.chat_ids if isinstance(channel, TelegramChannel) else channel.channel_ids
        return tuple(f"chat|{bot}|{chat}" for chat in sorted(chats or (ANY_CHAT,)))
    if isinstance(document, Tool):
        return (f"tool|{document.name}",)
    return (family_name,)
