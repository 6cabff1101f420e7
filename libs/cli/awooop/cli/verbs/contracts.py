"""The arguments of `awooop contracts apply | publish | sign | activate | retire | onboard
| list | show | diff`; `awooop.cli.contracts` sends the commands and reads the contracts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.verbs import onboarding
from awooop.cli.verbs.deferred import DeferredHandler
from awooop.cli.verbs.options import auth_options
from awooop.contracts.families.registry import CONTRACT_FAMILIES

WORK = "awooop.cli.contracts"

REVISION_VERBS = {
    "publish": ("publish", "check a draft against its family and sign it with the service key"),
    "sign": ("signatures", "sign a published revision as --as (never its author)"),
    "activate": ("activate", "make a published revision with enough signatures active"),
    "retire": ("retire", "withdraw a revision for good"),
}
"""Each verb on one revision: the path it posts to under the revision, and its help."""

LIFECYCLES = ("draft", "published", "active", "retired")


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    contracts = verbs.add_parser("contracts", help="draft, publish, sign, activate, retire")
    which = contracts.add_subparsers(dest="what", required=True, metavar="VERB")
    apply = which.add_parser("apply", help="draft a revision from each contract file")
    apply.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a file or a folder")
    apply.add_argument("--project", help="the project of files that do not name one")
    auth_options(apply)
    apply.set_defaults(handler=DeferredHandler(WORK, "apply_files"))
    for verb, (_, summary) in REVISION_VERBS.items():
        command = which.add_parser(verb, help=summary)
        command.add_argument("contract", metavar="CONTRACT")
        command.add_argument("revision", type=int, metavar="REVISION")
        command.add_argument("--project", default=DEFAULT_PROJECT)
        command.add_argument("--request-id", help="repeat an earlier command (default: a new id)")
        auth_options(command)
        command.set_defaults(handler=DeferredHandler(WORK, "on_revision"), verb=verb)
    onboarding.register(which)
    _register_reads(which)


def _register_reads(which: argparse._SubParsersAction[Any]) -> None:
    listing = which.add_parser("list", help="the contracts of a project (query API)")
    listing.add_argument("--project", default=DEFAULT_PROJECT)
    listing.add_argument("--family", choices=list(CONTRACT_FAMILIES))
    listing.add_argument(
        "--lifecycle", choices=LIFECYCLES, help="state of the active (else latest) revision"
    )
    listing.set_defaults(handler=DeferredHandler(WORK, "list_contracts"))
    show = which.add_parser("show", help="one contract and every revision (query API)")
    show.add_argument("contract", metavar="CONTRACT")
    show.add_argument("--project", default=DEFAULT_PROJECT)
    show.add_argument("--json", action="store_true", help="the API's answer as JSON")
    show.set_defaults(handler=DeferredHandler(WORK, "show_contract"))
    diff = which.add_parser(
        "diff", help="diff two revisions' bodies, or a contract file against the active one"
    )
    diff.add_argument("contract", metavar="CONTRACT")
    diff.add_argument("revisions", nargs="*", type=int, metavar="REVISION", help="A and B")
    diff.add_argument("--file", type=Path, metavar="PATH", help="a contract file (apply's)")
    diff.add_argument("--project", help=f"default: the file's project, else {DEFAULT_PROJECT}")
    diff.add_argument("--yaml", action="store_true", help="render bodies as YAML, not JSON")
    diff.set_defaults(handler=DeferredHandler(WORK, "diff_contract"))
