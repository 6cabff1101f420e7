"""A credential reference resolves inside its own project's namespace, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from awooop.security.tenant_credentials import (
    CredentialMissing,
    env_variable_name,
    resolve_credential,
)

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-value-91f2"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A secrets folder with files for `acme` and for `other`."""
    acme = tmp_path / "acme"
    (acme / "llm-keys").mkdir(parents=True)
    (acme / "openai").write_text(SECRET + "\n")
    (acme / "crlf").write_text(SECRET + "\r\n")
    (acme / "two-newlines").write_text(SECRET + "\n\n")
    (acme / "blank").write_text("\n")
    (acme / "llm-keys" / "api_key").write_text(SECRET)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "openai").write_text("other-project-secret")
    return tmp_path


def resolve(reference: str, root: Path | None, project: str = "acme", **env: str) -> str:
    return resolve_credential(project, reference, env=env, secrets_root=root)


def test_env_reads_the_project_variable(root: Path) -> None:
    assert resolve("env:OPENAI_KEY", root, AWOOOP_TENANT_ACME_OPENAI_KEY=SECRET) == SECRET


def test_env_turns_dashes_of_the_project_id_into_underscores() -> None:
    assert env_variable_name("acme-prod", "KEY") == "AWOOOP_TENANT_ACME_PROD_KEY"
    found = resolve("env:KEY", None, project="acme-prod", AWOOOP_TENANT_ACME_PROD_KEY=SECRET)
    assert found == SECRET


def test_env_never_reads_the_bare_or_another_projects_variable(root: Path) -> None:
    with pytest.raises(CredentialMissing) as missing:
        resolve("env:KEY", root, KEY=SECRET, AWOOOP_TENANT_OTHER_KEY=SECRET)
    assert "AWOOOP_TENANT_ACME_KEY" in missing.value.reason


def test_an_empty_env_value_is_missing(root: Path) -> None:
    with pytest.raises(CredentialMissing):
        resolve("env:KEY", root, AWOOOP_TENANT_ACME_KEY="")


def test_file_reads_the_project_file_without_one_trailing_newline(root: Path) -> None:
    assert resolve("file:openai", root) == SECRET
    assert resolve("file:crlf", root) == SECRET
    assert resolve("file:two-newlines", root) == SECRET + "\n"


def test_k8s_reads_the_key_of_the_mounted_secret(root: Path) -> None:
    assert resolve("k8s:llm-keys/api_key", root) == SECRET


def test_kubernetes_style_symlinks_inside_the_project_are_followed(root: Path) -> None:
    mount = root / "acme" / "mounted"
    (mount / "..data").mkdir(parents=True)
    (mount / "..data" / "token").write_text(SECRET)
    (mount / "token").symlink_to(Path("..data") / "token")
    assert resolve("k8s:mounted/token", root) == SECRET


@pytest.mark.parametrize(
    "reference", ["file:absent", "file:blank", "k8s:llm-keys/absent", "k8s:absent/key"]
)
def test_absent_or_empty_files_are_missing(root: Path, reference: str) -> None:
    with pytest.raises(CredentialMissing) as missing:
        resolve(reference, root)
    assert reference in missing.value.reason
    assert "acme" in missing.value.reason


def test_a_folder_is_not_a_secret(root: Path) -> None:
    with pytest.raises(CredentialMissing):
        resolve("file:llm-keys", root)


def test_files_need_a_secrets_folder() -> None:
    with pytest.raises(CredentialMissing, match="no secrets folder"):
        resolve("file:openai", None)


def test_a_project_without_a_folder_reads_nothing(root: Path) -> None:
    with pytest.raises(CredentialMissing):
        resolve("file:openai", root, project="newcomer")


@pytest.mark.parametrize(
    "reference",
    [
        "file:../other/openai",
        "file:..",
        "file:.hidden",
        "file:/etc/passwd",
        "k8s:../other",
        "k8s:llm-keys/../../other/openai",
        "k8s:Upper/key",
        "env:lower",
        "env:KEY\n",
        "vault:KEY",
        "",
    ],
)
def test_malformed_references_are_refused(root: Path, reference: str) -> None:
    with pytest.raises(CredentialMissing) as missing:
        resolve(reference, root, AWOOOP_TENANT_ACME_KEY=SECRET)
    assert "malformed" in missing.value.reason


def test_a_symlink_out_of_the_project_folder_is_refused(root: Path) -> None:
    (root / "acme" / "leak").symlink_to(root / "other" / "openai")
    with pytest.raises(CredentialMissing) as missing:
        resolve("file:leak", root)
    assert "outside" in missing.value.reason
    assert "other-project-secret" not in missing.value.reason


@pytest.mark.parametrize("project", ["Acme", "../acme", "a", "acme/x", ""])
def test_malformed_project_ids_are_refused(root: Path, project: str) -> None:
    with pytest.raises(CredentialMissing, match="project id"):
        resolve("file:openai", root, project=project)


def test_a_malformed_reference_is_not_echoed(root: Path) -> None:
    pasted = "sk-live-0123456789abcdef"
    with pytest.raises(CredentialMissing) as missing:
        resolve(pasted, root)
    assert pasted not in missing.value.reason
    assert pasted not in str(missing.value)


def test_it_is_a_value_error() -> None:
    assert issubclass(CredentialMissing, ValueError)


@pytest.mark.parametrize(
    ("project", "reference", "other"),
    [
        ("acme", "env:PROD_KEY", "acme-prod"),  # acme would read acme-prod's KEY
        ("acme-prod", "env:KEY", "acme"),  # and acme-prod acme's PROD_KEY
        ("a-b", "env:KEY", "a_b"),  # two ids, one namespace
    ],
)
def test_an_env_reference_another_known_project_could_name_is_refused(
    project: str, reference: str, other: str
) -> None:
    env = {env_variable_name(project, reference.removeprefix("env:")): "secret-value"}
    with pytest.raises(CredentialMissing) as refused:
        resolve_credential(
            project, reference, env=env, secrets_root=None, other_projects=[project, other]
        )
    assert other in refused.value.reason
    assert "secret-value" not in refused.value.reason


def test_an_env_reference_no_other_project_could_name_resolves() -> None:
    env = {env_variable_name("acme", "KEY"): "secret-value"}
    found = resolve_credential(
        "acme", "env:KEY", env=env, secrets_root=None, other_projects=["acme", "globex"]
    )
    assert found == "secret-value"
