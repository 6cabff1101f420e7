"""Log lines of one module, captured whatever logging configuration ran before.

`structlog.testing.capture_logs` reconfigures structlog, but a module's logger that
already logged under the real configuration keeps it (loggers are cached on first use),
and a level filter configured earlier stays too: a test that runs after another
service's test would capture less or nothing. `captured` gives the module a fresh
logger under structlog's defaults for the duration, then puts everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import structlog
from structlog.testing import capture_logs


@contextmanager
def captured(module: ModuleType, attribute: str = "log") -> Iterator[list[dict[str, Any]]]:
    """The lines `module.<attribute>` logs inside the block, at every level (a level
    filter an earlier configuration installed is lifted for the block)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    original = getattr(module, attribute)
    try:
        with capture_logs() as lines:
            setattr(module, attribute, structlog.get_logger(module.__name__))
            yield lines
    finally:
        setattr(module, attribute, original)
        structlog.configure(**saved)
