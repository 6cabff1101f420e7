"""Contract files for `awooop contracts apply`: reading them and naming their drafts.

A contract file, YAML or JSON, holds ``project`` (optional when ``--project`` is
given), ``contract`` and ``body``, the family document whose ``family`` names its
family. The request id of a draft is derived from its content, so applying an
unchanged file again repeats the first answer and appends nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from awooop.security.canonical_json import NotCanonicalizable, canonical_json

SUFFIXES = (".yaml", ".yml", ".json")


class ContractFileError(ValueError):
    """A path that is not a readable contract file (or a folder of them); names the path."""


@dataclass(frozen=True, slots=True)
class ContractFile:
    """One contract file as read: where it came from and the draft it asks for."""

    path: Path
    project: str
    contract: str
    family: str
    body: dict[str, Any]

    @property
    def request_id(self) -> str:
        """The draft's idempotency key: the same for the same content."""
        return apply_request_id(self.project, self.contract, self.body)


def apply_request_id(project: str, contract: str, body: dict[str, Any]) -> str:
    """``apply-`` and the first 32 hex digits of the SHA-256 of the RFC 8785 canonical
    ``{project, contract, body}``: key order and whitespace never change it.

    Raises ``NotCanonicalizable`` for a body JSON cannot hold.
    """
    document = {"project": project, "contract": contract, "body": body}
    return "apply-" + hashlib.sha256(canonical_json(document)).hexdigest()[:32]


def contract_paths(paths: Sequence[Path]) -> list[Path]:
    """Each file as given, each folder as its ``*.yaml``, ``*.yml`` and ``*.json``, sorted.

    Raises ``ContractFileError`` for a path that does not exist or a folder without any.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
            if not inside:
                raise ContractFileError(f"{path}: no *.yaml, *.yml or *.json file in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ContractFileError(f"{path}: no such file or folder")
    return found


def read_contract_file(path: Path, project: str | None = None) -> ContractFile:
    """Parse one contract file; ``project`` (``--project``) stands in for a missing one.

    Raises ``ContractFileError`` naming the file when it is not valid YAML or JSON,
    lacks ``contract``, ``body`` or ``body.family``, or names another project.
    """
    document = _load(path)
    if not isinstance(document, dict):
        raise ContractFileError(f"{path}: expected a mapping with contract and body")
    unknown = sorted(set(document) - {"project", "contract", "body"})
    if unknown:
        raise ContractFileError(f"{path}: unknown keys {', '.join(map(str, unknown))}")
    named = document.get("project")
    if named is not None and project is not None and named != project:
        raise ContractFileError(f"{path}: names project {named!r}, but --project is {project!r}")
    chosen = named if named is not None else project
    if not isinstance(chosen, str) or not chosen:
        raise ContractFileError(f"{path}: no project (add project: to the file or pass --project)")
    contract = document.get("contract")
    if not isinstance(contract, str) or not contract:
        raise ContractFileError(f"{path}: no contract (the contract id, a string)")
    body = document.get("body")
    if not isinstance(body, dict):
        raise ContractFileError(f"{path}: no body (the family document, a mapping)")
    family = body.get("family")
    if not isinstance(family, str) or not family:
        raise ContractFileError(f"{path}: body.family is missing (it names the family)")
    read = ContractFile(path, chosen, contract, family, body)
    try:
        read.request_id  # noqa: B018 - a body JSON cannot hold (a YAML date) is refused here
    except NotCanonicalizable as error:
        raise ContractFileError(f"{path}: the body is not plain JSON data ({error})") from None
    return read


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ContractFileError(f"{path}: cannot read ({error})") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        where = " ".join(str(error).split())
        raise ContractFileError(f"{path}: not valid {kind} ({where})") from None
