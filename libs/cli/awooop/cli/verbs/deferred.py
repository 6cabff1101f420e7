"""A verb's handler named by where it lives, imported only when the verb runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True, slots=True)
class DeferredHandler:
    """Calls `module`'s function `name` with the parsed arguments, importing `module`
    then. The function is looked up at each call, so replacing it (or what it uses) in
    `module`, as a test does, takes effect."""

    module: str
    name: str

    def resolve(self) -> Callable[[argparse.Namespace], int]:
        """The function itself; `ImportError` or `AttributeError` when it is not there."""
        handler: Callable[[argparse.Namespace], int] = getattr(
            import_module(self.module), self.name
        )
        return handler

    def __call__(self, args: argparse.Namespace) -> int:
        return self.resolve()(args)
