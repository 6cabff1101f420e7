"""`awooop contracts apply`'s contract files: reading YAML and JSON, folder order, the
one-line refusals naming the file, and the request id derived from the content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from awooop.cli.contract_files import (
    ContractFileError,
    apply_request_id,
    contract_paths,
    read_contract_file,
)

pytestmark = pytest.mark.unit

BODY = {"family": "policy", "schema_version": 1, "mode": "shadow", "approvals_required": 1}

YAML = """\
project: acme
contract: payments
body:
  family: policy
  schema_version: 1
  mode: shadow
  approvals_required: 1
"""


def test_a_yaml_file_and_its_json_twin_read_the_same_and_share_a_request_id(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(YAML)
    twin = {"body": dict(reversed(BODY.items())), "contract": "payments", "project": "acme"}
    (tmp_path / "b.json").write_text(json.dumps(twin, indent=4))
    from_yaml = read_contract_file(tmp_path / "a.yaml")
    from_json = read_contract_file(tmp_path / "b.json")
    assert (from_yaml.project, from_yaml.contract, from_yaml.family) == (
        "acme",
        "payments",
        "policy",
    )
    assert from_yaml.body == BODY == from_json.body
    assert from_yaml.request_id == from_json.request_id
    assert from_yaml.request_id.startswith("apply-")
    assert len(from_yaml.request_id) == len("apply-") + 32


def test_the_request_id_changes_with_the_body_the_contract_or_the_project() -> None:
    first = apply_request_id("acme", "payments", BODY)
    assert first == apply_request_id("acme", "payments", dict(reversed(BODY.items())))
    assert first != apply_request_id("acme", "payments", {**BODY, "mode": "enforce"})
    assert first != apply_request_id("acme", "refunds", BODY)
    assert first != apply_request_id("other", "payments", BODY)


def test_a_folder_gives_its_yaml_yml_and_json_files_in_sorted_order(tmp_path: Path) -> None:
    for name in ("c.json", "a.yml", "b.yaml", "notes.txt"):
        (tmp_path / name).write_text("{}")
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("z.yaml", "m.json"):
        (folder / name).write_text("{}")
    found = contract_paths([folder, tmp_path / "b.yaml"])
    assert [p.name for p in found] == ["m.json", "z.yaml", "b.yaml"]
    assert [p.name for p in contract_paths([tmp_path])] == ["a.yml", "b.yaml", "c.json"]


def test_project_comes_from_the_flag_when_the_file_has_none(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(YAML.replace("project: acme\n", ""))
    assert read_contract_file(path, "acme").project == "acme"
    with pytest.raises(ContractFileError, match="no project"):
        read_contract_file(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("project: acme\ncontract: [unclosed\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
        ("project: acme\nbody: {family: policy}\n", "no contract"),
        ("project: acme\ncontract: payments\n", "no body"),
        ("project: acme\ncontract: payments\nbody: {mode: shadow}\n", "body.family is missing"),
        ("project: acme\ncontract: payments\nbody: {family: policy}\nextra: 1\n", "unknown keys"),
        ("contract: p\nbody: {family: policy, at: 2024-01-01}\nproject: acme\n", "plain JSON"),
    ],
)
def test_a_broken_file_is_one_line_naming_it(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ContractFileError, match=says) as refused:
        read_contract_file(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


def test_invalid_json_and_missing_paths_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"project": "acme",')
    with pytest.raises(ContractFileError, match=r"broken\.json: not valid JSON"):
        read_contract_file(path)
    with pytest.raises(ContractFileError, match="no such file or folder"):
        contract_paths([tmp_path / "absent.yaml"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ContractFileError, match=r"empty: no \*\.yaml"):
        contract_paths([empty])


def test_another_project_in_the_file_than_the_flag_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(YAML)
    assert read_contract_file(path, "acme").project == "acme"
    with pytest.raises(ContractFileError, match="names project 'acme', but --project is 'other'"):
        read_contract_file(path, "other")
