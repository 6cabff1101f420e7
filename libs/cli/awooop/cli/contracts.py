"""`awooop contracts apply | publish | sign | activate | retire`: the contract lifecycle
through the approval service's command API (decision 0026).

`apply` drafts one revision per contract file, with a request id derived from the
file's content, so an unchanged file applied again answers the same revision and
appends nothing. The other verbs act on one revision, each with a fresh request id
unless `--request-id` repeats an earlier one.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import Any

from awooop.cli.contract_client import ContractClient, ContractCommandError
from awooop.cli.contract_files import ContractFileError, contract_paths, read_contract_file
from awooop.cli.send import DEFAULT_PROJECT

__all__ = ["ContractCommandError", "ContractFileError", "register"]

_REVISION_VERBS = {
    "publish": ("publish", "check a draft against its family and sign it with the service key"),
    "sign": ("signatures", "sign a published revision as --as (never its author)"),
    "activate": ("activate", "make a published revision with enough signatures active"),
    "retire": ("retire", "withdraw a revision for good"),
}


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    contracts = verbs.add_parser("contracts", help="draft, publish, sign, activate, retire")
    which = contracts.add_subparsers(dest="what", required=True, metavar="VERB")
    apply = which.add_parser("apply", help="draft a revision from each contract file")
    apply.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a file or a folder")
    apply.add_argument("--project", help="the project of files that do not name one")
    _auth_options(apply)
    apply.set_defaults(handler=apply_files)
    for verb, (_, summary) in _REVISION_VERBS.items():
        command = which.add_parser(verb, help=summary)
        command.add_argument("contract", metavar="CONTRACT")
        command.add_argument("revision", type=int, metavar="REVISION")
        command.add_argument("--project", default=DEFAULT_PROJECT)
        command.add_argument("--request-id", help="repeat an earlier command (default: a new id)")
        _auth_options(command)
        command.set_defaults(handler=on_revision, verb=verb)


def _auth_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="subject",
        metavar="SUBJECT",
        help="subject of the development token (default operator:<login name>)",
    )
    parser.add_argument("--token", help="a bearer token (default: AWOOOP_TOKEN, else minted)")


def apply_files(args: argparse.Namespace) -> int:
    # Every file is read before anything is sent: a typo in the last one drafts nothing.
    files = [read_contract_file(path, args.project) for path in contract_paths(args.paths)]
    with ContractClient(args.token, args.subject) as client:
        for read in files:
            body = {"family": read.family, "body": read.body, "request_id": read.request_id}
            answer = client.post(read.project, read.contract, "drafts", body)
            name = f"{read.project}/{read.contract}"
            print(f"{name}: revision {answer['revision']} drafted ({read.family})")
    return 0


def on_revision(args: argparse.Namespace) -> int:
    path, _ = _REVISION_VERBS[args.verb]
    request_id = args.request_id or f"{args.verb}-{uuid.uuid4().hex}"
    with ContractClient(args.token, args.subject) as client:
        answer = client.post(
            args.project,
            args.contract,
            f"revisions/{args.revision}/{path}",
            {"request_id": request_id},
        )
    print(describe_answer(args.verb, answer))
    return 0


def describe_answer(verb: str, answer: dict[str, Any]) -> str:
    """One line saying what a revision command did, from the API's answer."""
    head = f"{answer['project_id']}/{answer['contract_id']}: revision {answer['revision']}"
    if verb == "publish":
        return f"{head} published (body sha256 {answer['body_sha256'][:16]}, key {answer['kid']})"
    if verb == "sign":
        signers = answer.get("signers") or []
        needed = answer.get("required_signatures")
        return f"{head} signed ({len(signers)} of {needed} signatures: {', '.join(signers)})"
    if verb == "activate":
        line = f"{head} active (signed by {', '.join(answer.get('signers') or [])})"
        superseded = answer.get("superseded_revision")
        return f"{line}; revision {superseded} superseded" if superseded else line
    return f"{head} {answer.get('state', verb)}"
