"""structlog set-up: JSON lines in services, pretty console output under a TTY.

Every line can be bound to `project_id`, `run_id` and `trace_id` with
`bind_context` (contextvars, so the binding follows the task). Values whose
key names a secret are masked before rendering, as a last line of defence:
secrets must never be logged in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

_SECRET_KEYS = ("password", "secret", "token", "authorization", "api_key", "apikey")


def _mask_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event_dict[key] = "***"
    return event_dict


class _StderrLogger:
    """Writes each line to `sys.stderr` as it is when the line is written.

    A logger bound to the stream object of configuration time keeps writing to it
    after it was replaced or closed (a CLI command run in-process under a test's
    captured output, then another test): every later line would raise.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's lines, to `sys.stderr` as it is at each line."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _stream: Any) -> None:
        pass


def configure_logging(level: str = "info", fmt: str | None = None) -> None:
    """Configure structlog and the standard library's root logger once per process."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    pretty = fmt == "console" or (fmt is None and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: _StderrLogger(),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[_StderrHandler()])


def get_logger(name: str) -> Any:
    """A structlog logger named after its module."""
    return structlog.get_logger(name)


@contextmanager
def bind_context(**values: str | None) -> Iterator[None]:
    """Bind `project_id`, `run_id`, `trace_id` (or other keys) to every line in the block."""
    present = {key: value for key, value in values.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield
