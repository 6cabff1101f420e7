"""What the fake chat APIs hold: accepted tokens, sent messages, the record of calls, faults.

A token's value is kept only as the key of its lookup table: the record and the logs
name a bot by its configured name, or an unknown token by a short SHA-256 prefix.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Provider = Literal["telegram", "slack"]
Buttons = list[list[dict[str, str]]]


def fingerprint(token: str) -> str:
    """How an unknown token is named: never its value."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


class Fault(BaseModel):
    """A scripted answer for the next ``times`` calls matching provider, method and chat.

    Without ``status`` the call is served normally and answered ``delay_seconds`` late.
    ``error`` replaces Telegram's description or Slack's error code; for Slack, status 200
    with an ``error`` is the refusal Slack itself sends (HTTP 200, ``ok: false``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    provider: Provider | None = None
    method: str | None = None
    chat: str | None = None
    status: int | None = Field(default=None, ge=200, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    error: str | None = None
    delay_seconds: float = Field(default=0.0, ge=0, le=300)
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _status_refuses(self) -> Fault:
        slack_refusal = self.status == 200 and self.error and self.provider == "slack"
        if self.status is not None and self.status < 400 and not slack_refusal:
            msg = "status is 400-599, or 200 with an error for provider slack"
            raise ValueError(msg)
        return self

    def matches(self, provider: Provider, method: str, chat: str | None) -> bool:
        return (
            self.provider in (None, provider)
            and (self.method is None or self.method.lower() == method.lower())
            and self.chat in (None, chat)
        )


@dataclass
class StoredMessage:
    chat: str
    message_id: int | str
    text: str
    date: int
    thread: int | str | None = None
    reply_to: int | None = None
    markup: Any = None
    edit_date: int | None = None


@dataclass(frozen=True)
class ReceivedCall:
    """One call that reached a method, refused or not, as ``GET /_fake/received`` shows it."""

    seq: int
    provider: Provider
    method: str
    bot: str | None
    status: int
    ok: bool
    error: str | None = None
    chat: str | None = None
    text: str | None = None
    thread: int | str | None = None
    reply_to: int | None = None
    buttons: Buttons | None = None
    parse_mode: str | None = None
    callback_query_id: str | None = None
    message_id: int | str | None = None
    fault: bool = False
    delay_seconds: float = 0.0


@dataclass
class _QueuedFault:
    fault: Fault
    left: int


@dataclass
class FakeChatState:
    """Everything one fake app serves from; no state lives outside it."""

    telegram_tokens: Mapping[str, str] = field(default_factory=dict)
    slack_tokens: Mapping[str, str] = field(default_factory=dict)
    chats: Collection[str] | None = None
    clock: Callable[[], float] = time.time
    received: list[ReceivedCall] = field(default_factory=list)
    messages: dict[tuple[Provider, str], dict[int | str, StoredMessage]] = field(
        default_factory=dict
    )
    _faults: list[_QueuedFault] = field(default_factory=list)
    _counters: dict[tuple[Provider, str], int] = field(default_factory=dict)
    _seq: int = 0

    def bot_name(self, provider: Provider, token: str) -> str | None:
        tokens = self.telegram_tokens if provider == "telegram" else self.slack_tokens
        return tokens.get(token)

    def chat_known(self, chat: str) -> bool:
        return self.chats is None or chat in self.chats

    def queue_faults(self, faults: Iterable[Fault]) -> None:
        self._faults.extend(_QueuedFault(fault, fault.times) for fault in faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    def pending_faults(self) -> list[dict[str, Any]]:
        return [{**queued.fault.model_dump(), "times": queued.left} for queued in self._faults]

    def take_fault(self, provider: Provider, method: str, chat: str | None) -> Fault | None:
        """The first queued fault matching this call, consumed once."""
        for index, queued in enumerate(self._faults):
            if queued.fault.matches(provider, method, chat):
                queued.left -= 1
                if queued.left == 0:
                    del self._faults[index]
                return queued.fault
        return None

    def store(self, provider: Provider, chat: str, **fields: Any) -> StoredMessage:
        """Keep a new message under the next id of its chat (Telegram) or channel (Slack)."""
        key = (provider, chat)
        count = self._counters[key] = self._counters.get(key, 0) + 1
        now = self.clock()
        message_id: int | str = count if provider == "telegram" else f"{int(now)}.{count:06d}"
        message = StoredMessage(chat, message_id, date=int(now), **fields)
        self.messages.setdefault(key, {})[message_id] = message
        return message

    def find(self, provider: Provider, chat: str, message_id: int | str) -> StoredMessage | None:
        return self.messages.get((provider, chat), {}).get(message_id)

    def record(self, **fields: Any) -> ReceivedCall:
        self._seq += 1
        call = ReceivedCall(seq=self._seq, **fields)
        self.received.append(call)
        return call

    def received_json(
        self, provider: str | None = None, chat: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            asdict(call)
            for call in self.received
            if provider in (None, call.provider)
            and chat in (None, call.chat)
            and method in (None, call.method)
        ]

    def clear_received(self) -> None:
        self.received.clear()
