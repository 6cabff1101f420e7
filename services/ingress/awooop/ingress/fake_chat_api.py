"""A fake of the Telegram Bot API and the Slack Web API, for the test-suite and the demo.

``create_app`` builds one ASGI app and the :class:`FakeChatState` it serves from. It answers
``/bot{token}/sendMessage|editMessageText|answerCallbackQuery`` and
``/api/chat.postMessage|chat.update`` in the providers' own shapes, records every call
that reached a method on ``GET /_fake/received``, and serves faults queued on
``POST /_fake/faults``. Run on its own::

    python -m awooop.ingress.fake_chat_api --port 8090 \\
        --telegram-token demo=123456:ABC --slack-token demo=xoxb-1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from awooop.infra.http_server import embedded_server
from awooop.infra.logging import configure_logging, get_logger
from awooop.ingress.fake_chat_state import (
    Buttons,
    FakeChatState,
    Fault,
    Provider,
    StoredMessage,
    fingerprint,
)


def _log() -> Any:
    # Looked up per call: a logger bound once at import would keep the first
    # configuration's processors (and escape a test's log capture).
    return get_logger(__name__)


TELEGRAM_TEXT_LIMIT = 4096
SLACK_TEXT_LIMIT = 40_000
_FAULTS = TypeAdapter(list[Fault])
_RECORDED = ("chat", "text", "thread", "reply_to", "buttons", "parse_mode", "callback_query_id")
_TG_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    502: "Bad Gateway",
}
_SLACK_ERRORS = {400: "invalid_arguments", 401: "not_authed", 403: "not_in_channel"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    message_id: int | str | None = None


class Refused(Exception):
    """A method refuses the call: Telegram's description or Slack's error code."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


Method = Callable[[FakeChatState, dict[str, Any]], Answer]


def _str(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _int(value: Any, name: str, refusal: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise Refused(refusal.format(name=name))


def _json(value: Any, refusal: str) -> Any:
    """Nested objects arrive as JSON text in a form-encoded body."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise Refused(refusal) from None


# Telegram


def _tg_error(status: int, description: str, retry_after: int | None = None) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if status == 429:
        body["parameters"] = {"retry_after": retry_after}
    return Answer(status, body)


def _tg_fault(fault: Fault) -> Answer:
    status, retry = fault.status or 500, fault.retry_after if fault.retry_after is not None else 1
    default = "Internal Server Error" if status >= 500 else "Bad Request"
    if status == 429:
        default = f"Too Many Requests: retry after {retry}"
    return _tg_error(status, fault.error or _TG_DESCRIPTIONS.get(status, default), retry)


def _tg_buttons(markup: Any) -> Buttons | None:
    refusal = Refused("Bad Request: can't parse reply keyboard markup JSON object")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise refusal
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise refusal
    buttons: Buttons = []
    for row in rows:
        if not all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in row):
            raise refusal
        keys = (("text", "text"), ("callback_data", "data"), ("url", "url"))
        buttons.append([{out: str(b[key]) for key, out in keys if key in b} for b in row])
    return buttons


def _tg_parse(fields: dict[str, Any], seen: dict[str, Any]) -> None:
    for name, key in (("chat", "chat_id"), ("text", "text"), ("parse_mode", "parse_mode")):
        seen[name] = _str(fields.get(key))
    seen["callback_query_id"] = _str(fields.get("callback_query_id"))
    invalid = 'Bad Request: field "{name}" must be of type Integer'
    seen["thread"] = _int(fields.get("message_thread_id"), "message_thread_id", invalid)
    seen["message_id"] = _int(fields.get("message_id"), "message_id", invalid)
    reply = _json(fields.get("reply_parameters"), "Bad Request: can't parse reply parameters")
    if isinstance(reply, dict):
        seen["reply_to"] = _int(reply.get("message_id"), "message_id", invalid)
    else:
        seen["reply_to"] = _int(fields.get("reply_to_message_id"), "reply_to_message_id", invalid)
    markup = _json(fields.get("reply_markup"), "Bad Request: can't parse reply keyboard markup")
    seen["buttons"] = _tg_buttons(markup)
    # Only an inline keyboard stays on the message; other keyboards belong to the client.
    seen["markup"] = markup if seen["buttons"] is not None else None


def _tg_checked(state: FakeChatState, seen: dict[str, Any]) -> tuple[str, str]:
    chat, text = seen["chat"], seen["text"]
    if not chat:
        raise Refused("Bad Request: chat_id is empty")
    if not state.chat_known(chat):
        raise Refused("Bad Request: chat not found")
    if not text or not text.strip():
        raise Refused("Bad Request: message text is empty")
    # Telegram counts after entity parsing; the raw length is the stricter bound.
    if len(text) > TELEGRAM_TEXT_LIMIT:
        raise Refused("Bad Request: message is too long")
    return chat, text


def _tg_message(message: StoredMessage) -> dict[str, Any]:
    chat_id: int | str = message.chat
    kind = "channel"
    if message.chat.lstrip("-").isdigit():
        chat_id = int(message.chat)
        kind = "private" if chat_id > 0 else "group"
        kind = "supergroup" if message.chat.startswith("-100") else kind
    chat = {"id": chat_id, "type": kind}
    out: dict[str, Any] = {
        "message_id": message.message_id,
        "chat": chat,
        "date": message.date,
    }
    if message.thread is not None:
        out |= {"message_thread_id": message.thread, "is_topic_message": True}
    if message.reply_to is not None:
        out["reply_to_message"] = {"message_id": message.reply_to, "chat": chat}
    if message.edit_date is not None:
        out["edit_date"] = message.edit_date
    out["text"] = message.text
    if message.markup is not None:
        out["reply_markup"] = message.markup
    return out


def _tg_send(state: FakeChatState, seen: dict[str, Any]) -> Answer:
    chat, text = _tg_checked(state, seen)
    keep = {key: seen[key] for key in ("thread", "reply_to", "markup")}
    message = state.store("telegram", chat, text=text, **keep)
    body = {"ok": True, "result": _tg_message(message)}
    return Answer(200, body, message_id=message.message_id)


def _tg_edit(state: FakeChatState, seen: dict[str, Any]) -> Answer:
    chat, text = _tg_checked(state, seen)
    message = state.find("telegram", chat, seen["message_id"])
    if message is None:
        raise Refused("Bad Request: message to edit not found")
    if message.text == text and message.markup == seen["markup"]:
        raise Refused(
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message"
        )
    message.text, message.markup, message.edit_date = text, seen["markup"], int(state.clock())
    body = {"ok": True, "result": _tg_message(message)}
    return Answer(200, body, message_id=message.message_id)


def _tg_answer_callback(_state: FakeChatState, seen: dict[str, Any]) -> Answer:
    if not seen["callback_query_id"]:
        raise Refused(
            "Bad Request: query is too old and response timeout expired or query ID is invalid"
        )
    return Answer(200, {"ok": True, "result": True})


TELEGRAM_METHODS: dict[str, tuple[str, Method]] = {
    name.lower(): (name, method)
    for name, method in (
        ("sendMessage", _tg_send),
        ("editMessageText", _tg_edit),
        ("answerCallbackQuery", _tg_answer_callback),
    )
}


# Slack


def _slack_fault(fault: Fault) -> Answer:
    status = fault.status or 500
    if status == 429:
        retry = fault.retry_after if fault.retry_after is not None else 1
        body = {"ok": False, "error": fault.error or "ratelimited"}
        return Answer(429, body, {"Retry-After": str(retry)})
    default = "internal_error" if status >= 500 else "invalid_arguments"
    return Answer(status, {"ok": False, "error": fault.error or _SLACK_ERRORS.get(status, default)})


def _slack_buttons(blocks: list[Any] | None) -> Buttons | None:
    rows: Buttons = []
    for block in blocks or ():
        if isinstance(block, dict) and block.get("type") == "actions":
            elements = [e for e in block.get("elements") or () if isinstance(e, dict)]
            rows.append(
                [
                    {"text": str((e.get("text") or {}).get("text", "")), "data": str(data)}
                    for e in elements
                    if e.get("type") == "button"
                    and (data := e.get("value", e.get("action_id"))) is not None
                ]
            )
    return rows or None


def _slack_parse(fields: dict[str, Any], seen: dict[str, Any]) -> None:
    for name, key in (("chat", "channel"), ("text", "text"), ("thread", "thread_ts")):
        seen[name] = _str(fields.get(key))
    seen["ts"] = _str(fields.get("ts"))
    blocks = _json(fields.get("blocks"), "invalid_blocks")
    if blocks is not None and not isinstance(blocks, list):
        raise Refused("invalid_blocks")
    seen["markup"], seen["buttons"] = blocks, _slack_buttons(blocks)


def _slack_checked(state: FakeChatState, seen: dict[str, Any]) -> tuple[str, str]:
    channel, text = seen["chat"], seen["text"] or ""
    if not channel or not state.chat_known(channel):
        raise Refused("channel_not_found")
    if not text and not seen["markup"]:
        raise Refused("no_text")
    if len(text) > SLACK_TEXT_LIMIT:
        raise Refused("msg_too_long")
    return channel, text


def _slack_message(message: StoredMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "message", "text": message.text, "ts": message.message_id}
    if message.thread is not None:
        out["thread_ts"] = message.thread
    if message.markup is not None:
        out["blocks"] = message.markup
    return out


def _slack_post(state: FakeChatState, seen: dict[str, Any]) -> Answer:
    channel, text = _slack_checked(state, seen)
    message = state.store("slack", channel, text=text, thread=seen["thread"], markup=seen["markup"])
    body = {"ok": True, "channel": channel, "ts": message.message_id}
    return Answer(200, body | {"message": _slack_message(message)}, message_id=message.message_id)


def _slack_update(state: FakeChatState, seen: dict[str, Any]) -> Answer:
    channel, text = _slack_checked(state, seen)
    message = state.find("slack", channel, seen["ts"]) if seen["ts"] else None
    if message is None:
        raise Refused("message_not_found")
    message.text, message.markup, message.edit_date = text, seen["markup"], int(state.clock())
    body = {"ok": True, "channel": channel, "ts": message.message_id, "text": text}
    return Answer(200, body | {"message": _slack_message(message)}, message_id=message.message_id)


SLACK_METHODS: dict[str, tuple[str, Method]] = {
    "chat.postMessage": ("chat.postMessage", _slack_post),
    "chat.update": ("chat.update", _slack_update),
}


# HTTP


async def _fields(request: Request) -> dict[str, Any] | None:
    """The query string and a JSON or form-encoded body; None when the body is unreadable."""
    fields: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw.strip():
        return fields
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        if kind == "application/json":
            body = json.loads(raw)
        elif kind == "application/x-www-form-urlencoded":
            body = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        else:
            return None
    except ValueError:  # UnicodeDecodeError included
        return None
    return {**fields, **body} if isinstance(body, dict) else None


async def _serve(
    request: Request, provider: Provider, method: tuple[str, Method], token: str
) -> JSONResponse:
    state: FakeChatState = request.app.state.chat
    name, act = method
    telegram = provider == "telegram"
    fields = await _fields(request)
    seen: dict[str, Any] = dict.fromkeys(_RECORDED)
    unread: Refused | None = Refused(
        "Bad Request: can't parse request body" if telegram else "invalid_form_data"
    )
    if fields is not None:
        try:
            (_tg_parse if telegram else _slack_parse)(fields, seen)
            unread = None
        except Refused as refused:
            unread = refused
    bot = state.bot_name(provider, token) if token else None
    fault: Fault | None = None
    try:
        if bot is None:
            slack_refusal = "invalid_auth" if token else "not_authed"
            raise Refused("Unauthorized" if telegram else slack_refusal, 401)
        if unread is not None:
            raise unread
        fault = state.take_fault(provider, name, seen["chat"])
        if fault is not None and fault.status is not None:
            answer = _tg_fault(fault) if telegram else _slack_fault(fault)
        else:
            answer = act(state, seen)
    except Refused as refused:
        tg_answer = _tg_error(refused.status, refused.reason)
        answer = tg_answer if telegram else Answer(200, {"ok": False, "error": refused.reason})
    delay = fault.delay_seconds if fault is not None else 0.0
    call = state.record(
        provider=provider,
        method=name,
        bot=bot or (fingerprint(token) if token else None),
        status=answer.status,
        ok=answer.body["ok"],
        error=answer.body.get("description", answer.body.get("error")),
        message_id=answer.message_id,
        fault=fault is not None,
        delay_seconds=delay,
        **{key: seen[key] for key in _RECORDED},
    )
    _log().info("fake_chat_call", provider=provider, method=name, bot=call.bot, status=call.status)
    # The effect is kept and recorded before the late answer: a caller that gives up
    # waiting still sees the message delivered, as with a slow provider.
    if delay:
        await asyncio.sleep(delay)
    return JSONResponse(answer.body, answer.status, answer.headers)


async def _telegram(request: Request) -> JSONResponse:
    method = TELEGRAM_METHODS.get(request.path_params["method"].lower())
    if method is None:
        return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
    return await _serve(request, "telegram", method, request.path_params["token"])


async def _slack(request: Request) -> JSONResponse:
    method = SLACK_METHODS.get(request.path_params["method"])
    if method is None:
        return JSONResponse({"ok": False, "error": "unknown_method"}, 404)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    if not token and (fields := await _fields(request)):
        token = _str(fields.get("token")) or ""
    return await _serve(request, "slack", method, token.strip())


async def _received(request: Request) -> JSONResponse:
    state: FakeChatState = request.app.state.chat
    if request.method == "DELETE":
        cleared = len(state.received)
        state.clear_received()
        return JSONResponse({"cleared": cleared})
    query = request.query_params
    calls = state.received_json(query.get("provider"), query.get("chat"), query.get("method"))
    return JSONResponse(calls)


async def _faults(request: Request) -> JSONResponse:
    state: FakeChatState = request.app.state.chat
    if request.method == "DELETE":
        cleared = len(state.pending_faults())
        state.clear_faults()
        return JSONResponse({"cleared": cleared})
    if request.method == "POST":
        try:
            body = json.loads(await request.body())
            faults = _FAULTS.validate_python(body if isinstance(body, list) else [body])
        except ValueError as invalid:  # ValidationError included
            if isinstance(invalid, ValidationError):
                detail: Any = invalid.errors(include_url=False, include_context=False)
            else:
                detail = f"a JSON fault or list of faults: {invalid}"
            return JSONResponse({"detail": detail}, 422)
        state.queue_faults(faults)
    return JSONResponse({"pending": state.pending_faults()})


def create_app(
    telegram_tokens: Mapping[str, str] | None = None,
    slack_tokens: Mapping[str, str] | None = None,
    *,
    chats: Collection[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[Starlette, FakeChatState]:
    """The fake's ASGI app and its state (also at ``app.state.chat``).

    ``telegram_tokens`` and ``slack_tokens`` map each accepted token to a name. ``chats``
    limits the chat ids and channels accepted; without it every one is.
    """
    state = FakeChatState(
        dict(telegram_tokens or {}),
        dict(slack_tokens or {}),
        chats=None if chats is None else frozenset(chats),
        clock=clock,
    )
    app = Starlette(
        routes=[
            Route("/bot{token}/{method}", _telegram, methods=["GET", "POST"]),
            Route("/api/{method}", _slack, methods=["POST"]),
            Route("/_fake/received", _received, methods=["GET", "DELETE"]),
            Route("/_fake/faults", _faults, methods=["GET", "POST", "DELETE"]),
        ]
    )
    app.state.chat = state
    return app, state


def _named_tokens(parser: argparse.ArgumentParser, option: str, pairs: list[str]) -> dict[str, str]:
    tokens = {}
    for pair in pairs:
        name, separator, token = pair.partition("=")
        if not (name and separator and token):
            parser.error(f"{option} takes NAME=TOKEN")  # never echo the value
        tokens[token] = name
    return tokens


async def _serve_until_signalled(app: Starlette, host: str, port: int) -> None:
    server = embedded_server(app, host, port)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, setattr, server, "should_exit", True)
    await server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m awooop.ingress.fake_chat_api",
        description="Serve a fake Telegram Bot API and Slack Web API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--telegram-token", action="append", default=[], metavar="NAME=TOKEN")
    parser.add_argument("--slack-token", action="append", default=[], metavar="NAME=TOKEN")
    parser.add_argument("--chat", action="append", help="accept only these chats and channels")
    args = parser.parse_args(argv)
    telegram = _named_tokens(parser, "--telegram-token", args.telegram_token)
    slack = _named_tokens(parser, "--slack-token", args.slack_token)
    app, _state = create_app(telegram, slack, chats=args.chat)
    configure_logging()
    _log().info(
        "fake_chat_api_listening",
        host=args.host,
        port=args.port,
        telegram_bots=sorted(telegram.values()),
        slack_bots=sorted(slack.values()),
    )
    asyncio.run(_serve_until_signalled(app, args.host, args.port))


if __name__ == "__main__":
    main()
