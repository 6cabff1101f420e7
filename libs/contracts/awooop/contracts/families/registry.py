"""The contract families: for each, its JSON Schema, its pydantic model and its fixtures.

JSON Schemas are the source of each family. The model and the golden fixtures are held
to the schema by the parity tests, which run over every family registered here: a new
family is one entry plus its schema and fixture files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Literal

from pydantic import BaseModel

from awooop.contracts.families.agent import Agent
from awooop.contracts.families.budget import Budget
from awooop.contracts.families.channel_binding import ChannelBinding
from awooop.contracts.families.policy import Policy
from awooop.contracts.families.runtime_run_state import RuntimeRunState
from awooop.contracts.families.tool import Tool

_PACKAGE = "awooop.contracts.families"

FixtureKind = Literal["valid", "invalid"]


@dataclass(frozen=True, slots=True)
class ContractFamily:
    """One family: ``schema_path`` and ``fixtures_dir`` are package resource paths."""

    name: str
    schema_path: str
    model: type[BaseModel]
    fixtures_dir: str

    def schema(self) -> dict[str, Any]:
        """The family's JSON Schema document (a fresh copy)."""
        return json.loads(_schema_text(self.schema_path))  # type: ignore[no-any-return]

    def fixtures(self, kind: FixtureKind) -> tuple[Traversable, ...]:
        """The ``valid`` or ``invalid`` golden fixture files, sorted by name."""
        folder = files(_PACKAGE).joinpath(self.fixtures_dir, kind)
        found = [entry for entry in folder.iterdir() if entry.name.endswith(".json")]
        return tuple(sorted(found, key=lambda entry: entry.name))


@cache
def _schema_text(path: str) -> str:
    return files(_PACKAGE).joinpath(path).read_text(encoding="utf-8")


def _family(name: str, model: type[BaseModel]) -> ContractFamily:
    return ContractFamily(name, f"schemas/{name}.schema.json", model, f"fixtures/{name}")


CONTRACT_FAMILIES: dict[str, ContractFamily] = {
    family.name: family
    for family in (
        _family("agent", Agent),
        _family("tool", Tool),
        _family("policy", Policy),
        _family("channel_binding", ChannelBinding),
        _family("budget", Budget),
        _family("runtime_run_state", RuntimeRunState),
    )
}
"""The six contract families (ARCHITECTURE §5), by name."""


def contract_family(name: str) -> ContractFamily:
    """Look a family up by name; ``KeyError`` naming the family when it is unknown."""
    try:
        return CONTRACT_FAMILIES[name]
    except KeyError:
        msg = f"unknown contract family {name!r}"
        raise KeyError(msg) from None
