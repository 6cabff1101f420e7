"""Every error code is registered once, well-formed, with a one-line meaning."""

from __future__ import annotations

import re

import pytest

from awooop.contracts.registries import errors
from awooop.contracts.registries.errors import (
    ERROR_CODE_PATTERN,
    ERROR_CODES,
    MCP_GATE_OF,
    ErrorCode,
    error_code,
    error_table_markdown,
)

pytestmark = pytest.mark.unit

REQUIRED = [
    "E-BROKER-RESET",
    "E-TOPIC-PARTITIONS",
    "E-DLQ-DECODE",
    "E-DLQ-INVALID",
    "E-DLQ-UPCAST",
    "E-DLQ-HANDLER",
    "E-DLQ-OVERSIZE",
    "E-INBOUND-INVALID",
    "E-INBOUND-OVERSIZE",
    "E-RUN-STATE-001",
    "E-SCHEMA-001",
    "E-CONFLICT-BOUND",
    *[f"E-MCP-GATE-{n:03d}" for n in range(1, 10)],
]


def test_required_codes_are_registered() -> None:
    assert set(REQUIRED) <= set(ERROR_CODES)


def test_codes_are_well_formed_and_meanings_one_line() -> None:
    for code, entry in ERROR_CODES.items():
        assert entry.code == code
        assert re.fullmatch(ERROR_CODE_PATTERN, code)
        assert entry.meaning.strip() == entry.meaning
        assert entry.meaning
        assert "\n" not in entry.meaning


def test_every_module_constant_is_in_the_registry_once() -> None:
    constants = [v for k, v in vars(errors).items() if k.startswith("E_")]
    assert all(isinstance(c, ErrorCode) for c in constants)
    assert len({c.code for c in constants}) == len(constants) == len(ERROR_CODES)
    assert all(ERROR_CODES[c.code] is c for c in constants)


def test_every_gate_code_names_its_gate_in_order() -> None:
    gate_codes = [c for c in ERROR_CODES if c.startswith("E-MCP-GATE-")]
    assert sorted(gate_codes) == sorted(MCP_GATE_OF)
    gates = [MCP_GATE_OF[c] for c in sorted(gate_codes)]
    assert gates == sorted(gates)
    assert set(gates) == {1, 2, 3, 4, 5}
    for code in gate_codes:
        assert ERROR_CODES[code].meaning.startswith(f"gate {MCP_GATE_OF[code]}:")


def test_lookup() -> None:
    assert error_code("E-SCHEMA-001") is errors.E_SCHEMA_001
    assert str(errors.E_SCHEMA_001) == "E-SCHEMA-001"
    with pytest.raises(KeyError, match="unregistered"):
        error_code("E-NOPE-1")


def test_markdown_table_lists_every_code() -> None:
    table = error_table_markdown()
    lines = table.splitlines()
    assert lines[:2] == ["| code | meaning |", "|---|---|"]
    assert len(lines) == 2 + len(ERROR_CODES)
    for line, entry in zip(lines[2:], ERROR_CODES.values(), strict=True):
        assert line.startswith(f"| `{entry.code}` | ")
        assert line.count("|") - line.count("\\|") == 3
