"""`awooop contracts apply | publish | sign | activate | retire`: the contract lifecycle
through the approval service's command API (decision 0026); `list | show | diff`: the
contracts as the query API's read models show them.

`apply` drafts one revision per contract file, with a request id derived from the
file's content, so an unchanged file applied again answers the same revision and
appends nothing. The other verbs act on one revision, each with a fresh request id
unless `--request-id` repeats an earlier one. `diff` exits 0 when the bodies are
equal, 1 when they differ, and 2 on any error, as `diff` does. The verbs' options are
declared in `awooop.cli.verbs.contracts`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import uuid
from typing import Any

import yaml

from awooop.cli.contract_client import ContractClient, ContractCommandError
from awooop.cli.contract_files import ContractFileError, contract_paths, read_contract_file
from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.queries import QueryClient
from awooop.cli.verbs.contracts import REVISION_VERBS

__all__ = ["ContractCommandError", "ContractFileError"]


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
    path, _ = REVISION_VERBS[args.verb]
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


def _contract(project: str, contract: str) -> dict[str, Any]:
    client = QueryClient(project)
    try:
        return client.contract(contract)
    finally:
        client.close()


def list_contracts(args: argparse.Namespace) -> int:
    client = QueryClient(args.project)
    try:
        found = client.contracts(args.family, args.lifecycle)
    finally:
        client.close()
    if not found:
        print(f"no contracts in project {args.project}", file=sys.stderr)
    for c in found:
        active = c["active_revision"] or "-"
        print(
            f"{c['contract_id']:<24} {c['family'] or '?':<17} {c['lifecycle'] or '?':<9} "
            f"active {active:<3} latest {c['latest_revision']:<3} updated {c['updated_at']}"
        )
    return 0


def show_contract(args: argparse.Namespace) -> int:
    detail = _contract(args.project, args.contract)
    if args.json:
        print(json.dumps(detail, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print("\n".join(format_contract(detail)))
    return 0


def format_contract(detail: dict[str, Any]) -> list[str]:
    """The lines of `contracts show`: the contract, each revision, then the body shown."""
    c = detail["contract"]
    lines = [
        f"contract {c['project_id']}/{c['contract_id']}  {c['family']}  {c['lifecycle']}  "
        f"active {c['active_revision'] or '-'}  latest {c['latest_revision']}"
    ]
    for r in detail["revisions"]:
        signature = r["signature"]
        checked = (
            f"signature {signature['check'] or 'unchecked'} (key {signature['kid']}, "
            f"{signature['alg']})"
            if signature
            else "not published"
        )
        signers = ", ".join(r["signers"]) or "nobody"
        lines.append(
            f"  revision {r['revision']}  {r['lifecycle']:<9}  by {r['author']}  "
            f"signed by {signers}  {checked}"
        )
        steps = ("drafted", "published", "activated", "retired")
        lines += [f"    {step} {r[step + '_at']}" for step in steps if r[step + "_at"]]
    shown = c["active_revision"] or c["latest_revision"]
    body = next((r["body"] for r in detail["revisions"] if r["revision"] == shown), None)
    which = "active" if c["active_revision"] else "latest"
    lines.append(f"  body of revision {shown} ({which}):")
    lines += ["    " + line for line in _rendered(body, as_yaml=False)]
    return lines


def _rendered(body: Any, *, as_yaml: bool) -> list[str]:
    if as_yaml:
        return yaml.safe_dump(body, sort_keys=True, allow_unicode=True).splitlines()
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _body_of(detail: dict[str, Any], revision: int) -> dict[str, Any]:
    c = detail["contract"]
    for r in detail["revisions"]:
        if r["revision"] == revision:
            if r["body"] is None:
                raise ContractCommandError(f"revision {revision} has no projected body")
            body: dict[str, Any] = r["body"]
            return body
    numbers = ", ".join(str(r["revision"]) for r in detail["revisions"])
    raise ContractCommandError(
        f"contract {c['contract_id']!r} of project {c['project_id']!r} has no revision "
        f"{revision} (it has {numbers})"
    )


def diff_contract(args: argparse.Namespace) -> int:
    """`diff CONTRACT A B` or `diff CONTRACT --file PATH`: a unified diff of the bodies."""
    if args.file is not None:
        if args.revisions:
            raise ContractCommandError("give two revisions or --file PATH, not both")
        read = read_contract_file(args.file, args.project)
        if read.contract != args.contract:
            raise ContractCommandError(
                f"{args.file}: names contract {read.contract!r}, not {args.contract!r}"
            )
        detail = _contract(read.project, args.contract)
        active = detail["contract"]["active_revision"]
        if active is None:
            raise ContractCommandError(
                f"contract {args.contract!r} of project {read.project!r} has no active revision"
            )
        left = (f"{args.contract}@{active} (active)", _body_of(detail, active))
        right = (str(args.file), read.body)
    else:
        if len(args.revisions) != 2:
            raise ContractCommandError(
                "give two revisions (diff CONTRACT A B) or a file (diff CONTRACT --file PATH)"
            )
        detail = _contract(args.project or DEFAULT_PROJECT, args.contract)
        a, b = args.revisions
        left = (f"{args.contract}@{a}", _body_of(detail, a))
        right = (f"{args.contract}@{b}", _body_of(detail, b))
    lines = list(
        difflib.unified_diff(
            _rendered(left[1], as_yaml=args.yaml),
            _rendered(right[1], as_yaml=args.yaml),
            fromfile=left[0],
            tofile=right[0],
            lineterm="",
        )
    )
    for line in lines:
        print(line)
    return 1 if lines else 0
