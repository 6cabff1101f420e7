"""`awooop run <service>`: one service (or the query API) in this process."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

ENTRY_POINTS = {
    "ingress": "awooop.ingress.app",
    "runtime": "awooop.runtime.app",
    "mcp_gateway": "awooop.mcp_gateway.app",
    "approval": "awooop.approval.app",
    "projector": "awooop.projector.app",
    "api": "awooop.projector.api.app",
}


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    run = verbs.add_parser("run", help="run one service (or the query API) in this process")
    run.add_argument("service", choices=sorted(ENTRY_POINTS))
    run.set_defaults(handler=run_service)


def run_service(args: argparse.Namespace) -> int:
    module = importlib.import_module(ENTRY_POINTS[args.service])
    module.main()
    return 0
