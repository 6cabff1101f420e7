"""A fake OpenAI-compatible chat-completions server for tests.

It listens on 127.0.0.1 (a free port) in daemon threads of its own, one thread per
connection, so it answers whatever the test's event loop is doing, and a held request
never blocks the others. Every request body, its headers (Authorization among them) and
its arrival time (monotonic) are recorded. Answers come from a queue the test fills; when it is
empty the server answers `default_reply`.

    with FakeLLM() as llm:
        llm.answer_status(429, headers={"retry-after": "1"})
        llm.answer_reply('{"answer": 42}', tokens_in=12, tokens_out=4)
        ...  # point the client at llm.base_url
        assert len(llm.requests) == 2

`stall()` holds every request that arrives from then on (recorded first) until
`release()`; `waiting` is set as soon as one is held, so a test can wait for it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

COMPLETIONS_PATH = "/v1/chat/completions"
HOLD_LIMIT_SECONDS = 30.0
"""A held request is let go after this long even without `release()`: a test that forgets
to release fails on its own assertions instead of hanging."""


@dataclass(frozen=True)
class ScriptedAnswer:
    """One answer of the queue: an HTTP status, a JSON body (`None`: a completion built from
    `message`) and extra headers."""

    status: int = 200
    message: Mapping[str, Any] | None = None
    usage: tuple[int, int] | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeLLM:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, *, default_reply: str = "ok") -> None:
        self.default_reply = default_reply
        self._lock = threading.Lock()
        self._queue: deque[ScriptedAnswer] = deque()
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._times: list[float] = []
        self._ids = itertools.count(1)
        self._gate = threading.Event()
        self._gate.set()
        self.waiting = threading.Event()
        """Set when a request is being held by `stall()`."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll keeps `shutdown()` (which waits for one poll) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-llm", daemon=True
        )

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of the server, e.g. ``http://127.0.0.1:PORT/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of each request, names lower-cased."""
        with self._lock:
            return [dict(headers) for headers in self._headers]

    @property
    def authorizations(self) -> list[str | None]:
        """The Authorization header of each request (``None`` when absent)."""
        return [headers.get("authorization") for headers in self.headers]

    @property
    def request_times(self) -> list[float]:
        """`time.monotonic()` at the arrival of each request."""
        with self._lock:
            return list(self._times)

    def answer_reply(
        self, text: str, *, tokens_in: int = 7, tokens_out: int = 3, usage: bool = True
    ) -> None:
        """Queue a reply; `usage=False` sends no usage block."""
        self._push(
            ScriptedAnswer(
                message={"role": "assistant", "content": text},
                usage=(tokens_in, tokens_out) if usage else None,
            )
        )

    def answer_tool_call(
        self,
        tool: str,
        arguments: Mapping[str, Any] | str,
        *,
        call_id: str = "call_1",
        tokens_in: int = 7,
        tokens_out: int = 3,
    ) -> None:
        """Queue a tool call; `arguments` as text is sent verbatim (to send broken JSON)."""
        text = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
        call = {"id": call_id, "type": "function", "function": {"name": tool, "arguments": text}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        self._push(ScriptedAnswer(message=message, usage=(tokens_in, tokens_out)))

    def answer_status(
        self, status: int, *, headers: Mapping[str, str] | None = None, body: Any = None
    ) -> None:
        """Queue an error status with an OpenAI-style error body (or `body`)."""
        error = {"error": {"message": f"fake status {status}", "type": "fake", "code": None}}
        self._push(
            ScriptedAnswer(
                status=status, body=error if body is None else body, headers=headers or {}
            )
        )

    def stall(self) -> None:
        """Hold every request arriving from now on until `release()`."""
        self.waiting.clear()
        self._gate.clear()

    def release(self) -> None:
        """Let held requests (and later ones) be answered."""
        self._gate.set()

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _push(self, answer: ScriptedAnswer) -> None:
        with self._lock:
            self._queue.append(answer)

    def _receive(self, body: dict[str, Any], headers: dict[str, str]) -> ScriptedAnswer:
        with self._lock:
            self._requests.append(body)
            self._headers.append(headers)
            self._times.append(time.monotonic())
        if not self._gate.is_set():
            self.waiting.set()
            self._gate.wait(HOLD_LIMIT_SECONDS)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return ScriptedAnswer(
            message={"role": "assistant", "content": self.default_reply}, usage=(7, 3)
        )

    def _body_of(self, answer: ScriptedAnswer, request: Mapping[str, Any]) -> Any:
        if answer.message is None:
            return answer.body
        completion: dict[str, Any] = {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-model"),
            "choices": [
                {
                    "index": 0,
                    "message": dict(answer.message),
                    "finish_reason": "tool_calls" if "tool_calls" in answer.message else "stop",
                }
            ],
        }
        if answer.usage is not None:
            prompt, completion_tokens = answer.usage
            completion["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
            }
        return completion


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path != COMPLETIONS_PATH:
                self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"error": {"message": "body is not JSON"}}, {})
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = fake._receive(body, headers)
            self._send(answer.status, fake._body_of(answer, body), answer.headers)

        def _send(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                # A held request's client may have timed out and gone away meanwhile.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
