"""What a contract body must be: JSON with a canonical form (to be drafted), and valid for
its family (to be published).

Each problem is ``<JSON pointer>: <message>``, the whole body being ``(root)``. A body is
checked against its family's JSON Schema, the source of the family; only a body the
schema accepts meets the pydantic model (the parity tests keep the two equal, so the
model speaks only if they drift) and then the family's rules no schema can state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from awooop.approval.domain.refusals import ContractBodyInvalid
from awooop.contracts.families.policy import Policy
from awooop.contracts.families.registry import contract_family
from awooop.security.canonical_json import canonical_json

ROOT = "(root)"
MAX_SAFE_INTEGER = 2**53 - 1
"""RFC 8785 writes numbers as IEEE doubles: a larger integer has no canonical form."""


def pointer(path: Iterable[str | int]) -> str:
    """The JSON pointer (RFC 6901) of ``path``, or ``(root)`` for the whole body."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "".join(f"/{part}" for part in parts) or ROOT


def check_draftable(body: dict[str, Any]) -> None:
    """Refuse a body with no canonical JSON form: it could never be signed or hashed."""
    problems = list(_not_canonical(body, ()))
    if problems:
        raise ContractBodyInvalid(problems)


def check_publishable(family: str, body: dict[str, Any]) -> None:
    """Refuse a body that fails its family's schema, model or rules, listing every problem."""
    check_draftable(body)
    problems = [
        f"{pointer(error.absolute_path)}: {error.message}"
        for error in _validator(family).iter_errors(body)
    ]
    if problems:
        raise ContractBodyInvalid(problems)
    try:
        document = contract_family(family).model.model_validate_json(canonical_json(body))
    except ValidationError as invalid:
        problems = [f"{pointer(e['loc'])}: {e['msg']}" for e in invalid.errors()]
        raise ContractBodyInvalid(problems) from None
    rules = _FAMILY_RULES.get(family)
    problems = rules(document) if rules else []
    if problems:
        raise ContractBodyInvalid(problems)


@cache
def _validator(family: str) -> Any:
    schema = contract_family(family).schema()
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _not_canonical(value: Any, path: tuple[str | int, ...]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield f"{pointer(path)}: the key {key!r} is not a string"
            else:
                yield from _not_canonical(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _not_canonical(item, (*path, index))
    elif isinstance(value, str):
        if not value.isascii() and not _encodable(value):
            yield f"{pointer(path)}: the string holds a lone surrogate"
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            yield f"{pointer(path)}: the integer is beyond ±(2**53 - 1), no canonical JSON form"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield f"{pointer(path)}: {value} is not a JSON number"
    else:
        yield f"{pointer(path)}: a {type(value).__name__} is not a JSON value"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _policy_rules(document: BaseModel) -> list[str]:
    """k of n (k at most n); each approver id and each subject belongs to one approver."""
    assert isinstance(document, Policy)
    problems: list[str] = []
    approvers = document.approvers
    if document.approvals_required > len(approvers):
        problems.append(
            f"/approvals_required: {document.approvals_required} approvals are required "
            f"of only {len(approvers)} approvers"
        )
    owners: dict[str, int] = {}
    for index, approver in enumerate(approvers):
        if approver.approver_id in {a.approver_id for a in approvers[:index]}:
            problems.append(
                f"{pointer(('approvers', index, 'approver_id'))}: "
                f"{approver.approver_id!r} names an earlier approver again"
            )
        subjects = [(("chat_subjects", n), s) for n, s in enumerate(approver.chat_subjects)]
        for where, subject in [*subjects, (("api_subject",), approver.api_subject)]:
            owner = owners.setdefault(subject, index)
            if owner != index:
                problems.append(
                    f"{pointer(('approvers', index, *where))}: "
                    f"{subject!r} is already a subject of {pointer(('approvers', owner))}"
                )
    return problems


_FAMILY_RULES: dict[str, Callable[[BaseModel], list[str]]] = {"policy": _policy_rules}
