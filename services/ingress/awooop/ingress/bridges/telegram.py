"""The Telegram webhook: which update a verified request carries.

Telegram counts ``update_id`` per bot, so the record is named ``<bot_id>:<update_id>``;
the bot is the one the request's path names (``POST /telegram/{bot_id}``).
"""

from __future__ import annotations

from awooop.ingress.bridges.framing import BadRequest, Inbound, parse_object

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)


def telegram_update(bot_id: str, body: bytes) -> Inbound:
    """The update in ``body``; :class:`BadRequest` when it is not a JSON object with an
    integer ``update_id``."""
    update = parse_object(body, "Telegram update")
    update_id = update.get("update_id")
    # JSON true and false arrive as bool, a subclass of int: never an id.
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise BadRequest("the Telegram update has no integer update_id")
    return Inbound("telegram", f"{bot_id}:{update_id}", body)
