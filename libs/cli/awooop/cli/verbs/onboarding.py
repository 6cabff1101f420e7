"""The arguments of `awooop contracts onboard`; `awooop.cli.onboarding` onboards."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from awooop.cli.verbs.deferred import DeferredHandler

WORK = "awooop.cli.onboarding"

DEVELOPMENT_SIGNERS = ("operator:alice", "operator:bob", "operator:carol")
"""Who signs, in this order, skipping the author, until a revision has enough signatures."""


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add ``onboard`` to the verbs of ``awooop contracts``."""
    onboard = verbs.add_parser(
        "onboard", help="apply, publish, sign and activate every contract file of a tenant"
    )
    onboard.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a file or a folder")
    onboard.add_argument("--project", help="the project of files that do not name one")
    onboard.add_argument(
        "--as", dest="subject", metavar="SUBJECT", help="the author (default operator:<login>)"
    )
    onboard.add_argument(
        "--signer",
        dest="signers",
        action="append",
        metavar="SUBJECT",
        help=f"a development signer, repeatable (default {', '.join(DEVELOPMENT_SIGNERS)})",
    )
    onboard.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for the reading services to hold the active revisions",
    )
    onboard.set_defaults(handler=DeferredHandler(WORK, "onboard_command"))
